/**
 * A client replica for server tests: an in-memory SyncLog plus the real peer session
 * (sync/session.ts) over a `ws` WebSocket. The server runs the same session: this is two
 * peers, one of which persists.
 */
import WebSocket from 'ws';
import type { LocalRecord, StoredEventRecord } from '../../src/core/events.ts';
import type { SyncIngestResult, SyncLog } from '../../src/sync/log.ts';
import type { Checkpoint } from '../../src/sync/protocol.ts';
import { type PeerSession, type SessionStats, startPeerSession } from '../../src/sync/session.ts';
import { makeEvent } from './events.ts';

let logCounter = 0;

export class MemorySyncLog implements SyncLog {
  readonly replicaId: string;
  readonly records: LocalRecord[] = [];
  readonly byId = new Map<string, LocalRecord>();
  /** Events handed to ingest, duplicates included (to see resends). */
  ingestedTotal = 0;
  private readonly epochId: string;
  private seq = 0;
  private readonly checkpoints = new Map<string, Checkpoint>();
  private readonly listeners = new Set<(head: number) => void>();

  constructor(replicaId?: string) {
    logCounter += 1;
    this.replicaId = replicaId ?? `mem${String(logCounter).padStart(13, '0')}`;
    this.epochId = `epoch${this.replicaId}`;
  }

  /** Appends `count` events of this replica. */
  append(count: number, data: (i: number) => unknown = (i) => ({ i })): StoredEventRecord[] {
    const out: StoredEventRecord[] = [];
    for (let i = 0; i < count; i++) {
      this.seq += 1;
      const event = makeEvent({
        replica: this.replicaId,
        seq: this.seq,
        id: `${this.replicaId}-${this.seq}`,
        data: data(this.seq) as never,
      });
      this.add(event);
      out.push(event);
    }
    this.notify();
    return out;
  }

  ids(): string[] {
    return [...this.byId.keys()].sort();
  }

  async epoch(): Promise<string> {
    return this.epochId;
  }
  async headPos(): Promise<number> {
    return this.records.length;
  }
  async ownSeq(): Promise<number> {
    return this.seq;
  }
  async readByPos(afterPos: number, limit: number): Promise<LocalRecord[]> {
    return this.records.slice(afterPos, afterPos + limit);
  }
  async idAtPos(pos: number): Promise<string | undefined> {
    return this.records[pos - 1]?.event.id;
  }
  async ingest(events: StoredEventRecord[]): Promise<SyncIngestResult> {
    this.ingestedTotal += events.length;
    const written: LocalRecord[] = [];
    for (const event of events) {
      if (this.byId.has(event.id)) continue;
      written.push(this.add(event));
    }
    if (written.length > 0) this.notify();
    return { written, skewed: false };
  }
  async getCheckpoint(peer: string): Promise<Checkpoint | undefined> {
    return this.checkpoints.get(peer);
  }
  async setCheckpoint(peer: string, checkpoint: Checkpoint): Promise<void> {
    this.checkpoints.set(peer, checkpoint);
  }
  onAppend(listener: (head: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private add(event: StoredEventRecord): LocalRecord {
    const record = { event, pos: this.records.length + 1 };
    this.records.push(record);
    this.byId.set(event.id, record);
    return record;
  }

  private notify(): void {
    for (const listener of [...this.listeners]) listener(this.records.length);
  }
}

export interface SessionClient {
  session: PeerSession;
  ws: WebSocket;
  closed: Promise<{ code: number; reason: string }>;
  close(): void;
}

/** Opens a WebSocket to the server and runs a peer session on `log` over it. */
export function connectSession(
  url: string,
  token: string,
  log: SyncLog,
  options: { onStatus?: (stats: SessionStats) => void } = {},
): Promise<SessionClient> {
  const ws = new WebSocket(`${url}/?token=${encodeURIComponent(token)}`);
  const closed = new Promise<{ code: number; reason: string }>((resolve) => {
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
  });
  return new Promise((resolve, reject) => {
    ws.once('error', reject);
    ws.once('open', () => {
      ws.off('error', reject);
      ws.on('error', () => {});
      const session = startPeerSession({
        log,
        send: (text) => ws.send(text),
        closeConnection: (code, reason) => ws.close(code, reason),
        bufferedBytes: () => ws.bufferedAmount,
        now: Date.now,
        maxClockDriftMs: 24 * 3600 * 1000,
        ...(options.onStatus ? { onStatus: options.onStatus } : {}),
      });
      ws.on('message', (data) => void session.receive(String(data)));
      ws.on('close', () => session.close());
      resolve({
        session,
        ws,
        closed,
        close() {
          session.close();
          ws.close();
        },
      });
    });
  });
}
