/**
 * `chronicle-server --projections ./module.js`: the app's projections, loaded from a module of
 * the operator's, for server snapshots (snapshotter.ts; docs/storage-growth.md part 4).
 *
 * The module exports `projections`, an array of projections made with defineProjection (the same
 * objects the app's stores register), and `upcasters` when the app's store has some:
 *
 *   // projections.js
 *   import { boardProjection } from './board.js';
 *   export const projections = [boardProjection];
 *
 * Invariants:
 * 1. A module that cannot be loaded, or whose exports are not projections, stops the start with
 *    a message naming the module: a server never runs without the snapshots it was asked for.
 * 2. The module is the operator's code and runs in the server's process, as every projection
 *    does; nothing else of it is called.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Projection } from '../core/projection.ts';
import type { Upcaster } from '../core/upcast.ts';
import type { SnapshotOptions } from './snapshotter.ts';

function isProjection(value: unknown): value is Projection {
  if (typeof value !== 'object' || value === null) return false;
  const p = value as Record<string, unknown>;
  return (
    typeof p.name === 'string' &&
    Number.isSafeInteger(p.version) &&
    typeof p.initial === 'function' &&
    typeof p.apply === 'function'
  );
}

function isUpcaster(value: unknown): value is Upcaster {
  if (typeof value !== 'object' || value === null) return false;
  const u = value as Record<string, unknown>;
  return typeof u.type === 'string' && typeof u.up === 'function';
}

/** Loads `path` (relative to the working directory) as invariant 1 says. */
export async function loadProjections(
  path: string,
  every: number | undefined,
): Promise<SnapshotOptions> {
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(resolve(path)).href)) as Record<string, unknown>;
  } catch (error) {
    throw new TypeError(
      `--projections ${path}: cannot load it: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  const { projections, upcasters } = module;
  if (!Array.isArray(projections) || projections.length === 0 || !projections.every(isProjection)) {
    throw new TypeError(
      `--projections ${path}: the module must export \`projections\`, a non-empty array of projections made with defineProjection`,
    );
  }
  if (upcasters !== undefined && (!Array.isArray(upcasters) || !upcasters.every(isUpcaster))) {
    throw new TypeError(`--projections ${path}: \`upcasters\` must be an array of upcasters`);
  }
  return {
    projections,
    ...(upcasters === undefined ? {} : { upcasters: upcasters as Upcaster[] }),
    ...(every === undefined ? {} : { every }),
  };
}
