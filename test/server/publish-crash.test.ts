/**
 * The broker publisher killed mid-stream (publisher.ts invariant 1): the server process, run
 * with `--publish`, SIGKILLed while clients append and it publishes, then restarted on the same
 * SQLite file; a JetStream consumer ends with every event once, in log order.
 */
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createToken } from '../../src/server/auth.ts';
import { SECRET, tempDir, waitFor } from './helpers.ts';
import { type NatsBroker, startNats } from './nats-broker.ts';
import { idsOf, readStream, streamCount } from './nats-consumer.ts';
import { exited, startServerProcess } from './server-process.ts';
import { connectSession, MemorySyncLog } from './session-client.ts';

let broker: NatsBroker;
beforeAll(async () => {
  broker = await startNats();
});
afterAll(async () => {
  await broker?.stop();
});

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

function token(space: string): string {
  return createToken(SECRET, {
    space,
    sub: 'writer',
    scope: ['read', 'write'],
    expiresInSeconds: 600,
  });
}

/** The ids of a space in log order, as the server's SQLite file holds them. */
function idsInFile(path: string, space: string): string[] {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT id FROM events WHERE space = ? ORDER BY pos').all(space) as {
      id: string;
    }[];
    return rows.map((r) => r.id);
  } finally {
    db.close();
  }
}

describe('publisher crash', () => {
  it('publishes every event once, in order, after the server is SIGKILLed mid-stream and restarted', async () => {
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const path = join(tmp.dir, 'server.sqlite');
    const stream = 'crash';
    const args = ['--publish', broker.url, '--publish-stream', stream];
    const spaces = ['space-a', 'space-b'];
    const PER_SPACE = 2500;
    const writers = spaces.map(() => new MemorySyncLog());
    for (const writer of writers) writer.append(PER_SPACE, (i) => ({ i, text: 'x'.repeat(300) }));

    const first = await startServerProcess(path, cleanups, 0, args);
    for (const [i, space] of spaces.entries()) {
      const client = await connectSession(first.url, token(space), writers[i]!);
      cleanups.push(() => client.close());
    }
    // Killed once some are published, while the writers are still uploading.
    await waitFor(async () => (await streamCount(broker.url, stream)) >= 300, 30_000);
    first.child.kill('SIGKILL');
    await exited(first.child);
    const atKill = await streamCount(broker.url, stream);

    const second = await startServerProcess(path, cleanups, 0, args);
    for (const [i, space] of spaces.entries()) {
      const client = await connectSession(second.url, token(space), writers[i]!);
      cleanups.push(() => client.close());
    }
    await waitFor(
      async () => (await streamCount(broker.url, stream)) >= spaces.length * PER_SPACE,
      60_000,
    );
    const messages = await readStream(broker.url, stream);
    // Mid-stream: some published before the kill, the rest after.
    expect(atKill).toBeGreaterThan(0);
    expect(atKill).toBeLessThan(spaces.length * PER_SPACE);
    expect(messages.length).toBe(spaces.length * PER_SPACE);
    expect(new Set(messages.map((m) => m.msgId)).size).toBe(messages.length);
    for (const space of spaces) {
      const logged = idsInFile(path, space);
      expect(logged.length).toBe(PER_SPACE);
      expect(idsOf(messages, space)).toEqual(logged);
    }
    // The restarted process resumed from its durable position, not from the start.
    const resumed = second.entries.find((e) => e.event === 'publish_resumed');
    expect(resumed).toBeDefined();
    second.child.kill('SIGTERM');
    await exited(second.child);
  }, 120_000);
});
