/**
 * package.json: the exports map, the files shipped, and dependencies split by who needs them
 * (CONVENTIONS: tooling). The published entry points are compiled (dist/, `npm run build`); the
 * repository's own tests, demo and type check resolve the package's name to the sources through
 * the `@chronicle-es/source` condition, listed first in every entry. The consumer tests pack
 * and install the built package.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const read = (path: string): unknown => JSON.parse(readFileSync(join(root, path), 'utf8'));
const pkg = read('package.json') as {
  name: string;
  type: string;
  sideEffects: boolean;
  license: string;
  exports: Record<string, string | Record<string, string>>;
  files: string[];
  bin: Record<string, string>;
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  peerDependencies: Record<string, string>;
  peerDependenciesMeta: Record<string, { optional?: boolean }>;
  optionalDependencies?: Record<string, string>;
};

const SOURCE = '@chronicle-es/source';
const entries = Object.entries(pkg.exports).filter(([key]) => key !== './package.json');

/** `./src/server/index.ts` → `./dist/src/server/index` (tsconfig.build.json: rootDir ., outDir dist). */
const built = (source: string) => `./dist/${source.slice(2).replace(/\.ts$/, '')}`;

describe('package.json', () => {
  it('is an ES module package named @chronicle-es/store without side effects', () => {
    expect(pkg.name).toBe('@chronicle-es/store');
    expect(pkg.type).toBe('module');
    expect(pkg.sideEffects).toBe(false);
  });

  it('keeps the subpaths of DESIGN.md', () => {
    for (const key of ['.', './worker', './server', './yjs'])
      expect(pkg.exports).toHaveProperty([key]);
  });

  it.each(entries)(
    'maps %s to its source first, then its built types and module',
    (_key, target) => {
      expect(typeof target).toBe('object');
      const t = target as Record<string, string>;
      expect(Object.keys(t)).toEqual([SOURCE, 'types', 'default']);
      const source = t[SOURCE]!;
      expect(existsSync(join(root, source)), source).toBe(true);
      expect(t.types).toBe(`${built(source)}.d.ts`);
      expect(t.default).toBe(`${built(source)}.js`);
    },
  );

  it.each(entries)(
    'resolves %s by the package name to its source module in the repository',
    async (key, target) => {
      const specifier = key === '.' ? pkg.name : `${pkg.name}/${key.slice(2)}`;
      const source = (target as Record<string, string>)[SOURCE]!;
      const byName = await import(/* @vite-ignore */ specifier);
      const byPath = await import(/* @vite-ignore */ join(root, source));
      expect(Object.keys(byName).length).toBeGreaterThan(0);
      expect(byName).toBe(byPath);
    },
  );

  it('exports the public API names of DESIGN.md from the main entry', async () => {
    const mod = (await import('@chronicle-es/store')) as Record<string, unknown>;
    for (const name of [
      'openStore',
      'defineProjection',
      'memoryStorage',
      'indexedDbStorage',
      'ConcurrencyError',
      'IdempotencyError',
      'ValidationError',
      'StoreClosedError',
    ]) {
      expect(typeof mod[name], name).toBe('function');
    }
  });

  it('ships only the build, README, LICENSE and CHANGELOG', () => {
    // npm adds package.json, README and LICENSE by itself; dist/demo is the demo's build.
    expect(pkg.files).toEqual(['dist/src', 'dist/worker', 'CHANGELOG.md']);
    for (const file of ['README.md', 'LICENSE', 'CHANGELOG.md']) {
      expect(existsSync(join(root, file)), file).toBe(true);
    }
    expect(pkg.license).toBe('MIT');
    expect(readFileSync(join(root, 'LICENSE'), 'utf8')).toMatch(/^MIT License/);
  });

  it('builds before packing, from every module under src/ and worker/', () => {
    expect(pkg.scripts.prepack).toBe('npm run build');
    expect(pkg.scripts.build).toContain('scripts/build.js');
    const build = readFileSync(join(root, 'tsconfig.build.json'), 'utf8');
    expect(build).toMatch(/"include": \["src", "worker"\]/);
    expect(build).toMatch(/"rewriteRelativeImportExtensions": true/);
    expect(build).toMatch(/"declaration": true/);
  });

  it('relies on no comment in the JavaScript, which the build strips (bundler magic comments)', () => {
    const files = (dir: string): string[] =>
      readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' })
        .filter((name) => name.endsWith('.ts'))
        .map((name) => join(dir, name));
    const magic =
      /@vite-ignore|webpack[A-Z]\w*:|turbopackIgnore|[@#]__PURE__|[@#]__NO_SIDE_EFFECTS__/;
    const offenders = [...files('src'), ...files('worker')].filter((file) =>
      magic.test(readFileSync(join(root, file), 'utf8')),
    );
    expect(offenders).toEqual([]);
  });

  it('installs the chronicle-server command as compiled JavaScript run by plain node', () => {
    expect(pkg.bin).toEqual({ 'chronicle-server': './dist/src/server/bin.js' });
    const source = readFileSync(join(root, 'src/server/bin.ts'), 'utf8');
    expect(source.startsWith('#!/usr/bin/env node\n')).toBe(true);
  });

  it('pins every dependency of the repository to an exact version', () => {
    for (const [name, version] of Object.entries({ ...pkg.dependencies, ...pkg.devDependencies })) {
      expect(version, name).toMatch(/^\d+\.\d+\.\d+$/);
    }
  });

  it('depends at run time only on what the browser needs: no native module, no server, no tsx', () => {
    expect(Object.keys(pkg.dependencies).sort()).toEqual(['comlink', 'idb']);
    expect(pkg.optionalDependencies).toBeUndefined();
    expect(pkg.devDependencies).toHaveProperty('tsx');
  });

  it('makes the drivers of /server (storage, brokers), yjs and react optional peers that the repository installs', () => {
    const peers = [
      '@nats-io/jetstream',
      '@nats-io/transport-node',
      'better-sqlite3',
      'jose',
      'pg',
      'rabbitmq-stream-js-client',
      'react',
      'ws',
      'yjs',
    ];
    expect(Object.keys(pkg.peerDependencies).sort()).toEqual(peers);
    for (const name of peers) {
      expect(pkg.peerDependenciesMeta[name], name).toEqual({ optional: true });
      expect(pkg.devDependencies, name).toHaveProperty([name]);
      const major = pkg.devDependencies[name]!.split('.')[0];
      expect(pkg.peerDependencies[name], name).toMatch(new RegExp(`^\\^${major}\\.`));
    }
  });
});
