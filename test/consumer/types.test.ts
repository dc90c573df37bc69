/**
 * (c) The tarball's types under a strict TypeScript consumer on Node's module rules (nodenext):
 * strict, exactOptionalPropertyTypes, noUncheckedIndexedAccess,
 * noPropertyAccessFromIndexSignature, and skipLibCheck off, so the shipped .d.ts files are
 * checked too. The consumer uses every entry point with typed events, and its @ts-expect-error
 * lines fail the check if the types ever go loose (an unused directive is an error).
 * A second config compiles the backend file without the DOM library, as a Node server does.
 */
import { join } from 'node:path';
import { beforeAll, describe, it } from 'vitest';
import { type Consumer, installConsumer } from './install.ts';
import { packed } from './pack.ts';

let app: Consumer;
const tsc = () => join(app.dir, 'node_modules/.bin/tsc');

beforeAll(async () => {
  app = await installConsumer(packed(), { fixture: 'typed' });
});

describe('a strict nodenext TypeScript project with the tarball installed', () => {
  it('compiles a typed consumer of the main entry, /server, /worker, /yjs and /react', async () => {
    await app.run(tsc(), ['-p', 'tsconfig.json']);
  });

  it('compiles a Node backend of the main entry, /server and /node without the DOM library', async () => {
    await app.run(tsc(), ['-p', 'tsconfig.server.json']);
  });
});
