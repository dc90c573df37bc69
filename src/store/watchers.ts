/**
 * watch(): per projection, the listeners and a coalescing loop that recomputes the state after
 * changes.
 *
 * Invariants:
 * 1. A listener first gets the current state, then at most one state per change notification;
 *    changes that arrive while a state is being computed coalesce into one more computation.
 * 2. A listener never gets the same revision of the state twice.
 * 3. A listener removed before its state is ready is never called.
 */
import type { ProjectionRuntime } from './projection-runtime.ts';

type Listener = (state: unknown) => void;

export class ProjectionWatchers {
  /** Each listener with the runtime revision it last received (invariant 2). */
  private readonly listeners = new Map<Listener, number>();
  private computing = false;
  private dirty = false;

  private readonly runtime: ProjectionRuntime;
  private readonly onError: (error: unknown) => void;

  constructor(runtime: ProjectionRuntime, onError: (error: unknown) => void) {
    this.runtime = runtime;
    this.onError = onError;
  }

  get size(): number {
    return this.listeners.size;
  }

  add(listener: Listener): () => void {
    this.listeners.set(listener, -1);
    void this.runtime.current().then(
      (state) => this.deliver(listener, state),
      (error: unknown) => this.onError(error),
    );
    return () => this.listeners.delete(listener);
  }

  private deliver(listener: Listener, state: unknown): void {
    const last = this.listeners.get(listener);
    const revision = this.runtime.revision;
    if (last === undefined || last === revision) return;
    this.listeners.set(listener, revision);
    try {
      listener(state);
    } catch (error) {
      this.onError(error);
    }
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
        for (const listener of [...this.listeners.keys()]) this.deliver(listener, state);
      } while (this.dirty && this.listeners.size > 0);
    } catch (error) {
      this.onError(error);
    } finally {
      this.computing = false;
    }
  }
}
