/**
 * A child process of the fan-out benchmark (fanout.ts) holding FANOUT_COUNT clients of one
 * server: FANOUT_MODE=chronicle clients run the real peer session (sync/session.ts) over a real
 * `ws` socket, as a store's sync does, on a light log (FanoutLog) that keeps the client's own
 * events and counts what it receives instead of storing it: 1,000 full stores, each holding every
 * event of a run, do not fit beside the server on the bench machine. FANOUT_MODE=raw clients send
 * and parse plain JSON frames through the raw relay (fanout-server.ts).
 *
 * FANOUT_RECEIVE=light (the default): the session sends and is pulled from as usual, but the
 * server's `events` messages are taken before it: the ids are read from the columns (JSON.parse
 * of the message up to its `data`), and an ack goes at once; a raw relay client likewise reads
 * the id at the head of each frame. Decoding and validating every received event
 * (FANOUT_RECEIVE=session) costs the clients of a 1,000-client cell more CPU than the bench
 * machine has, and the bench measures the server, not the clients.
 *
 * Each receipt is folded into one entry per event id: the latest time one of this process's
 * clients received it and how many did; the sender's process lists when it appended each event.
 * The parent joins them (one clock for every process of the machine: timeOrigin + now).
 *
 * IPC with the parent: the child says `{ ready }` once every client is live; `run` appends at
 * `rate` events/s per client for `ms` from the time `at`, then says `{ sent }`; `stats` answers
 * `{ received }`; `collect` answers `{ collected }`; `stop` exits. No side effects on import
 * unless FANOUT_MODE is set.
 */
import WebSocket from 'ws';
import type { JsonValue, LocalRecord, StoredEventRecord } from '../../src/core/events.ts';
import { DEFAULT_MAX_CLOCK_DRIFT_MS, encodeHlc } from '../../src/core/hlc.ts';
import { Cursor, EventId, ReplicaId, Seq } from '../../src/core/ids.ts';
import type { SyncIngestResult, SyncLog } from '../../src/sync/log.ts';
import type { Checkpoint } from '../../src/sync/protocol.ts';
import { type PeerSession, startPeerSession } from '../../src/sync/session.ts';
import { sampleEvent } from './browser-shared.ts';
import { benchToken } from './sync-server.ts';

/** Milliseconds on a clock shared by every process of this machine (sub-millisecond). */
export const clock = (): number => performance.timeOrigin + performance.now();

/** What a child sends back on `collect`: sent `[id, t]`, received `[id, lastAt, count]`. */
export interface Collected {
  sent: [string, number][];
  received: [string, number, number][];
  /** Close codes the clients saw during the run, with counts. */
  closes: Record<string, number>;
}

interface Receipt {
  last: number;
  count: number;
}

const receipts = new Map<string, Receipt>();
const sent: [string, number][] = [];
const closes: Record<string, number> = {};
let receivedTotal = 0;

function receive(id: string, at: number): void {
  receivedTotal += 1;
  const r = receipts.get(id);
  if (r === undefined) receipts.set(id, { last: at, count: 1 });
  else {
    r.count += 1;
    if (at > r.last) r.last = at;
  }
}

interface Client {
  /** Appends one event stamped with `t`; returns its id. */
  append(t: number): string;
  close(): void;
}

/**
 * A SyncLog that holds the client's own events (positions 1..n are seqs 1..n) and counts what it
 * receives: received events get no position, so nothing is ever sent back.
 */
class FanoutLog implements SyncLog {
  readonly replicaId = ReplicaId.make();
  private readonly epochId = `epoch-${this.replicaId}`;
  private readonly records: LocalRecord[] = [];
  private readonly checkpoints = new Map<string, Checkpoint>();
  private readonly listeners = new Set<(head: number) => void>();

  append(t: number): string {
    const seq = Seq.make(this.records.length + 1);
    const wall = Math.floor(t);
    const hlc = encodeHlc({ wall, counter: 0 });
    const sample = sampleEvent(seq);
    const event: StoredEventRecord = {
      id: EventId.canonical(this.replicaId, seq) as EventId,
      type: sample.type,
      data: { t, ...sample.data } as JsonValue,
      stream: `card-${this.replicaId}`,
      version: seq,
      replica: this.replicaId,
      seq,
      hlc,
      time: wall,
      cursor: Cursor.make(hlc, this.replicaId, seq),
    };
    this.records.push({ pos: seq, event });
    for (const listener of [...this.listeners]) listener(seq);
    return event.id;
  }

  async epoch(): Promise<string> {
    return this.epochId;
  }
  async headPos(): Promise<number> {
    return this.records.length;
  }
  async ownSeq(): Promise<number> {
    return this.records.length;
  }
  async readByPos(afterPos: number, limit: number): Promise<LocalRecord[]> {
    return this.records.slice(afterPos, afterPos + limit);
  }
  async idAtPos(pos: number): Promise<string | undefined> {
    return this.records[pos - 1]?.event.id;
  }
  async ingest(events: StoredEventRecord[]): Promise<SyncIngestResult> {
    const at = clock();
    for (const e of events) receive(e.id, at);
    return { written: [], skewed: false };
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
}

const LIGHT_RECEIVE = process.env.FANOUT_RECEIVE !== 'session';

interface WireBatch {
  to: number;
  caughtUp?: boolean;
  events: {
    replicas: string[];
    runs: [number, number, number, number, number, number, number][];
    ids?: [number, string][];
  };
}

/**
 * A light receipt of an `events` message (see the header): ids and stamps, then an ack. Returns
 * whether the message said caught up.
 */
function receiveLight(ws: WebSocket, text: string): boolean {
  const at = clock();
  // `events` is the message's last key and `data` the batch's: the head is all a receipt needs.
  const cut = text.indexOf(',"data":[');
  const m = JSON.parse(`${text.slice(0, cut)}}}`) as WireBatch;
  const { replicas, runs, ids } = m.events;
  const explicit = ids === undefined ? undefined : new Map(ids);
  let i = 0;
  for (const [replica, , , seq, , , count] of runs) {
    for (let k = 0; k < count; k++, i++) {
      const id =
        explicit?.get(i) ?? EventId.canonical(replicas[replica] as ReplicaId, Seq.make(seq + k));
      receive(id, at);
    }
  }
  ws.send(`{"type":"ack","to":${m.to}}`);
  return m.caughtUp === true;
}

function noteClose(code: number): void {
  closes[code] = (closes[code] ?? 0) + 1;
}

/** A client of our server: the real peer session over a real socket; resolves once caught up. */
function chronicleClient(url: string, sub: string): Promise<Client> {
  const log = new FanoutLog();
  const ws = new WebSocket(`${url}/?token=${encodeURIComponent(benchToken(sub))}`, {
    perMessageDeflate: false,
  });
  ws.on('error', () => {});
  return new Promise((resolve, reject) => {
    let session: PeerSession | undefined;
    let caughtUpLight: (() => void) | undefined;
    const client: Client = {
      append: (t) => log.append(t),
      close: () => ws.terminate(),
    };
    ws.on('open', () => {
      session = startPeerSession({
        log,
        send: (text) => ws.send(text),
        closeConnection: (code, reason) => ws.close(code, reason),
        bufferedBytes: () => ws.bufferedAmount,
        now: Date.now,
        maxClockDriftMs: DEFAULT_MAX_CLOCK_DRIFT_MS,
        onCaughtUp: () => resolve(client),
      });
      // Light receipt never hands the session an events message: the server's caughtUp says live.
      if (LIGHT_RECEIVE) caughtUpLight = () => resolve(client);
    });
    ws.on('message', (data) => {
      const text = String(data);
      if (LIGHT_RECEIVE && text.startsWith('{"type":"events"')) {
        if (receiveLight(ws, text)) caughtUpLight?.();
      } else void session?.receive(text);
    });
    ws.on('close', (code) => {
      session?.close();
      noteClose(code);
      reject(new Error(`bench: a client closed with ${code} before it was live`));
    });
  });
}

/** A client of the raw relay: JSON frames out, JSON.parse of every frame in. */
function rawClient(url: string, index: number): Promise<Client> {
  const ws = new WebSocket(url, { perMessageDeflate: false });
  ws.on('error', () => {});
  let seq = 0;
  const name = `raw-${index}`;
  return new Promise((resolve, reject) => {
    ws.on('open', () =>
      resolve({
        append(t) {
          seq += 1;
          const id = `${name}.${seq}`;
          const sample = sampleEvent(seq);
          ws.send(JSON.stringify({ id, type: sample.type, data: { t, ...sample.data } }));
          return id;
        },
        close: () => ws.terminate(),
      }),
    );
    ws.on('message', (data) => {
      // Frames are `{"id":"…",…}`: the id is all a receipt needs.
      const text = String(data);
      receive(text.slice(7, text.indexOf('"', 7)), clock());
    });
    ws.on('close', (code) => {
      noteClose(code);
      reject(new Error(`bench: a raw client closed with ${code} before it opened`));
    });
  });
}

/** Appends `rate` events/s on every client for `ms` from `at`, phases spread over a period. */
async function run(clients: Client[], rate: number, ms: number, at: number): Promise<number> {
  const period = 1000 / rate;
  const due = clients.map((_, i) => at + (period * i) / clients.length);
  const end = at + ms;
  let count = 0;
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = clock();
      for (let i = 0; i < clients.length; i++) {
        while (due[i]! <= now && due[i]! < end) {
          sent.push([clients[i]!.append(now), now]);
          due[i]! += period;
          count += 1;
        }
      }
      if (now >= end) {
        clearInterval(timer);
        resolve();
      }
    }, 5);
  });
  return count;
}

async function main(): Promise<void> {
  const mode = process.env.FANOUT_MODE;
  const url = process.env.FANOUT_URL!;
  const first = Number(process.env.FANOUT_FIRST);
  const count = Number(process.env.FANOUT_COUNT);
  process.on('disconnect', () => process.exit(1));
  const clients: Client[] = [];
  // Connect in slices so that the server's accept queue is not flooded.
  for (let i = 0; i < count; i += 50) {
    const slice = [];
    for (let j = i; j < Math.min(count, i + 50); j++) {
      slice.push(
        mode === 'raw' ? rawClient(url, first + j) : chronicleClient(url, `client-${first + j}`),
      );
    }
    clients.push(...(await Promise.all(slice)));
  }
  process.on('message', (m: { cmd: string; rate: number; ms: number; at: number }) => {
    if (m.cmd === 'run') {
      void run(clients, m.rate, m.ms, m.at).then((n) => process.send?.({ sent: n }));
    } else if (m.cmd === 'stats') {
      process.send?.({ received: receivedTotal });
    } else if (m.cmd === 'collect') {
      const received: [string, number, number][] = [];
      for (const [id, r] of receipts) received.push([id, r.last, r.count]);
      const collected: Collected = { sent, received, closes };
      process.send?.({ collected });
    } else if (m.cmd === 'stop') {
      for (const c of clients) c.close();
      process.exit(0);
    }
  });
  process.send?.({ ready: clients.length });
}

if (process.env.FANOUT_MODE !== undefined) await main();
