/**
 * Aggregates and their commands (issue 19), pure: an aggregate folds its stream's events into a
 * state, and each of its commands decides, from that state and an input, which events to append
 * or why not. The store runs them (store/commands.ts): it reads the stream, decides, and appends
 * with the version it read as expectedVersion, so two writers of one stream take turns.
 *
 * Invariants:
 * 1. A decision is a function of the state folded from the stream's events (in the total order,
 *    upcast), the input and the command's context: deciding again on the same events decides the
 *    same (handlers must be pure; the context carries the ids and the time).
 * 2. Every event a command appends carries in its meta the command's name and id, its
 *    correlation id and its causation id (COMMAND_META), over whatever meta the handler gave.
 *    Without options the command's id is both: it is the start of its chain.
 * 3. With an application-given commandId the command's events have the ids `<commandId>:<i>`: a
 *    command run again with the same id finds its events stored and appends nothing.
 * 4. A rejection is a value, never a throw: the store turns it into CommandRejectedError (code
 *    COMMAND_REJECTED) with the handler's reason; a handler that throws is a bug, and its error
 *    goes to the caller as it is; a command the aggregate lacks is a NotFoundError.
 */
import { NotFoundError, ValidationError } from './errors.ts';
import type { JsonObject, NewEvent, StoredEvent } from './events.ts';

/** Why a command was refused: a stable reason for code, a message for people. */
export interface Rejection {
  readonly rejected: true;
  /** A stable, short reason the application branches on (e.g. 'INSUFFICIENT_FUNDS'). */
  readonly reason: string;
  readonly message: string;
  readonly details?: JsonObject;
}

/**
 * Refuses a command; return it from a command handler.
 *
 * @example
 * withdraw: (balance, { cents }: { cents: number }) =>
 *   cents > balance ? reject('INSUFFICIENT_FUNDS', `only ${balance} cents left`) : { type: 'Withdrawn', data: { cents } },
 */
export function reject(reason: string, message = reason, details?: JsonObject): Rejection {
  if (typeof reason !== 'string' || reason.length === 0 || reason.length > 128) {
    throw new ValidationError('reason', 'must be a string of 1 to 128 characters');
  }
  return details === undefined
    ? { rejected: true, reason, message }
    : { rejected: true, reason, message, details };
}

export function isRejection(value: unknown): value is Rejection {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { rejected?: unknown }).rejected === true &&
    typeof (value as { reason?: unknown }).reason === 'string'
  );
}

/** What a command handler knows besides the state and the input. */
export interface CommandContext {
  /** The aggregate's stream. */
  stream: string;
  /** The stream's version the state was folded at (the append expects it). */
  version: number;
  /** This command's id (the application's, or one made for it). */
  commandId: string;
  /** The store's clock, in ms. */
  now: number;
}

/** A command's answer: the events to append (none: nothing to do), or a rejection. */
export type CommandResult<E = unknown> = NewEvent<E> | readonly NewEvent<E>[] | Rejection;

/** One command: decides from the state and the input. */
export type CommandHandler<S, E = unknown, I = never> = (
  state: S,
  input: I,
  context: CommandContext,
) => CommandResult<E>;

/** An aggregate's commands, by name; each takes its own input. */
export type CommandHandlers<S, E = unknown> = Record<
  string,
  (state: S, input: never, context: CommandContext) => CommandResult<E>
>;

export interface AggregateDefinition<S, E, H extends CommandHandlers<S, E>> {
  /** Unique among the store's aggregates; names the aggregate across a worker boundary. */
  name: string;
  initial: () => S;
  /** Folds one event of the aggregate's stream (upcast, in the total order). */
  apply: (state: S, event: StoredEvent<E>) => S;
  commands: H;
}

/**
 * An aggregate as the store holds it, and a typed handle: store.execute(aggregate, ...) checks
 * the command's name and input. `initial` and `apply` are methods so that aggregates of different
 * states fit in one list (method parameters are bivariant; AnyAggregate).
 */
export interface Aggregate<
  S = unknown,
  E = unknown,
  H extends CommandHandlers<S, E> = CommandHandlers<S, E>,
> {
  readonly kind: 'aggregate';
  readonly name: string;
  initial(): S;
  apply(state: S, event: StoredEvent<E>): S;
  readonly commands: Readonly<H>;
}

/** Any aggregate of the event map E, whatever its state and commands (StoreOptions.aggregates). */
export interface AnyAggregate<E = unknown> {
  readonly kind: 'aggregate';
  readonly name: string;
  initial(): unknown;
  apply(state: never, event: StoredEvent<E>): unknown;
  readonly commands: Readonly<
    Record<string, (state: never, input: never, context: CommandContext) => CommandResult<E>>
  >;
}

type Loose<H> = string extends keyof H ? true : false;

/** The command names of H (any string when H is loose: declared with explicit type arguments). */
export type CommandName<H> = Loose<H> extends true ? string : keyof H & string;

/** The input of command N of H. */
export type CommandInput<H, N extends string> =
  Loose<H> extends true
    ? unknown
    : N extends keyof H
      ? H[N] extends (state: never, input: infer I, ...rest: never[]) => unknown
        ? I
        : never
      : never;

/**
 * Declares an aggregate: how its stream folds into a state, and the commands that guard it.
 * Give it to openStore (or serveStore) in `aggregates`, then run commands with `store.execute`.
 *
 * @example
 * type AccountEvents = { Deposited: { cents: number }; Withdrawn: { cents: number } };
 * const account = defineAggregate({
 *   name: 'account',
 *   initial: () => 0,
 *   apply: (balance: number, e: StoredEvent<AccountEvents>) =>
 *     e.type === 'Deposited' ? balance + e.data.cents : balance - e.data.cents,
 *   commands: {
 *     deposit: (_balance: number, { cents }: { cents: number }) => ({ type: 'Deposited' as const, data: { cents } }),
 *     withdraw: (balance: number, { cents }: { cents: number }) =>
 *       cents > balance
 *         ? reject('INSUFFICIENT_FUNDS', `only ${balance} cents left`)
 *         : { type: 'Withdrawn' as const, data: { cents } },
 *   },
 * });
 * await store.execute(account, 'account-1', 'withdraw', { cents: 500 });
 */
export function defineAggregate<
  S,
  E = unknown,
  H extends CommandHandlers<S, E> = CommandHandlers<S, E>,
>(definition: AggregateDefinition<S, E, H>): Aggregate<S, E, H> {
  const { name, initial, apply, commands } = definition;
  if (typeof name !== 'string' || name.length === 0 || name.length > 256) {
    throw new ValidationError(
      'aggregate.name',
      'must be a non-empty string of at most 256 characters',
    );
  }
  if (typeof initial !== 'function')
    throw new ValidationError('aggregate.initial', 'must be a function');
  if (typeof apply !== 'function')
    throw new ValidationError('aggregate.apply', 'must be a function');
  if (typeof commands !== 'object' || commands === null) {
    throw new ValidationError('aggregate.commands', 'must be an object of command handlers');
  }
  for (const [command, handler] of Object.entries(commands)) {
    if (typeof handler !== 'function') {
      throw new ValidationError(`aggregate.commands.${command}`, 'must be a function');
    }
  }
  return Object.freeze({ kind: 'aggregate' as const, name, initial, apply, commands });
}

/** Meta keys a command writes on its events (invariant 2), as EventStoreDB names them. */
export const COMMAND_META = {
  command: '$command',
  commandId: '$commandId',
  correlationId: '$correlationId',
  causationId: '$causationId',
} as const;

/** Where a command sits in its chain (invariant 2). */
export interface CommandChain {
  commandId: string;
  correlationId: string;
  causationId: string;
}

/** The id of a command's i-th event when the application named the command (invariant 3). */
export const commandEventId = (commandId: string, i: number): string => `${commandId}:${i}`;

export type Decision<E> =
  | { kind: 'events'; events: NewEvent<E>[] }
  | { kind: 'rejected'; rejection: Rejection };

/**
 * Folds `events` (the stream, upcast, in the total order) and runs `command` on the state
 * (invariant 1); stamps the events it returns (invariants 2 and 3).
 */
export function decideCommand<E>(
  aggregate: AnyAggregate<E>,
  command: string,
  input: unknown,
  events: readonly StoredEvent<E>[],
  context: CommandContext,
  chain: CommandChain,
  namedIds: boolean,
): Decision<E> {
  const handler = Object.hasOwn(aggregate.commands, command)
    ? aggregate.commands[command]
    : undefined;
  if (handler === undefined) {
    throw new NotFoundError(`aggregate "${aggregate.name}" has no command "${command}"`, {
      aggregate: aggregate.name,
      command,
    });
  }
  let state = aggregate.initial();
  for (const event of events) state = aggregate.apply(state as never, event);
  const result = handler(state as never, input as never, context);
  if (isRejection(result)) return { kind: 'rejected', rejection: result };
  const list = (Array.isArray(result) ? result : [result]) as NewEvent<E>[];
  const stamped = list.map((event, i) => {
    const meta: JsonObject = {
      ...(event.meta ?? {}),
      [COMMAND_META.command]: command,
      [COMMAND_META.commandId]: chain.commandId,
      [COMMAND_META.correlationId]: chain.correlationId,
      [COMMAND_META.causationId]: chain.causationId,
    };
    const out = { ...event, meta } as NewEvent<E>;
    if (namedIds) out.id = commandEventId(chain.commandId, i);
    return out;
  });
  return { kind: 'events', events: stamped };
}
