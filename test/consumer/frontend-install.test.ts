/**
 * A front-end install: the tarball alone, no peer installed. It compiles nothing native and
 * pulls in none of the server's packages; in plain Node the main entry still works, and
 * `/server` says which package its storage needs.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { type Consumer, installConsumer } from './install.ts';
import { packed } from './pack.ts';

/** Not installed with the package: its optional peers, and build tools. */
const NOT_INSTALLED = ['better-sqlite3', 'pg', 'ws', 'jose', 'yjs', 'react', 'tsx', 'esbuild'];

let frontend: Consumer;
let outcome: Promise<Outcome> | undefined;

interface Outcome {
  state: number;
  missing?: { code: string; message: string };
  missingReplica?: { code: string; message: string };
}

/** main.js's printout, from one run shared by the tests that read it. */
function mainJs(): Promise<Outcome> {
  outcome ??= frontend
    .run(process.execPath, ['main.js'])
    .then(({ stdout }) => JSON.parse(stdout.trim().split('\n').at(-1) ?? '') as Outcome);
  return outcome;
}

beforeAll(async () => {
  frontend = await installConsumer(packed(), { fixture: 'frontend-only' });
});

describe('installing the tarball alone, as a front end does', () => {
  it('runs no install script and installs no optional peer (nothing native compiles)', () => {
    const paths = Object.keys(frontend.installed);
    const names = paths.map((path) => path.slice(path.lastIndexOf('node_modules/') + 13));
    expect(paths.filter((path) => frontend.installed[path]?.hasInstallScript === true)).toEqual([]);
    expect(names.filter((name) => NOT_INSTALLED.includes(name))).toEqual([]);
    expect(names).toContain(packed().manifest.name);
  });

  it('opens an in-memory store from the main entry in plain Node', async () => {
    expect((await mainJs()).state).toBe(1);
  });

  it('loads /server without its peers and names better-sqlite3 when storage needs it', async () => {
    const { missing } = await mainJs();
    expect(missing?.code).toBe('MISSING_DEPENDENCY');
    expect(missing?.message).toContain('better-sqlite3');
  });

  it('loads /node without better-sqlite3 and names it when a replica file is asked for', async () => {
    const { missingReplica } = await mainJs();
    expect(missingReplica?.code).toBe('MISSING_DEPENDENCY');
    expect(missingReplica?.message).toContain('better-sqlite3');
  });
});
