/**
 * A snapshot larger than one message joins in parts (protocol.ts invariant 10,
 * sync/snapshot-parts.ts), over a real WebSocket and a SQLite space: a server whose send buffer
 * takes less than the snapshot sends it in parts, and the device joins; parts that do not hold
 * together (one missing, a lying length, text that does not parse, a stream that stops) are
 * refused with SNAPSHOT_INVALID, and the device replays the whole log without losing anything.
 */

import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { Transport } from '../../src/core/sync-types.ts';
import {
  defineProjection,
  type EventStore,
  memoryStorage,
  openStore,
  webSocketTransport,
} from '../../src/index.ts';
import { waitFor } from './helpers.ts';
import { foldingSource, type JoinServer, startJoinServer } from './join-helpers.ts';

type Titles = Record<string, string>;
const titles = defineProjection<Titles>({
  name: 'titles',
  version: 1,
  initial: () => ({}),
  apply: (state, e) => ({ ...state, [e.stream]: (e.data as { title: string }).title }),
});
const projections = [titles];
/** Events written; a title of ~1 KB each over 40 cards: the snapshot is ~40 KB. */
const EVENTS = 60;
/** Half of it is what the server sends at once: 8 KiB, so the snapshot goes in ~6 parts. */
const BUFFERED = 16 * 1024;

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

async function server(): Promise<JoinServer> {
  const s = await startJoinServer({
    snapshots: (st) => foldingSource(st, projections),
    limits: { maxBufferedBytes: BUFFERED },
  });
  cleanups.push(() => s.close());
  return s;
}

async function writer(url: string): Promise<EventStore> {
  const store = await openStore({
    name: 'writer',
    storage: memoryStorage(),
    signing: false,
    projections,
  });
  cleanups.push(() => store.close());
  store.sync.connect(webSocketTransport(url, { WebSocket: WebSocket as never }));
  for (let i = 0; i < EVENTS; i++) {
    await store.append(`card-${i % 40}`, {
      type: 'renamed',
      data: { title: `${i} ${'é'.repeat(300)}${'"x"'.repeat(200)}` },
    });
  }
  await waitFor(() => store.sync.status().pending === 0);
  return store;
}

/** Each incoming message as JSON, before (and instead of) what the session sees. */
type Tamper = (message: Record<string, unknown>) => Record<string, unknown> | undefined;

function tampered(inner: Transport, tamper: Tamper, seen: string[]): Transport {
  return {
    kind: inner.kind,
    open: () => inner.open(),
    send: (text) => inner.send(text),
    close: (code, reason) => inner.close(code, reason),
    onClose: (listener) => inner.onClose(listener),
    onMessage: (listener) =>
      inner.onMessage((text) => {
        const message = JSON.parse(text) as Record<string, unknown>;
        seen.push(String(message.type));
        const out = tamper(message);
        if (out !== undefined) listener(out === message ? text : JSON.stringify(out));
      }),
  };
}

async function joiner(url: string, tamper: Tamper = (m) => m) {
  const seen: string[] = [];
  const codes: string[] = [];
  const store = await openStore({
    name: 'joined',
    storage: memoryStorage(),
    signing: false,
    projections,
    join: 'snapshot',
    syncOptions: { WebSocket: WebSocket as never, snapshotPartTimeoutMs: 300 },
  });
  cleanups.push(() => store.close());
  store.sync.on('status', (s) => {
    if (s.lastError !== undefined) codes.push(s.lastError.code);
  });
  store.sync.connect(
    tampered(webSocketTransport(url, { WebSocket: WebSocket as never }), tamper, seen),
  );
  return { store, seen, codes };
}

const headPos = (store: EventStore) =>
  (store as unknown as { log: { headPos(): Promise<number> } }).log.headPos();

async function upToDate(store: EventStore, from: EventStore): Promise<void> {
  await waitFor(async () => (await store.read()).length === EVENTS);
  await waitFor(() => store.sync.status().state === 'idle');
  expect(await store.state('titles')).toEqual(await from.state('titles'));
  expect((await store.read()).map((e) => e.id)).toEqual((await from.read()).map((e) => e.id));
}

describe('a snapshot larger than one message', () => {
  it('joins from it in parts, and holds none of the events it folds', async () => {
    const s = await server();
    const from = await writer(s.url);
    const { store, seen, codes } = await joiner(s.url);
    await upToDate(store, from);
    expect(seen.filter((t) => t === 'snapshot-part').length).toBeGreaterThan(2);
    // Joined: the snapshot folds every event, none was received (reads page them from history).
    expect(await headPos(store)).toBe(0);
    expect(codes).toEqual([]);
  });

  const lies: [string, () => Tamper][] = [
    ['a part missing', () => (m) => (m.type === 'snapshot-part' && m.index === 1 ? undefined : m)],
    [
      'a length the parts do not hold',
      () => (m) =>
        m.type === 'snapshot' && typeof m.length === 'number' ? { ...m, length: m.length + 1 } : m,
    ],
    [
      'text that does not parse',
      () => (m) =>
        m.type === 'snapshot-part' && m.index === 0
          ? { ...m, text: `[${String(m.text).slice(1)}` }
          : m,
    ],
    [
      'a stream that stops before its last part',
      () => {
        let parts = 0;
        return (m) => {
          if (m.type === 'snapshot' && typeof m.parts === 'number') parts = m.parts;
          return m.type === 'snapshot-part' && m.index === parts - 1 ? undefined : m;
        };
      },
    ],
  ];
  it.each(lies)(
    'refuses parts with %s (SNAPSHOT_INVALID), and replays the whole log',
    async (_what, lie) => {
      const s = await server();
      const from = await writer(s.url);
      const { store, codes } = await joiner(s.url, lie());
      await upToDate(store, from);
      expect(codes).toContain('SNAPSHOT_INVALID');
      // Replayed: every event was received and stored.
      expect(await headPos(store)).toBe(EVENTS);
    },
  );
});
