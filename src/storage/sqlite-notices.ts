/**
 * Write notices between handles on one SQLite replica file (adapter.ts onRemoteWrite).
 *
 * Invariants:
 * 1. In this process: a handle's committed write is announced to every other open handle on the
 *    same file (by its resolved path), after the commit, in a microtask: a listener never runs
 *    inside a write, like a BroadcastChannel message.
 * 2. Across processes: a handle with listeners polls `PRAGMA data_version` (one cheap call that
 *    changes when another connection committed) every `pollMs`; a change is announced with the
 *    head read then. Such a notice is late by up to `pollMs`, carries no rewrittenFrom (a
 *    reader finds rewrites in the log's meta: rewrites.ts), and none is sent when pollMs is 0.
 *    The log, not the notice, is the truth.
 */
import type { RemoteWriteListener } from './adapter.ts';

export interface NoticeTarget {
  /** Delivers a notice from another handle of this process. */
  heard(head: number, rewrittenFrom?: string): void;
}

const handlesByFile = new Map<string, Set<NoticeTarget>>();

export function register(path: string, handle: NoticeTarget): void {
  let handles = handlesByFile.get(path);
  if (handles === undefined) {
    handles = new Set();
    handlesByFile.set(path, handles);
  }
  handles.add(handle);
}

export function unregister(path: string, handle: NoticeTarget): void {
  const handles = handlesByFile.get(path);
  handles?.delete(handle);
  if (handles?.size === 0) handlesByFile.delete(path);
}

/** Invariant 1. */
export function announce(
  path: string,
  writer: NoticeTarget,
  head: number,
  rewrittenFrom?: string,
): void {
  for (const handle of handlesByFile.get(path) ?? []) {
    if (handle !== writer) handle.heard(head, rewrittenFrom);
  }
}

/** One handle's listeners and its poll of other processes' writes (invariant 2). */
export class Listeners {
  private readonly listeners = new Set<RemoteWriteListener>();
  private timer: ReturnType<typeof setInterval> | undefined;
  private seenVersion: number | undefined;
  private readonly pollMs: number;
  private readonly dataVersion: () => number;
  private readonly head: () => number;

  constructor(options: { pollMs: number; dataVersion: () => number; head: () => number }) {
    this.pollMs = options.pollMs;
    this.dataVersion = options.dataVersion;
    this.head = options.head;
  }

  add(listener: RemoteWriteListener): () => void {
    this.listeners.add(listener);
    if (this.timer === undefined && this.pollMs > 0) {
      this.seenVersion = this.dataVersion();
      this.timer = setInterval(() => this.poll(), this.pollMs);
      // A service's idle poll must not keep its process alive.
      this.timer.unref?.();
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    };
  }

  /** A notice from this process (invariant 1): its data_version change is no news for the poll. */
  deliver(head: number, rewrittenFrom?: string): void {
    if (this.listeners.size === 0) return;
    if (this.timer !== undefined) this.seenVersion = this.dataVersion();
    queueMicrotask(() => this.emit(head, rewrittenFrom));
  }

  stop(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  clear(): void {
    this.stop();
    this.listeners.clear();
  }

  private poll(): void {
    let version: number;
    let head: number;
    try {
      version = this.dataVersion();
      if (version === this.seenVersion) return;
      head = this.head();
    } catch {
      // Closed under the timer, or a transient read failure: the next tick tries again.
      return;
    }
    this.seenVersion = version;
    this.emit(head);
  }

  private emit(head: number, rewrittenFrom?: string): void {
    for (const listener of this.listeners) listener(head, rewrittenFrom);
  }
}
