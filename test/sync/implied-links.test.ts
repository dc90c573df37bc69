/**
 * Implied links on the wire (sync/protocol.ts invariant 13, meta-columns.ts invariant 6), without
 * I/O: a batch that says `impliedLinks` leaves each near link's hash out; the receiver works it
 * out from the event before, as it rebuilt it, and the events verify as the signer wrote them.
 * What was altered on the way shows as a signature that fails (the batch is then unproven and
 * comes again whole: test/server/implied-batches.test.ts), never as a link that holds.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { eventDigest, linkText, verifyBatch } from '../../src/core/integrity.ts';
import { isStrictEvent } from '../../src/core/strict.ts';
import { afterRefusal, classifyBatch, decideEventRefusal, leavesOut } from '../../src/core/sync.ts';
import { decodeEventBatch, encodeEventBatch } from '../../src/sync/event-codec.ts';
import { encodeFrame, encodeMessage, parseMessage } from '../../src/sync/messages.ts';
import { DEFAULT_SYNC_LIMITS, type SyncMessage } from '../../src/sync/protocol.ts';
import { arbStep, batchOf, signedRun } from './meta-batches.ts';

const noKeys = { eventAt: async () => undefined, keyOf: async () => undefined };
const WHOLE = { impliedLinks: false };
const IMPLIED = { impliedLinks: true };
/** A link's hash in base64url. */
const HASH_TEXT = 22;
/** A signature in base64url. */
const SIG_TEXT = 86;

function eventsMessage(run: StoredEventRecord[], impliedLinks: boolean): SyncMessage {
  return {
    type: 'events',
    from: 0,
    to: run.length,
    toId: run[run.length - 1]!.id,
    events: run,
    ...(impliedLinks && { impliedLinks: true }),
  };
}

function parsedEvents(text: string | Uint8Array): StoredEventRecord[] {
  const parsed = parseMessage(text, DEFAULT_SYNC_LIMITS);
  if (!parsed.ok) throw new Error(parsed.message);
  return (parsed.message as { events: StoredEventRecord[] }).events;
}

/**
 * What an implied batch leaves out of a whole one beside the links' hashes: every tree's paths
 * (core/sign-trees.ts invariant 5) and each signature a tree's later leaves repeat.
 */
function impliedTreeChars(run: StoredEventRecord[]): number {
  const paths = run.reduce((n, e) => n + String(e.meta?.$tree).length - 2, 0);
  const trees = new Set(run.map((e) => e.meta?.$sig)).size;
  return paths + ',"paths":""'.length + (run.length - trees) * SIG_TEXT;
}

/** The batch as its receiver holds it: the implied paths written out again. */
async function verified(events: StoredEventRecord[]): Promise<StoredEventRecord[]> {
  const verdict = await verifyBatch(events, noKeys, {
    requireSignatures: true,
    impliedTrees: true,
  });
  if (!verdict.ok) throw new Error(verdict.tampering.reason);
  return events;
}

describe('a batch with implied links', () => {
  it('leaves out the hash of every near link, and decodes to the events as signed', async () => {
    const run = await signedRun(20);
    const whole = encodeEventBatch(run, undefined, WHOLE);
    const implied = encodeEventBatch(run, undefined, IMPLIED);
    // The first event has no link; each of the 19 others names the one before it. With no hash
    // left, the `links` column goes too.
    expect(whole.length - implied.length).toBe(
      19 * HASH_TEXT + ',"links":""'.length + impliedTreeChars(run),
    );
    const decoded = decodeEventBatch(JSON.parse(implied), { impliedLinks: true });
    expect(await verified(decoded)).toEqual(run);
  });

  it('goes as a message and as a binary frame, 16 bytes less a link', async () => {
    const run = await signedRun(12);
    const text = encodeMessage(eventsMessage(run, true));
    const flag = ',"impliedLinks":true'.length;
    expect(encodeMessage(eventsMessage(run, false)).length - text.length).toBe(
      11 * HASH_TEXT + ',"links":""'.length + impliedTreeChars(run) - flag,
    );
    expect(await verified(parsedEvents(text))).toEqual(run);
    const frame = encodeFrame(eventsMessage(run, true))!;
    const wholeFrame = encodeFrame(eventsMessage(run, false))!;
    // The hashes' section (16 bytes each) is gone; the frame's header differs by a few digits.
    expect(wholeFrame.length - frame.length).toBeGreaterThanOrEqual(11 * 16 - flag - 2);
    expect(await verified(parsedEvents(frame))).toEqual(run);
    const parsed = parseMessage(text, DEFAULT_SYNC_LIMITS);
    expect(parsed.ok && parsed.message).toMatchObject({ impliedLinks: true });
  });

  it('is refused where the batch does not say so', async () => {
    const run = await signedRun(3);
    const implied = JSON.parse(encodeEventBatch(run, undefined, IMPLIED));
    // The first event's implied tree entry, or the next one's implied link digit.
    expect(() => decodeEventBatch(implied)).toThrow(/events\.(shape|trees)/);
    const message = JSON.parse(encodeMessage(eventsMessage(run, true)));
    delete message.impliedLinks;
    expect(parseMessage(JSON.stringify(message), DEFAULT_SYNC_LIMITS)).toMatchObject({
      ok: false,
      code: 'VALIDATION',
    });
  });

  it('shows an event altered on the way as a signature after it that fails, not as a link that holds', async () => {
    const run = await signedRun(6);
    const altered = run.map((e, i) => (i === 2 ? { ...e, data: { card: 'changed' } } : e));
    // Whole: the altered event is named, its link from the next one does not meet it.
    const whole = decodeEventBatch(JSON.parse(encodeEventBatch(altered, undefined, WHOLE)));
    expect(await verifyBatch(whole, noKeys, { requireSignatures: true })).toMatchObject({
      ok: false,
      tampering: { event: { seq: 3 }, reason: 'bad-signature' },
    });
    // Implied: the next event's link is rebuilt from the altered event, so the link holds and
    // that next event's signature fails; the verdict names no honest event for good, since
    // the batch is refused as unproven and comes again whole.
    const implied = decodeEventBatch(JSON.parse(encodeEventBatch(altered, undefined, IMPLIED)), {
      impliedLinks: true,
    });
    const verdict = await verifyBatch(implied, noKeys, { requireSignatures: true });
    expect(verdict.ok).toBe(false);
    expect(leavesOut({ impliedLinks: true })).toBe(true);
  });

  it('while unproven, the receiver drops batches that still leave links out and takes the first whole one', () => {
    const refused = decideEventRefusal(
      { pos: 4, started: true },
      { from: 4, to: 9, impliedLinks: true },
      'e5',
      true,
      true,
    );
    expect(refused.kind).toBe('refuse');
    const state = refused.kind === 'refuse' ? refused.state : { pos: 4, started: true };
    expect(classifyBatch(state, { from: 4, to: 9, impliedLinks: true }).kind).toBe('discard');
    expect(classifyBatch(state, { from: 4, to: 9 }).kind).toBe('apply');
  });

  it('verifies with the digests its decoder took as with digests of its own, altered events too', async () => {
    const run = await signedRun(20);
    // Event 7 altered before it was encoded, as a relay would: its own signature fails, and so
    // does that of event 8, whose link the receiver rebuilds from event 7 as it came.
    const altered = run.map((e, i) => (i === 7 ? { ...e, data: { altered: true } } : e));
    const options = { requireSignatures: true, impliedTrees: true };
    const verdicts = [];
    for (const events of [run, altered]) {
      const text = encodeEventBatch(events, undefined, IMPLIED);
      // The decoder's own array carries its digests (core/integrity.ts rememberDigests); a copy
      // of it does not, so verifyBatch hashes every event itself.
      const decoded = decodeEventBatch(JSON.parse(text), IMPLIED);
      const copied = [...decodeEventBatch(JSON.parse(text), IMPLIED)];
      const [a, b] = [
        await verifyBatch(decoded, noKeys, options),
        await verifyBatch(copied, noKeys, options),
      ];
      const summary = (v: typeof a) =>
        v.ok ? 'ok' : `${v.tampering.event.id} ${v.tampering.reason}`;
      expect(summary(a)).toBe(summary(b));
      verdicts.push(summary(a));
    }
    expect(verdicts[0]).toBe('ok');
    expect(verdicts[1]).not.toBe('ok');
  });

  it('refuses the whole resend again, even for the same event, rather than wait for ever', () => {
    const state = afterRefusal({ pos: 4, started: true }, 4, 'e1', true);
    expect(decideEventRefusal(state, { from: 4, to: 8 }, 'e1', true).kind).toBe('refuse');
    // A refusal that was not unproven drops the repeat of its batch.
    const plain = afterRefusal({ pos: 4, started: true }, 4, 'e1');
    expect(decideEventRefusal(plain, { from: 4, to: 8 }, 'e1', true)).toEqual({ kind: 'drop' });
  });

  it('gives back every event of a random mix as it was, but near links, rebuilt from the digest before', () => {
    fc.assert(
      fc.property(fc.array(arbStep, { minLength: 1, maxLength: 25 }), (steps) => {
        const events = batchOf(steps);
        const text = encodeEventBatch(events, undefined, IMPLIED);
        const back = decodeEventBatch(JSON.parse(text), { impliedLinks: true });
        const { shape } = JSON.parse(encodeEventBatch(events, undefined, WHOLE)) as {
          shape?: string;
        };
        expect(back).toHaveLength(events.length);
        const chained = new Map<string, StoredEventRecord>();
        for (let i = 0; i < events.length; i++) {
          const [sent, got] = [events[i]!, back[i]!];
          const { $link: sentLink, ...sentRest } = sent.meta ?? {};
          const { $link: gotLink, ...gotRest } = got.meta ?? {};
          expect({ ...got, meta: gotRest }).toEqual({ ...sent, meta: sentRest });
          const previous = chained.get(sent.replica);
          // A near link (shape digit 2 in the whole batch: meta-columns.ts) is rebuilt from the
          // event before's digest as decoded here; any other link comes as it was.
          const digit = Number.parseInt(shape?.[i] ?? '0', 36);
          const near = previous !== undefined && (digit & 6) === 2;
          expect(gotLink).toBe(
            near ? linkText(previous.seq, eventDigest(previous), previous.id) : sentLink,
          );
          if (!isStrictEvent(got)) chained.set(sent.replica, got);
        }
      }),
      { numRuns: 300 },
    );
  });
});
