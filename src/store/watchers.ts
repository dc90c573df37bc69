/**
 * watch(): per projection, the listeners and a coalescing loop that recomputes the state after
 * changes.
 *
 * Invariants:
 * 1. A listener first gets the current state, then at most one state per change notification;
 *    changes that arrive while a state is being computed coalesce into one more computation.
 * 2. A listener removed before its state is ready is never called.
 */
import type { ProjectionRuntime } from './projection-runtime.ts';

export class ProjectionWatchers {
  private readonly listeners = new Set<(state: unknown) => void>();
  private computing = false;
  private dirty = false;

  constructor(
    private readonly runtime: ProjectionRuntime,
    private readonly onError: (error: unknown) => void,
  ) {}

  get size(): number {
    return this.listeners.size;
  }

  add(listener: (state: unknown) => void): () => void {
    this.listeners.add(listener);
    void this.runtime.current().then(
      (state) => {
        if (this.listeners.has(listener)) listener(state);
      },
      (error: unknown) => this.onError(error),
    );
    return () => this.listeners.delete(listener);
  }

  changed(): void {
    if (this.listeners.size === 0) return;
    if (this.computing) {
      this.dirty = true;
      return;
    }
    this.computing = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    try {
      do {
        this.dirty = false;
        const state = await this.runtime.current();
        for (const listener of [...this.listeners]) {
          try {
            listener(state);
          } catch (error) {
            this.onError(error);
          }
        }
      } while (this.dirty && this.listeners.size > 0);
    } catch (error) {
      this.onError(error);
    } finally {
      this.computing = false;
    }
  }
}
