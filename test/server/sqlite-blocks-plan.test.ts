/**
 * The lookups of a batch's ids among sealed events (src/server/sqlite-blocks.ts invariant 9) walk
 * the ids and seek each in `block_ids`, whatever SQLite knows of the tables: without statistics it
 * chose the other order for a plain JOIN, which parsed the ids' JSON again for every sealed id of
 * the space (6 s for one batch of 500 against 100k sealed ids: a sync server stalled).
 */
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { ANY_HIT_SQL, BLOCK_SCHEMA, HITS_SQL } from '../../src/server/sqlite-blocks.ts';

function planOf(db: Database.Database, sql: string, ids: string): string[] {
  const rows = db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(ids, 1) as { detail: string }[];
  return rows.map((r) => r.detail);
}

describe('the lookups of sealed ids (sqlite-blocks.ts invariant 9)', () => {
  it('walk the ids and seek each one, before and after ANALYZE, and find what is there', () => {
    const db = new Database(':memory:');
    try {
      db.exec(BLOCK_SCHEMA);
      const insert = db.prepare('INSERT INTO block_ids (sid, hash, bid) VALUES (?, ?, ?)');
      db.transaction(() => {
        for (let i = 0; i < 5_000; i++) insert.run(1, i * 7919, i >> 7);
        for (let i = 0; i < 500; i++) insert.run(2, i, 0);
      })();
      const ids = JSON.stringify([7919 * 3, 12, 7919 * 4_999, 5]);
      for (const analyzed of [false, true]) {
        if (analyzed) db.exec('ANALYZE');
        for (const sql of [HITS_SQL, ANY_HIT_SQL]) {
          const plan = planOf(db, sql, ids);
          expect(plan[0], `${analyzed ? 'after' : 'before'} ANALYZE: ${plan.join(' | ')}`).toMatch(
            /^SCAN j\b/,
          );
          expect(plan[1]).toMatch(/^SEARCH b USING (PRIMARY KEY|INDEX)[^(]*\(sid=\? AND hash=\?\)/);
        }
        const hits = db.prepare(HITS_SQL).all(ids, 1) as { hash: number; bid: number }[];
        expect(hits.map((h) => h.hash).sort((a, b) => a - b)).toEqual([7919 * 3, 7919 * 4_999]);
        expect(db.prepare(ANY_HIT_SQL).get(JSON.stringify([1, 2]), 1)).toBeUndefined();
        expect(db.prepare(ANY_HIT_SQL).get(ids, 1)).toEqual({ found: 1 });
      }
    } finally {
      db.close();
    }
  });
});
