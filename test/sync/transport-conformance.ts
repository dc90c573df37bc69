/**
 * The Transport conformance suite (core/sync-types.ts): every transport runs it, through
 * describe.each in transports.test.ts. A factory gives two connectable ends.
 */
import { describe, expect, it } from 'vitest';
import type { Transport, TransportCloseInfo } from '../../src/core/sync-types.ts';

export interface TransportFactory {
  name: string;
  /** Two ends that reach each other once both are open. */
  make(): Promise<[Transport, Transport]>;
  teardown?(): Promise<void>;
}

const until = async (predicate: () => boolean, turns = 400) => {
  for (let i = 0; i < turns; i++) {
    if (predicate()) return;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  throw new Error('condition not reached');
};

export function transportConformance(factory: TransportFactory): void {
  describe(`transport conformance: ${factory.name}`, () => {
    const openPair = async () => {
      const [a, b] = await factory.make();
      await Promise.all([a.open(), b.open()]);
      return [a, b] as const;
    };

    it('delivers text messages in order, both ways', async () => {
      const [a, b] = await openPair();
      const atB: string[] = [];
      const atA: string[] = [];
      b.onMessage((t) => atB.push(t));
      a.onMessage((t) => atA.push(t));
      const texts = Array.from({ length: 50 }, (_, i) => JSON.stringify({ i, s: 'é✓😀' }));
      for (const t of texts) a.send(t);
      b.send('back');
      await until(() => atB.length === 50 && atA.length === 1);
      expect(atB).toEqual(texts);
      expect(atA).toEqual(['back']);
      a.close();
    });

    it('carries binary messages in order among text ones, as the bytes sent, where it has them', async () => {
      const [a, b] = await openPair();
      // Both members or neither (core/sync-types.ts).
      expect(a.sendBinary === undefined).toBe(a.onBinary === undefined);
      if (a.sendBinary === undefined || b.onBinary === undefined) {
        a.close();
        return;
      }
      const atB: (string | number[])[] = [];
      b.onMessage((t) => atB.push(t));
      b.onBinary((bytes) => atB.push([...bytes]));
      const sent = new Uint8Array([0, 1, 255, 128, 7]);
      a.send('before');
      a.sendBinary(sent);
      sent[0] = 9; // changed after sending: the message sent is what was passed
      a.sendBinary(new Uint8Array(0));
      a.send('after');
      await until(() => atB.length === 4);
      expect(atB).toEqual(['before', [0, 1, 255, 128, 7], [], 'after']);
      a.close();
    });

    it('throws on send when not open', async () => {
      const [a] = await factory.make();
      expect(() => a.send('x')).toThrow();
    });

    it('runs onClose once per connection on both ends, and delivers what was sent before close', async () => {
      const [a, b] = await openPair();
      const closesA: TransportCloseInfo[] = [];
      const closesB: TransportCloseInfo[] = [];
      a.onClose((i) => closesA.push(i));
      b.onClose((i) => closesB.push(i));
      const atB: string[] = [];
      b.onMessage((t) => atB.push(t));
      a.send('last words');
      a.close(1000, 'bye');
      await until(() => closesA.length === 1 && closesB.length === 1);
      expect(atB).toEqual(['last words']);
      expect(() => a.send('x')).toThrow();
      await new Promise((resolve) => setTimeout(resolve, 20));
      expect(closesA).toHaveLength(1);
      expect(closesB).toHaveLength(1);
    });

    it('reconnects after a close, keeping its listeners', async () => {
      const [a, b] = await openPair();
      const atB: string[] = [];
      b.onMessage((t) => atB.push(t));
      let closes = 0;
      b.onClose(() => {
        closes++;
      });
      a.close();
      await until(() => closes === 1);
      await Promise.all([a.open(), b.open()]);
      a.send('again');
      await until(() => atB.length === 1);
      expect(atB).toEqual(['again']);
      a.close();
      await until(() => closes === 2);
    });

    it('stops delivering to a listener after it unsubscribes', async () => {
      const [a, b] = await openPair();
      const atB: string[] = [];
      const off = b.onMessage((t) => atB.push(t));
      const all: string[] = [];
      b.onMessage((t) => all.push(t));
      a.send('one');
      await until(() => atB.length === 1);
      off();
      a.send('two');
      await until(() => all.length === 2);
      expect(atB).toEqual(['one']);
      a.close();
    });
  });
}
