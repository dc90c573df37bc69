import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI_DEFAULTS, isLoopback, parseCliArgs, parseTokenArgs } from '../../src/server/cli.ts';
import { parseCompactArgs } from '../../src/server/cli-compact.ts';
import { sqliteStorage } from '../../src/server/sqlite.ts';
import { makeEvents } from './events.ts';
import { RawClient, SECRET, startTestServer, tempDir } from './helpers.ts';

describe('chronicle-server CLI', () => {
  it('reads flags, falls back to environment variables, then to defaults', () => {
    expect(parseCliArgs([], {})).toEqual({
      ...CLI_DEFAULTS,
      postgres: undefined,
      secret: undefined,
      origins: undefined,
    });
    const env = {
      CHRONICLE_PORT: '9000',
      CHRONICLE_HOST: '::1',
      CHRONICLE_DATA: '/tmp/x.sqlite',
      CHRONICLE_POSTGRES: 'postgres://u@db/chronicle',
      CHRONICLE_SECRET: 'env-secret',
      CHRONICLE_ORIGINS: 'https://a.example, https://b.example',
    };
    expect(parseCliArgs([], env)).toEqual({
      port: 9000,
      host: '::1',
      data: '/tmp/x.sqlite',
      postgres: 'postgres://u@db/chronicle',
      secret: 'env-secret',
      origins: ['https://a.example', 'https://b.example'],
    });
    expect(
      parseCliArgs(
        [
          '--port',
          '0',
          '--secret',
          'flag',
          '--origin',
          'https://c.example',
          '--postgres',
          'pg://x',
        ],
        env,
      ),
    ).toMatchObject({
      port: 0,
      postgres: 'pg://x',
      secret: 'flag',
      origins: ['https://c.example'],
    });
  });

  it('names the PostgreSQL schema with --postgres-schema or CHRONICLE_POSTGRES_SCHEMA, checked at start', () => {
    expect(
      parseCliArgs(['--postgres', 'pg://x', '--postgres-schema', 'team_a'], {}).postgresSchema,
    ).toBe('team_a');
    expect(
      parseCliArgs([], { CHRONICLE_POSTGRES: 'pg://x', CHRONICLE_POSTGRES_SCHEMA: 'b' })
        .postgresSchema,
    ).toBe('b');
    expect(parseCliArgs(['--postgres', 'pg://x'], {}).postgresSchema).toBeUndefined();
    // On SQLite the environment's schema means nothing: ignored, as CHRONICLE_POSTGRES's absence says.
    expect(parseCliArgs([], { CHRONICLE_POSTGRES_SCHEMA: 'b' }).postgresSchema).toBeUndefined();
    expect(() => parseCliArgs(['--postgres-schema', 'team_a'], {})).toThrow(/needs --postgres/);
    expect(() =>
      parseCliArgs(['--postgres', 'pg://x', '--postgres-schema', 'drop table;'], {}),
    ).toThrow(/lower-case SQL identifier/);
  });

  it('publishes to a broker (NATS or a RabbitMQ stream) only when --publish (or CHRONICLE_PUBLISH) names one, into stream chronicle by default', () => {
    expect(parseCliArgs([], {}).publish).toBeUndefined();
    expect(parseCliArgs(['--publish', 'nats://127.0.0.1:4222'], {}).publish).toEqual({
      url: 'nats://127.0.0.1:4222',
      stream: 'chronicle',
    });
    expect(
      parseCliArgs([], {
        CHRONICLE_PUBLISH: 'nats://broker:4222',
        CHRONICLE_PUBLISH_STREAM: 'events',
      }).publish,
    ).toEqual({ url: 'nats://broker:4222', stream: 'events' });
    expect(
      parseCliArgs(
        ['--publish', 'rabbitmq-stream://u:p@broker:5552', '--publish-stream', 'log'],
        {},
      ).publish,
    ).toEqual({ url: 'rabbitmq-stream://u:p@broker:5552', stream: 'log' });
    expect(() => parseCliArgs(['--publish', 'kafka://broker:9092'], {})).toThrow(
      /nats:\/\/ or rabbitmq-stream:\/\//,
    );
    expect(() =>
      parseCliArgs(['--publish', 'nats://b:4222', '--publish-stream', 'a.b'], {}),
    ).toThrow(/stream name/);
  });

  it('accepts permessage-deflate only with --wire-compression or CHRONICLE_WIRE_COMPRESSION=1', () => {
    expect(parseCliArgs([], {}).wireCompression).toBeUndefined();
    expect(parseCliArgs(['--wire-compression'], {}).wireCompression).toBe(true);
    expect(parseCliArgs([], { CHRONICLE_WIRE_COMPRESSION: '1' }).wireCompression).toBe(true);
    expect(parseCliArgs([], { CHRONICLE_WIRE_COMPRESSION: '0' }).wireCompression).toBeUndefined();
  });

  it('turns the compactor off only with --no-compaction or CHRONICLE_COMPACTION=off (issue 18)', () => {
    expect(parseCliArgs([], {}).noCompaction).toBeUndefined();
    expect(parseCliArgs(['--no-compaction'], {}).noCompaction).toBe(true);
    expect(parseCliArgs([], { CHRONICLE_COMPACTION: 'off' }).noCompaction).toBe(true);
    expect(parseCliArgs([], { CHRONICLE_COMPACTION: 'on' }).noCompaction).toBeUndefined();
  });

  it('refuses a bad port and unknown flags', () => {
    expect(() => parseCliArgs(['--port', 'eighty'], {})).toThrow(/--port/);
    expect(() => parseCliArgs(['--port', '70000'], {})).toThrow(/--port/);
    expect(() => parseCliArgs(['--nope'], {})).toThrow();
  });

  it('knows loopback hosts', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1'])
      expect(isLoopback(host)).toBe(true);
    for (const host of ['0.0.0.0', '10.0.0.1', '::', 'example.com'])
      expect(isLoopback(host)).toBe(false);
  });

  it('refuses to start without a secret on a non-loopback host (invariant 1)', () => {
    const tmp = tempDir();
    try {
      const result = spawnSync(
        process.execPath,
        [
          '--import',
          'tsx',
          'src/server/cli.ts',
          '--host',
          '0.0.0.0',
          '--port',
          '0',
          '--data',
          join(tmp.dir, 'x.sqlite'),
        ],
        {
          cwd: join(import.meta.dirname, '..', '..'),
          encoding: 'utf8',
          timeout: 30_000,
          env: { ...process.env, CHRONICLE_SECRET: '' },
        },
      );
      expect(result.status).toBe(2);
      expect(result.stderr).toMatch(/refusing to listen/);
    } finally {
      tmp.cleanup();
    }
  });

  it('prints a token the server with the same secret accepts (`chronicle-server token`)', async () => {
    const run = (args: string[], secret: string) =>
      spawnSync(process.execPath, ['--import', 'tsx', 'src/server/cli.ts', 'token', ...args], {
        cwd: join(import.meta.dirname, '..', '..'),
        encoding: 'utf8',
        timeout: 30_000,
        env: { ...process.env, CHRONICLE_SECRET: secret },
      });
    const printed = run(['--space', 'space-a', '--sub', 'script', '--expires', '60'], SECRET);
    expect(printed.status).toBe(0);
    const token = printed.stdout.trim();
    const t = await startTestServer();
    try {
      const client = await RawClient.connect(t.server.url, { token });
      client.close();
      const other = run(
        ['--space', 'space-a', '--sub', 'script'],
        'another secret of 32 characters!',
      );
      await expect(
        RawClient.connect(t.server.url, { token: other.stdout.trim() }),
      ).rejects.toMatchObject({ status: 401 });
    } finally {
      await t.stop();
    }
    const refused = run(['--space', 'space-a'], SECRET);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/--space and --sub are required/);
  });

  it('reads the token command’s flags, with read and write as the default scope', () => {
    expect(parseTokenArgs(['--space', 's', '--sub', 'u'], { CHRONICLE_SECRET: 'x' })).toEqual({
      secret: 'x',
      space: 's',
      sub: 'u',
      scope: ['read', 'write'],
      expiresInSeconds: 3600,
    });
    expect(
      parseTokenArgs(['--space', 's', '--sub', 'u', '--scope', 'read', '--secret', 'y'], {}).scope,
    ).toEqual(['read']);
    expect(() => parseTokenArgs(['--space', 's', '--sub', 'u'], {})).toThrow(/secret/);
    expect(() =>
      parseTokenArgs(['--space', 's', '--sub', 'u', '--scope', 'admin'], { CHRONICLE_SECRET: 'x' }),
    ).toThrow(/--scope/);
    expect(() =>
      parseTokenArgs(['--space', 's', '--sub', 'u', '--expires', '0'], { CHRONICLE_SECRET: 'x' }),
    ).toThrow(/--expires/);
  });
});

describe('chronicle-server compact', () => {
  it('seals a SQLite file past its tail and prints the report as one JSON line', async () => {
    const tmp = tempDir();
    try {
      const path = join(tmp.dir, 'server.sqlite');
      const storage = sqliteStorage(path, { compaction: false });
      await (await storage.openSpace('s')).ingest(makeEvents(9000));
      await storage.close();
      const printed = spawnSync(
        process.execPath,
        ['--import', 'tsx', 'src/server/cli.ts', 'compact', '--data', path],
        { cwd: join(import.meta.dirname, '..', '..'), encoding: 'utf8' },
      );
      expect(printed.status).toBe(0);
      // The default tail (8,192 positions) stays rows: 808 sealed, in 7 blocks (6 of 128).
      expect(JSON.parse(printed.stdout)).toMatchObject({
        storage: `sqlite:${path}`,
        blocks: 7,
        events: 808,
      });
      expect(parseCompactArgs(['--sqlite', 'x.sqlite'], {}, 'd.sqlite')).toEqual({
        data: 'x.sqlite',
        vacuum: false,
      });
      expect(parseCompactArgs(['--vacuum'], { CHRONICLE_POSTGRES: 'pg://db' }, 'd.sqlite')).toEqual(
        { postgres: 'pg://db', vacuum: true },
      );
      expect(
        parseCompactArgs(['--postgres', 'pg://db', '--postgres-schema', 'team_a'], {}, 'd.sqlite'),
      ).toEqual({ postgres: 'pg://db', schema: 'team_a', vacuum: false });
      expect(() =>
        parseCompactArgs(['--postgres', 'pg://db', '--postgres-schema', 'Team-A'], {}, 'd'),
      ).toThrow(/lower-case SQL identifier/);
      expect(() => parseCompactArgs(['--postgres-schema', 'team_a'], {}, 'd')).toThrow(
        /needs --postgres/,
      );
    } finally {
      tmp.cleanup();
    }
  });
});
