/** Sealing and keys (core/sealing.ts, core/keyring.ts, core/state-text.ts), without a store. */
import { describe, expect, it } from 'vitest';
import {
  decodeEncryptionKey,
  encodeEncryptionKey,
  generateEncryptionKey,
  Keyring,
  keyFromPassphrase,
  spaceKey,
} from '../../src/core/keyring.ts';
import {
  foldable,
  openSealed,
  type SealInput,
  sealEvent,
  sealEvents,
  sealedKid,
} from '../../src/core/sealing.ts';
import { stateFromText, stateToText } from '../../src/core/state-text.ts';

const event = { stream: 'card-1', type: 'added', data: { title: 'plan', n: [1, 2] } };

describe('sealing', () => {
  it('opens what it sealed, data and meta; strict meta stays in clear', async () => {
    const key = await spaceKey(generateEncryptionKey());
    const meta = { author: 'ann', $strict: true, $prev: 'evt-0' };
    const sealed = await sealEvent(key, { ...event, meta });
    expect(sealed.meta).toEqual({ $sealed: key.kid, $strict: true, $prev: 'evt-0' });
    expect(sealed.data).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(sealed.data).not.toContain('plan');
    const opened = await openSealed(new Keyring(key), { ...event, ...sealed });
    expect(opened).toEqual({ ok: true, data: event.data, meta });
    expect(sealedKid(sealed.meta)).toBe(key.kid);
    expect(foldable({ stream: 's', meta: sealed.meta })).toBe(false);
  });

  it('keeps an own "__proto__" key in meta as data', async () => {
    const key = await spaceKey(generateEncryptionKey());
    const meta = JSON.parse('{"__proto__": {"polluted": true}, "x": 1}');
    const sealed = await sealEvent(key, { ...event, meta });
    const opened = await openSealed(new Keyring(key), { ...event, ...sealed });
    expect(opened.ok && Object.hasOwn(opened.meta ?? {}, '__proto__')).toBe(true);
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
  });

  it('fails to open, never throws, when the text was moved, changed or sealed with another key', async () => {
    const key = await spaceKey(generateEncryptionKey());
    const keyring = new Keyring(key);
    const sealed = await sealEvent(key, event);
    const moved = await openSealed(keyring, { ...event, stream: 'card-2', ...sealed });
    expect(moved).toEqual({ ok: false, reason: 'corrupt', kid: key.kid });
    const retyped = await openSealed(keyring, { ...event, type: 'removed', ...sealed });
    expect(retyped.ok).toBe(false);
    const flipped = `${sealed.data.slice(0, 20)}${sealed.data[20] === 'A' ? 'B' : 'A'}${sealed.data.slice(21)}`;
    expect((await openSealed(keyring, { ...event, data: flipped, meta: sealed.meta })).ok).toBe(
      false,
    );
    const garbage = await openSealed(keyring, { ...event, data: 42, meta: sealed.meta });
    expect(garbage).toMatchObject({ ok: false, reason: 'corrupt' });
    const other = new Keyring(await spaceKey(generateEncryptionKey()));
    expect(await openSealed(other, { ...event, ...sealed })).toEqual({
      ok: false,
      reason: 'key-unknown',
      kid: key.kid,
    });
    // A server cannot add meta to a sealed event: only the strict keys are taken from outside.
    const injected = await openSealed(keyring, {
      ...event,
      data: sealed.data,
      meta: { ...sealed.meta, forged: 'yes' },
    });
    expect(injected).toEqual({ ok: true, data: event.data });
  });

  it('seals an event with an app-given id the same way each time, whatever its key order', async () => {
    const key = await spaceKey(generateEncryptionKey());
    const a = await sealEvent(key, { ...event, id: 'e-1' });
    const b = await sealEvent(key, { ...event, id: 'e-1', data: { n: [1, 2], title: 'plan' } });
    expect(a).toEqual(b);
    const otherId = await sealEvent(key, { ...event, id: 'e-2' });
    expect(otherId.data).not.toBe(a.data);
    // Without an id the IV is random: equal contents do not look equal.
    const [r1, r2] = [await sealEvent(key, event), await sealEvent(key, event)];
    expect(r1.data).not.toBe(r2.data);
  });
});

/** A fixed key: the texts below were sealed with it by the version before batched sealing. */
const fixedKey = () => spaceKey(Uint8Array.from({ length: 32 }, (_, i) => i));
const SEALED_BEFORE = {
  kid: '5dT3cslbEN0X',
  // { ...event, meta: { author: 'ann', $strict: true }, id: 'e-1' }: a synthetic IV.
  withId:
    'tf2rkwvl0wrJI7iGM4qPpS43EI44rhTpIODFGLl3jsfbtmYTcICSwExflHSkX67IeqgilQEfatEQz0zNFloYGV2JhK27PwwlqA',
  // { stream: 'card-1', type: 'added', data: { title: 'plän ☃' }, id: 'e-2', pseudonym: '~abc' }
  hidden:
    'unoMvYb-GigusOlCZBz52FgUAdkNBlphVZPHYbmR4KqI4KyLBEb94GEQCQPb0BMnigZnw3rhHYoew8zCn78DIsWkR_g4WGJYRw',
  // { stream: 'card-1', type: 'moved', data: { column: 'done', tags: ['x'] }, meta: { by: 'bo' } }
  random:
    'A94u1G84gMWWowPmFnmzR3ntm6a5_eO7oRW8dEtIDTNyBodKLVBIB-3SDH4fWCZBeZNaE4gsmWKIj1Z14ne4OSf4AogwqrX5',
};

describe('the sealed format (invariant 6: batches change nothing of it)', () => {
  it('seals an event with an id to the very text the version before sealed', async () => {
    const key = await fixedKey();
    expect(key.kid).toBe(SEALED_BEFORE.kid);
    const [withId, hidden] = await sealEvents(key, [
      { ...event, meta: { author: 'ann', $strict: true }, id: 'e-1' },
      { ...event, data: { title: 'plän ☃' }, id: 'e-2', pseudonym: '~abc' },
    ]);
    expect(withId).toEqual({
      data: SEALED_BEFORE.withId,
      meta: { $sealed: key.kid, $strict: true },
    });
    expect(hidden).toEqual({
      data: SEALED_BEFORE.hidden,
      meta: { $sealed: key.kid },
      stream: '~abc',
      type: '~',
    });
  });

  it('opens what the version before sealed with a random IV', async () => {
    const keyring = new Keyring(await fixedKey());
    const opened = await openSealed(keyring, {
      stream: 'card-1',
      type: 'moved',
      data: SEALED_BEFORE.random,
      meta: { $sealed: SEALED_BEFORE.kid },
    });
    expect(opened).toEqual({ ok: true, data: { column: 'done', tags: ['x'] }, meta: { by: 'bo' } });
  });

  it('seals a batch concurrently, each event under its own key and IV, as alone', async () => {
    const [k1, k2] = [
      await spaceKey(generateEncryptionKey()),
      await spaceKey(generateEncryptionKey()),
    ];
    // Plaintexts share one scratch buffer: long and short ones in turn, and one beyond it.
    const inputs: SealInput[] = [
      { ...event, data: { title: 'x'.repeat(20_000) } },
      { ...event, data: { title: 'short' } },
      { ...event, data: { title: 'ü'.repeat(9_000) }, id: 'e-7' },
      { ...event, data: { title: 'y'.repeat(400_000) } },
      { ...event, data: { title: 'tiny' }, meta: { by: 'ann' } },
      { ...event, type: 'moved', data: { n: 5 }, id: 'e-8' },
    ];
    const keys = [k1, k2, k1, k2, k1, k2];
    const sealed = await sealEvents(keys, inputs);
    const ivs = sealed.map((s) => s.data.slice(0, 16));
    expect(new Set(ivs).size).toBe(inputs.length);
    for (const [i, input] of inputs.entries()) {
      const own = keys[i]!;
      const other = own === k1 ? k2 : k1;
      const stored = { stream: input.stream, type: input.type, ...sealed[i]! };
      expect(sealed[i]!.meta).toEqual({ $sealed: own.kid });
      const opened = await openSealed(new Keyring(own), stored);
      expect(opened).toEqual({
        ok: true,
        data: input.data,
        ...(input.meta && { meta: input.meta }),
      });
      expect(await openSealed(new Keyring(other), stored)).toMatchObject({ ok: false });
      // An event with an id keeps its synthetic IV: the text sealEvent gives it alone.
      if (input.id !== undefined) expect(sealed[i]).toEqual(await sealEvent(own, input));
    }
  });
});

describe('keys', () => {
  it('names a key by an id derived from it, the same on every replica', async () => {
    const raw = generateEncryptionKey();
    const [a, b] = [await spaceKey(raw), await spaceKey(new Uint8Array(raw))];
    expect(a.kid).toBe(b.kid);
    expect(a.kid).toMatch(/^[A-Za-z0-9_-]{12}$/);
    expect((await spaceKey(generateEncryptionKey())).kid).not.toBe(a.kid);
    const cryptoKey = await crypto.subtle.importKey('raw', raw, 'AES-GCM', true, ['encrypt']);
    expect((await spaceKey(cryptoKey)).kid).toBe(a.kid);
  });

  it('refuses what is not a 256-bit extractable key, with VALIDATION', async () => {
    await expect(spaceKey(new Uint8Array(16))).rejects.toMatchObject({ code: 'VALIDATION' });
    const locked = await crypto.subtle.importKey('raw', generateEncryptionKey(), 'AES-GCM', false, [
      'encrypt',
    ]);
    await expect(spaceKey(locked)).rejects.toMatchObject({ code: 'VALIDATION' });
    await expect(spaceKey('key' as never)).rejects.toMatchObject({ code: 'VALIDATION' });
  });

  it('carries a key as url-safe text for a link fragment', () => {
    const key = generateEncryptionKey();
    const text = encodeEncryptionKey(key);
    expect(text).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(decodeEncryptionKey(text)).toEqual(key);
    expect(() => decodeEncryptionKey('not a key')).toThrow(
      expect.objectContaining({ code: 'VALIDATION' }),
    );
    expect(() => decodeEncryptionKey('AAAA')).toThrow(
      expect.objectContaining({ code: 'VALIDATION' }),
    );
  });

  it('derives one key from one passphrase and salt (PBKDF2)', async () => {
    const a = await keyFromPassphrase('correct horse', { salt: 'space-1', iterations: 1000 });
    const b = await keyFromPassphrase('correct horse', { salt: 'space-1', iterations: 1000 });
    const c = await keyFromPassphrase('correct horse', { salt: 'space-2', iterations: 1000 });
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(a).toHaveLength(32);
    await expect(keyFromPassphrase('', { salt: 's' })).rejects.toMatchObject({
      code: 'VALIDATION',
    });
    await expect(keyFromPassphrase('p', { salt: '' })).rejects.toMatchObject({
      code: 'VALIDATION',
    });
  });
});

describe('state text', () => {
  it('keeps Map, Set, Date, undefined, non-finite numbers and tag-like keys', () => {
    const state = {
      cards: new Map([['c1', { title: 'a', tags: new Set(['x']) }]]),
      at: new Date(1_700_000_000_000),
      gone: undefined,
      ratio: Number.NaN,
      big: Number.POSITIVE_INFINITY,
      list: [1, undefined, 'two'],
      tricky: { $map: 'not a map', $obj: 1 },
    };
    expect(stateFromText(stateToText(state))).toEqual(structuredClone(state));
    const proto = JSON.parse('{"__proto__": {"x": 1}}');
    const back = stateFromText(stateToText(proto)) as object;
    expect(Object.hasOwn(back, '__proto__')).toBe(true);
  });
});
