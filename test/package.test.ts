/** The package's exports map resolves every entry point, types first (CONVENTIONS: tooling). */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  name: string;
  type: string;
  sideEffects: boolean;
  exports: Record<string, string | { types: string; default: string }>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

describe('package.json', () => {
  it('is an ES module package named chronicle without side effects', () => {
    expect(pkg.name).toBe('chronicle');
    expect(pkg.type).toBe('module');
    expect(pkg.sideEffects).toBe(false);
  });

  it('pins every dependency to an exact version', () => {
    for (const [name, version] of Object.entries({ ...pkg.dependencies, ...pkg.devDependencies })) {
      expect(version, name).toMatch(/^\d+\.\d+\.\d+$/);
    }
  });

  const entries = Object.entries(pkg.exports).filter(([key]) => key !== './package.json');
  it.each(entries)(
    'resolves the entry point %s, types first, to a module that loads',
    async (key, target) => {
      expect(typeof target).toBe('object');
      const t = target as { types: string; default: string };
      expect(Object.keys(t)[0]).toBe('types');
      expect(existsSync(join(root, t.types))).toBe(true);
      expect(existsSync(join(root, t.default))).toBe(true);
      const specifier = key === '.' ? pkg.name : `${pkg.name}/${key.slice(2)}`;
      const mod = (await import(/* @vite-ignore */ specifier)) as Record<string, unknown>;
      expect(Object.keys(mod).length).toBeGreaterThan(0);
    },
  );

  it('exports the public API names of DESIGN.md from the main entry', async () => {
    const mod = (await import('chronicle')) as Record<string, unknown>;
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
});
