/**
 * A back-end service as a replica (README, "Back end → services as replicas"): it syncs with
 * browsers through the server like any device, and gives each card the demo's board adds
 * (`CardAdded` on `card:<id>`) a number, by appending events of its own. Its log is a SQLite
 * file (sqliteReplicaStorage), so a restart, a SIGKILL or a redelivered event never numbers a
 * card twice and never skips or reuses a number.
 *
 * Invariants:
 * 1. A card is numbered by the command `assign` of the aggregate `numberer` on the stream
 *    `card-numbers`, run with the command id `card-number:<card>`: its event's id is
 *    `card-number:<card>:0`, and running the command again for that card (a restart, a
 *    redelivery, a second process) resolves with the event stored the first time and appends
 *    nothing. The handler refuses (ALREADY_NUMBERED) a card the stream has numbered.
 * 2. Numbers are dense and unique: the handler gives number n + 1 on a stream of version n, and
 *    execute appends with that version as expectedVersion, deciding again when another writer
 *    got there first (two processes on the file). Only this service writes `card-numbers`,
 *    from one replica (one file; several processes on it are one replica).
 * 3. What waits for a number is a projection of the log, not a queue in memory: an append is
 *    durable or absent whenever the process dies, and a restart numbers what the log shows
 *    waiting. Nothing is kept between seeing a card and numbering it.
 * 4. Each number names its cause: the event carries `$causationId`, the `CardAdded` it answers,
 *    so the audit trail leads from the browser's action to the service's reaction.
 *
 * Run: `node --import tsx examples/card-numbers.ts <file> <server url> <token>` (in this
 * repository add `--conditions=@chronicle-es/source`); it prints `numbered <card> <n>`.
 */
import { pathToFileURL } from 'node:url';
import {
  CommandRejectedError,
  ConcurrencyError,
  defineAggregate,
  defineProjection,
  type EventStore,
  openStore,
  reject,
  StoreClosedError,
  type StoredEvent,
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
  /** Cards added and not numbered yet, in the total order, with the id of their CardAdded. */
  waiting: { card: string; cause: string }[];
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
      if (state.waiting.some((w) => w.card === card)) return state;
      return { ...state, waiting: [...state.waiting, { card, cause: event.id }] };
    }
    if (event.type === 'CardNumbered' && event.stream === NUMBERS) {
      const { card, number } = event.data;
      if (typeof card !== 'string' || typeof number !== 'number') return state;
      return {
        waiting: state.waiting.filter((w) => w.card !== card),
        numbers: { ...state.numbers, [card]: number },
        count: state.count + 1,
      };
    }
    return state;
  },
});

/** The write side: the numbers given so far, and the rule that gives the next (invariants 1, 2). */
export const numberer = defineAggregate({
  name: 'card-numberer',
  initial: (): Record<string, number> => ({}),
  apply: (given: Record<string, number>, event: StoredEvent<NumberingEvents>) => {
    if (event.type !== 'CardNumbered') return given;
    const { card, number } = event.data;
    return typeof card === 'string' && typeof number === 'number'
      ? { ...given, [card]: number }
      : given;
  },
  commands: {
    assign: (given: Record<string, number>, { card }: { card: string }) =>
      Object.hasOwn(given, card)
        ? reject('ALREADY_NUMBERED', `card ${card} has number ${given[card]}`)
        : {
            type: 'CardNumbered' as const,
            data: { card, number: Object.keys(given).length + 1 },
          },
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
    const { waiting } = await store.state(numbering);
    const next = waiting[0];
    if (next === undefined) return;
    // Still waiting after an attempt: another process on the file got there first, and this
    // store has not folded its event yet (it hears of it by polling the file).
    if (next.card === tried) await pause(50);
    tried = next.card;
    try {
      const [event] = await store.execute(
        numberer,
        NUMBERS,
        'assign',
        { card: next.card },
        { commandId: `card-number:${next.card}`, causationId: next.cause },
      );
      if (event?.type === 'CardNumbered') onNumbered(next.card, event.data.number);
    } catch (error) {
      // Rejected: numbered already; ConcurrencyError: other writers kept winning. The next
      // pass reads the log again either way.
      if (!(error instanceof CommandRejectedError) && !(error instanceof ConcurrencyError)) {
        throw error;
      }
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
    aggregates: [numberer],
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
