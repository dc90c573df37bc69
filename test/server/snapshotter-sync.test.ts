/**
 * Server snapshots against real clients (snapshotter.ts through createSyncServer): the state the
 * server folds equals the state a client store folds from the same events (the same events
 * reach `apply`, through the same upcasters), and the CLI loads the projections' module.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { JsonObject, StoredEvent } from '../../src/core/events.ts';
import { withoutIntegrity } from '../../src/core/integrity-meta.ts';
import { defineProjection, type Projection } from '../../src/core/projection.ts';
import { parseCliArgs } from '../../src/server/cli.ts';
import { loadProjections } from '../../src/server/cli-projections.ts';
import { silentLogger } from '../../src/server/metrics.ts';
import { createSyncServer } from '../../src/server/server.ts';
import { sqliteStorage } from '../../src/server/sqlite.ts';
import { SECRET, spaceToken, tempDir, waitFor } from './helpers.ts';
import { upcasters } from './snapshotter-suite.ts';
import { storeClients } from './store-clients.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});
const clients = storeClients();

/**
 * Everything `apply` is handed, in fold order: the two folds must see the very same events. But
 * the signature fields: a store folds its own events before its signer signs them (at sync,
 * store/signing.ts), so its projections see them unsigned until a rebuild, where the server
 * holds them signed only.
 */
const seen = defineProjection<unknown[], unknown>({
  name: 'seen',
  version: 3,
  initial: () => [],
  apply: (list, event: StoredEvent<unknown>) => {
    const { meta, ...rest } = event;
    const kept = withoutIntegrity(meta as JsonObject | undefined);
    return [
      ...list,
      JSON.parse(JSON.stringify(kept === undefined ? rest : { ...rest, meta: kept })),
    ];
  },
}) as Projection;

describe('server snapshots with client stores', () => {
  it("equal a client store's state of the same events", async () => {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const storage = sqliteStorage(join(tmp.dir, 'server.sqlite'));
    const server = await createSyncServer({
      storage,
      auth: { secret: SECRET },
      log: silentLogger,
      snapshots: { projections: [seen], upcasters, every: 1, lateDelayMs: 0 },
    });
    cleanups.push(() => server.close());
    const token = spaceToken('board');
    const a = await clients.open<unknown>(server.url, token, { projections: [seen], upcasters });
    const b = await clients.open<unknown>(server.url, token, { projections: [seen], upcasters });
    for (let i = 0; i < 10; i++) {
      await a.append(`card-${i % 3}`, { type: 'Renamed', data: { title: `a${i}` } });
      await b.append(`card-${i % 4}`, { type: 'Added', data: { n: i }, meta: { by: 'b' } });
    }
    await waitFor(async () => (await a.read({ limit: 100 })).length === 20, 15_000);
    await waitFor(async () => (await b.read({ limit: 100 })).length === 20, 15_000);
    const log = await storage.openSpace('board');
    await waitFor(async () => (await storage.snapshots!.list('board'))[0]?.pos === 20, 15_000);
    const [meta] = await storage.snapshots!.list('board');
    const snapshot = await storage.snapshots!.read('board', meta!.set, meta!.pos);
    expect(await log.headPos()).toBe(20);
    const state = snapshot?.projections.find((p) => p.name === 'seen')?.state;
    expect(state).toEqual(await a.state(seen));
    expect(state).toEqual(await b.state(seen));
    expect((state as { data: { upcast?: boolean } }[]).some((e) => e.data.upcast)).toBe(true);
    // The heads a device needs: each stream's version, each replica's largest seq.
    expect(snapshot?.vector).toEqual({ [a.replicaId]: 10, [b.replicaId]: 10 });
  });
});

describe('chronicle-server --projections', () => {
  it('reads the flag and loads the module it names', async () => {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const file = join(tmp.dir, 'projections.mjs');
    writeFileSync(
      file,
      `export const projections = [{ name: 'n', version: 1, initial: () => 0, apply: (n) => n + 1 }];
       export const upcasters = [{ type: 'T', fromSchema: 1, up: (d) => d }];`,
    );
    expect(
      parseCliArgs(['--projections', file, '--snapshot-every', '500'], {}).projections,
    ).toEqual({ module: file, every: 500 });
    expect(parseCliArgs([], { CHRONICLE_PROJECTIONS: file }).projections).toEqual({ module: file });
    expect(() => parseCliArgs(['--snapshot-every', '500'], {})).toThrow(/needs --projections/);
    const options = await loadProjections(file, 500);
    expect(options.projections.map((p) => p.name)).toEqual(['n']);
    expect(options.upcasters).toHaveLength(1);
    expect(options.every).toBe(500);
    const bad = join(tmp.dir, 'bad.mjs');
    writeFileSync(bad, 'export const projections = [{ name: "n" }];');
    await expect(loadProjections(bad, undefined)).rejects.toThrow(/defineProjection/);
    await expect(loadProjections(join(tmp.dir, 'missing.mjs'), undefined)).rejects.toThrow(
      /cannot load/,
    );
  });
});
