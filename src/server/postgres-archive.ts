/**
 * Archival on PostgreSQL (issue 18 part 4; archive-files.ts for the files, sqlite-archive.ts for
 * the same on SQLite): the bodies (`bytes`) of blocks whose newest event is older than a cutoff
 * move to cold files; the block rows, their `ids` hashes, `event_runs`, cursor ranges and
 * `streams` stay (postgres-blocks.ts 13), so dedupe and history still find them.
 *
 * Invariants:
 * 1. Age is the event time, as on SQLite (sqlite-archive.ts 1): `max_cursor` (keyed: a JSON
 *    string, whose HLC prefix sorts by wall time under COLLATE "C") below the cutoff HLC's key.
 * 2. A file is written and fsynced with no transaction open (archive-files.ts 2); then ONE
 *    transaction takes the space's row lock (blocks change only under it: postgres-blocks.ts
 *    14), replaces each block's body by its stub where the block is unchanged (same key, count
 *    and bytes), and records the file in `archive_files`.
 * 3. `bytes` is stored EXTERNAL (TOAST): the bodies' room goes back to the table after VACUUM,
 *    which autovacuum runs; the command does not run it.
 */
import type { PoolClient } from 'pg';
import { encodeHlc } from '../core/hlc.ts';
import {
  type ArchiveCheck,
  archiveFileName,
  checkArchiveFiles,
  type RecordedFile,
  STUB_FORMAT,
  sha256,
  writeArchiveFile,
} from './archive-files.ts';
import { key, unkey, within } from './postgres-rows.ts';
import type { ArchiveOptions, ArchiveReport } from './storage.ts';

const DEFAULT_FILE_BLOCKS = 256;

function schemaOf(s: string): string {
  return `
CREATE TABLE IF NOT EXISTS ${s}.archive_files (
  file TEXT PRIMARY KEY,
  space TEXT NOT NULL,
  first_pos BIGINT NOT NULL,
  last_pos BIGINT NOT NULL,
  blocks INTEGER NOT NULL,
  bytes BIGINT NOT NULL,
  sha256 TEXT NOT NULL,
  archived_at TIMESTAMPTZ NOT NULL DEFAULT now()
);`;
}

interface Candidate {
  last_pos: string;
  first_pos: string;
  n: number;
  bytes: Buffer;
}

/** Archives every space's old blocks into `dir` (invariants 1, 2). */
export async function archivePostgres(
  c: PoolClient,
  s: string,
  dir: string,
  options: ArchiveOptions,
): Promise<ArchiveReport> {
  await c.query(schemaOf(s));
  const cutoff = key(encodeHlc({ wall: Math.max(0, Math.floor(options.before)), counter: 0 }));
  const fileBlocks = options.fileBlocks ?? DEFAULT_FILE_BLOCKS;
  const spaces = await c.query<{ space: string }>(`SELECT space FROM ${s}.spaces ORDER BY space`);
  const report: ArchiveReport = { dir, files: 0, blocks: 0, events: 0, bytes: 0 };
  for (const { space } of spaces.rows) {
    const name = unkey(space);
    // A file name must not carry the space's text (any characters): a hash of it.
    const spaceKey = `p${sha256(Buffer.from(space)).slice(0, 12)}`;
    let after = 0;
    for (;;) {
      const found = await c.query<Candidate>(
        `SELECT last_pos, first_pos, n, bytes FROM ${s}.event_blocks
         WHERE space = $1 AND max_cursor COLLATE "C" < $2 AND get_byte(bytes, 0) <> ${STUB_FORMAT}
           AND last_pos > $3 ORDER BY last_pos LIMIT $4`,
        [space, cutoff, after, fileBlocks],
      );
      const blocks = found.rows;
      if (blocks.length === 0) break;
      after = Number(blocks[blocks.length - 1]!.last_pos);
      const first = Number(blocks[0]!.first_pos);
      const file = archiveFileName(spaceKey, first, after);
      const written = writeArchiveFile(
        dir,
        file,
        name,
        blocks.map((b) => ({ lastPos: Number(b.last_pos), n: b.n, body: b.bytes })),
      );
      const moved = await within(c, 'BEGIN', async () => {
        await c.query(`SELECT 1 FROM ${s}.spaces WHERE space = $1 FOR UPDATE`, [space]);
        let count = 0;
        let events = 0;
        for (const [i, block] of blocks.entries()) {
          const updated = await c.query(
            `UPDATE ${s}.event_blocks SET bytes = $4
             WHERE space = $1 AND last_pos = $2 AND n = $3 AND bytes = $5`,
            [space, block.last_pos, block.n, written.stubs[i]!, block.bytes],
          );
          if (updated.rowCount !== 1) continue;
          count += 1;
          events += block.n;
        }
        if (count > 0) {
          await c.query(
            `INSERT INTO ${s}.archive_files (file, space, first_pos, last_pos, blocks, bytes, sha256)
             VALUES ($1, $2, $3, $4, $5, $6, $7)`,
            [file, space, first, after, count, written.bytes, written.sha256],
          );
        }
        return { count, events };
      });
      if (moved.count === 0) continue;
      report.files += 1;
      report.blocks += moved.count;
      report.events += moved.events;
      report.bytes += written.bytes;
    }
  }
  return report;
}

/** Checks every file the database records (archive-files.ts 3). */
export async function checkPostgresArchive(
  c: PoolClient,
  s: string,
  dir: string,
): Promise<ArchiveCheck> {
  await c.query(schemaOf(s));
  const recorded = await c.query<RecordedFile>(
    `SELECT file, space, bytes::float8 AS bytes, sha256 FROM ${s}.archive_files ORDER BY file`,
  );
  return checkArchiveFiles(
    dir,
    recorded.rows.map((r) => ({ ...r, space: unkey(r.space) })),
  );
}
