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
 *    deduplicated by event id within the space, and gives new events the next positions of the
 *    space's receive-order log. Colliding copies (one id, or one (replica, seq), twice) are
 *    resolved by core/copies.ts: the copy first in the total order stays, a held loser is
 *    deleted (its position becomes a hole), and a batch whose event reuses a held (replica, seq)
 *    without winning, or holds one (replica, seq) twice, is refused whole with SeqConflictError.
 * 4. A replica id is owned by the first subject whose events of it the space stored (or claimed);
 *    `claimOrigins` refuses, and claims nothing, when a batch holds an event that is new to the
 *    space and claims a replica owned by another subject, or the space's own replica id.
 *    Events the space already holds are never refused: a client sends back what it received.
 * 5. `openSpace` returns one shared SpaceLog per space and storage, so that `onAppend` tells
 *    every connection of the space about every write.
 * 6. Publishing (publisher.ts): `listSpaces` gives every space with its head as committed;
 *    a publisher's position per space is durable once `setPublishedPos` resolves and never
 *    moves back (a lower position is ignored: a publisher that lost its lock cannot rewind the
 *    one that took over). Positions are kept per publisher name, so two publishers (two
 *    brokers) keep positions of their own.
 */

import type { LostCopy } from '../core/copies.ts';
import { StorageError } from '../core/errors.ts';
import type { LocalRecord, StoredEventRecord } from '../core/events.ts';
import { lastHlcOf } from '../core/hlc.ts';
import type { ProjectionVersion, SpaceSnapshot } from '../core/space-snapshot.ts';
import type { StrictRejection } from '../core/strict.ts';
import type { CursorQuery } from '../storage/adapter.ts';
import type { SyncLog } from '../sync/log.ts';
import type { ArchiveCheck } from './archive-files.ts';

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
  /** Tells a copy of a held event (same cursor) from another copy under its id. */
  cursor: string;
}

/**
 * The ids of `events` whose held copy is the same copy (same cursor), from the held cursors by
 * id. Only such an event counts as held for ownership (decideClaims): another copy under a held
 * id may win over it (core/copies.ts) and replace it everywhere, so it claims its replica like
 * an event new to the space, and a forged copy of another subject's event is refused.
 */
export function sameCopies(
  events: readonly EventOrigin[],
  heldCursors: ReadonlyMap<string, string>,
): Set<string> {
  const same = new Set<string>();
  for (const event of events) if (heldCursors.get(event.id) === event.cursor) same.add(event.id);
  return same;
}

/**
 * The owner of a replica as a claim sees it: a subject; null for the space's own replica, which
 * nobody may write as; undefined (or absent) when nobody owns it yet.
 */
export type ReplicaOwners = ReadonlyMap<string, string | null | undefined>;

/** What a batch claims (invariant 4): the replicas to give `sub`, in order, or the refusal. */
export type ClaimDecision = { ok: true; claimed: string[] } | Extract<OriginCheck, { ok: false }>;

/**
 * The events of a batch whose replica `sub` does not own: only their ids need looking up, since
 * an event the space holds is never refused and only an event new to the space claims a replica.
 */
export function doubtfulEvents<E extends EventOrigin>(
  sub: string,
  events: readonly E[],
  owners: ReplicaOwners,
): E[] {
  return events.filter((event) => owners.get(event.replica) !== sub);
}

/**
 * The claims of a batch (invariant 4), decided before anything is written: `doubtful` as
 * doubtfulEvents gives them, `owners` of their replicas, `held` the ids of them whose very copy
 * the space holds (sameCopies).
 * The first event new to the space of a replica another subject (or nobody: the space's own)
 * owns refuses the batch; the unowned replicas of the others go to `sub`.
 */
export function decideClaims(
  sub: string,
  doubtful: readonly EventOrigin[],
  owners: ReplicaOwners,
  held: ReadonlySet<string>,
): ClaimDecision {
  const claimed: string[] = [];
  const claiming = new Set<string>();
  for (const event of doubtful) {
    if (held.has(event.id)) continue;
    const owner = claiming.has(event.replica) ? sub : owners.get(event.replica);
    if (owner === undefined) {
      claiming.add(event.replica);
      claimed.push(event.replica);
    } else if (owner !== sub) {
      return { ok: false, eventId: event.id, replica: event.replica };
    }
  }
  return { ok: true, claimed };
}

/** What one ingest of a server storage wrote, took out and found losing (core/copies.ts). */
export interface IngestWritten {
  written: LocalRecord[];
  /** Held copies that lost to a copy of the batch: deleted, their positions left as holes. */
  removed: LocalRecord[];
  lost: LostCopy[];
  /** Events their strict stream rejected (core/strict.ts): not stored. */
  rejected?: StrictRejection[];
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
  /** The event held at (replica, seq), if any (core/integrity.ts ChainLookup). */
  eventAtSlot(replica: string, seq: number): Promise<StoredEventRecord | undefined>;
  /** The `$key` a replica first signed with here (core/integrity.ts), if any. */
  replicaKey(replica: string): Promise<string | undefined>;
  /**
   * Binds each replica to its `$key`, and to `sub`, the subject whose connection first brought
   * it (first sight: a held binding is kept).
   */
  bindReplicaKeys(sub: string, keys: ReadonlyMap<string, string>): Promise<void>;
  /**
   * The rejections (core/strict.ts) of `replica`'s events with a seq above `afterSeq`, by seq.
   * Each ingest keeps its rejections with its write, so that one whose `rejected` message was
   * lost with the connection is told again at the replica's next hello (protocol 8).
   */
  rejectionsOf(replica: string, afterSeq: number): Promise<StrictRejection[]>;
  /** Forgets `replica`'s rejections up to `seq`: its hello says it holds what became of them. */
  forgetRejections(replica: string, uptoSeq: number): Promise<void>;
  /**
   * History in the total order (docs/storage-growth.md): the space's events by cursor, with the
   * meaning of a replica's EventLog.readByCursor (storage/adapter.ts invariants 4 and 5).
   * Absent where a storage does not serve history yet.
   */
  readByCursor?(query: CursorQuery): Promise<LocalRecord[]>;
}

/** A space and its head (the last position written), as `listSpaces` gives them. */
export interface SpaceHead {
  space: string;
  head: number;
}

/**
 * The right to be the one publisher of a name among the servers of one database (publisher.ts).
 * On PostgreSQL: a session-level advisory lock on a connection of its own, freed by the
 * database when that connection (its server) dies.
 */
export interface PublisherLock {
  /** Resolves when the lock is lost (its connection failed): stop publishing and ask again. */
  readonly lost: Promise<void>;
  release(): Promise<void>;
}

/** A stored snapshot without its states (snapshotter.ts): what choosing one needs. */
export interface StoredSnapshotMeta {
  /** The projection set it was made for (core/snapshot-plan.ts projectionSetKey). */
  set: string;
  pos: number;
  cursor: string;
  count: number;
  /** The projections it holds, at their versions. */
  versions: ProjectionVersion[];
}

/**
 * The server's snapshots of spaces (docs/storage-growth.md part 4; server/snapshotter.ts), kept
 * per space and projection set. Durable once a call resolves.
 */
export interface SnapshotStore {
  /** The space's snapshots, of every set, newest (largest pos) first. */
  list(space: string): Promise<StoredSnapshotMeta[]>;
  /** One snapshot whole, undefined when it is gone. */
  read(space: string, set: string, pos: number): Promise<SpaceSnapshot | undefined>;
  /**
   * Stores `snapshot` under `set` and, in the same transaction, deletes the set's other
   * snapshots of the space but those at the positions in `keep`.
   */
  put(space: string, set: string, snapshot: SpaceSnapshot, keep: readonly number[]): Promise<void>;
  /** Deletes the space's snapshots of `set` (its projections cannot run there). */
  drop(space: string, set: string): Promise<void>;
}

export interface ServerStorage {
  /** For diagnostics and logs: 'sqlite:<path>'. */
  readonly name: string;
  /** The space's log, created on first use (invariants 2 and 5). */
  openSpace(space: string): Promise<SpaceLog>;
  /** Every space with its head (invariant 6). */
  listSpaces(): Promise<SpaceHead[]>;
  /** The durable positions of `publisher`, by space (absent: nothing published yet). */
  publishedPositions(publisher: string): Promise<Map<string, number>>;
  /** Records that `publisher` published `space` up to `pos`; never moves back (invariant 6). */
  setPublishedPos(publisher: string, space: string, pos: number): Promise<void>;
  /**
   * Takes the lock of `publisher` if no other holder (another server on the database) has it;
   * undefined when one does. Where the database has no other servers (SQLite) it is granted.
   */
  lockPublisher(publisher: string): Promise<PublisherLock | undefined>;
  /**
   * Hears the appends other servers of the database make, in any space, opened here or not
   * (PostgreSQL: LISTEN): the publisher learns of a space first written elsewhere at once.
   * Absent where no other server writes (SQLite). Returns unsubscribe.
   */
  onOtherAppend?(listener: (space: string, head: number) => void): () => void;
  /**
   * Runs the compactor (issue 18: event-blocks.ts) until every space's log older than its hot
   * tail is in blocks, and says what it moved. The storage also compacts by itself in the
   * background; this is for operators (a CLI command), benches and tests. Absent where the
   * storage does not compact.
   */
  compact?(): Promise<CompactionReport>;
  /**
   * The spaces' snapshots (snapshotter.ts). Absent where a storage keeps none: the server then
   * takes no `snapshots` option.
   */
  readonly snapshots?: SnapshotStore;
  /**
   * Moves the bodies of blocks whose newest event (by its HLC's wall time) is older than
   * `options.before` (ms since the epoch) into cold files of the archive directory
   * (archive-files.ts), one file per space and run of blocks. Absent where the storage does not
   * archive. For operators (`chronicle-server archive`), benches and tests.
   */
  archive?(options: ArchiveOptions): Promise<ArchiveReport>;
  /** Verifies every recorded archive file (`chronicle-server archive --check`). */
  checkArchive?(): Promise<ArchiveCheck>;
  /** Closes the database; later calls reject with a StorageError. */
  close(): Promise<void>;
}

export interface ArchiveOptions {
  /** Blocks whose every event's HLC wall time is below this (ms since the epoch) move. */
  before: number;
  /** Blocks per file at most (default 256: about 32k events). */
  fileBlocks?: number;
}

/** What one run of `archive` moved. */
export interface ArchiveReport {
  /** The archive directory, absolute. */
  dir: string;
  files: number;
  blocks: number;
  events: number;
  /** Bytes of the files written. */
  bytes: number;
}

/** What one run of a storage's compactor moved into blocks. */
export interface CompactionReport {
  /** Blocks written. */
  blocks: number;
  /** Events moved out of rows into those blocks. */
  events: number;
}

/**
 * Whether an event of an ingest is skewed: its HLC is ahead of `limitMs` (the wall clock plus the
 * drift allowed), which the ingest reports.
 */
export function isSkewed(events: readonly { hlc: string }[], limitMs: number): boolean {
  const last = lastHlcOf(limitMs);
  return events.some((e) => e.hlc > last);
}

/** Tells every listener of a space its new head; one that throws fails no other (invariant 5). */
export function notifyListeners(
  listeners: ReadonlySet<(headPos: number) => void>,
  head: number,
): void {
  for (const listener of [...listeners]) {
    try {
      listener(head);
    } catch {
      // A failing listener (one connection) must not fail the ingest of another.
    }
  }
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
