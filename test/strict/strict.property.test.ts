/**
 * The strict-stream property (issue 19): several replicas, often offline, run random commands on
 * a few strict aggregates with rules (two accounts whose balance never goes below zero, a column
 * holding at most WIP_LIMIT cards) through a real sync server (SQLite file, WebSocket on
 * 127.0.0.1), with replicas and the server restarted and two replicas also syncing peer to peer.
 * After everything is back on line and quiet:
 * - every replica holds the same log;
 * - each strict stream's accepted events hold versions 1..n, and its rule holds at every prefix;
 * - no accepted command is lost and every rejected one was reported: each command that was
 *   appended locally either has its events in the final log, or its replica reports it
 *   (SyncStatus.rejected) as rejected on the new state or failed;
 * - nothing is tentative, pending, or waiting to run again.
 * The rebase rate under this contention is printed (the closing note quotes it). Runs: STRICT_RUNS;
 * a failure is replayed with STRICT_SEED and STRICT_PATH (and STRICT_RESTORE=1 for the second
 * test); STRICT_COMPACT=1 seals the server's log into blocks after every ingest. The second test
 * adds backups and restores of replica 0 (on a SQLite file then), whose reports a restore takes
 * back are counted from before it (STRICT_RESTORE_RUNS runs).
 */
import { copyFileSync, existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import {
  type EventStore,
  memoryStorage,
  memoryTransportPair,
  openStore,
  type RejectedAppend,
  type StorageAdapter,
  type StoredEvent,
  type SyncConnection,
} from '../../src/index.ts';
import { sqliteReplicaStorage } from '../../src/node/index.ts';
import {
  createSyncServer,
  createToken,
  type SyncServer,
  sqliteStorage,
} from '../../src/server/index.ts';
import { SECRET, tempDir } from '../server/helpers.ts';
import { account } from '../store/fixtures/account.ts';
import { column, ruleHolds, type StrictEvents } from './fixtures.ts';
import { strictSettled } from './helpers.ts';

const REPLICAS = 3;
/** A replay (STRICT_SEED) runs the test with restores when STRICT_RESTORE=1, the other otherwise. */
const REPLAY = process.env.STRICT_SEED !== undefined;
const REPLAY_RESTORE = process.env.STRICT_RESTORE === '1';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Action =
  | { kind: 'deposit' | 'withdraw'; replica: number; account: number; cents: number }
  | { kind: 'enter' | 'leave'; replica: number; card: number }
  | { kind: 'toggle'; replica: number }
  | { kind: 'restart'; replica: number }
  | { kind: 'backup' | 'restore' }
  | { kind: 'restartServer' }
  | { kind: 'wait'; ms: number };

const replicaArb = fc.integer({ min: 0, max: REPLICAS - 1 });
const actionsOf = (restore: boolean): fc.Arbitrary<Action> =>
  fc.oneof(
    {
      weight: 6,
      arbitrary: fc.record({
        kind: fc.constantFrom('deposit' as const, 'withdraw' as const),
        replica: replicaArb,
        account: fc.integer({ min: 0, max: 1 }),
        cents: fc.integer({ min: 1, max: 60 }),
      }),
    },
    {
      weight: 5,
      arbitrary: fc.record({
        kind: fc.constantFrom('enter' as const, 'leave' as const),
        replica: replicaArb,
        card: fc.integer({ min: 0, max: 3 }),
      }),
    },
    {
      weight: 4,
      arbitrary: fc.record({ kind: fc.constant('toggle' as const), replica: replicaArb }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ kind: fc.constant('restart' as const), replica: replicaArb }),
    },
    { weight: 1, arbitrary: fc.constant({ kind: 'restartServer' as const }) },
    // With restores: replica 0's database copied aside, and later put back over a replica whose
    // work since the server holds: a device restored from a backup. Six defects it found are fixed
    // (store/strict-rejections.ts invariants 5 and 6, sync/session-sender.ts invariant 15,
    // core/strict.ts invariants 5 and 9, core/append.ts invariant 9).
    ...(restore
      ? [
          { weight: 1, arbitrary: fc.constant({ kind: 'backup' as const }) },
          { weight: 1, arbitrary: fc.constant({ kind: 'restore' as const }) },
        ]
      : []),
    {
      weight: 3,
      arbitrary: fc.record({
        kind: fc.constant('wait' as const),
        ms: fc.integer({ min: 0, max: 40 }),
      }),
    },
  );

interface Replica {
  storage: StorageAdapter;
  /** Replica 0's SQLite file (the one backed up and restored). */
  path?: string;
  store: EventStore<StrictEvents>;
  online: boolean;
  server?: SyncConnection;
  /** Commands this replica appended (ids). */
  commands: string[];
}

const totals = { runs: 0, commands: 0, rejections: 0, rebased: 0, rejectedOnRebase: 0, failed: 0 };
let runs = 0;

async function open(storage: StorageAdapter, name: string): Promise<EventStore<StrictEvents>> {
  return openStore<StrictEvents>({
    name,
    storage,
    aggregates: [account, column],
    strictStreams: ['account-*', 'column-doing'],
    syncOptions: {
      WebSocket: WebSocket as never,
      backoff: { initialMs: 10, maxMs: 150, healthyAfterMs: 1000 },
    },
  });
}

async function runScenario(
  actions: Action[],
  peerToPeer: boolean,
  restore: boolean,
): Promise<void> {
  const tmp = tempDir();
  const path = join(tmp.dir, 'server.sqlite');
  const start = (port = 0): Promise<SyncServer> =>
    createSyncServer({
      port,
      // STRICT_COMPACT=1 (exploration, not CI): every event sealed into blocks at once, so that
      // every ingest takes the lookup path and heads are read from blocks.
      storage: sqliteStorage(
        path,
        process.env.STRICT_COMPACT === '1'
          ? { compaction: { tailEvents: 0, eager: true }, recentCacheBytes: 0 }
          : {},
      ),
      auth: { secret: SECRET },
      log: () => {},
    });
  let server = await start();
  const port = server.port;
  const space = `strict-${++runs}`;
  const token = (sub: string) =>
    createToken(SECRET, { space, sub, scope: ['read', 'write'], expiresInSeconds: 600 });
  const replicas: Replica[] = [];
  let p2p: SyncConnection[] = [];
  const history: string[] = [];
  const linkPeers = () => {
    if (!peerToPeer) return;
    const [a, b] = memoryTransportPair();
    p2p = [replicas[0]!.store.sync.connect(a), replicas[1]!.store.sync.connect(b)];
  };
  const unlinkPeers = async () => {
    for (const c of p2p.splice(0)) await c.close();
  };
  const goOnline = (r: Replica, i: number) => {
    r.online = true;
    r.server = r.store.sync.connect({ url: `ws://127.0.0.1:${port}`, token: token(`r${i}`) });
  };
  try {
    for (let i = 0; i < REPLICAS; i++) {
      const path = restore && i === 0 ? join(tmp.dir, 'r0.sqlite') : undefined;
      const storage = path === undefined ? memoryStorage() : sqliteReplicaStorage(path);
      const store = await open(storage, `r${i}`);
      replicas.push({ storage, store, online: false, commands: [], ...(path && { path }) });
    }
    // Reports a restore takes back with the database (their store no longer lists them).
    const reportsBefore: RejectedAppend[][] = replicas.map(() => []);
    const backupPath = join(tmp.dir, 'r0-backup.sqlite');
    let backedUp = false;
    /** Replica 0 closed, `move` done on its files, and opened again as it was linked. */
    const reopenZero = async (move: () => void) => {
      const r = replicas[0]!;
      await unlinkPeers();
      await r.server?.close();
      await r.store.close();
      move();
      r.store = await open(r.storage, 'r0');
      if (r.online) goOnline(r, 0);
      linkPeers();
    };
    const copyDb = (from: string, to: string) => {
      for (const suffix of ['', '-wal', '-shm']) {
        if (existsSync(from + suffix)) copyFileSync(from + suffix, to + suffix);
        else rmSync(to + suffix, { force: true });
      }
    };
    linkPeers();
    // Every account starts with some money, accepted before anyone goes off line.
    goOnline(replicas[0]!, 0);
    for (const a of [0, 1]) {
      await replicas[0]!.store.execute(
        account,
        `account-${a}`,
        'deposit',
        { cents: 50 },
        { commandId: `seed-${a}` },
      );
    }
    for (const action of actions) {
      history.push(JSON.stringify(action));
      switch (action.kind) {
        case 'deposit':
        case 'withdraw':
        case 'enter':
        case 'leave': {
          const r = replicas[action.replica]!;
          const run =
            'card' in action
              ? r.store.execute(column, 'column-doing', action.kind, {
                  card: `card-${action.card}`,
                })
              : r.store.execute(account, `account-${action.account}`, action.kind, {
                  cents: action.cents,
                });
          try {
            const events = await run;
            const id = events[0]?.meta?.$commandId;
            if (typeof id === 'string') {
              r.commands.push(id);
              history.push(`  ${id}: ${events.map((e) => `${e.replica}/${e.seq}`).join(' ')}`);
            }
          } catch (error) {
            // Refused on this replica's own state: nothing appended, nothing to account for.
            if ((error as { code?: string }).code !== 'COMMAND_REJECTED') throw error;
          }
          break;
        }
        case 'toggle': {
          const r = replicas[action.replica]!;
          if (r.online) {
            r.online = false;
            await r.server?.close();
          } else goOnline(r, action.replica);
          break;
        }
        case 'restart': {
          const i = action.replica;
          const r = replicas[i]!;
          if (i < 2) await unlinkPeers();
          await r.store.close();
          r.store = await open(r.storage, `r${i}`);
          if (r.online) goOnline(r, i);
          if (i < 2) linkPeers();
          break;
        }
        case 'restartServer':
          await server.close();
          server = await start(port);
          break;
        case 'backup':
          await reopenZero(() => copyDb(replicas[0]!.path!, backupPath));
          backedUp = true;
          break;
        case 'restore': {
          // Only over a device whose work since the backup the server holds: what never left
          // it is lost by the restore itself, which no sync can bring back.
          const r = replicas[0]!;
          if (!backedUp) break;
          if (!r.online) goOnline(r, 0);
          const until = Date.now() + 3_000;
          while (!strictSettled(r.store.sync.status()) && Date.now() < until) await sleep(20);
          if (!strictSettled(r.store.sync.status())) {
            history.push('  (not restored: replica 0 did not settle)');
            break;
          }
          reportsBefore[0]!.push(...(r.store.sync.status().rejected ?? []));
          history.push(`  restoring over ${r.store.replicaId}`);
          await reopenZero(() => copyDb(backupPath, r.path!));
          break;
        }
        case 'wait':
          await sleep(action.ms);
          break;
      }
    }
    history.push('heal: every replica on line');
    for (const [i, r] of replicas.entries()) if (!r.online) goOnline(r, i);
    let quiet = 0;
    const deadline = Date.now() + 30_000;
    while (quiet < 4 && Date.now() < deadline) {
      await sleep(30);
      const statuses = replicas.map((r) => r.store.sync.status());
      const counts = await Promise.all(replicas.map(async (r) => (await r.store.read()).length));
      const settled = statuses.every(strictSettled) && counts.every((c) => c === counts[0]);
      quiet = settled ? quiet + 1 : 0;
    }
    const context = () =>
      `${replicas.map((r) => JSON.stringify(r.store.sync.status())).join('\n')}\n${history.join('\n')}`;
    const dump = async () =>
      (await Promise.all(replicas.map((r) => r.store.read())))
        .map((log) => log.map((e) => `${e.stream}@${e.version}:${e.id}/${e.seq}`).join(' '))
        .join('\n');
    expect(quiet, `no quiescence\n${await dump()}\n${context()}`).toBe(4);
    const logs = await Promise.all(replicas.map((r) => r.store.read()));
    const ids = logs.map((log) => log.map((e) => e.id));
    for (const other of ids.slice(1)) expect(other, context()).toEqual(ids[0]);
    const log = logs[0]!;
    for (const stream of ['account-0', 'account-1', 'column-doing']) {
      const events = log.filter((e) => e.stream === stream) as StoredEvent<StrictEvents>[];
      expect(
        events.map((e) => e.version),
        `${stream}\n${await dump()}\n${context()}`,
      ).toEqual(events.map((_, i) => i + 1));
      expect(events.every((e) => e.meta?.$strict === true)).toBe(true);
      expect(ruleHolds(stream, events), `${stream}\n${context()}`).toBe(true);
    }
    const inLog = new Set(log.map((e) => e.meta?.$commandId));
    for (const [i, r] of replicas.entries()) {
      const reports = [...reportsBefore[i]!, ...(r.store.sync.status().rejected ?? [])];
      totals.rejections += reports.length;
      for (const report of reports) {
        if (report.command?.outcome === 'rebased') totals.rebased++;
        if (report.command?.outcome === 'rejected') totals.rejectedOnRebase++;
        if (report.command?.outcome === 'failed') totals.failed++;
      }
      for (const id of r.commands) {
        totals.commands++;
        const last = [...reports].reverse().find((e) => e.command?.commandId === id);
        const dropped =
          last?.command?.outcome === 'rejected' || last?.command?.outcome === 'failed';
        expect(
          inLog.has(id) !== dropped,
          `command ${id} of replica ${i}: in log ${inLog.has(id)}, report ${JSON.stringify(last)}\n${context()}`,
        ).toBe(true);
      }
    }
    totals.runs++;
  } finally {
    await unlinkPeers().catch(() => {});
    for (const r of replicas) await r.store.close().catch(() => {});
    await server.close().catch(() => {});
    tmp.cleanup();
  }
}

describe('strict streams: rules hold across replicas (issue 19)', () => {
  const property = async (restore: boolean, numRuns: number) => {
    for (const key of Object.keys(totals) as (keyof typeof totals)[]) totals[key] = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(actionsOf(restore), { minLength: 10, maxLength: 60 }),
        fc.boolean(),
        (actions, peerToPeer) => runScenario(actions, peerToPeer, restore),
      ),
      {
        numRuns,
        endOnFailure: true,
        ...(process.env.STRICT_SEED ? { seed: Number(process.env.STRICT_SEED) } : {}),
        ...(process.env.STRICT_PATH ? { path: process.env.STRICT_PATH } : {}),
      },
    );
    expect(totals.commands).toBeGreaterThan(numRuns);
    const rate = (n: number) => `${((100 * n) / Math.max(1, totals.commands)).toFixed(1)}%`;
    console.log(
      `strict streams${restore ? ' with restores' : ''}: ${JSON.stringify(totals)}; rejected ${rate(totals.rejections)} of commands, rebased ${rate(totals.rebased)}, refused on rebase ${rate(totals.rejectedOnRebase)}`,
    );
  };

  const numRuns = Number(process.env.STRICT_RUNS ?? 25);
  it.skipIf(REPLAY && REPLAY_RESTORE)(
    'replicas offline, restarted, and peer to peer converge on one accepted log whose rules hold at every prefix; every command is kept or reported',
    () => property(false, numRuns),
    60_000 + numRuns * 40_000,
  );

  const restoreRuns = Number(process.env.STRICT_RESTORE_RUNS ?? process.env.STRICT_RUNS ?? 15);
  it.skipIf(REPLAY && !REPLAY_RESTORE)(
    'the same with a device restored from its backups, again and again (replica 0 on a SQLite file)',
    () => property(true, restoreRuns),
    60_000 + restoreRuns * 40_000,
  );
});
