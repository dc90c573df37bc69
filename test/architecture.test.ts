/**
 * The folder layout is the architecture (DESIGN.md): these checks keep it true.
 * 1. No import cycles among the library's modules.
 * 2. Dependencies point inward: server → sync → store → storage → core; core imports nothing else.
 * 3. Only src/storage touches IndexedDB; only src/sync and src/server touch sockets.
 * 4. The browser's entry points reach no Node module and no better-sqlite3: those stay behind
 *    /server and /node, so a front end's bundle never sees them.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..');

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...sourceFiles(path));
    else if (name.endsWith('.ts')) out.push(path);
  }
  return out;
}

const files = [...sourceFiles(join(root, 'src')), ...sourceFiles(join(root, 'worker'))];

/** Relative imports of a file, resolved to paths (type-only imports included: they still couple). */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const match of text.matchAll(/(?:import|export)[^'"]*?from\s+['"](\.[^'"]+)['"]/g)) {
    out.push(resolve(dirname(file), match[1]!));
  }
  for (const match of text.matchAll(/import\(\s*['"](\.[^'"]+)['"]\s*\)/g)) {
    out.push(resolve(dirname(file), match[1]!));
  }
  return out;
}

const layer = (file: string): string => {
  const rel = relative(root, file);
  if (rel.startsWith('worker/')) return 'worker';
  return rel.split('/')[1] ?? '';
};

// Which layers each layer may import (besides itself). index.ts files are entry points.
const allowed: Record<string, string[]> = {
  core: [],
  storage: ['core'],
  store: ['core', 'storage'],
  sync: ['core', 'storage', 'store'],
  client: ['core', 'storage', 'store', 'sync'],
  server: ['core', 'storage', 'store', 'sync'],
  yjs: ['core', 'storage', 'store', 'sync', 'client'],
  devtools: ['core', 'store'],
  node: ['core', 'storage'],
  worker: ['core', 'storage', 'store', 'sync', 'client', 'index.ts'],
};

describe('architecture', () => {
  it('has no import cycles (1)', () => {
    const graph = new Map(files.map((f) => [f, importsOf(f)]));
    const state = new Map<string, 'visiting' | 'done'>();
    const cycles: string[] = [];
    const visit = (file: string, path: string[]): void => {
      if (state.get(file) === 'done') return;
      if (state.get(file) === 'visiting') {
        cycles.push(
          [...path.slice(path.indexOf(file)), file].map((f) => relative(root, f)).join(' → '),
        );
        return;
      }
      state.set(file, 'visiting');
      for (const next of graph.get(file) ?? []) visit(next, [...path, file]);
      state.set(file, 'done');
    };
    for (const file of files) visit(file, []);
    expect(cycles).toEqual([]);
  });

  it('keeps dependencies pointing inward (2)', () => {
    const violations: string[] = [];
    for (const file of files) {
      const from = layer(file);
      if (relative(root, file) === 'src/index.ts') continue;
      for (const target of importsOf(file)) {
        const to = relative(root, target) === 'src/index.ts' ? 'index.ts' : layer(target);
        if (to !== from && !(allowed[from] ?? []).includes(to)) {
          violations.push(`${relative(root, file)} imports ${relative(root, target)}`);
        }
      }
    }
    expect(violations).toEqual([]);
  });

  it('lets only storage touch IndexedDB and only sync and server touch sockets (3)', () => {
    const violations: string[] = [];
    for (const file of files) {
      const rel = relative(root, file);
      const text = readFileSync(file, 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/\/\/.*$/gm, '');
      if (/\bindexedDB\b|from 'idb'/.test(text) && !rel.startsWith('src/storage/')) {
        violations.push(`${rel} touches IndexedDB`);
      }
      if (/from 'ws'|new WebSocket\b|node:net|node:http/.test(text)) {
        if (!rel.startsWith('src/sync/') && !rel.startsWith('src/server/')) {
          violations.push(`${rel} touches sockets`);
        }
      }
    }
    expect(violations).toEqual([]);
  });

  it('keeps Node modules and better-sqlite3 out of what the browser entries import (4)', () => {
    const entries = ['src/index.ts', 'worker/index.ts', 'src/yjs/index.ts', 'src/react/index.ts'];
    const seen = new Set<string>();
    const visit = (file: string): void => {
      // A path a comment names (e.g. "see ./x") is not a module.
      if (seen.has(file) || !files.includes(file)) return;
      seen.add(file);
      for (const next of importsOf(file)) visit(next);
    };
    for (const entry of entries) visit(join(root, entry));
    const offenders = [...seen]
      .filter((file) =>
        /from ['"](node:[^'"]+|better-sqlite3)['"]/.test(readFileSync(file, 'utf8')),
      )
      .map((file) => relative(root, file));
    expect(offenders).toEqual([]);
    // The check sees what it must: /node's module graph does reach them.
    seen.clear();
    visit(join(root, 'src/node/index.ts'));
    expect([...seen].map((file) => relative(root, file))).toContain('src/storage/sqlite-loader.ts');
  });
});
