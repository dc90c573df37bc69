/**
 * A consumer project in a fresh folder: a fixture's files and package.json, plus the packed
 * tarball as a dependency, installed with `npm ci --offline` from a lock cut from the
 * repository's (lockfile.ts says why), so it needs no network and no registry documents.
 *
 * Invariants:
 * 1. A consumer depends on the tarball under the package's own name, as `npm install <tarball>`
 *    would record it; everything else it installs is what the repository installs, same version.
 * 2. One install per consumer; its folder is removed with the run's folder (global-setup.ts).
 */
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { recordFigures } from './figures.ts';
import { consumerLock } from './lockfile.ts';
import type { PackedPackage } from './pack.ts';
import { type RunResult, run } from './run.ts';

const fixtures = resolve(import.meta.dirname, 'fixtures');
const repoRoot = resolve(import.meta.dirname, '../..');
const SQLITE_NATIVE = 'node_modules/better-sqlite3/build/Release/better_sqlite3.node';

interface FixturePackageJson {
  name?: string;
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  [key: string]: unknown;
}

export interface Consumer {
  dir: string;
  /** Wall time of `npm ci` (a figure for the report; never asserted). */
  installMs: number;
  /** Paths of the packages npm installed (node_modules/.package-lock.json). */
  installed: Record<string, { version?: string; hasInstallScript?: boolean }>;
  run(command: string, args: readonly string[]): Promise<RunResult>;
}

export interface ConsumerOptions {
  /** A folder under test/consumer/fixtures, copied as the consumer's project. */
  fixture: string;
  /**
   * `npm ci --ignore-scripts`, then the repository's native build of better-sqlite3 (the same
   * version, built for the same Node) copied in: better-sqlite3 has no prebuilt binary here, and
   * an offline install cannot download one (prebuild-install needs the network), where `npm ci`
   * in the repository compiled it from source (about a minute on two cores). Everything else is
   * the consumer's own install.
   */
  repositorySqlite?: boolean;
}

export async function installConsumer(
  pack: PackedPackage,
  options: ConsumerOptions,
): Promise<Consumer> {
  const dir = join(pack.root, options.fixture);
  mkdirSync(dir);
  cpSync(join(fixtures, options.fixture), dir, { recursive: true });

  const manifestPath = join(dir, 'package.json');
  const project = JSON.parse(readFileSync(manifestPath, 'utf8')) as FixturePackageJson;
  const self = pack.manifest;
  const spec = `file:../pack/${pack.filename}`;
  project.dependencies = { [self.name]: spec, ...project.dependencies };
  writeFileSync(manifestPath, `${JSON.stringify(project, null, 2)}\n`);

  const lock = consumerLock({
    name: project.name ?? options.fixture,
    dependencies: project.dependencies,
    devDependencies: project.devDependencies ?? {},
    local: {
      [`node_modules/${self.name}`]: {
        version: self.version,
        resolved: spec,
        integrity: pack.integrity,
        ...(self.license === undefined ? {} : { license: self.license }),
        ...(self.dependencies === undefined ? {} : { dependencies: self.dependencies }),
        ...(self.optionalDependencies === undefined
          ? {}
          : { optionalDependencies: self.optionalDependencies }),
        ...(self.peerDependencies === undefined ? {} : { peerDependencies: self.peerDependencies }),
        ...(self.peerDependenciesMeta === undefined
          ? {}
          : { peerDependenciesMeta: self.peerDependenciesMeta }),
        ...(self.bin === undefined ? {} : { bin: self.bin }),
        ...(self.engines === undefined ? {} : { engines: self.engines }),
      },
    },
  });
  writeFileSync(join(dir, 'package-lock.json'), `${JSON.stringify(lock, null, 2)}\n`);

  const args = ['ci', '--offline', '--no-audit', '--no-fund'];
  if (options.repositorySqlite === true) args.push('--ignore-scripts');
  const started = performance.now();
  await run('npm', args, { cwd: dir });
  const installMs = performance.now() - started;
  if (options.repositorySqlite === true) {
    const target = join(dir, SQLITE_NATIVE);
    mkdirSync(dirname(target), { recursive: true });
    copyFileSync(join(repoRoot, SQLITE_NATIVE), target);
  }

  const hidden = join(dir, 'node_modules/.package-lock.json');
  const installed = existsSync(hidden)
    ? (JSON.parse(readFileSync(hidden, 'utf8')) as { packages: Consumer['installed'] }).packages
    : {};
  recordFigures({
    [`${options.fixture}: packages installed`]: Object.keys(installed).length,
    [`${options.fixture}: npm ci ms`]: Math.round(installMs),
  });
  return {
    dir,
    installMs,
    installed,
    run: (command, args) => run(command, args, { cwd: dir }),
  };
}
