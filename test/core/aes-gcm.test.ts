/**
 * Native AES-GCM (core/aes-gcm.ts) against WebCrypto, and sealing (core/sealing.ts invariant 7)
 * on both engines: the same sealed texts, each opening the other's, tampering 'corrupt' on both.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { nativeAead } from '../../src/core/aes-gcm.ts';
import { decodeBase64Url, encodeBase64Url } from '../../src/core/base64.ts';
import type { JsonObject, JsonValue } from '../../src/core/events.ts';
import { unwrapKey, wrapKey } from '../../src/core/key-wrap.ts';
import { Keyring, type SpaceKey, spaceKey } from '../../src/core/keyring.ts';
import {
  openSealed,
  openSealedNow,
  type SealedEvent,
  type SealInput,
  sealEvents,
  streamPseudonym,
} from '../../src/core/sealing.ts';

const subtle = globalThis.crypto.subtle;
const encoder = new TextEncoder();

// These tests run in Node, where the native engine must be found (invariant 4 of aes-gcm.ts).
const native = nativeAead!;

async function webSeal(key: CryptoKey, iv: Uint8Array, aad: Uint8Array, text: string) {
  const body = new Uint8Array(
    await subtle.encrypt(
      { name: 'AES-GCM', iv: iv.slice(), additionalData: aad.slice() },
      key,
      encoder.encode(text),
    ),
  );
  const out = new Uint8Array(iv.length + body.length);
  out.set(iv);
  out.set(body, iv.length);
  return encodeBase64Url(out);
}

/** Non-extractable keys, as spaceKey derives them (aes-gcm.ts invariant 3). */
const keyOf = (seed: number) =>
  spaceKey(Uint8Array.from({ length: 32 }, (_, i) => (seed * 31 + i) & 255));

function sameBytes(a: string, b: string): boolean {
  try {
    return encodeBase64Url(decodeBase64Url(a)) === encodeBase64Url(decodeBase64Url(b));
  } catch {
    return false;
  }
}

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
/** Texts with astral characters, lone surrogates and controls: UTF-8 must agree too. */
const text = fc.string({ unit: 'binary', maxLength: 300 });

describe('native AES-GCM (core/aes-gcm.ts)', () => {
  it('is found in Node, and works on non-extractable keys', async () => {
    expect(nativeAead).toBeDefined();
    expect(openSealedNow).toBeDefined();
    const key = await keyOf(1);
    expect(key.data.extractable).toBe(false);
    expect(
      native.open(
        key.data,
        new Uint8Array(0),
        native.seal(key.data, new Uint8Array(12), new Uint8Array(0), 'x'),
      ),
    ).toBe('x');
  });

  it('seals a text over the shared 1 MB buffer in a buffer of its own, then small ones again', async () => {
    const key = await keyOf(9);
    const [iv, aad] = [new Uint8Array(12).fill(1), new Uint8Array(3)];
    for (const text of ['a'.repeat(5000), 'é'.repeat(700_000), 'small']) {
      const ours = native.seal(key.data, iv, aad, text);
      expect(ours).toBe(await webSeal(key.data, iv, aad, text));
      expect(native.open(key.data, aad, ours)).toBe(text);
    }
  });

  it('seals to the bytes WebCrypto gives under a fixed IV, and each opens the other (invariant 1)', async () => {
    const key = await keyOf(2);
    await fc.assert(
      fc.asyncProperty(
        bytes(12),
        fc.uint8Array({ maxLength: 40 }),
        text,
        async (iv, aad, plain) => {
          const ours = native.seal(key.data, iv, aad, plain);
          expect(ours).toBe(await webSeal(key.data, iv, aad, plain));
          const sealed = decodeBase64Url(ours);
          const opened = await subtle.decrypt(
            { name: 'AES-GCM', iv: sealed.subarray(0, 12), additionalData: aad.slice() },
            key.data,
            sealed.subarray(12),
          );
          const expected = new TextDecoder().decode(encoder.encode(plain));
          expect(new TextDecoder().decode(opened)).toBe(expected);
          expect(native.open(key.data, aad, ours)).toBe(expected);
        },
      ),
      { numRuns: 150 },
    );
  });

  it('gives the HMAC-SHA-256 WebCrypto gives, over the texts in turn (invariant 1)', async () => {
    const key = await keyOf(3);
    await fc.assert(
      fc.asyncProperty(fc.array(text, { maxLength: 3 }), async (texts) => {
        const web = new Uint8Array(
          await subtle.sign('HMAC', key.nonce, encoder.encode(texts.join(''))),
        );
        expect(native.hmac(key.nonce, texts)).toEqual(web);
      }),
      { numRuns: 100 },
    );
  });

  it('opens nothing changed, short or not url-safe base64, and never throws (invariant 2)', async () => {
    const key = await keyOf(4);
    const aad = encoder.encode('["s","t"]');
    const sealed = native.seal(key.data, new Uint8Array(12).fill(7), aad, '["plan"]');
    fc.assert(
      fc.property(fc.nat(sealed.length - 1), fc.constantFrom(...'AQw_-=+/ .é☃'), (at, c) => {
        const changed = sealed.slice(0, at) + c + sealed.slice(at + 1);
        fc.pre(changed !== sealed);
        // Opens only what decodeBase64Url reads as the same bytes (the last character's unused
        // low bits may differ: so they may on the WebCrypto path), never what it refuses.
        expect(native.open(key.data, aad, changed)).toBe(
          sameBytes(changed, sealed) ? '["plan"]' : undefined,
        );
      }),
      { numRuns: 300 },
    );
    for (const bad of ['', 'AAAA', sealed.slice(0, 36), `${sealed}=`, ` ${sealed}`, `${sealed}A`]) {
      expect(native.open(key.data, aad, bad)).toBeUndefined();
    }
    expect(native.open(key.data, encoder.encode('["s","u"]'), sealed)).toBeUndefined();
    expect(native.open((await keyOf(5)).data, aad, sealed)).toBeUndefined();
  });
});

const json = fc.jsonValue({ maxDepth: 2 }).map((v) => v as JsonValue);
const input: fc.Arbitrary<SealInput> = fc
  .record(
    {
      stream: fc.string({ unit: 'binary', minLength: 1, maxLength: 12 }),
      type: fc.string({ minLength: 1, maxLength: 8 }),
      data: json,
      meta: fc.dictionary(fc.string({ maxLength: 6 }), json, {
        maxKeys: 3,
      }) as fc.Arbitrary<JsonObject>,
      id: fc.string({ minLength: 1, maxLength: 10 }),
      pseudonym: fc.constant('~pseudonym'),
    },
    { requiredKeys: ['stream', 'type', 'data'] },
  )
  .map((e) => e as SealInput);

const stored = (
  i: SealInput,
  s: { data: string; meta: JsonObject; stream?: string; type?: string },
): SealedEvent => ({
  stream: s.stream ?? i.stream,
  type: s.type ?? i.type,
  data: s.data,
  meta: s.meta,
});

/** The text with the character at `at` changed (its bytes change: not the last character). */
const flip = (text: string, at: number) =>
  `${text.slice(0, at)}${text[at] === 'A' ? 'B' : 'A'}${text.slice(at + 1)}`;

describe('sealing on either engine (core/sealing.ts invariant 7)', () => {
  it('seals the same texts natively and through WebCrypto, and each opens the other', async () => {
    const keys: SpaceKey[] = [await keyOf(6), await keyOf(7)];
    const keyring = new Keyring(keys[0], [keys[1]!]);
    await fc.assert(
      fc.asyncProperty(fc.array(input, { minLength: 1, maxLength: 6 }), async (events) => {
        const batchKeys = events.map((_, i) => keys[i % 2]!);
        const [ours, web] = [
          await sealEvents(batchKeys, events, native),
          await sealEvents(batchKeys, events, null),
        ];
        for (const [i, event] of events.entries()) {
          // A synthetic IV (an id): the very text. A random one: the same but for the IV.
          if (event.id !== undefined) expect(ours[i]).toEqual(web[i]);
          else expect({ ...ours[i], data: '' }).toEqual({ ...web[i], data: '' });
          for (const sealed of [ours[i]!, web[i]!]) {
            const opened = await openSealed(keyring, stored(event, sealed), null);
            expect(opened.ok).toBe(true);
            expect(await openSealed(keyring, stored(event, sealed), native)).toEqual(opened);
            expect(openSealedNow!(keyring, stored(event, sealed))).toEqual(opened);
          }
        }
      }),
      { numRuns: 60 },
    );
  });

  it('reads a changed text, tag or context as corrupt on both engines, never throws (invariant 4)', async () => {
    const key = await keyOf(8);
    const keyring = new Keyring(key);
    const event: SealInput = {
      stream: 'card-1',
      type: 'added',
      data: { title: 'plan' },
      meta: { by: 'ann' },
    };
    const [sealed] = await sealEvents(key, [event], native);
    const at = stored(event, sealed!);
    const tampered: SealedEvent[] = [
      { ...at, stream: 'card-2' },
      { ...at, type: 'removed' },
      { ...at, data: `${at.data as string}A` },
      { ...at, data: flip(at.data as string, 40) },
      { ...at, data: flip(at.data as string, (at.data as string).length - 3) },
      { ...at, data: `${(at.data as string).slice(0, 20)}!${(at.data as string).slice(21)}` },
      { ...at, data: 42 },
      { ...at, data: '' },
    ];
    for (const t of tampered) {
      for (const engine of [native, null]) {
        expect(await openSealed(keyring, t, engine)).toEqual({
          ok: false,
          reason: 'corrupt',
          kid: key.kid,
        });
      }
    }
    expect(openSealedNow!(new Keyring(), at)).toEqual({
      ok: false,
      reason: 'key-unknown',
      kid: key.kid,
    });
  });
});

describe('keys derived natively (core/keyring.ts invariant 4)', () => {
  it('have the ids and working keys WebCrypto derives', async () => {
    await fc.assert(
      fc.asyncProperty(bytes(32), fc.string({ maxLength: 20 }), async (raw, stream) => {
        const [ours, web] = [await spaceKey(raw, 'key', native), await spaceKey(raw, 'key', null)];
        expect(ours.kid).toBe(web.kid);
        const event: SealInput = { stream, type: 't', data: { stream }, id: 'e-1' };
        // The synthetic IV is the nonce key's HMAC, the text the data key's seal.
        const [a, b] = [
          await sealEvents(ours, [event], null),
          await sealEvents(web, [event], null),
        ];
        expect(a).toEqual(b);
        const wrapped = await wrapKey(ours, web);
        expect((await unwrapKey(web, web.kid, wrapped))?.kid).toBe(web.kid);
        expect(await streamPseudonym(ours.nonce, stream, native)).toBe(
          await streamPseudonym(web.nonce, stream, null),
        );
      }),
      { numRuns: 25 },
    );
  });
});
