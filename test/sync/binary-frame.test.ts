/**
 * Binary frames (sync/binary-frame.ts): lossless against the text of protocol 4 (invariant 1),
 * smaller by what base64 adds to signatures, hashes and sealed data, and a malformed frame is a
 * coded error naming what was wrong, never a throw (invariant 2, messages.ts invariant 1).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { StoredEventRecord } from '../../src/core/events.ts';
import { jsonByteLength } from '../../src/core/json.ts';
import { frameOf, unpackFrame } from '../../src/sync/binary-frame.ts';
import { encodeEventBatch } from '../../src/sync/event-codec.ts';
import { encodeFrame, encodeMessage, parseMessage } from '../../src/sync/messages.ts';
import { DEFAULT_SYNC_LIMITS, type SyncMessage } from '../../src/sync/protocol.ts';
import { arbStep, B64, batchOf, type Step, signedRun } from './meta-batches.ts';

const canonical = (bytes: number) =>
  fc
    .uint8Array({ minLength: bytes, maxLength: bytes })
    .map((b) => Buffer.from(b).toString('base64url'));

/** Steps whose signatures and hashes are mostly canonical base64url (else the batch goes as text). */
const arbBinaryStep = fc
  .tuple(arbStep, canonical(64), canonical(16), fc.nat(9))
  .map(([step, sig, hash, dice]): Step => (dice === 0 ? step : { ...step, sig, hash }));

const isCanonical = (text: unknown) =>
  typeof text === 'string' && Buffer.from(text, 'base64url').toString('base64url') === text;

/** Whether a text the frame would carry as bytes does not come back the same (invariant 1). */
function anyOdd(events: StoredEventRecord[]): boolean {
  return events.some((e) => {
    const meta = e.meta;
    if (meta === undefined) return false;
    if (meta.$sealed !== undefined && !isCanonical(e.data)) return true;
    if (typeof meta.$sig === 'string' && meta.$sig.length === 86 && !isCanonical(meta.$sig)) {
      return true;
    }
    const hash = typeof meta.$link === 'string' ? meta.$link.split('.')[1] : undefined;
    return hash !== undefined && hash.length === 22 && !isCanonical(hash);
  });
}

const eventsMessage = (events: StoredEventRecord[]): SyncMessage => ({
  type: 'events',
  from: 0,
  to: events.length,
  toId: events.at(-1)!.id,
  events,
});

function parsedEvents(message: string | Uint8Array): StoredEventRecord[] {
  const parsed = parseMessage(message, DEFAULT_SYNC_LIMITS);
  if (!parsed.ok) throw new Error(`${parsed.code}: ${parsed.message}`);
  if (parsed.message.type !== 'events') throw new Error('not events');
  return parsed.message.events;
}

describe('binary frames (invariant 1): lossless', () => {
  it('rebuilds every event of a random mix as the text frame does, key order included', () => {
    let framed = 0;
    fc.assert(
      fc.property(fc.array(arbBinaryStep, { minLength: 1, maxLength: 25 }), (steps) => {
        const events = batchOf(steps);
        const frame = encodeFrame(eventsMessage(events));
        // A batch with nothing to carry as bytes goes as text: it is shorter.
        const wire = JSON.parse(encodeEventBatch(events)) as Record<string, unknown>;
        const shape = typeof wire.shape === 'string' ? wire.shape : '';
        const sealedBytes = (wire.data as unknown[]).some(
          (d, i) => /[g-v]/.test(shape.charAt(i)) && d !== '',
        );
        const carries = wire.sigs !== undefined || wire.links !== undefined || sealedBytes;
        if (!anyOdd(events) && carries) expect(frame).toBeDefined();
        if (frame === undefined) return;
        framed += 1;
        const back = parsedEvents(frame);
        expect(back).toEqual(parsedEvents(encodeMessage(eventsMessage(events))));
        expect(back).toEqual(events);
        for (let i = 0; i < events.length; i++) {
          expect(JSON.stringify(back[i]!.meta)).toBe(JSON.stringify(events[i]!.meta));
          expect(JSON.stringify(back[i]!.data)).toBe(JSON.stringify(events[i]!.data));
        }
      }),
      { numRuns: 300 },
    );
    expect(framed).toBeGreaterThan(30);
  });

  it('sends as text a batch with a signature whose last character has stray bits', async () => {
    const events = await signedRun(3);
    const sig = events[1]!.meta!.$sig as string;
    // The next character in the last place: the same 64 bytes, another text.
    events[1]!.meta!.$sig = `${sig.slice(0, -1)}${B64[B64.indexOf(sig.at(-1)!) + 1]}`;
    expect(encodeFrame(eventsMessage(events))).toBeUndefined();
  });

  it('carries a signed, chained, sealed batch without the third base64 adds to signatures, hashes and data', async () => {
    const events = await signedRun(20, 'kidAAAAAAAAA');
    const sealed = Buffer.alloc(300, 7).toString('base64url');
    for (const e of events) e.data = sealed;
    // Data changed after signing: the frame does not verify, it only carries.
    const text = Buffer.byteLength(encodeMessage(eventsMessage(events)));
    const frame = encodeFrame(eventsMessage(events))!;
    // Per event: 22 bytes of signature, 6 of hash, 100 of data, less a slot's digits.
    expect(frame.length).toBeLessThanOrEqual(text - 20 * 120);
    expect(parsedEvents(frame)).toEqual(events);
  });

  it('leaves other messages and batches without events to text', () => {
    expect(encodeFrame({ type: 'ack', to: 3 })).toBeUndefined();
    expect(encodeFrame({ type: 'events', from: 0, to: 2, toId: 'x', events: [] })).toBeUndefined();
  });
});

describe('binary frames (invariant 2): a malformed frame is a coded error', () => {
  /** A good frame of a signed, sealed batch, and its parts. */
  async function goodFrame() {
    const events = await signedRun(4, 'kidAAAAAAAAA');
    for (const e of events) e.data = Buffer.alloc(30, 1).toString('base64url');
    const frame = encodeFrame(eventsMessage(events))!;
    const jsonLength = Buffer.from(frame).readUInt32LE(1);
    const json = JSON.parse(Buffer.from(frame.subarray(5, 5 + jsonLength)).toString('utf8')) as {
      events: Record<string, unknown>;
    };
    return { frame, json, sections: frame.subarray(5 + jsonLength), events };
  }

  const refusal = (frame: Uint8Array, limits = DEFAULT_SYNC_LIMITS) => {
    const parsed = parseMessage(frame, limits);
    expect(parsed.ok).toBe(false);
    return parsed.ok ? { code: '', message: '' } : parsed;
  };

  it.each<[string, (g: Awaited<ReturnType<typeof goodFrame>>) => Uint8Array, RegExp]>([
    ['shorter than its header', () => new Uint8Array([1, 0, 0]), /shorter than its 5-byte header/],
    ['of another layout', (g) => Uint8Array.of(2, ...g.frame.subarray(1)), /layout 2/],
    [
      'with a JSON length past its end',
      (g) => {
        const f = g.frame.slice();
        new DataView(f.buffer).setUint32(1, f.length, true);
        return f;
      },
      /JSON length \d+ runs past its end/,
    ],
    [
      'truncated',
      (g) => g.frame.subarray(0, g.frame.length - 1),
      /do not end where the frame does/,
    ],
    ['with a byte too many', (g) => Uint8Array.of(...g.frame, 0), /do not end where the frame/],
    ['whose JSON part is not UTF-8', () => Uint8Array.of(1, 2, 0, 0, 0, 0xc3, 0x28), /not UTF-8/],
    ['whose JSON part is not JSON', () => frameOf('{"type":', new Uint8Array()), /not valid JSON/],
    [
      'carrying a hello',
      () => frameOf('{"type":"hello","protocol":4}', new Uint8Array()),
      /only an events or history-page/,
    ],
    [
      'whose bin is not three lengths',
      (g) =>
        frameOf(
          JSON.stringify({ ...g.json, events: { ...g.json.events, bin: [1, 2] } }),
          g.sections,
        ),
      /bin must be three byte lengths/,
    ],
    [
      'whose signatures are not 64 bytes each',
      (g) => {
        const [s, l, b] = g.json.events.bin as number[];
        const bin = [s! - 1, l! + 1, b];
        return frameOf(
          JSON.stringify({ ...g.json, events: { ...g.json.events, bin } }),
          g.sections,
        );
      },
      /not 64 bytes a signature/,
    ],
    [
      'whose hashes are not 16 bytes each',
      (g) => {
        const [s, l, b] = g.json.events.bin as number[];
        const bin = [s, l! - 1, b! + 1];
        return frameOf(
          JSON.stringify({ ...g.json, events: { ...g.json.events, bin } }),
          g.sections,
        );
      },
      /not 16 bytes a hash/,
    ],
    [
      'with signatures as text as well',
      (g) =>
        frameOf(JSON.stringify({ ...g.json, events: { ...g.json.events, sigs: 'A' } }), g.sections),
      /given as text as well/,
    ],
    [
      'with a sealed slot past its section',
      (g) => {
        const data = [...(g.json.events.data as number[])];
        data[1] = 10_000;
        return frameOf(
          JSON.stringify({ ...g.json, events: { ...g.json.events, data } }),
          g.sections,
        );
      },
      /events\.data\[1\] must be a length within its section/,
    ],
    [
      'with a sealed slot that is not a length',
      (g) => {
        const data = [...(g.json.events.data as unknown[])];
        data[2] = 'AAAA';
        return frameOf(
          JSON.stringify({ ...g.json, events: { ...g.json.events, data } }),
          g.sections,
        );
      },
      /events\.data\[2\] must be a length/,
    ],
    [
      'with sealed slots that leave bytes over',
      (g) => {
        const data = [...(g.json.events.data as number[])];
        data[3] = data[3]! - 1;
        return frameOf(
          JSON.stringify({ ...g.json, events: { ...g.json.events, data } }),
          g.sections,
        );
      },
      /sealed data section holds more than its events/,
    ],
  ])('refuses a frame %s with PROTOCOL, naming it', async (_name, make, reason) => {
    const bad = refusal(make(await goodFrame()));
    expect(bad.code).toBe('PROTOCOL');
    expect(bad.message).toMatch(reason);
  });

  it('refuses sections that do not match the shape, naming the event (event-codec.ts checks)', async () => {
    const g = await goodFrame();
    // One signature fewer than the shape says: the last event has none.
    const [s, l, b] = g.json.events.bin as number[];
    const sections = Uint8Array.of(...g.sections.subarray(64));
    const json = JSON.stringify({ ...g.json, events: { ...g.json.events, bin: [s! - 64, l, b] } });
    const bad = refusal(frameOf(json, sections));
    expect(bad.code).toBe('VALIDATION');
    expect(bad.message).toMatch(/events\[3\]\.meta\.\$sig/);
  });

  it('bounds every event it carries by eventBytes, so a frame under maxEventBytes needs no event measured (invariant 3)', () => {
    fc.assert(
      fc.property(fc.array(arbBinaryStep, { minLength: 1, maxLength: 25 }), (steps) => {
        const events = batchOf(steps);
        const frame = encodeFrame(eventsMessage(events));
        if (frame === undefined) return;
        const { eventBytes, textBytes } = unpackFrame(frame);
        expect(eventBytes).toBeLessThanOrEqual(textBytes + 1024);
        for (const e of parsedEvents(frame)) {
          const size = jsonByteLength(e.data) + (e.meta === undefined ? 0 : jsonByteLength(e.meta));
          expect(size).toBeLessThanOrEqual(eventBytes);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('still refuses an event larger than maxEventBytes in a frame (LIMIT_EXCEEDED, named)', async () => {
    const g = await goodFrame();
    const big = g.events.map((e) => ({ ...e }));
    big[2]!.data = 'x'.repeat(5_000);
    const frame = encodeFrame(eventsMessage(big))!;
    const limits = { ...DEFAULT_SYNC_LIMITS, maxEventBytes: 4_096 };
    const parsed = parseMessage(frame, limits);
    expect(parsed).toMatchObject({ ok: false, code: 'LIMIT_EXCEEDED', eventId: big[2]!.id });
    // The same frame with events under the limit is not refused.
    expect(parseMessage(g.frame, limits).ok).toBe(true);
  });

  it('holds a frame to maxMessageBytes by its length (LIMIT_EXCEEDED)', async () => {
    const g = await goodFrame();
    const limits = { ...DEFAULT_SYNC_LIMITS, maxMessageBytes: g.frame.length - 1 };
    expect(refusal(g.frame, limits).code).toBe('LIMIT_EXCEEDED');
    expect(parseMessage(g.frame, { ...limits, maxMessageBytes: g.frame.length }).ok).toBe(true);
  });

  it('never throws on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const parsed = parseMessage(
          Uint8Array.of(1, bytes.length, 0, 0, 0, ...bytes),
          DEFAULT_SYNC_LIMITS,
        );
        expect(parsed.ok).toBe(false);
      }),
      { numRuns: 300 },
    );
    expect(() => unpackFrame(new Uint8Array())).toThrow(/shorter/);
  });
});
