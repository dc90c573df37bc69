/**
 * A back-end service as a replica (README, "Back end → services as replicas"): it syncs with
 * browsers through the server like any device, and gives each card the demo's board adds
 * (`CardAdded` on `card:<id>`) a number, by appending events of its own. Its log is a SQLite
 * file (sqliteReplicaStorage), so a restart, a SIGKILL or a redelivered event never numbers a
 * card twice and never skips or reuses a number.
 *
 * Invariants:
 * 1. A card's number is the event `card-number:<card>` on the stream `card-numbers`: the
 *    deterministic id makes a second numbering of one card a duplicate (same number) or an
 *    IdempotencyError (another number), never a second event.
 * 2. Numbers are dense and unique: number n is the n-th event of `card-numbers`, appended with
 *    expectedVersion n - 1, so of two attempts at n (two processes on the file) one fails with
 *    ConcurrencyError and reads again. Only this service writes `card-numbers`, from one
 *    replica (one file; several processes on it are one replica).
 * 3. What waits for a number is a projection of the log, not a queue in memory: an append is
 *    durable or absent whenever the process dies, and a restart numbers what the log shows
 *    waiting. Nothing is kept between seeing a card and numbering it.
 *
 * Run: `node --import tsx examples/card-numbers.ts <file> <server url> <token>` (in this
 * repository add `--conditions=@chronicle-es/source`); it prints `numbered <card> <n>`.
 */
import { pathToFileURL } from 'node:url';
import {
  ConcurrencyError,
  defineProjection,
  type EventStore,
  IdempotencyError,
  openStore,
  StoreClosedError,
  webSocketTransport,
} from '@chronicle-es/store';
import { sqliteReplicaStorage } from '@chronicle-es/store/node';
import WebSocket from 'ws';

export const NUMBERS = 'card-numbers';

export type NumberingEvents = {
  CardAdded: { title: string };
  CardNumbered: { card: string; number: number };
};

export interface Numbering {
  /** Cards added and not numbered yet, in the total order. */
  waiting: string[];
  numbers: Record<string, number>;
  /** Events of `card-numbers`: its version. */
  count: number;
}

const cardOf = (stream: string) => (/^card:([^/]+)$/.exec(stream) ?? [])[1];

/** Invariant 3: any replica can send anything, so the fold trusts no field's type. */
export const numbering = defineProjection<Numbering, NumberingEvents>({
  name: 'card-numbering',
  version: 1,
  initial: () => ({ waiting: [], numbers: {}, count: 0 }),
  apply: (state, event) => {
    if (event.type === 'CardAdded') {
      const card = cardOf(event.stream);
      if (card === undefined || Object.hasOwn(state.numbers, card)) return state;
      if (state.waiting.includes(card)) return state;
      return { ...state, waiting: [...state.waiting, card] };
    }
    if (event.type === 'CardNumbered' && event.stream === NUMBERS) {
      const { card, number } = event.data;
      if (typeof card !== 'string' || typeof number !== 'number') return state;
      return {
        waiting: state.waiting.filter((c) => c !== card),
        numbers: { ...state.numbers, [card]: number },
        count: state.count + 1,
      };
    }
    return state;
  },
});

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Numbers every waiting card, one append each (invariants 1, 2). */
async function numberWaiting(
  store: EventStore<NumberingEvents>,
  onNumbered: (card: string, number: number) => void,
): Promise<void> {
  let tried: string | undefined;
  for (;;) {
    const { waiting, count } = await store.state(numbering);
    const card = waiting[0];
    if (card === undefined) return;
    // Still waiting after an attempt: another process on the file got there first, and this
    // store has not folded its event yet (it hears of it by polling the file).
    if (card === tried) await pause(50);
    tried = card;
    try {
      const number = count + 1;
      await store.append(
        NUMBERS,
        { id: `card-number:${card}`, type: 'CardNumbered', data: { card, number } },
        { expectedVersion: count === 0 ? 'none' : count },
      );
      onNumbered(card, number);
    } catch (error) {
      if (!(error instanceof ConcurrencyError) && !(error instanceof IdempotencyError)) throw error;
    }
  }
}

export interface CardNumbersOptions {
  /** The service's replica file. */
  file: string;
  url: string;
  /** The service's own token (a `sub` of its own, read and write on the board's space). */
  token: string;
  onNumbered?: (card: string, number: number) => void;
}

export async function startCardNumbers(options: CardNumbersOptions) {
  const store = await openStore<NumberingEvents>({
    name: 'card-numbers',
    storage: sqliteReplicaStorage(options.file),
    projections: [numbering],
  });
  store.sync.connect(
    webSocketTransport(options.url, { token: options.token, WebSocket: WebSocket as never }),
  );
  const onNumbered = options.onNumbered ?? (() => {});
  // One pass at a time; a change during a pass asks for one more.
  let running: Promise<void> | undefined;
  let again = false;
  const run = (): void => {
    if (running !== undefined) {
      again = true;
      return;
    }
    running = numberWaiting(store, onNumbered)
      .catch((error: unknown) => {
        if (!(error instanceof StoreClosedError)) console.error(error);
      })
      .finally(() => {
        running = undefined;
        if (again) {
          again = false;
          run();
        }
      });
  };
  const unwatch = store.watch(numbering, run);
  return {
    store,
    async stop(): Promise<void> {
      unwatch();
      await running;
      await store.close();
    },
  };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [file, url, token] = process.argv.slice(2);
  if (file === undefined || url === undefined || token === undefined) {
    console.error('Usage: card-numbers <replica file> <server url> <token>');
    process.exit(2);
  }
  const service = await startCardNumbers({
    file,
    url,
    token,
    onNumbered: (card, number) => process.stdout.write(`numbered ${card} ${number}\n`),
  });
  process.once('SIGTERM', () => void service.stop().then(() => process.exit(0)));
}
