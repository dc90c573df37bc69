/**
 * Reads of signed events (core/integrity.ts meta) for every adapter: whole by default, and with
 * CursorQuery.withoutSignatures (storage/adapter.ts) the same records but for `$sig`, which a
 * projection fold strips unread. IndexedDB keeps each `$sig` as bytes (core/segment-codec.ts),
 * so this is where a read that leaves them as stored could lose or change another field.
 */
import { describe, expect, it } from 'vitest';
import { encodeBase64Url } from '../../src/core/base64.ts';
import type { JsonObject, LocalRecord, StoredEventRecord } from '../../src/core/events.ts';
import { Cursor, ReplicaId } from '../../src/core/ids.ts';
import type { CursorQuery, EventLog } from '../../src/storage/adapter.ts';
import { storedEvent } from '../fixtures/events.ts';

const SIGNER = ReplicaId.parse('signer0000000001');
const DAY = 24 * 60 * 60 * 1000;

/** A `$sig` as core/integrity.ts writes one: 64 bytes as base64url. */
const sig = (n: number) =>
  encodeBase64Url(Uint8Array.from({ length: 64 }, (_, i) => (i * 29 + n * 13) & 255));

/** Signed events of two streams, one of them with a custom id, as a synced log holds them. */
function signedEvents(): StoredEventRecord[] {
  return [1, 2, 3, 4, 5, 6].map((seq) => {
    const meta: JsonObject = { app: seq, $sig: sig(seq), $link: `${seq - 1}.abc` };
    if (seq === 1) meta.$key = 'key.nonce';
    return storedEvent({
      replica: SIGNER,
      seq,
      wall: 100 + seq,
      stream: seq % 2 === 0 ? 'even' : 'odd',
      version: Math.ceil(seq / 2),
      id: seq === 3 ? 'custom-3' : undefined,
      data: { n: seq },
      meta,
    });
  });
}

/** The record with `$sig` taken out of its meta, and meta's other keys in their order. */
function withoutSig(record: LocalRecord): unknown {
  const { $sig: _, ...meta } = record.event.meta ?? {};
  return { ...record, event: { ...record.event, meta }, keys: Object.keys(meta) };
}

export function signatureConformance(fresh: () => Promise<{ log: EventLog }>): void {
  describe('signed events (CursorQuery.withoutSignatures)', () => {
    async function signedLog() {
      const { log } = await fresh();
      const events = signedEvents();
      await log.ingest({ events, now: 1_000, maxClockDriftMs: DAY });
      return { log, events };
    }

    const middle = signedEvents()[2]!;
    const queries: [string, CursorQuery][] = [
      ['the whole log', { limit: 100 }],
      ['a page after a cursor', { after: middle.cursor, limit: 2 }],
      ['one stream', { stream: 'odd', limit: 100 }],
      ['backward', { reverse: true, until: middle.cursor, limit: 100 }],
    ];

    it.each(queries)(
      'gives %s whole, and without signatures the same but for $sig',
      async (_, query) => {
        const { log, events } = await signedLog();
        const whole = await log.readByCursor(query);
        expect(whole.length).toBeGreaterThan(0);
        const byId = new Map(events.map((e) => [e.id, e]));
        // Field for field as ingested (a sealed view puts meta's keys in its own order).
        expect(whole.map((r) => r.event)).toEqual(whole.map((r) => byId.get(r.event.id)));
        const folded = await log.readByCursor({ ...query, withoutSignatures: true });
        expect(folded.map(withoutSig)).toEqual(whole.map(withoutSig));
      },
    );

    it('gives $sig as text to a whole read after a read without signatures', async () => {
      const { log, events } = await signedLog();
      await log.readByCursor({ limit: 100, withoutSignatures: true });
      const whole = await log.readByCursor({ limit: 100 });
      const sorted = [...events].sort((a, b) => Cursor.compare(a.cursor, b.cursor));
      expect(whole.map((r) => r.event)).toEqual(sorted);
      expect((await log.getByIds([events[0]!.id]))[0]?.event.meta?.$sig).toBe(sig(1));
      expect((await log.readByPos(0, 100)).map((r) => r.event.meta?.$sig)).toEqual(
        [1, 2, 3, 4, 5, 6].map(sig),
      );
    });
  });
}
