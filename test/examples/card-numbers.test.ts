/**
 * The example service (examples/card-numbers.ts) as a user runs it: a child process on its own
 * SQLite replica file, syncing through a real server with its own token, numbering the cards a
 * browser-like store adds. It is SIGKILLed mid-way, restarted, and run twice at once on its
 * file; every card ends with exactly one number, and the numbers are 1..n, each once
 * (invariants 1-3 there).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { NUMBERS } from '../../examples/card-numbers.ts';
import { memoryStorage, openStore, webSocketTransport } from '../../src/index.ts';
import { startTestServer, tempDir, waitFor } from '../server/helpers.ts';
import { exited } from '../server/local-services.ts';

const root = resolve(import.meta.dirname, '../..');
const SERVICE = join(root, 'examples/card-numbers.ts');

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

/** The service as a process; `numbered` counts the numbers it reports. */
function service(args: string[]) {
  const proc: ChildProcess = spawn(
    process.execPath,
    ['--conditions=@chronicle-es/source', '--import', 'tsx', SERVICE, ...args],
    { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  cleanups.push(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  const state = { proc, numbered: 0 };
  createInterface({ input: proc.stdout! }).on('line', (line) => {
    if (line.startsWith('numbered ')) state.numbered++;
  });
  return state;
}

describe('the card-numbers example service', () => {
  it('numbers every card exactly once, densely, each number naming the card it answers, across a SIGKILL, a restart and two runs at once', async () => {
    const server = await startTestServer({ requireSignatures: true });
    cleanups.push(() => server.stop());
    const tmp = tempDir();
    cleanups.push(() => tmp.cleanup());
    const args = [
      join(tmp.dir, 'svc', 'numbers.db'),
      server.server.url,
      server.token({ sub: 'numbers' }),
    ];

    const browser = await openStore({ name: 'browser', storage: memoryStorage() });
    cleanups.push(() => browser.close());
    browser.sync.connect(
      webSocketTransport(server.server.url, {
        token: server.token({ sub: 'alice' }),
        WebSocket: WebSocket as never,
      }),
    );
    const cards: string[] = [];
    const addCards = async (n: number) => {
      for (let i = 0; i < n; i++) {
        const card = `c${cards.length + 1}`;
        cards.push(card);
        await browser.append(`card:${card}`, {
          type: 'CardAdded',
          data: { title: `Card ${card}`, column: 'todo', position: cards.length },
        });
      }
    };
    const numbered = async () => browser.read({ stream: NUMBERS });

    await addCards(12);
    // Killed once it reported some numbers: mid-way through the twelve (one may be committed
    // and not yet reported: the restart must not number its card again).
    const first = service(args);
    await waitFor(() => first.numbered >= 4, 30_000);
    first.proc.kill('SIGKILL');
    await exited(first.proc);

    // Cards added while it is down, and a card added again (a redelivery, an undo's re-add).
    await addCards(8);
    await browser.append('card:c1', {
      type: 'CardAdded',
      data: { title: 'Card c1 again', column: 'todo', position: 99 },
    });
    const again = service(args);
    const twin = service(args);
    await addCards(6);
    await waitFor(async () => (await numbered()).length >= cards.length, 60_000);
    // Nothing more comes: give a late duplicate the time to arrive before counting.
    await new Promise((r) => setTimeout(r, 500));

    const events = await numbered();
    const data = events.map((e) => e.data as { card: string; number: number });
    expect(data.map((d) => d.card).sort()).toEqual([...cards].sort());
    expect(data.map((d) => d.number).sort((a, b) => a - b)).toEqual(
      Array.from({ length: cards.length }, (_, i) => i + 1),
    );
    for (const e of events) {
      const d = e.data as { card: string; number: number };
      expect(e.id).toBe(`card-number:${d.card}:0`);
      expect(e.meta?.$command).toBe('assign');
      // The audit trail leads from the browser's action to the service's reaction.
      const [added] = await browser.read({ stream: `card:${d.card}` });
      expect(e.meta?.$causationId).toBe(added?.id);
      expect(e.version).toBe(d.number);
    }
    for (const s of [again, twin]) s.proc.kill('SIGTERM');
    await Promise.all([exited(again.proc), exited(twin.proc)]);
  }, 120_000);
});
