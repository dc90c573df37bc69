/**
 * (d) The tarball as package linters read it: publint (exports, files, formats, fields) and
 * Are the Types Wrong (each entry's types as TypeScript resolves them).
 *
 * attw's profile is `esm-only`: the package is ESM only (`"type": "module"`, `import`/`default`
 * conditions, Node >= 20.19), so the two resolutions that profile leaves out cannot apply to it:
 * `node10` (TypeScript's legacy resolution, which ignores `exports` and so cannot see
 * subpaths; no Node that runs this package resolves that way) and `node16` from CommonJS
 * (`require` of an ES module, which attw reports as CJS-resolves-to-ESM). Every ESM resolution
 * (`node16` from ESM, `bundler`) must be clean. `--no-definitely-typed` keeps it offline.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';
import { describe, expect, it } from 'vitest';
import { recordFigures } from './figures.ts';
import { packed } from './pack.ts';
import { CommandError, run } from './run.ts';

const repoRoot = resolve(import.meta.dirname, '../..');

describe('the packed tarball', () => {
  it('ships only the built output and the documents', () => {
    const pack = packed();
    recordFigures({
      'tarball: gzip bytes': pack.size,
      'tarball: unpacked bytes': pack.unpackedSize,
      'tarball: files': pack.entryCount,
    });
    const outside = pack.files.filter(
      (file) =>
        !file.startsWith('dist/') &&
        !['package.json', 'README.md', 'LICENSE', 'CHANGELOG.md'].includes(file),
    );
    expect(outside).toEqual([]);
    expect(pack.files.filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))).toEqual(
      [],
    );
  });

  it('has no publint message, suggestions included, warnings counted as errors', async () => {
    const pack = packed();
    const tarball = readFileSync(pack.tarball);
    const result = await publint({
      pack: {
        tarball: tarball.buffer.slice(tarball.byteOffset, tarball.byteOffset + tarball.length),
      },
      level: 'suggestion',
      strict: true,
    });
    const messages = result.messages.map(
      (message) => `${message.type}: ${formatMessage(message, result.pkg, { color: false })}`,
    );
    expect(messages).toEqual([]);
  });

  it('has types that resolve right for every entry point (attw, esm-only profile)', async () => {
    const attw = join(repoRoot, 'node_modules/.bin/attw');
    const args = [packed().tarball, '--profile', 'esm-only', '--no-definitely-typed'];
    try {
      await run(attw, [...args, '--format', 'ascii'], { cwd: repoRoot });
    } catch (error) {
      // The table names the entry, the resolution and the problem.
      if (error instanceof CommandError) expect.fail(error.output);
      throw error;
    }
  });
});
