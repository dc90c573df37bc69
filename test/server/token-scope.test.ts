/**
 * Tokens have one spelling, and a scope hears only what it allows (RELIABILITY 40), against a
 * real server on 127.0.0.1: auth.ts invariant 4, connection.ts invariant 1.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { memoryStorage, openStore } from '../../src/index.ts';
import type { Scope } from '../../src/server/auth.ts';
import { makeEvents } from './events.ts';
import {
  ProtocolClient,
  RawClient,
  type Received,
  startTestServer,
  type TestServer,
  waitFor,
} from './helpers.ts';

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer();
});
afterAll(async () => {
  await t.stop();
});

/** The HTTP status of an upgrade with `token` (101 when it authenticates). */
async function upgrade(token: string, header = false): Promise<number> {
  try {
    const client = await RawClient.connect(t.server.url, { token, query: !header });
    client.close();
    return 101;
  } catch (error) {
    return (error as { status?: number }).status ?? -1;
  }
}

/** The same signature text with its unused low bits set: Buffer decodes it to the same bytes. */
function withUnusedBits(signature: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = alphabet.indexOf(signature.at(-1)!);
  return signature.slice(0, -1) + alphabet[last | 0b11];
}

describe('a token string has one spelling (case 40, auth.ts invariant 4)', () => {
  const token = () => t.token({ space: 'strict' });

  it('authenticates the token as issued, in the query or an Authorization header', async () => {
    expect(await upgrade(token())).toBe(101);
    expect(await upgrade(token(), true)).toBe(101);
  });

  it.each<[string, (body: string, sig: string) => string]>([
    ['a stray ~ after the signature', (b, s) => `${b}.${s}~`],
    ['a stray ~ before the body', (b, s) => `~${b}.${s}`],
    ['a stray ~ inside the body', (b, s) => `${b.slice(0, 5)}~${b.slice(5)}.${s}`],
    ['a stray ~ after the body', (b, s) => `${b}~.${s}`],
    ['a stray ~ before the signature', (b, s) => `${b}.~${s}`],
    ['a stray ~ inside the signature', (b, s) => `${b}.${s.slice(0, 9)}~${s.slice(9)}`],
    ['a stray ! % * in the signature', (b, s) => `${b}.${s.slice(0, 3)}!%*${s.slice(3)}`],
    ['a + and a / (base64, not base64url)', (b, s) => `${b}.${s.slice(0, -2)}+/`],
    ['padding after the signature', (b, s) => `${b}.${s}=`],
    ['padding after the body', (b, s) => `${b}==.${s}`],
    ['a space after the signature', (b, s) => `${b}.${s} `],
    ['a space inside the signature', (b, s) => `${b}.${s.slice(0, 7)} ${s.slice(7)}`],
    ['a leading space', (b, s) => ` ${b}.${s}`],
    ['a newline after the signature', (b, s) => `${b}.${s}\n`],
    ['a tab inside the body', (b, s) => `${b.slice(0, 4)}\t${b.slice(4)}.${s}`],
    ['a non-ASCII letter in the signature', (b, s) => `${b}.${s}é`],
    ['a signature whose unused trailing bits are set', (b, s) => `${b}.${withUnusedBits(s)}`],
    ['a valid character appended to the signature', (b, s) => `${b}.${s}A`],
  ])('refuses %s with 401, in the query and in a header', async (_name, spell) => {
    const [body, signature] = token().split('.') as [string, string];
    const spelled = spell(body, signature);
    expect(spelled).not.toBe(`${body}.${signature}`);
    expect(await upgrade(spelled)).toBe(401);
    // A header cannot carry a newline or an outer space: those are the query's alone.
    if (!/^\s|\s$|\n/.test(spelled)) expect(await upgrade(spelled, true)).toBe(401);
  });

  it('logs a stray character as a malformed token', async () => {
    const before = t.logs.length;
    expect(await upgrade(`${token()}~`)).toBe(401);
    const failure = t.logs.slice(before).find((l) => l.event === 'auth_failure');
    expect(failure).toMatchObject({ reason: 'malformed' });
  });
});

/**
 * Every message a connection gets in a fixed exchange, with what differs between any two
 * connections (clocks, the space's random ids, the client's own names) taken out.
 */
async function exchange(space: string, scope: Scope[]): Promise<unknown[]> {
  const client = await ProtocolClient.connect(
    t.server.url,
    t.token({ space, sub: 'probe', scope }),
    {
      expectPull: scope.includes('write'),
    },
  );
  const { raw } = client;
  const hello = client.serverHello;
  // A pull that probes the space: "I hold your log up to 3, where event X was".
  raw.send({ type: 'pull', checkpoint: { epoch: hello.epoch, pos: 3, id: 'guess' } });
  await raw.next((m) => m.type === 'events' && m.caughtUp === true);
  if (scope.includes('write')) {
    expect((await client.push(makeEvents(2, { replica: client.replica }))).type).toBe('ack');
    expect((await client.push(makeEvents(1, { replica: client.replica, firstSeq: 3 }))).type).toBe(
      'ack',
    );
  } else {
    expect(await client.push(makeEvents(1, { replica: client.replica }))).toMatchObject({
      code: 'FORBIDDEN',
    });
  }
  if (scope.includes('write')) {
    raw.send({ type: 'ping', time: 1 });
    await raw.nextOfType('pong');
  }
  client.close();
  await raw.closed;
  return raw.messages.map((m: Received) => {
    const { time: _time, epoch: _epoch, replica: _replica, toId, ...rest } = m;
    return toId === undefined ? rest : { ...rest, toId: 'the client’s own' };
  });
}

describe('a scope without read hears nothing of the space (case 40)', () => {
  beforeAll(async () => {
    const writer = await ProtocolClient.connect(t.server.url, t.token({ space: 'full' }));
    expect((await writer.push(makeEvents(5, { replica: writer.replica }))).type).toBe('ack');
    writer.close();
  });

  it.each<[string, Scope[]]>([
    ['a write-only', ['write']],
    ['an empty-scope', []],
  ])(
    '%s token is told exactly what it is told of an empty space: no head, no positions, no ids',
    async (_name, scope) => {
      const full = await exchange('full', scope);
      const empty = await exchange(`empty-${scope.join('-')}`, scope);
      expect(full).toEqual(empty);
      expect(full[0]).toMatchObject({ type: 'hello', head: 0, seq: 0 });
      for (const m of full as Received[]) {
        if (m.type === 'events') expect(m).toMatchObject({ from: 0, to: 0, events: [] });
      }
    },
  );

  it("a write-only token cannot probe which events the space holds: another subject's events are refused alike, held or not", async () => {
    const alice = await ProtocolClient.connect(
      t.server.url,
      t.token({ space: 'probe', sub: 'alice' }),
    );
    const held = makeEvents(3, { replica: alice.replica });
    expect((await alice.push(held)).type).toBe('ack');
    alice.close();
    const answers: unknown[] = [];
    for (const event of [held[1]!, makeEvents(1, { replica: alice.replica, firstSeq: 9 })[0]!]) {
      const probe = await ProtocolClient.connect(
        t.server.url,
        t.token({ space: 'probe', sub: 'mallory', scope: ['write'] }),
      );
      const answer = await probe.push([event]);
      answers.push({ type: answer.type, code: answer.code });
      expect(String(answer.message)).toContain(`event ${event.id} claims replica ${alice.replica}`);
      await probe.raw.closed;
    }
    expect(answers).toEqual([
      { type: 'error', code: 'ORIGIN_FORBIDDEN' },
      { type: 'error', code: 'ORIGIN_FORBIDDEN' },
    ]);
    // A token that may read still sends back what it received (storage.ts invariant 4).
    const bob = await ProtocolClient.connect(t.server.url, t.token({ space: 'probe', sub: 'bob' }));
    expect((await bob.push([held[1]!])).type).toBe('ack');
    bob.close();
  });

  it('a read token is told the head', async () => {
    const reader = await ProtocolClient.connect(
      t.server.url,
      t.token({ space: 'full', sub: 'reader', scope: ['read'] }),
      { expectPull: false },
    );
    const head = await (await t.storage.openSpace('full')).headPos();
    expect(head).toBeGreaterThanOrEqual(5);
    expect(reader.serverHello.head).toBe(head);
    reader.close();
  });

  it('a store with a write-only token still uploads everything and goes idle with nothing pending', async () => {
    const open = async (name: string, scope: Scope[]) => {
      const store = await openStore({
        name,
        storage: memoryStorage(),
        syncOptions: { WebSocket: WebSocket as never },
      });
      store.sync.connect({
        url: t.server.url,
        token: t.token({ space: 'full', sub: name, scope }),
      });
      return store;
    };
    const dropbox = await open('dropbox', ['write']);
    const reader = await open('reader', ['read']);
    await dropbox.append('box', [
      { type: 'dropped', data: 1 },
      { type: 'dropped', data: 2 },
    ]);
    await waitFor(async () => (await reader.read({ stream: 'box' })).length === 2, 15_000);
    await waitFor(() => dropbox.sync.status().state === 'idle', 15_000);
    expect(dropbox.sync.status()).toMatchObject({ state: 'idle', pending: 0 });
    expect(dropbox.sync.status().lastError).toBeUndefined();
    expect((await dropbox.read()).map((e) => e.stream)).toEqual(['box', 'box']);
    await Promise.all([dropbox.close(), reader.close()]);
  });
});
