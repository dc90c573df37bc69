/**
 * Server storage: one durable log per space (tenant), each a SyncLog that a peer session
 * replicates, plus the ownership of replica ids. Every implementation (SQLite, PostgreSQL)
 * passes test/server/storage-conformance.ts.
 *
 * Invariants:
 * 1. Spaces are disjoint: nothing written to one space is readable through another.
 * 2. A space's replica id and epoch are created with the space and persisted: reopening the
 *    storage returns the same ones (a new epoch only ever means a new or restored database).
 * 3. `ingest` is atomic and durable before its promise resolves (the session acks only after),
 *    deduplicated by event id within the space (the first copy wins), and gives new events the
 *    next dense positions 1, 2, 3, ... of the space's receive-order log.
 * 4. A replica id is owned by the first subject whose events of it the space stored (or claimed);
 *    `claimOrigins` refuses, and claims nothing, when a batch holds an event that is new to the
 *    space and claims a replica owned by another subject, or the space's own replica id.
 *    Events the space already holds are never refused: a client sends back what it received.
 * 5. `openSpace` returns one shared SpaceLog per space and storage, so that `onAppend` tells
 *    every connection of the space about every write.
 */
import { StorageError } from '../core/errors.ts';
import type { SyncLog } from '../sync/log.ts';

/** The outcome of an ownership check (invariant 4). */
export type OriginCheck =
  | { ok: true }
  | {
      ok: false;
      /** The first refused event. */
      eventId: string;
      replica: string;
    };

/** The origin fields of an event that ownership looks at. */
export interface EventOrigin {
  id: string;
  replica: string;
}

export interface SpaceLog extends SyncLog {
  readonly space: string;
  /**
   * Checks the origins of a batch for `sub` and claims, for `sub`, every replica of the batch
   * that nobody owns yet (invariant 4). Atomic: on refusal nothing is claimed.
   */
  claimOrigins(sub: string, events: readonly EventOrigin[]): Promise<OriginCheck>;
  /** The subject owning `replica` in this space, if any. */
  ownerOf(replica: string): Promise<string | undefined>;
}

export interface ServerStorage {
  /** For diagnostics and logs: 'sqlite:<path>'. */
  readonly name: string;
  /** The space's log, created on first use (invariants 2 and 5). */
  openSpace(space: string): Promise<SpaceLog>;
  /** Closes the database; later calls reject with a StorageError. */
  close(): Promise<void>;
}

/** Spaces and subjects are names chosen by whoever issues tokens; bounded so that keys stay small. */
export const MAX_SPACE_NAME_LENGTH = 128;

export function isValidSpaceName(space: unknown): space is string {
  return typeof space === 'string' && space.length > 0 && space.length <= MAX_SPACE_NAME_LENGTH;
}

/** What every ServerStorage.openSpace checks first. */
export function assertSpaceName(space: unknown): asserts space is string {
  if (!isValidSpaceName(space)) {
    throw new StorageError(
      'STORAGE',
      `a space name must be a non-empty string of at most ${MAX_SPACE_NAME_LENGTH} characters`,
    );
  }
}
