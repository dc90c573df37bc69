/**
 * `npm run build` (and `prepack`): compiles src/ and worker/ into dist/src and dist/worker with
 * tsc (tsconfig.build.json). It empties those folders first, so that a module deleted from the
 * sources is not shipped from an older build; dist/demo (the demo's build) is left alone.
 * 1. Type check, and declarations (.d.ts) with their doc comments: what editors show.
 * 2. ES modules without comments (--noCheck: step 1 checked them): the sources' comments are
 *    for readers of the repository, and keeping them would nearly double the tarball.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
for (const dir of ['dist/src', 'dist/worker']) {
  rmSync(join(root, dir), { recursive: true, force: true });
}
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const run = (...flags) =>
  execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json'), ...flags], {
    cwd: root,
    stdio: 'inherit',
  });
run();
run('--emitDeclarationOnly', 'false', '--declaration', 'false', '--removeComments', '--noCheck');
// The bin runs as `./dist/src/server/bin.js` too, not only through npm's link.
chmodSync(join(root, 'dist/src/server/bin.js'), 0o755);
