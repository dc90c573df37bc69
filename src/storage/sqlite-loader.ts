/**
 * better-sqlite3 for the replica storage (sqlite.ts), loaded when a handle is first opened: it
 * is an optional peer dependency, and a front end never reaches this module (only the /node
 * entry imports it). storage/ may not import server/, so this is the storage's own small
 * loader, with the rules of server/peers.ts:
 * 1. Not installed → MissingDependencyError (code MISSING_DEPENDENCY) naming better-sqlite3; any
 *    other failure to load it (a native build for another Node) is rethrown as it is.
 * 2. Loaded synchronously through require, once per process (require's cache).
 */
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { isMissingModule, MissingDependencyError } from '../core/errors.ts';

type Loader = () => unknown;

const nodeRequire = createRequire(import.meta.url);
const requireLoader: Loader = () => nodeRequire('better-sqlite3');
let loader: Loader = requireLoader;

/** Test seam: load through `load` (one that throws as require does), or require when undefined. */
export function setSqliteLoader(load: Loader | undefined): void {
  loader = load ?? requireLoader;
}

/** better-sqlite3's Database class (invariant 1). */
export function loadBetterSqlite(): typeof BetterSqlite3 {
  try {
    return loader() as typeof BetterSqlite3;
  } catch (error) {
    if (isMissingModule(error, 'better-sqlite3'))
      throw new MissingDependencyError('better-sqlite3', 'sqliteReplicaStorage');
    throw error;
  }
}
