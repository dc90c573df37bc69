/**
 * The server's optional peers (src/server/peers.ts): an app that lacks one gets
 * MissingDependencyError naming the package to install, at the call that needs it; importing the
 * server entry needs none of them. The loader seam stands in for an app folder without the
 * package: a require made from an empty folder, which fails as Node fails for a missing package.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { MissingDependencyError } from '../../src/core/errors.ts';
import {
  createSyncServer,
  natsSink,
  postgresStorage,
  sqliteStorage,
} from '../../src/server/index.ts';
import { loadJose, type PeerName, setPeerLoader } from '../../src/server/peers.ts';
import { makeEvent } from './events.ts';

const emptyApp = mkdtempSync(join(tmpdir(), 'chronicle-no-peers-'));
const requireFromEmptyApp = createRequire(join(emptyApp, 'app.js'));

/** Loads `missing` as an app without it would (it is not found), the other peers as installed. */
function without(missing: PeerName): (name: PeerName) => unknown {
  const installed = createRequire(import.meta.url);
  return (name) => (name === missing ? requireFromEmptyApp(name) : installed(name));
}

afterEach(() => setPeerLoader(undefined));
afterAll(() => rmSync(emptyApp, { recursive: true, force: true }));

function expectMissing(run: () => unknown, dependency: string, neededBy: string): void {
  let thrown: unknown;
  try {
    run();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(MissingDependencyError);
  const error = thrown as MissingDependencyError;
  expect(error.code).toBe('MISSING_DEPENDENCY');
  expect(error.dependency).toBe(dependency);
  expect(error.details).toEqual({ dependency, neededBy });
  expect(error.message).toContain(`npm install ${dependency}`);
}

describe('optional peer dependencies of the server', () => {
  it('sqliteStorage without better-sqlite3 throws MISSING_DEPENDENCY naming it', () => {
    setPeerLoader(without('better-sqlite3'));
    expectMissing(() => sqliteStorage(':memory:'), 'better-sqlite3', 'sqliteStorage');
  });

  it('postgresStorage without pg throws MISSING_DEPENDENCY naming it, before connecting', () => {
    setPeerLoader(without('pg'));
    expectMissing(
      () => postgresStorage('postgres://nobody@127.0.0.1:1/none'),
      'pg',
      'postgresStorage',
    );
  });

  it('createSyncServer without ws rejects with MISSING_DEPENDENCY naming it, opening no port', async () => {
    setPeerLoader(without('ws'));
    const storage = sqliteStorage(':memory:');
    const started = createSyncServer({ storage, auth: false, port: 0 });
    await expect(started).rejects.toBeInstanceOf(MissingDependencyError);
    await expect(started).rejects.toMatchObject({ code: 'MISSING_DEPENDENCY', dependency: 'ws' });
    await storage.close();
  });

  it('loads jose as an installed peer, and names it when it is missing', () => {
    expect(typeof loadJose().jwtVerify).toBe('function');
    setPeerLoader(without('jose'));
    expectMissing(loadJose, 'jose', 'JWT verification');
  });

  it('natsSink without the NATS client constructs, and its first publish rejects with MISSING_DEPENDENCY naming it', async () => {
    for (const dependency of ['@nats-io/transport-node', '@nats-io/jetstream'] as const) {
      setPeerLoader(without(dependency));
      const sink = natsSink({ url: 'nats://127.0.0.1:1' });
      await expect(sink.publish('s', [{ pos: 1, event: makeEvent() }])).rejects.toMatchObject({
        code: 'MISSING_DEPENDENCY',
        dependency,
        details: { dependency, neededBy: 'natsSink' },
      });
      await sink.close();
    }
  });

  it('rethrows a failure to load an installed peer as it is (a dependency of the peer missing)', () => {
    const broken = Object.assign(new Error("Cannot find module 'bindings'"), {
      code: 'MODULE_NOT_FOUND',
    });
    setPeerLoader(() => {
      throw broken;
    });
    expect(() => sqliteStorage(':memory:')).toThrow(broken);
  });

  it('loads an installed peer through require again once the seam is reset', async () => {
    setPeerLoader(without('better-sqlite3'));
    expect(() => sqliteStorage(':memory:')).toThrow(MissingDependencyError);
    setPeerLoader(undefined);
    const storage = sqliteStorage(':memory:');
    await storage.openSpace('s');
    await storage.close();
  });

  it('imports no optional peer at module load: only type imports, values through peers.ts', () => {
    const root = resolve(import.meta.dirname, '../..');
    const files = (dir: string): string[] =>
      readdirSync(dir).flatMap((name) => {
        const path = join(dir, name);
        return statSync(path).isDirectory() ? files(path) : path.endsWith('.ts') ? [path] : [];
      });
    // Each peer, and the folder whose modules may import it (the subpath it is the peer of).
    const peers: Record<string, string | undefined> = {
      'better-sqlite3': undefined,
      pg: undefined,
      ws: undefined,
      jose: undefined,
      '@nats-io/transport-node': undefined,
      '@nats-io/jetstream': undefined,
      yjs: 'src/yjs/',
      react: 'src/react/',
    };
    const offenders: string[] = [];
    for (const file of [...files(join(root, 'src')), ...files(join(root, 'worker'))]) {
      const rel = relative(root, file);
      const text = readFileSync(file, 'utf8');
      const imports = text.matchAll(/^(?:import|export)\s+(type\s+)?[^;]*?from\s+'([^']+)'/gm);
      const dynamic = [...text.matchAll(/(?<!typeof )import\(\s*'([^']+)'\s*\)/g)].map((m) => m[1]);
      const values = [
        ...[...imports].filter((m) => m[1] === undefined).map((m) => m[2]),
        ...dynamic,
      ];
      for (const spec of values) {
        const name = spec?.startsWith('@')
          ? spec.split('/').slice(0, 2).join('/')
          : spec?.split('/')[0];
        if (name === undefined || !(name in peers)) continue;
        const home = peers[name];
        if (home === undefined || !rel.startsWith(home)) offenders.push(`${rel} imports ${spec}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
