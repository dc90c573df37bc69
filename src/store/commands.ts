/**
 * Runs an aggregate's command in the store (core/aggregate.ts decides): read the stream's version,
 * then its events, decide, and append with that version expected.
 *
 * Invariants (core/aggregate.ts 1–4 for the decision):
 * 1. The version is read before the events: the state may hold more events than the version says,
 *    never fewer, so a decision on a stale state always fails its expectedVersion and is never
 *    written. Between two local writers of one stream, exactly one decision per version stands.
 * 2. A ConcurrencyError is met by deciding again on the new state, at most `maxAttempts` times
 *    in all; then it reaches the caller. A rejection or any other error is never retried.
 * 3. A command whose application-given id already has events stored (core/aggregate.ts 3)
 *    resolves with those events, decides nothing and appends nothing.
 */
import {
  type AnyAggregate,
  COMMAND_META,
  type CommandChain,
  commandEventId,
  decideCommand,
} from '../core/aggregate.ts';
import {
  CommandRejectedError,
  ConcurrencyError,
  UnreadableError,
  ValidationError,
} from '../core/errors.ts';
import type { NewEvent, StoredEvent } from '../core/events.ts';
import { sealedKid } from '../core/sealing.ts';
import type { ExecuteOptions } from './types.ts';

/** The attempts a command gets against concurrent writers of its stream (invariant 2). */
export const DEFAULT_COMMAND_ATTEMPTS = 5;

/** What a command needs of the store. */
export interface CommandHost<E> {
  streamVersion(stream: string): Promise<number>;
  /** Every event of the stream, upcast, in the total order. */
  readStream(stream: string): Promise<StoredEvent<E>[]>;
  /** The stored event of each id (undefined where none), upcast. */
  getByIds(ids: readonly string[]): Promise<(StoredEvent<E> | undefined)[]>;
  append(stream: string, events: NewEvent<E>[], expectedVersion: number): Promise<StoredEvent<E>[]>;
  now(): number;
}

/** A fresh command id: random, so that no two replicas make the same one. */
function makeCommandId(): string {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return `cmd-${Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')}`;
}

function optionalId(value: unknown, path: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value.length === 0 || value.length > 100) {
    throw new ValidationError(path, 'must be a string of 1 to 100 characters');
  }
  return value;
}

/** The command's place in its chain (core/aggregate.ts invariant 2), from the options. */
function commandChain(options: ExecuteOptions = {}): {
  chain: CommandChain;
  named: boolean;
} {
  const given = optionalId(options.commandId, 'options.commandId');
  const commandId = given ?? makeCommandId();
  const correlationId = optionalId(options.correlationId, 'options.correlationId') ?? commandId;
  const causationId = optionalId(options.causationId, 'options.causationId') ?? commandId;
  return { chain: { commandId, correlationId, causationId }, named: given !== undefined };
}

/** The events a named command already appended (invariant 3), or undefined if none. */
async function storedRun<E>(
  host: CommandHost<E>,
  stream: string,
  commandId: string,
): Promise<StoredEvent<E>[] | undefined> {
  const [first] = await host.getByIds([commandEventId(commandId, 0)]);
  if (first === undefined) return undefined;
  if (first.stream !== stream) {
    throw new ValidationError(
      'options.commandId',
      `command ${commandId} already ran on stream "${first.stream}", not "${stream}"`,
    );
  }
  const events = await host.readStream(stream);
  return events.filter((e) => e.meta?.[COMMAND_META.commandId] === commandId);
}

/** What the store adds to a run (strict streams: store/strict-rejections.ts). */
export interface CommandRunExtras<E> {
  /** The command's chain as a run before it had it (a re-run keeps the ids). */
  chain?: { chain: CommandChain; named: boolean };
  /** Changes the decided events before they are appended. */
  stamp?: (events: NewEvent<E>[]) => NewEvent<E>[];
}

/** Runs `command` of `aggregate` on `stream` (the invariants above). */
export async function executeCommand<E>(
  host: CommandHost<E>,
  aggregate: AnyAggregate<E>,
  stream: string,
  command: string,
  input: unknown,
  options: ExecuteOptions = {},
  extras: CommandRunExtras<E> = {},
): Promise<StoredEvent<E>[]> {
  if (typeof stream !== 'string' || stream.length === 0) {
    throw new ValidationError('stream', 'must be a non-empty string');
  }
  if (typeof command !== 'string' || command.length === 0) {
    throw new ValidationError('command', 'must be a non-empty string');
  }
  const attempts = options.maxAttempts ?? DEFAULT_COMMAND_ATTEMPTS;
  if (!Number.isSafeInteger(attempts) || attempts < 1) {
    throw new ValidationError('options.maxAttempts', 'must be a positive integer');
  }
  const { chain, named } = extras.chain ?? commandChain(options);
  if (named && extras.chain === undefined) {
    const stored = await storedRun(host, stream, chain.commandId);
    if (stored !== undefined) return stored;
  }
  for (let attempt = 1; ; attempt++) {
    const version = await host.streamVersion(stream);
    const events = await host.readStream(stream);
    refuseUnreadable(events);
    const context = { stream, version, commandId: chain.commandId, now: host.now() };
    const decision = decideCommand(aggregate, command, input, events, context, chain, named);
    if (decision.kind === 'rejected') {
      throw new CommandRejectedError(aggregate.name, command, stream, decision.rejection);
    }
    if (decision.events.length === 0) return [];
    const decided = extras.stamp === undefined ? decision.events : extras.stamp(decision.events);
    try {
      return await host.append(stream, decided, version);
    } catch (error) {
      if (!(error instanceof ConcurrencyError) || attempt >= attempts) throw error;
    }
  }
}

/** A command decides on every event of its stream, or on none (store/encryption.ts 2). */
function refuseUnreadable(events: readonly StoredEvent<unknown>[]): void {
  for (const event of events) {
    const kid = sealedKid(event.meta);
    if (kid === undefined) continue;
    throw new UnreadableError(
      `stream "${event.stream}" holds event ${event.id}, sealed with key ${kid}, which this replica cannot open`,
      { eventId: event.id, kid },
    );
  }
}
