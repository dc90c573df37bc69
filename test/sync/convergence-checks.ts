/**
 * What the public-API convergence properties assert, on one node while sync runs and on every
 * node at quiescence. Each check names the guarantee it holds the store to (DESIGN.md "Ordering
 * and convergence", core/events.ts and core/append.ts invariants, store invariant 3).
 */
import { expect } from 'vitest';
import {
  ConcurrencyError,
  type Conflict,
  defineProjection,
  type EventStore,
  HistoryUnavailableError,
  IdempotencyError,
  type LooseEvents,
  type Projection,
  type StoredEvent,
} from '../../src/index.ts';
import type { Attempt, World } from './convergence-harness.ts';

export interface TestData {
  tag: string;
  by: number;
}

/** Every event type carries TestData. */
export type TestEvent = LooseEvents<TestData>;

type Digest = Record<string, { n: number; h: number; versions: number[] }>;

function mix(h: number, text: string): number {
  let x = h;
  for (let i = 0; i < text.length; i++) x = Math.imul(x ^ text.charCodeAt(i), 16777619) >>> 0;
  return x;
}

/**
 * Two projections that snapshot often (so that late events rebase from snapshots during sync):
 * `order`, the ids and cursors in fold order, sees any change of order, loss or duplicate, and a
 * copy replaced by another of the same id; `digest`, per stream, an order-sensitive hash and the
 * versions.
 */
export function makeProjections(every: { order: number; digest: number }) {
  const order = defineProjection<string[], TestEvent>({
    name: 'order',
    version: 1,
    snapshotEvery: every.order,
    initial: () => [],
    apply: (ids, e) => [...ids, `${e.id} ${e.cursor}`],
  });
  const digest = defineProjection<Digest, TestEvent>({
    name: 'digest',
    version: 1,
    snapshotEvery: every.digest,
    initial: () => ({}),
    apply: (state, e) => {
      const prev = state[e.stream] ?? { n: 0, h: 0, versions: [] };
      const next = {
        n: prev.n + 1,
        h: mix(prev.h, `${e.id}/${e.version}`),
        versions: [...prev.versions, e.version],
      };
      return { ...state, [e.stream]: next };
    },
  });
  return [order, digest] as Projection<unknown, TestEvent>[];
}

const PROJECTIONS = makeProjections({ order: 0, digest: 0 });

function fold(projection: Projection<unknown, TestEvent>, events: StoredEvent<TestEvent>[]) {
  return events.reduce((state, e) => projection.apply(state, e), projection.initial());
}

/** The replica-independent part of an event: what every replica must hold alike. */
function shape(e: StoredEvent<TestEvent>) {
  return [e.id, e.stream, e.version, e.replica, e.seq, e.hlc, e.cursor, e.type, e.data];
}

/** What an append returned that stays: everything but the HLC and what derives from it. */
function stable(e: StoredEvent<TestEvent>) {
  return [e.id, e.stream, e.version, e.replica, e.seq, e.type, e.data];
}

/**
 * Per stream, versions run 1..max with no gap (a version is taken only after the one before),
 * but where a copy that lost an id collision was (`lost`: "stream version", see lostCopies).
 */
function expectContiguousVersions(
  events: StoredEvent<TestEvent>[],
  lost: Set<string>,
  context: string,
): void {
  const byStream = new Map<string, Set<number>>();
  for (const e of events) {
    const set = byStream.get(e.stream) ?? new Set();
    set.add(e.version);
    byStream.set(e.stream, set);
  }
  for (const [stream, set] of byStream) {
    const max = Math.max(...set);
    const gaps: number[] = [];
    for (let v = 1; v <= max; v++) if (!set.has(v) && !lost.has(`${stream} ${v}`)) gaps.push(v);
    expect(gaps, `${context}\nversions of ${stream}: ${[...set].sort((a, b) => a - b)}`).toEqual(
      [],
    );
  }
}

/**
 * Mid-run, on one node while sync runs: state() reflects what read() returns (store invariant 3),
 * and the versions held are contiguous. `order` is read before and after: when it did not move,
 * nothing was written in between, so the other reads saw that same log.
 */
export async function checkNode(
  store: EventStore<TestEvent>,
  attempts: Attempt[],
  context: string,
): Promise<boolean> {
  try {
    return await checkNodeNow(store, attempts, context);
  } catch (error) {
    // A partial replica (the `retaining` project: retention on) reads below its horizon only
    // through a server, and says so while it has none (docs/storage-growth.md part 3): not
    // checked, as when its log moved. A session that ended mid-read (a killed link) says so too.
    if (error instanceof HistoryUnavailableError) return false;
    throw error;
  }
}

async function checkNodeNow(
  store: EventStore<TestEvent>,
  attempts: Attempt[],
  context: string,
): Promise<boolean> {
  const before = await store.state<string[]>('order');
  const digest = await store.state('digest');
  const events = await store.read();
  const after = await store.state<string[]>('order');
  expectContiguousVersions(events, lostCopies(attempts, events).versions, context);
  if (JSON.stringify(before) !== JSON.stringify(after)) return false;
  expect(before, `${context}\nstate('order') vs read()`).toEqual(
    events.map((e) => `${e.id} ${e.cursor}`),
  );
  expect(digest, `${context}\nstate('digest') vs read()`).toEqual(fold(PROJECTIONS[1]!, events));
  return true;
}

function conflictsOf(events: StoredEvent<TestEvent>[]) {
  const groups = new Map<string, StoredEvent<TestEvent>[]>();
  for (const e of events) {
    const key = JSON.stringify([e.stream, e.version]);
    groups.set(key, [...(groups.get(key) ?? []), e]);
  }
  const out: { stream: string; version: number; ids: string[] }[] = [];
  for (const list of groups.values()) {
    if (new Set(list.map((e) => e.replica)).size < 2) continue;
    out.push({ stream: list[0]!.stream, version: list[0]!.version, ids: list.map((e) => e.id) });
  }
  const key = (c: { stream: string; version: number }) => `${c.stream}\u0000${c.version}`;
  return out.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

function publicConflicts(conflicts: Conflict<TestEvent>[]) {
  const key = (c: { stream: string; version: number }) => `${c.stream}\u0000${c.version}`;
  return conflicts
    .map((c) => ({ stream: c.stream, version: c.version, ids: c.events.map((e) => e.id) }))
    .sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}

/**
 * Whether an attempt appended one id with two payloads (defect 2): a collide, or a retry of one
 * (the copy it resolved with may lose).
 */
function colliding(attempts: Attempt[]): (a: Attempt) => boolean {
  const byOp = new Map(attempts.map((a) => [a.op, a]));
  const collides = (a: Attempt): boolean =>
    a.mode === 'collide' ||
    (a.mode === 'retry' && a.of !== undefined && a.of !== a.op && collides(byOp.get(a.of) ?? a));
  return collides;
}

/** Every append's outcome against what the log holds at the end. */
function checkAttempts(
  attempts: Attempt[],
  events: StoredEvent<TestEvent>[],
  causality: boolean,
  context: string,
): void {
  const byTag = new Map(events.map((e) => [e.data.tag, e]));
  const byId = new Map(events.map((e) => [e.id, e]));
  const known = new Set(attempts.flatMap((a) => a.tags));
  for (const e of events) expect(known.has(e.data.tag), `${context}\nunknown ${e.id}`).toBe(true);
  const storedIds = new Set(events.map((e) => e.id));
  const collides = colliding(attempts);
  /**
   * Whether `followed` (the event at the end of the log when `a` was appended) is the copy its
   * node held then. For an id with two payloads it may not be: the node held its own copy, which
   * lost, and the winner is another event it had not seen, stamped by another clock (its
   * successors may be re-stamped before it, docs/protocol.md C5). Unknown (a copy received by
   * sync, either one) counts as not held.
   */
  const heldCopy = (a: Attempt, followed: StoredEvent<TestEvent>): boolean => {
    const own = attempts.findLast(
      (b) => b.op < a.op && b.node === a.node && collides(b) && b.ids?.[0] === followed.id,
    );
    const collided = attempts.some((b) => collides(b) && b.ids?.[0] === followed.id);
    if (!collided) return true;
    return own?.result?.[0]?.data.tag === followed.data.tag;
  };
  for (const a of attempts) {
    const what = `${context}\nattempt #${a.op} ${JSON.stringify({ ...a, result: undefined, error: String(a.error) })}`;
    if (collides(a)) {
      // One id, two payloads (defect 2): exactly one copy survives, the same everywhere.
      expect(storedIds.has(a.ids![0]!), what).toBe(true);
      continue;
    }
    if (a.result !== undefined) {
      // No loss: every append that resolved is present, as it was returned.
      // Its HLC may have moved since: a replica re-stamps its own unshared events stamped ahead
      // of a corrected clock (docs/protocol.md C5); the rest is as returned.
      const stored = a.tags.map((t) => byTag.get(t));
      expect(
        stored.map((e) => e && stable(e)),
        what,
      ).toEqual(a.result.map(stable));
      const versions = a.result.map((e) => e.version);
      const first = versions[0]!;
      expect(versions, what).toEqual(versions.map((_, k) => first + k));
      if (a.mode === 'retry') continue;
      if (typeof a.expected === 'number') expect(first, what).toBe(a.expected + 1);
      if (a.expected === 'none') expect(first, what).toBe(1);
      if (a.mode === 'stale' && typeof a.expected === 'number' && a.expected < a.versionBefore) {
        throw new Error(`${what}\na stale expectedVersion was accepted`);
      }
      if (a.versionBefore >= 0) expect(first, what).toBeGreaterThan(a.versionBefore);
      // Causality: a local event sorts after everything its replica had seen.
      const followed = a.idBefore === undefined ? undefined : byId.get(a.idBefore);
      if (causality && followed !== undefined && heldCopy(a, followed)) {
        const after = stored[0]!.cursor > followed.cursor;
        expect(after, `${what}\nsorts before what it followed`).toBe(true);
      }
      continue;
    }
    // A retry of events a partial replica trimmed (the `retaining` project) is refused as
    // documented (storage/adapter.ts invariant 6): their payload is not here to compare. The
    // original is checked as its own attempt.
    if (a.mode === 'retry' && a.error instanceof IdempotencyError && a.error.reason === 'trimmed') {
      continue;
    }
    // A refused append wrote nothing.
    for (const t of a.tags) expect(byTag.has(t), `${what}\nrefused but stored`).toBe(false);
    expect(a.error, what).toBeInstanceOf(ConcurrencyError);
    const error = a.error as ConcurrencyError;
    expect(a.expected, what).not.toBe('any');
    expect(error.actualVersion, what).not.toBe(a.expected === 'none' ? 0 : a.expected);
    // A current expectation fails only because the stream moved on meanwhile.
    if (a.mode === 'current') expect(error.actualVersion, what).toBeGreaterThan(a.versionBefore);
  }
}

/**
 * Where each copy that lost an id collision was (defect 2): it left every log, so its origin's
 * seqs ("replica.seq") and its stream's versions ("stream version") have a hole there
 * (docs/protocol.md, "Colliding copies").
 */
function lostCopies(
  attempts: Attempt[],
  events: StoredEvent<TestEvent>[],
): { slots: Set<string>; versions: Set<string> } {
  const byId = new Map(events.map((e) => [e.id, e]));
  const slots = new Set<string>();
  const versions = new Set<string>();
  const collides = colliding(attempts);
  for (const a of attempts) {
    if (!collides(a) || a.result === undefined) continue;
    for (const written of a.result) {
      const kept = byId.get(written.id);
      if (kept?.replica !== written.replica || kept.seq !== written.seq) {
        slots.add(`${written.replica}.${written.seq}`);
        versions.add(`${written.stream} ${written.version}`);
      }
    }
  }
  return { slots, versions };
}

/**
 * Seqs of each origin are dense from 1, but for copies that lost (lostSlots); its versions grow
 * with its seq in each stream.
 */
function checkOrigins(events: StoredEvent<TestEvent>[], lost: Set<string>, context: string): void {
  const byReplica = new Map<string, StoredEvent<TestEvent>[]>();
  for (const e of events) byReplica.set(e.replica, [...(byReplica.get(e.replica) ?? []), e]);
  for (const [replica, list] of byReplica) {
    const sorted = [...list].sort((a, b) => a.seq - b.seq);
    const held = sorted.map((e) => e.seq);
    const top = held[held.length - 1] ?? 0;
    const expected: number[] = [];
    for (let seq = 1; seq <= top; seq++) if (!lost.has(`${replica}.${seq}`)) expected.push(seq);
    expect(held, `${context}\nseqs of ${replica}`).toEqual(expected);
    const last = new Map<string, number>();
    for (const e of sorted) {
      const prev = last.get(e.stream) ?? 0;
      expect(e.version > prev, `${context}\n${e.id} v${e.version} after v${prev}`).toBe(true);
      last.set(e.stream, e.version);
    }
  }
}

/** state({ at }) against the fold of the matching prefix, for a few bounds. */
async function checkTimeTravel(
  store: EventStore<TestEvent>,
  events: StoredEvent<TestEvent>[],
  context: string,
): Promise<void> {
  if (events.length === 0) return;
  const picks = [0, Math.floor(events.length / 2), events.length - 1];
  for (const i of picks) {
    const e = events[i]!;
    const prefix = events.slice(0, i + 1);
    for (const p of PROJECTIONS) {
      expect(
        await store.state(p.name, { at: { eventId: e.id } }),
        `${context}\nstate('${p.name}', { at: { eventId: ${e.id} } })`,
      ).toEqual(fold(p, prefix));
    }
    for (const t of [e.time, e.time - 1]) {
      const upTo = events.filter((x) => x.time <= t);
      for (const p of PROJECTIONS) {
        expect(
          await store.state(p.name, { at: t }),
          `${context}\nstate('${p.name}', { at: ${t} })`,
        ).toEqual(fold(p, upTo));
      }
    }
  }
}

/** Projections equal to the fold of read(), and time travel, on one open store. */
async function checkProjections(
  store: EventStore<TestEvent>,
  events: StoredEvent<TestEvent>[],
  context: string,
): Promise<void> {
  for (const p of PROJECTIONS) {
    expect(await store.state(p.name), `${context}\nstate('${p.name}')`).toEqual(fold(p, events));
  }
  await checkTimeTravel(store, events, context);
}

export interface FinalCheckOptions {
  causality: boolean;
  /** Also close and reopen every node and check its projections again. */
  reopen: boolean;
}

/** At quiescence: one log everywhere, nothing lost or doubled, projections and conflicts agree. */
export async function checkConverged(world: World, options: FinalCheckOptions): Promise<number> {
  const context = `history:\n${world.history.join('\n')}`;
  const stores = world.nodes.map((n) => world.store(n.index));
  const logs = await Promise.all(stores.map((s) => s.read()));
  const events = logs[0]!;
  for (let i = 1; i < logs.length; i++) {
    expect(logs[i]!.map(shape), `${context}\nnode ${i} vs node 0`).toEqual(events.map(shape));
  }
  const ids = events.map((e) => e.id);
  expect(new Set(ids).size, `${context}\nduplicate ids`).toBe(ids.length);
  const lost = lostCopies(world.attempts, events);
  expectContiguousVersions(events, lost.versions, context);
  // An encrypted store's seqs include its `$keyring` events (its streams' keys), which read()
  // leaves out unless asked: the same on every replica.
  const keyrings = await Promise.all(stores.map((s) => s.read({ stream: '$keyring' })));
  for (let i = 1; i < keyrings.length; i++) {
    expect(
      keyrings[i]!.map(shape),
      `${context}
node ${i} keyring vs node 0`,
    ).toEqual(keyrings[0]!.map(shape));
  }
  checkOrigins([...events, ...keyrings[0]!], lost.slots, context);
  checkAttempts(world.attempts, events, options.causality, context);
  const expected = conflictsOf(events);
  for (const [i, store] of stores.entries()) {
    expect(
      publicConflicts(await store.conflicts()),
      `${context}\nconflicts() on node ${i}`,
    ).toEqual(expected);
    await checkProjections(store, events, `${context}\nnode ${i}`);
  }
  if (options.reopen) {
    await world.closeAll();
    for (const node of world.nodes) {
      const store = await world.open(node, false);
      const where = `${context}\nnode ${node.index} reopened`;
      try {
        await checkProjections(store, events, where);
      } catch (error) {
        if (!(error instanceof HistoryUnavailableError)) throw error;
        // A partial replica time-travels below its horizon through its server only (see
        // checkNode): the same checks once it is connected again.
        await world.close(node);
        await checkProjections(await reconnected(world, node), events, where);
      }
    }
  }
  return events.length;
}

/** `node` opened again with its links connected, once a sync session is up. */
async function reconnected(
  world: World,
  node: World['nodes'][number],
): Promise<EventStore<TestEvent>> {
  const store = await world.open(node, true);
  const deadline = Date.now() + 15_000;
  while (store.sync.status().state !== 'idle' && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return store;
}
