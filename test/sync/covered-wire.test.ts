/**
 * Covered signatures on the wire (protocol.ts invariant 12), without I/O: which signatures a
 * covered batch leaves out (meta-columns.ts coveredIndexes), that what it leaves out still
 * verifies on the other side, the messages' new fields, the proof of a batch that ends inside a
 * run (proofs.ts), and the receiver's state while an unproven batch is sent again.
 */
import { describe, expect, it, vi } from 'vitest';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { isElided, MAX_ELIDED_RUN, verifyBatch } from '../../src/core/integrity.ts';
import { afterRefusal, classifyBatch, decideEventRefusal } from '../../src/core/sync.ts';
import { decodeEventBatch, elisions, encodeEventBatch } from '../../src/sync/event-codec.ts';
import { pageVerifier } from '../../src/sync/history-client.ts';
import type { ParsedHistoryPage } from '../../src/sync/history-messages.ts';
import { createHistoryServer } from '../../src/sync/history-serve.ts';
import { encodeMessage, parseMessage } from '../../src/sync/messages.ts';
import { MAX_ELIDED_DATA } from '../../src/sync/meta-columns.ts';
import { pageProof, proofFor } from '../../src/sync/proofs.ts';
import { DEFAULT_SYNC_LIMITS, type SyncMessage } from '../../src/sync/protocol.ts';
import { signedRun } from './meta-batches.ts';

const noKeys = { eventAt: async () => undefined, keyOf: async () => undefined };

/** An event as a covered batch carries it: its `$sig` left out, and its tree's path with it. */
function withoutSig(e: StoredEventRecord): StoredEventRecord {
  const { $sig: _sig, $tree: _tree, ...meta } = e.meta ?? {};
  return { ...e, meta };
}

describe('coveredIndexes: what a covered batch leaves out', () => {
  it('every event the next one links to, but one in MAX_ELIDED_RUN + 1, and never the last', async () => {
    const run = await signedRun(40);
    const out = elisions(run);
    expect(out.has(39)).toBe(false);
    expect(out.has(MAX_ELIDED_RUN)).toBe(false);
    expect(out.size).toBe(40 - 3);
  });

  it('nothing where the next event is of another replica, unsigned, or large', async () => {
    const [a, b] = [await signedRun(3), await signedRun(3)];
    expect(elisions([a[0]!, b[0]!, a[1]!, b[1]!]).size).toBe(0);
    expect(elisions([a[0]!, withoutSig(a[1]!)]).size).toBe(0);
    const big = { ...a[1]!, data: { text: 'x'.repeat(MAX_ELIDED_DATA) } };
    expect(elisions([a[0]!, big]).size).toBe(0);
  });

  it('a covered batch decodes to events without those signatures, which verify as they came', async () => {
    const run = await signedRun(20);
    const text = encodeEventBatch(run, undefined, { covered: true, impliedLinks: false });
    expect(text.length).toBeLessThan(encodeEventBatch(run).length - 15 * 86);
    const decoded = decodeEventBatch(JSON.parse(text));
    expect(decoded.filter(isElided)).toHaveLength(elisions(run).size);
    expect(decoded.map(withoutSig)).toEqual(run.map(withoutSig));
    expect(await verifyBatch(decoded, noKeys, { requireSignatures: true })).toMatchObject({
      ok: true,
    });
    // Cut before its last event, the batch no longer verifies: a receiver asks for the rest.
    const cut = await verifyBatch(decoded.slice(0, 10), noKeys, { requireSignatures: true });
    expect(cut).toMatchObject({ ok: false, tampering: { reason: 'unsigned' } });
  });
});

describe('messages of protocol 12', () => {
  it('carry hello.covered, events.covered and events.proof, and the unproven refusal', async () => {
    const run = await signedRun(6);
    const events: SyncMessage = {
      type: 'events',
      from: 0,
      to: 3,
      toId: run[2]!.id,
      events: run.slice(0, 3),
      covered: true,
      proof: run.slice(3),
    };
    const parsed = parseMessage(encodeMessage(events), DEFAULT_SYNC_LIMITS);
    expect(parsed.ok && parsed.message).toMatchObject({ type: 'events', covered: true });
    const m = parsed.ok ? (parsed.message as { events: unknown[]; proof?: unknown[] }) : undefined;
    expect(m?.events).toHaveLength(3);
    expect(m?.proof).toEqual(run.slice(3).map((e) => expect.objectContaining({ id: e.id })));
    const error = JSON.stringify({
      type: 'error',
      code: 'TAMPERED',
      message: 'again',
      eventId: 'e1',
      refused: { from: 4, reason: { kind: 'unproven' } },
    });
    expect(parseMessage(error, DEFAULT_SYNC_LIMITS)).toMatchObject({
      ok: true,
      message: { refused: { from: 4, reason: { kind: 'unproven' } } },
    });
  });
});

describe('proofFor (proofs.ts)', () => {
  it("follows the replica's chain from the batch's last event to its first signed one", async () => {
    const run = await signedRun(8);
    const held = run.map((e, i) => (i < 6 ? withoutSig(e) : e));
    const lookup = { eventAt: async (_r: string, seq: number) => held[seq - 1] };
    const proof = await proofFor(held.slice(0, 3), lookup, 1 << 20);
    expect(proof?.map((e) => e.seq)).toEqual([4, 5, 6, 7]);
    expect(await proofFor(held.slice(0, 7), lookup, 1 << 20)).toBeUndefined();
    // Nothing to give when the chain stops before a signed event, or the message has no room.
    const gone = {
      eventAt: async (_r: string, seq: number) => (seq === 5 ? undefined : held[seq - 1]),
    };
    expect(await proofFor(held.slice(0, 3), gone, 1 << 20)).toBeUndefined();
    expect(await proofFor(held.slice(0, 3), lookup, 200)).toBeUndefined();
    // Nor one that holds an event the peer is not to get now (beyond its clock, say).
    expect(await proofFor(held.slice(0, 3), lookup, 1 << 20, (e) => e.seq !== 6)).toBeUndefined();
    expect(await proofFor(held.slice(0, 3), lookup, 1 << 20, (e) => e.seq !== 9)).toHaveLength(4);
  });
});

describe('the receiver while an unproven batch goes again', () => {
  const state = afterRefusal({ pos: 4, started: true }, 4, 'e1', true);

  it('drops covered batches (sent before the sender knew) and takes the first that is not', () => {
    expect(classifyBatch(state, { from: 4, to: 8, covered: true })).toEqual({ kind: 'discard' });
    expect(classifyBatch(state, { from: 6, to: 8 })).toEqual({ kind: 'discard' });
    expect(classifyBatch(state, { from: 4, to: 8, events: [{ id: 'e1' }] })).toMatchObject({
      kind: 'apply',
    });
  });

  it('refuses the resend again, even for the same event, rather than wait for ever', () => {
    const again = decideEventRefusal(state, { from: 4, to: 8 }, 'e1', true);
    expect(again.kind).toBe('refuse');
    const plain = afterRefusal({ pos: 4, started: true }, 4, 'e1');
    expect(decideEventRefusal(plain, { from: 4, to: 8 }, 'e1', true)).toEqual({ kind: 'drop' });
  });
});

describe('history pages of events held without their signature (history-serve.ts 4)', () => {
  async function held() {
    const run = await signedRun(10);
    return run.map((e, i) => (i < 9 ? withoutSig(e) : e));
  }
  const integrity = (events: StoredEventRecord[]) => ({
    requireSignatures: true,
    eventAt: async (_r: string, seq: number) => events[seq - 1],
    // The replica's key, as a page's `keys` or an earlier page gives it.
    keyOf: async () => events[0]!.meta?.$key as string,
    rememberKeys: async () => {},
  });

  it("prove one stream's page with the chain after each event, up to the page or a signature", async () => {
    const log = await held();
    const page = [log[2]!, log[5]!];
    const { proof, proven } = await pageProof(page, integrity(log), 256);
    expect(proven).toBe(2);
    expect(proof.map((e) => e.seq)).toEqual([4, 5, 7, 8, 9, 10]);
    const verify = pageVerifier(integrity(log))!;
    expect(await verify(page, undefined, proof)).toBeUndefined();
    expect(await verify([...page].reverse(), undefined, proof)).toBeUndefined();
    expect((await verify(page, undefined))?.code).toBe('TAMPERED');
  });

  it('is cut where its proof would pass the most a page may carry', async () => {
    const log = await held();
    const { proof, proven } = await pageProof([log[2]!, log[5]!], integrity(log), 3);
    expect(proven).toBe(1);
    expect(proof.map((e) => e.seq)).toEqual([4, 5]);
  });
});

describe('a history server answering with such events', () => {
  it('sends the proof with the page, and the asker verifies what it parsed', async () => {
    const run = await signedRun(10);
    const log = run.map((e, i) => (i < 9 ? withoutSig(e) : e));
    const sent: string[] = [];
    const server = createHistoryServer({
      read: async () => [log[2]!, log[5]!],
      limits: DEFAULT_SYNC_LIMITS,
      send: (text) => sent.push(text),
      eventAt: async (_r, seq) => log[seq - 1],
    });
    server.handle({ type: 'history', req: 7, limit: 10, stream: 'any' }, DEFAULT_SYNC_LIMITS);
    await vi.waitFor(() => expect(sent).toHaveLength(1));
    const parsed = parseMessage(sent[0]!, DEFAULT_SYNC_LIMITS);
    const page = parsed.ok ? (parsed.message as ParsedHistoryPage) : undefined;
    expect(page?.proof?.map((e) => e.seq)).toEqual([4, 5, 7, 8, 9, 10]);
    const verify = pageVerifier({
      requireSignatures: true,
      eventAt: async () => undefined,
      keyOf: async () => log[0]!.meta?.$key as string,
      rememberKeys: async () => {},
    })!;
    expect(await verify(page!.events, undefined, page!.proof)).toBeUndefined();
  });
});
