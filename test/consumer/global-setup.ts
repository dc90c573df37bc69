/**
 * Packs the repository once per run, the way `npm publish` would (`prepack` builds), into a
 * temporary folder that every consumer fixture installs from; removes it all afterwards.
 * Runs before any test file of any project starts, so the build never races another test.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { TestProject } from 'vitest/node';
import type { PackedPackage } from './pack.ts';
import { run } from './run.ts';

const repoRoot = resolve(import.meta.dirname, '../..');

interface NpmPackJson {
  filename: string;
  size: number;
  unpackedSize: number;
  entryCount: number;
  integrity: string;
  files: { path: string; size: number }[];
}

export default async function setup(project: TestProject): Promise<() => void> {
  const root = mkdtempSync(join(tmpdir(), 'chronicle-consumer-'));
  const packDir = join(root, 'pack');
  mkdirSync(packDir);
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', packDir], {
    cwd: repoRoot,
  });
  // Lifecycle scripts (prepack) may print before npm's JSON.
  const [packed] = JSON.parse(stdout.slice(stdout.search(/^\[/m))) as NpmPackJson[];
  if (packed === undefined) throw new Error(`npm pack printed no package:\n${stdout}`);
  const tarball = join(packDir, packed.filename);
  const manifest = JSON.parse(
    execFileSync('tar', ['-xzOf', tarball, 'package/package.json'], { encoding: 'utf8' }),
  ) as PackedPackage['manifest'];
  const pack: PackedPackage = {
    root,
    tarball,
    filename: packed.filename,
    size: packed.size,
    unpackedSize: packed.unpackedSize,
    entryCount: packed.entryCount,
    integrity: packed.integrity,
    files: packed.files.map((file) => file.path),
    manifest,
  };
  project.provide('consumerPack', pack);
  return () => rmSync(root, { recursive: true, force: true });
}
