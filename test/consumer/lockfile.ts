/**
 * A consumer's package-lock.json cut from the repository's own: the packages a consumer asks
 * for, at the versions the repository pins, with everything they depend on, as `npm ci` in the
 * repository resolved and cached them.
 *
 * Why a lock: an offline `npm install vite@8.3.8` in a fresh folder must resolve the version
 * from the registry's package document, which the cache may not hold (ENOTCACHED). An install
 * from a lock whose entries carry `resolved` (the tarball's registry URL) and `integrity` needs
 * no document: each tarball is read from the cache. The repository's lock leaves `resolved` out
 * (omit-lockfile-registry-resolved), so it is written back here.
 *
 * Invariants:
 * 1. A consumer gets only packages the repository itself depends on, at the very same versions
 *    (a request for another version throws here, rather than failing offline in npm).
 * 2. The lock is closed: every dependency, optional dependency and required peer of a package in
 *    it resolves (the Node way: nearest node_modules upward) to a package in it.
 * 3. A package is marked optional only when every path to it passes an optional edge, so npm
 *    skips exactly what it would skip (other platforms' native bindings).
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const repoRoot = resolve(import.meta.dirname, '../..');

export interface LockEntry {
  version?: string;
  resolved?: string;
  integrity?: string;
  license?: string;
  name?: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  bin?: Record<string, string> | string;
  devDependencies?: Record<string, string>;
  engines?: Record<string, string>;
  os?: string[];
  cpu?: string[];
  libc?: string[];
  hasInstallScript?: boolean;
  optional?: boolean;
  dev?: boolean;
  devOptional?: boolean;
  peer?: boolean;
}

export interface Lockfile {
  name: string;
  version: string;
  lockfileVersion: 3;
  requires: true;
  packages: Record<string, LockEntry>;
}

export function repoLock(): Lockfile {
  return JSON.parse(readFileSync(join(repoRoot, 'package-lock.json'), 'utf8')) as Lockfile;
}

/** The path a dependency `name` of the package at `from` resolves to, or undefined. */
function resolveIn(
  packages: Record<string, LockEntry>,
  from: string,
  name: string,
): string | undefined {
  let dir = from;
  for (;;) {
    const candidate = dir === '' ? `node_modules/${name}` : `${dir}/node_modules/${name}`;
    if (packages[candidate] !== undefined) return candidate;
    if (dir === '') return undefined;
    const up = dir.lastIndexOf('/node_modules/');
    dir = up === -1 ? '' : dir.slice(0, up);
  }
}

/** A package's outgoing edges: name → whether the edge is optional. */
function edges(entry: LockEntry): Map<string, boolean> {
  const out = new Map<string, boolean>();
  for (const name of Object.keys(entry.dependencies ?? {})) out.set(name, false);
  for (const name of Object.keys(entry.optionalDependencies ?? {})) out.set(name, true);
  for (const name of Object.keys(entry.peerDependencies ?? {})) {
    if (entry.peerDependenciesMeta?.[name]?.optional === true) continue;
    if (!out.has(name)) out.set(name, false);
  }
  return out;
}

/** npm's tarball URL for a registry package: `<registry>/<name>/-/<basename>-<version>.tgz`. */
function registryUrl(path: string, version: string): string {
  const registry = (process.env.npm_config_registry ?? 'https://registry.npmjs.org/').replace(
    /\/?$/,
    '/',
  );
  const name = path.slice(path.lastIndexOf('node_modules/') + 'node_modules/'.length);
  const basename = name.slice(name.lastIndexOf('/') + 1);
  return `${registry}${name}/-/${basename}-${version}.tgz`;
}

export interface ConsumerLockOptions {
  /** The consumer's package.json name. */
  name: string;
  /** What the consumer's package.json asks for: name → exact version or `file:` spec. */
  dependencies: Record<string, string>;
  devDependencies?: Record<string, string>;
  /** Lock entries for packages that are not in the repository's lock (the packed tarball). */
  local?: Record<string, LockEntry>;
}

export function consumerLock(options: ConsumerLockOptions, source = repoLock()): Lockfile {
  const from = source.packages;
  const local = options.local ?? {};
  const lookup = (path: string): LockEntry | undefined => local[path] ?? from[path];
  const all: Record<string, LockEntry> = { ...from, ...local };

  // Invariant 1: top-level requests are the repository's own packages, same version.
  const requests = { ...options.dependencies, ...options.devDependencies };
  for (const [name, spec] of Object.entries(requests)) {
    const path = `node_modules/${name}`;
    if (local[path] !== undefined) continue;
    const have = from[path]?.version;
    if (have !== spec) {
      throw new Error(`${name}@${spec}: the repository has ${have ?? 'no'} ${name}`);
    }
  }

  // Invariants 2 and 3: what required edges reach, then what any edge reaches.
  const reach = (followOptional: boolean): Set<string> => {
    const seen = new Set<string>();
    const queue = Object.keys(requests).map((name) => `node_modules/${name}`);
    for (let path = queue.shift(); path !== undefined; path = queue.shift()) {
      if (seen.has(path)) continue;
      seen.add(path);
      const entry = lookup(path);
      if (entry === undefined) throw new Error(`${path} is not in the repository's lock`);
      for (const [dep, isOptional] of edges(entry)) {
        if (isOptional && !followOptional) continue;
        const target = resolveIn(all, path, dep);
        if (target !== undefined) queue.push(target);
        else if (!isOptional) throw new Error(`${path} needs ${dep}, not in the repository's lock`);
      }
    }
    return seen;
  };
  const required = reach(false);
  const reachable = reach(true);

  const packages: Record<string, LockEntry> = {
    '': {
      name: options.name,
      version: '0.0.0',
      dependencies: options.dependencies,
      ...(options.devDependencies === undefined
        ? {}
        : { devDependencies: options.devDependencies }),
    },
  };
  for (const path of [...reachable].sort()) {
    const {
      dev: _dev,
      devOptional: _devOptional,
      peer: _peer,
      optional: _opt,
      ...entry
    } = lookup(path) as LockEntry;
    if (entry.resolved === undefined && entry.version !== undefined) {
      entry.resolved = registryUrl(path, entry.version);
    }
    packages[path] = required.has(path) ? entry : { ...entry, optional: true };
  }
  return { name: options.name, version: '0.0.0', lockfileVersion: 3, requires: true, packages };
}
