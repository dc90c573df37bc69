/** Authentication on the upgrade, spaces and scopes (RELIABILITY 25, 26). */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createToken } from '../../src/server/auth.ts';
import { makeEvents } from './events.ts';
import { ProtocolClient, RawClient, SECRET, startTestServer, type TestServer } from './helpers.ts';

let t: TestServer;
beforeEach(async () => {
  t = await startTestServer({ origins: ['https://app.example'] });
});
afterEach(async () => {
  await t.stop();
});

async function status(
  url: string,
  options: Parameters<typeof RawClient.connect>[1],
): Promise<number> {
  try {
    const client = await RawClient.connect(url, options);
    client.close();
    return 101;
  } catch (error) {
    return (error as { status?: number }).status ?? -1;
  }
}

describe('authentication before the upgrade completes (case 25)', () => {
  it('refuses a missing token with 401 and creates no session (invariant 1)', async () => {
    expect(await status(t.server.url, {})).toBe(401);
    expect(t.server.connectionCount()).toBe(0);
    expect(t.logs.some((l) => l.event === 'auth_failure' && l.reason === 'missing')).toBe(true);
  });

  it('refuses a forged token with 401', async () => {
    const forged = createToken('not-the-secret', {
      space: 'space-a',
      sub: 'alice',
      scope: ['read', 'write'],
      expiresInSeconds: 60,
    });
    expect(await status(t.server.url, { token: forged })).toBe(401);
    expect(await status(t.server.url, { token: `${t.token()}x` })).toBe(401);
    expect(t.logs.filter((l) => l.event === 'auth_failure' && l.reason === 'forged')).toHaveLength(
      2,
    );
  });

  it('refuses an expired token with 401', async () => {
    const expired = createToken(
      SECRET,
      { space: 'space-a', sub: 'alice', scope: ['read'], expiresInSeconds: 60 },
      Date.now() - 120_000,
    );
    expect(await status(t.server.url, { token: expired })).toBe(401);
    expect(t.logs.some((l) => l.event === 'auth_failure' && l.reason === 'expired')).toBe(true);
  });

  it('refuses a foreign Origin with 403, even with a valid token', async () => {
    expect(
      await status(t.server.url, { token: t.token(), headers: { origin: 'https://evil.example' } }),
    ).toBe(403);
    expect(
      await status(t.server.url, { token: t.token(), headers: { origin: 'https://app.example' } }),
    ).toBe(101);
  });

  it('accepts the token as a query parameter or an Authorization: Bearer header', async () => {
    expect(await status(t.server.url, { token: t.token() })).toBe(101);
    expect(await status(t.server.url, { token: t.token(), query: false })).toBe(101);
  });

  it('closes a connection with UNAUTHORIZED and 4001 when its token expires', async () => {
    const short = createToken(SECRET, {
      space: 'space-a',
      sub: 'alice',
      scope: ['read'],
      expiresInSeconds: 1,
    });
    const client = await RawClient.connect(t.server.url, { token: short });
    expect(await client.nextOfType('error', 5000)).toMatchObject({ code: 'UNAUTHORIZED' });
    expect((await client.closed).code).toBe(4001);
  });

  it('counts refused upgrades in /metrics by status', async () => {
    await status(t.server.url, {});
    expect(t.server.metrics.render()).toMatch(/chronicle_upgrades_refused_total\{status="401"\} 1/);
  });
});

describe('spaces and scopes (case 26)', () => {
  it('keeps spaces apart: a token for B sees nothing of A, not even its replica or epoch', async () => {
    const a = await ProtocolClient.connect(t.server.url, t.token({ space: 'space-a' }));
    expect((await a.push(makeEvents(3, { replica: a.replica }))).type).toBe('ack');
    const b = await ProtocolClient.connect(t.server.url, t.token({ space: 'space-b', sub: 'bob' }));
    expect(b.serverHello.head).toBe(0);
    expect(b.serverHello.replica).not.toBe(a.serverHello.replica);
    expect(b.serverHello.epoch).not.toBe(a.serverHello.epoch);
    expect(await b.pullAll()).toEqual([]);
    expect(await (await t.storage.openSpace('space-b')).headPos()).toBe(0);
    a.close();
    b.close();
  });

  it('refuses any batch from a read-only token with FORBIDDEN, closes 4003, stores nothing', async () => {
    const reader = await ProtocolClient.connect(t.server.url, t.token({ scope: ['read'] }), {
      expectPull: false,
    });
    const answer = await reader.push(makeEvents(2, { replica: reader.replica }));
    expect(answer).toMatchObject({ type: 'error', code: 'FORBIDDEN' });
    expect((await reader.raw.closed).code).toBe(4003);
    expect(await (await t.storage.openSpace('space-a')).headPos()).toBe(0);
  });

  it('never pulls from a read-only client, and lets it read', async () => {
    const writer = await ProtocolClient.connect(t.server.url, t.token());
    await writer.push(makeEvents(2, { replica: writer.replica }));
    const reader = await ProtocolClient.connect(
      t.server.url,
      t.token({ sub: 'bob', scope: ['read'] }),
      { expectPull: false },
    );
    expect((await reader.pullAll()).map((e) => e.replica)).toEqual([
      writer.replica,
      writer.replica,
    ]);
    expect(reader.raw.messages.some((m) => m.type === 'pull')).toBe(false);
    writer.close();
    reader.close();
  });

  it('streams nothing of the space to a write-only token', async () => {
    const writer = await ProtocolClient.connect(t.server.url, t.token());
    await writer.push(makeEvents(2, { replica: writer.replica }));
    const dropbox = await ProtocolClient.connect(
      t.server.url,
      t.token({ sub: 'bob', scope: ['write'] }),
    );
    expect(await dropbox.pullAll()).toEqual([]);
    expect((await dropbox.push(makeEvents(1, { replica: dropbox.replica }))).type).toBe('ack');
    writer.close();
    dropbox.close();
  });

  it("refuses events forging another subject's replica with ORIGIN_FORBIDDEN, storing nothing", async () => {
    const alice = await ProtocolClient.connect(t.server.url, t.token({ sub: 'alice' }));
    await alice.push(makeEvents(2, { replica: alice.replica }));
    const mallory = await ProtocolClient.connect(t.server.url, t.token({ sub: 'mallory' }));
    const forged = makeEvents(1, { replica: alice.replica, firstSeq: 3 });
    const answer = await mallory.push([...makeEvents(1, { replica: mallory.replica }), ...forged]);
    expect(answer).toMatchObject({ type: 'error', code: 'ORIGIN_FORBIDDEN' });
    expect(String(answer.message)).not.toContain('alice');
    expect((await mallory.raw.closed).code).toBe(4003);
    expect(await (await t.storage.openSpace('space-a')).headPos()).toBe(2);
    alice.close();
  });

  it("accepts another subject's events that the space already holds (a client sends back what it got)", async () => {
    const alice = await ProtocolClient.connect(t.server.url, t.token({ sub: 'alice' }));
    const events = makeEvents(2, { replica: alice.replica });
    await alice.push(events);
    const bob = await ProtocolClient.connect(t.server.url, t.token({ sub: 'bob' }));
    expect((await bob.push(events)).type).toBe('ack');
    expect(await (await t.storage.openSpace('space-a')).headPos()).toBe(2);
    alice.close();
    bob.close();
  });
});

describe('auth disabled', () => {
  it('puts every connection in the default space with full scope', async () => {
    const open = await startTestServer({ auth: false });
    try {
      const client = await ProtocolClient.connect(open.server.url, undefined);
      expect((await client.push(makeEvents(1, { replica: client.replica }))).type).toBe('ack');
      expect(await (await open.storage.openSpace('default')).headPos()).toBe(1);
      client.close();
    } finally {
      await open.stop();
    }
  });
});
