/**
 * Every write of the SQLite server storage (sqlite.ts), as synchronous work on one connection,
 * handed over as data: a WritePiece in, a WriteResult out. The same code runs on the event loop
 * (an in-memory database, or when no writer thread can start) and on the writer thread
 * (sqlite-writer-thread.ts), so both take one path through it. Nothing here imports the event
 * codec or the sync module: the thread loads only this, its statements and better-sqlite3.
 *
 * Invariants (numbered as in sqlite.ts where they repeat one):
 * 1. A group of pieces is one transaction, committed before any result is reported; each piece
 *    is a savepoint of its own, so one that fails is rolled back and reported alone (7).
 * 2. A group that holds only checkpoints commits with `synchronous=NORMAL` (5); any other group
 *    commits FULL (1).
 * 3. An ingest first inserts without looking its ids up; a held or repeated id fails the unique
 *    index, the attempt rolls back to its savepoint, and the rows go in again with the lookup (8).
 * 4. A claim is decided before anything is inserted: a refused batch claims nothing (storage.ts
 *    invariant 4).
 * 5. Results and errors are plain data (structured-cloneable), whichever thread they cross.
 */
import type Database from 'better-sqlite3';
import { prepareAll, type Statements } from './sqlite-schema.ts';
import {
  decideClaims,
  doubtfulEvents,
  type EventOrigin,
  type OriginCheck,
  type ReplicaOwners,
} from './storage.ts';

/** Values per event in an ingest's rows: id, replica, seq, stream, cursor, body. */
export const ROW_WIDTH = 6;

/** One write, a savepoint of its group (invariant 1). */
export type WritePiece =
  | {
      kind: 'ingest';
      space: string;
      /** ROW_WIDTH values per event, in the batch's order. */
      rows: (string | number)[];
    }
  | {
      kind: 'claim';
      space: string;
      /** The space's own replica id, which nobody may write as. */
      spaceReplica: string;
      sub: string;
      events: EventOrigin[];
    }
  | { kind: 'checkpoint'; space: string; peer: string; checkpoint: string }
  | { kind: 'space'; space: string; replica: string; epoch: string };

export type WriteResult =
  | {
      kind: 'ingest';
      /** The position of the first event written; the others follow densely. */
      first: number;
      /** Indexes of the batch's events written, in order; null when all were. */
      written: number[] | null;
    }
  | { kind: 'claim'; check: OriginCheck }
  | { kind: 'checkpoint' }
  | { kind: 'space'; replica: string; epoch: string };

/** A piece's outcome as it crosses threads (invariant 5). */
export type WriteOutcome =
  | { ok: true; result: WriteResult }
  | { ok: false; message: string; code: string | undefined };

/** The result a piece of kind K gets. */
export type ResultOf<K extends WritePiece['kind']> = Extract<WriteResult, { kind: K }>;

/** Ids per lookup and rows per insert statement: many rows per statement, few statements. */
const ID_CHUNK = 64;
const ROW_CHUNK = 32;
/** Columns of an inserted row: space and pos, then the ROW_WIDTH values of an event. */
const INSERT_WIDTH = ROW_WIDTH + 2;

export class SqliteWrites {
  private readonly st: Statements;
  private readonly statements = new Map<string, Database.Statement>();
  private readonly applyTx: (piece: WritePiece) => WriteResult;
  private readonly ingestTx: (piece: IngestPiece, lookUp: boolean) => WriteResult;
  private readonly groupTx: (pieces: readonly WritePiece[]) => WriteOutcome[];

  constructor(private readonly db: Database.Database) {
    this.st = prepareAll(db);
    this.ingestTx = db.transaction((piece: IngestPiece, lookUp: boolean) =>
      this.insertEvents(piece, lookUp),
    );
    this.applyTx = db.transaction((piece: WritePiece) => this.apply(piece));
    this.groupTx = db.transaction((pieces: readonly WritePiece[]) =>
      pieces.map((piece): WriteOutcome => {
        try {
          return { ok: true, result: this.applyTx(piece) };
        } catch (error) {
          return failure(error);
        }
      }),
    );
  }

  /**
   * Runs pieces as one transaction (invariant 1). A failed commit fails every piece; a piece that
   * throws fails alone.
   */
  runGroup(pieces: readonly WritePiece[]): WriteOutcome[] {
    const durable = pieces.some((piece) => piece.kind !== 'checkpoint');
    try {
      if (!durable) this.st.syncNormal.run();
      try {
        return this.groupTx(pieces);
      } finally {
        if (!durable) this.st.syncFull.run();
      }
    } catch (error) {
      const failed = failure(error);
      return pieces.map(() => failed);
    }
  }

  private apply(piece: WritePiece): WriteResult {
    switch (piece.kind) {
      case 'ingest':
        // Invariant 3: the optimistic attempt is a savepoint of its own.
        try {
          return this.ingestTx(piece, false);
        } catch (error) {
          if (!isUniqueViolation(error)) throw error;
          return this.ingestTx(piece, true);
        }
      case 'claim':
        return { kind: 'claim', check: this.claim(piece) };
      case 'checkpoint':
        this.st.setCheckpoint.run(piece.space, piece.peer, piece.checkpoint);
        return { kind: 'checkpoint' };
      case 'space': {
        // INSERT OR IGNORE, then read: if another process created the space first, its ids win.
        this.st.insertSpace.run(piece.space, piece.replica, piece.epoch);
        const row = this.st.getSpace.get(piece.space);
        if (row === undefined) throw new Error(`space ${piece.space} vanished`);
        return { kind: 'space', replica: row.replica, epoch: row.epoch };
      }
      default:
        return unknownPiece(piece);
    }
  }

  /** Writes the events new to the space at the positions after its head (invariant 3). */
  private insertEvents(piece: IngestPiece, lookUp: boolean): WriteResult {
    const { space, rows } = piece;
    const count = rows.length / ROW_WIDTH;
    const head = this.st.getHead.get(space)?.head ?? 0;
    // Ids stored already, and ids met earlier in this batch: each id is stored once.
    const seen = lookUp ? this.storedIds(space, idsOf(rows)) : undefined;
    const written: number[] | null = lookUp ? [] : null;
    const values: (string | number)[] = [];
    let pos = head;
    for (let i = 0; i < count; i++) {
      const at = i * ROW_WIDTH;
      const id = rows[at] as string;
      if (seen !== undefined) {
        if (seen.has(id)) continue;
        seen.add(id);
        written!.push(i);
      }
      pos += 1;
      values.push(space, pos);
      for (let k = 0; k < ROW_WIDTH; k++) values.push(rows[at + k]!);
    }
    this.insertRows(values);
    if (pos > head) this.st.setHead.run(pos, space);
    return { kind: 'ingest', first: head + 1, written };
  }

  private claim(piece: Extract<WritePiece, { kind: 'claim' }>): OriginCheck {
    const { space, sub, events } = piece;
    // The owner of each replica of the batch (null: the space's own, which nobody may write
    // as). A batch usually holds one or two replicas, all the sender's own.
    const owners = new Map<string, string | null | undefined>();
    for (const event of events) {
      if (owners.has(event.replica)) continue;
      owners.set(
        event.replica,
        event.replica === piece.spaceReplica
          ? null
          : this.st.getOwner.get(space, event.replica)?.sub,
      );
    }
    const doubtful = doubtfulEvents(sub, events, owners);
    if (doubtful.length === 0) return { ok: true };
    const held = this.storedIds(
      space,
      doubtful.map((e) => e.id),
    );
    const decision = decideClaims(sub, doubtful, owners as ReplicaOwners, held);
    // Decided before any insert: a refused batch claims nothing (invariant 4).
    if (!decision.ok) return decision;
    for (const replica of decision.claimed) this.st.insertOwner.run(space, replica, sub);
    return { ok: true };
  }

  /** The ids among `ids` that the space holds, looked up ID_CHUNK at a time. */
  private storedIds(space: string, ids: readonly string[]): Set<string> {
    const found = new Set<string>();
    for (let i = 0; i < ids.length; i += ID_CHUNK) {
      const part = ids.slice(i, i + ID_CHUNK);
      const marks = part.map(() => '?').join(',');
      const select = this.statement(`SELECT id FROM events WHERE space = ? AND id IN (${marks})`);
      for (const id of select.pluck().all(space, ...part)) found.add(id as string);
    }
    return found;
  }

  /** Inserts rows of INSERT_WIDTH values each, ROW_CHUNK rows per statement. */
  private insertRows(values: readonly (string | number)[]): void {
    const rowText = `(${Array(INSERT_WIDTH).fill('?').join(',')})`;
    const chunk = ROW_CHUNK * INSERT_WIDTH;
    for (let i = 0; i < values.length; i += chunk) {
      const part = values.slice(i, i + chunk);
      const rows = Array(part.length / INSERT_WIDTH)
        .fill(rowText)
        .join(',');
      this.statement(
        `INSERT INTO events (space, pos, id, replica, seq, stream, cursor, body) VALUES ${rows}`,
      ).run(...part);
    }
  }

  private statement(sql: string): Database.Statement {
    let statement = this.statements.get(sql);
    if (statement === undefined) {
      statement = this.db.prepare(sql);
      this.statements.set(sql, statement);
    }
    return statement;
  }
}

type IngestPiece = Extract<WritePiece, { kind: 'ingest' }>;

function idsOf(rows: readonly (string | number)[]): string[] {
  const ids: string[] = [];
  for (let at = 0; at < rows.length; at += ROW_WIDTH) ids.push(rows[at] as string);
  return ids;
}

/** An id the space holds already (events_by_id), or one repeated within the batch. */
function isUniqueViolation(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === 'SQLITE_CONSTRAINT_UNIQUE';
}

function failure(error: unknown): Extract<WriteOutcome, { ok: false }> {
  const message = error instanceof Error ? error.message : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  return { ok: false, message, code: typeof code === 'string' ? code : undefined };
}

function unknownPiece(piece: never): never {
  throw new Error(`unknown write: ${JSON.stringify(piece)}`);
}
