/**
 * Standard JWTs (src/server/jwt.ts) and an app's own verifyToken (authenticator.ts), with keys
 * generated here, a JWKS served on 127.0.0.1, and a real server refusing on the upgrade
 * (RELIABILITY 25). Cites jwt.ts (J1..J3) and authenticator.ts (A1, A2) invariants.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { exportJWK, exportSPKI, generateKeyPair, type JWTPayload, SignJWT } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { SyncError } from '../../src/core/errors.ts';
import { type AuthOptions, makeAuthenticator } from '../../src/server/authenticator.ts';
import { jwtVerifier, loadJose } from '../../src/server/jwt.ts';
import type { LogEntry } from '../../src/server/metrics.ts';
import { createSyncServer, type SyncServer } from '../../src/server/server.ts';
import { sqliteStorage } from '../../src/server/sqlite.ts';
import { tempDir } from './helpers.ts';

const HS_SECRET = 'a-shared-secret-of-at-least-32-bytes!';
const now = () => Date.now();
const claims = { space: 'team-42', scope: 'openid read write' };

type Keys = Awaited<ReturnType<typeof generateKeyPair>>;
let rsa: Keys;
let ed: Keys;
let other: Keys;
let jwks: Server;
let jwksUrl: string;

beforeAll(async () => {
  [rsa, ed, other] = await Promise.all([
    generateKeyPair('RS256'),
    generateKeyPair('EdDSA'),
    generateKeyPair('RS256'),
  ]);
  const keys = [
    { ...(await exportJWK(rsa.publicKey)), kid: 'rsa-1', alg: 'RS256', use: 'sig' },
    { ...(await exportJWK(ed.publicKey)), kid: 'ed-1', alg: 'EdDSA', use: 'sig' },
  ];
  jwks = createServer((_req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify({ keys }));
  });
  await new Promise<void>((resolve) => jwks.listen(0, '127.0.0.1', resolve));
  jwksUrl = `http://127.0.0.1:${(jwks.address() as AddressInfo).port}/.well-known/jwks.json`;
});

afterAll(async () => {
  await new Promise((resolve) => jwks.close(resolve));
});

interface Sign {
  alg: string;
  key: Keys['privateKey'] | Uint8Array;
  kid?: string;
  payload?: JWTPayload;
  exp?: number | string;
  nbf?: number | string;
  aud?: string;
  iss?: string;
}

function sign(s: Sign): Promise<string> {
  const jwt = new SignJWT({ ...claims, ...s.payload })
    .setProtectedHeader(s.kid === undefined ? { alg: s.alg } : { alg: s.alg, kid: s.kid })
    .setSubject('user-7')
    .setIssuedAt()
    .setExpirationTime(s.exp ?? '10m');
  if (s.nbf !== undefined) jwt.setNotBefore(s.nbf);
  if (s.aud !== undefined) jwt.setAudience(s.aud);
  if (s.iss !== undefined) jwt.setIssuer(s.iss);
  return jwt.sign(s.key);
}

const hs = (extra: Partial<Sign> = {}) =>
  sign({ alg: 'HS256', key: new TextEncoder().encode(HS_SECRET), ...extra });

async function reasonOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(SyncError);
    expect(error).toMatchObject({ code: 'UNAUTHORIZED' });
    return (error as SyncError).details.reason;
  }
  throw new Error('expected a refusal');
}

describe('auth { jwt } claims (jwt.ts)', () => {
  it('maps sub, the space claim and an OAuth scope string to the claims, keeping exp', async () => {
    const verify = await jwtVerifier({ secret: HS_SECRET }, now);
    const got = await verify(await hs());
    expect(got).toMatchObject({ space: 'team-42', sub: 'user-7', scope: ['read', 'write'] });
    expect(got.exp).toBeGreaterThan(Date.now() / 1000);
    const onlyRead = await verify(await hs({ payload: { scope: ['profile', 'read'] } }));
    expect(onlyRead.scope).toEqual(['read']);
  });

  it('reads the space and scope from configured claims, or a default space', async () => {
    const verify = await jwtVerifier(
      { secret: HS_SECRET, spaceClaim: 'org', scopeClaim: 'perms' },
      now,
    );
    const token = await hs({ payload: { org: 'acme', perms: ['write'] } });
    expect(await verify(token)).toMatchObject({ space: 'acme', scope: ['write'] });
    const single = await jwtVerifier({ secret: HS_SECRET, defaultSpace: 'main' }, now);
    expect(await single(await hs({ payload: { space: undefined } }))).toMatchObject({
      space: 'main',
    });
    expect(await reasonOf(verify(await hs({ payload: { perms: ['read'] } })))).toBe('claim');
  });

  it('refuses expired, not-yet-valid, wrong-audience, wrong-issuer and exp-less tokens (J3)', async () => {
    const verify = await jwtVerifier(
      { secret: HS_SECRET, audience: 'sync', issuer: 'https://id.example' },
      now,
    );
    const good = { aud: 'sync', iss: 'https://id.example' };
    expect(await verify(await hs(good))).toMatchObject({ sub: 'user-7' });
    const past = Math.floor(Date.now() / 1000) - 60;
    expect(await reasonOf(verify(await hs({ ...good, exp: past })))).toBe('expired');
    expect(await reasonOf(verify(await hs({ ...good, nbf: '1h' })))).toBe('not-yet-valid');
    expect(await reasonOf(verify(await hs({ ...good, aud: 'billing' })))).toBe('claim');
    expect(await reasonOf(verify(await hs({ ...good, iss: 'https://evil.example' })))).toBe(
      'claim',
    );
    const noExp = await new SignJWT({ ...claims, ...good })
      .setProtectedHeader({ alg: 'HS256' })
      .setSubject('user-7')
      .sign(new TextEncoder().encode(HS_SECRET));
    expect(await reasonOf(verify(noExp))).toBe('claim');
    expect(await reasonOf(verify('not.a.jwt'))).toBe('malformed');
  });

  it('refuses a token signed with another key or an algorithm not configured (J2)', async () => {
    const byKey = await jwtVerifier({ key: await exportSPKI(rsa.publicKey) }, now);
    expect(await byKey(await sign({ alg: 'RS256', key: rsa.privateKey }))).toMatchObject({
      sub: 'user-7',
    });
    expect(await reasonOf(byKey(await sign({ alg: 'RS256', key: other.privateKey })))).toBe(
      'forged',
    );
    // An HS256 token "signed" with the public key's text: the classic algorithm confusion.
    const pem = new TextEncoder().encode(await exportSPKI(rsa.publicKey));
    expect(await reasonOf(byKey(await sign({ alg: 'HS256', key: pem })))).toBe('algorithm');
    const edOnly = await jwtVerifier(
      { key: await exportJWK(ed.publicKey), algorithms: ['EdDSA'] },
      now,
    );
    expect(await edOnly(await sign({ alg: 'EdDSA', key: ed.privateKey }))).toMatchObject({
      space: 'team-42',
    });
    expect(await reasonOf(edOnly(await sign({ alg: 'RS256', key: rsa.privateKey })))).toBe(
      'algorithm',
    );
  });

  it('verifies RS256 and EdDSA tokens with the keys of a JWKS URL, picked by kid', async () => {
    const verify = await jwtVerifier({ jwksUrl }, now);
    expect(
      await verify(await sign({ alg: 'RS256', key: rsa.privateKey, kid: 'rsa-1' })),
    ).toMatchObject({ sub: 'user-7' });
    expect(
      await verify(await sign({ alg: 'EdDSA', key: ed.privateKey, kid: 'ed-1' })),
    ).toMatchObject({ sub: 'user-7' });
    expect(
      await reasonOf(verify(await sign({ alg: 'RS256', key: other.privateKey, kid: 'rsa-9' }))),
    ).toBe('forged');
  });

  it('refuses configurations that cannot be safe', async () => {
    await expect(jwtVerifier({}, now)).rejects.toThrow(/exactly one/);
    await expect(jwtVerifier({ secret: 'short' }, now)).rejects.toThrow(/32 bytes/);
    await expect(jwtVerifier({ secret: HS_SECRET, algorithms: ['none'] }, now)).rejects.toThrow(
      /never none/,
    );
  });

  it('fails with MISSING_DEPENDENCY naming jose when it is not installed (J1)', async () => {
    const missing = () =>
      Promise.reject(
        Object.assign(new Error("Cannot find package 'jose' imported from server.js"), {
          code: 'ERR_MODULE_NOT_FOUND',
        }),
      );
    await expect(loadJose(missing)).rejects.toMatchObject({
      code: 'MISSING_DEPENDENCY',
      message: /npm install jose/,
    });
    const broken = () => Promise.reject(new Error('something else'));
    await expect(loadJose(broken)).rejects.toThrow('something else');
  });
});

describe('auth { verifyToken } (authenticator.ts)', () => {
  it("accepts the app's claims, and refuses what it throws or returns wrong (A1, A2)", async () => {
    const auth = await makeAuthenticator(
      {
        verifyToken: async (token) => {
          if (token === 'good') return { space: 'team-1', sub: 'u1', scope: ['read'] };
          if (token === 'odd') return { space: '', sub: 'u1', scope: ['read'] };
          throw new Error('the identity provider said no');
        },
      },
      now,
    );
    expect(await auth('good')).toEqual({ space: 'team-1', sub: 'u1', scope: ['read'] });
    expect(await reasonOf(auth('bad'))).toBe('refused');
    expect(await reasonOf(auth('odd'))).toBe('claim');
    expect(await reasonOf(auth(undefined))).toBe('missing');
  });
});

describe('a server with JWT auth, on the upgrade (RELIABILITY 25)', () => {
  let server: SyncServer;
  let logs: LogEntry[];
  let tmp: ReturnType<typeof tempDir>;

  async function start(auth: AuthOptions) {
    tmp = tempDir();
    logs = [];
    server = await createSyncServer({
      storage: sqliteStorage(join(tmp.dir, 'server.sqlite')),
      auth,
      log: (entry) => logs.push(entry),
    });
  }

  afterEach(async () => {
    await server.close();
    tmp.cleanup();
  });

  function upgrade(token: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`${server.url}/?token=${encodeURIComponent(token)}`);
      ws.once('open', () => {
        ws.close();
        resolve(101);
      });
      ws.once('unexpected-response', (_req, res) => {
        resolve(res.statusCode ?? 0);
        ws.terminate();
      });
      ws.once('error', reject);
    });
  }

  it('opens a connection for a JWKS-signed token and answers 401 to a bad one', async () => {
    await start({ jwt: { jwksUrl, audience: 'sync' } });
    const good = await sign({ alg: 'EdDSA', key: ed.privateKey, kid: 'ed-1', aud: 'sync' });
    expect(await upgrade(good)).toBe(101);
    const past = Math.floor(Date.now() / 1000) - 60;
    const expired = await sign({
      alg: 'EdDSA',
      key: ed.privateKey,
      kid: 'ed-1',
      aud: 'sync',
      exp: past,
    });
    expect(await upgrade(expired)).toBe(401);
    const elsewhere = await sign({ alg: 'RS256', key: rsa.privateKey, kid: 'rsa-1', aud: 'x' });
    expect(await upgrade(elsewhere)).toBe(401);
    expect(logs.filter((l) => l.event === 'auth_failure').map((l) => l.reason)).toEqual([
      'expired',
      'claim',
    ]);
  });

  it("closes a JWT connection with 4001 when the token's exp passes", async () => {
    await start({ jwt: { secret: HS_SECRET } });
    const token = await hs({ exp: Math.floor(Date.now() / 1000) + 2 });
    const ws = new WebSocket(`${server.url}/?token=${token}`);
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    ws.on('error', () => {});
    expect(await closed).toBe(4001);
  });

  it('answers 503, not 401, when the key set cannot be fetched', async () => {
    await start({ jwt: { jwksUrl: 'http://127.0.0.1:1/jwks.json' } });
    const token = await sign({ alg: 'RS256', key: rsa.privateKey, kid: 'rsa-1' });
    expect(await upgrade(token)).toBe(503);
  });

  it("answers 401 when the app's verifyToken throws, and the server keeps serving", async () => {
    await start({
      verifyToken: (token) => {
        if (token === 'let-me-in') return { space: 's', sub: 'u', scope: ['read', 'write'] };
        throw new TypeError('boom');
      },
    });
    expect(await upgrade('nope')).toBe(401);
    expect(await upgrade('let-me-in')).toBe(101);
    expect(logs.find((l) => l.event === 'auth_failure')).toMatchObject({ reason: 'refused' });
  });

  it('keeps createToken tokens working with auth { secret }', async () => {
    const { createToken } = await import('../../src/server/auth.ts');
    await start({ secret: HS_SECRET });
    const token = createToken(HS_SECRET, {
      space: 's',
      sub: 'u',
      scope: ['read'],
      expiresInSeconds: 60,
    });
    expect(await upgrade(token)).toBe(101);
    expect(await upgrade(await hs())).toBe(401);
  });
});
