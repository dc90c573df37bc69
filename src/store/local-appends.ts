/**
 * The store's local appends: validation, then the group-commit queue (append-queue.ts).
 * append() is a unit of one stream, appendMany() one of several streams, written all or nothing.
 *
 * Invariants (numbered as in store.ts's list where they are the store's):
 * 1. Nothing is written unless the whole unit validated (core/validate.ts) and planned
 *    (core/append-group.ts); an append resolves after the transaction holding it is durable.
 * 9. An appendMany's events count together against limits.maxBatchEvents, as one append's do.
 * 10. A part for a stream declared strict is marked and chained first (strict-appends.ts); any
 *    other refuses meta the store reserves for strict streams.
 * 11. In an encrypted store each part is sealed after validation, before it is queued
 *    (store/encryption.ts), and the sealed events are held to limits.maxEventBytes: that is the
 *    size a peer receives.
 */
import type { StreamAppendOutcome } from '../core/append-group.ts';
import { ValidationError } from '../core/errors.ts';
import type { ExpectedVersion, LocalRecord, StoredEventRecord } from '../core/events.ts';
import type { EventId } from '../core/ids.ts';
import { jsonByteLength } from '../core/json.ts';
import { sealedKid } from '../core/sealing.ts';
import type { StrictRejection } from '../core/strict.ts';
import { type EventLimits, type ValidNewEvent, validateAppend } from '../core/validate.ts';
import type { EventLog, StreamAppendRequest } from '../storage/adapter.ts';
import type { AppendLimit } from './append-limit.ts';
import { AppendQueue } from './append-queue.ts';
import type { Sealing } from './encryption.ts';
import { appendStrict, prepareStrict, refuseStrictMeta, StrictHeads } from './strict-appends.ts';

/** What a written or duplicate part hands back: the stored events, and the head if written. */
export interface AppendedPart {
  events: StoredEventRecord[];
  /** The position of the last record written (undefined: a duplicate, nothing written). */
  lastPos?: number;
}

function partOf(outcome: StreamAppendOutcome): AppendedPart {
  if (outcome.kind === 'duplicate') return { events: outcome.events };
  const records: LocalRecord[] = outcome.records;
  const lastPos = records[records.length - 1]?.pos;
  return { events: records.map((r) => r.event), ...(lastPos === undefined ? {} : { lastPos }) };
}

export class LocalAppends {
  private readonly queue: AppendQueue;
  private readonly limits: EventLimits;
  private readonly appendLimit: AppendLimit;
  private readonly log: EventLog;
  private readonly now: () => number;
  private readonly isStrict: (stream: string) => boolean;
  /** Own events found rejected beside accepted ones (strict-appends.ts invariant 5). */
  private readonly onFork: ((rejected: StrictRejection[]) => Promise<void>) | undefined;
  /** Strict streams' heads as this store last wrote them (strict-appends.ts invariant 4). */
  readonly strictHeads = new StrictHeads();
  private readonly seal: Sealer | undefined;

  constructor(
    log: EventLog,
    now: () => number,
    limits: EventLimits,
    appendLimit: AppendLimit,
    isStrict: (stream: string) => boolean = () => false,
    onFork?: (rejected: StrictRejection[]) => Promise<void>,
    seal?: Sealer,
  ) {
    this.seal = seal;
    this.log = log;
    this.now = now;
    this.isStrict = isStrict;
    this.onFork = onFork;
    this.limits = limits;
    this.appendLimit = appendLimit;
    // The clock is read as the group's transaction begins, as one append's was.
    this.queue = new AppendQueue((units) => log.appendGroup({ units, now: now() }));
  }

  private async currentLimits(): Promise<EventLimits> {
    const maxEventBytes = await this.appendLimit.maxEventBytes();
    return maxEventBytes === this.limits.maxEventBytes
      ? this.limits
      : { ...this.limits, maxEventBytes };
  }

  async append(stream: unknown, events: unknown, expectedVersion: unknown): Promise<AppendedPart> {
    if (!this.strict(stream)) {
      refuseStrictMeta(events);
      return this.appendOne(stream, events, expectedVersion);
    }
    // A malformed expectedVersion goes to validation as it is, which refuses it.
    if (expectedVersion !== undefined && knownVersion(expectedVersion) === undefined) {
      return this.appendOne(stream, events, expectedVersion);
    }
    return appendStrict(
      this.log,
      stream,
      events,
      knownVersion(expectedVersion),
      this.now,
      (e, v) => this.appendOne(stream, e, v),
      this.strictHeads,
      this.onFork,
    );
  }

  private strict(stream: unknown): stream is string {
    return typeof stream === 'string' && this.isStrict(stream);
  }

  private async appendOne(
    stream: unknown,
    events: unknown,
    expectedVersion: unknown,
  ): Promise<AppendedPart> {
    const limits = await this.currentLimits();
    const valid = validateAppend(stream, events, expectedVersion, limits);
    const sealed = await this.sealed(asRequest(valid), limits);
    const outcomes = await this.queue.append([...sealed.keyParts, sealed.request]);
    for (const written of sealed.written) written();
    return partOf(outcomes[outcomes.length - 1]!);
  }

  async appendMany(appends: unknown): Promise<AppendedPart[]> {
    if (!Array.isArray(appends) || appends.length === 0) {
      throw new ValidationError('appends', 'must be a non-empty array of { stream, events }');
    }
    const limits = await this.currentLimits();
    const unit: SealedPart[] = [];
    let total = 0;
    for (const [i, part] of (appends as unknown[]).entries()) {
      if (typeof part !== 'object' || part === null || Array.isArray(part)) {
        throw new ValidationError(`appends[${i}]`, 'must be an object { stream, events }');
      }
      let { stream, events, expectedVersion } = part as Record<string, unknown>;
      const known = knownVersion(expectedVersion);
      if (this.strict(stream) && (expectedVersion === undefined || known !== undefined)) {
        this.strictHeads.forget(stream);
        ({ events, expectedVersion } = await prepareStrict(
          this.log,
          stream,
          events,
          known,
          this.now(),
          undefined,
          this.onFork,
        ));
      } else refuseStrictMeta(events);
      const valid = validateAppend(stream, events, expectedVersion, limits);
      total += valid.events.length;
      if (total > limits.maxBatchEvents) {
        throw new ValidationError(
          'appends',
          `more than ${limits.maxBatchEvents} events in one appendMany`,
        );
      }
      unit.push(await this.sealed(asRequest(valid), limits));
    }
    // A stream's key goes in the unit of its first events (stream-keys.ts invariant 1).
    const keyParts = [
      ...new Map(unit.flatMap((s) => s.keyParts).map((p) => [p.events[0]?.id, p])).values(),
    ];
    const outcomes = await this.queue.append([...keyParts, ...unit.map((s) => s.request)]);
    for (const written of unit.flatMap((s) => s.written)) written();
    return outcomes.slice(keyParts.length).map(partOf);
  }

  /** Invariant 11. */
  private async sealed(request: StreamAppendRequest, limits: EventLimits): Promise<SealedPart> {
    if (this.seal === undefined) return { request, keyParts: [], written: [] };
    const sealing = await this.seal(request.stream, request.events);
    const events = sealing.events;
    for (const [i, e] of events.entries()) {
      const size = sealedDataBytes(e) + (e.meta === undefined ? 0 : jsonByteLength(e.meta));
      if (size > limits.maxEventBytes) {
        throw new ValidationError(
          `events[${i}]`,
          `encrypted size ${size} bytes is over the limit of ${limits.maxEventBytes} (encryption adds about a third)`,
        );
      }
    }
    return {
      request: {
        ...request,
        // Hidden names: the events go under the stream's pseudonym (core/sealing.ts 5).
        stream: sealing.stream ?? request.stream,
        events: events as StreamAppendRequest['events'],
      },
      keyParts: sealing.keyPart === undefined ? [] : [sealing.keyPart],
      written: sealing.written === undefined ? [] : [sealing.written],
    };
  }
}

/**
 * The JSON size of an event's data. A sealed event's is url-safe base64 text (core/sealing.ts):
 * ASCII with nothing to escape, its length and two quotes, without a scan of a few hundred
 * characters an event. An event the sealer left in clear is measured.
 */
function sealedDataBytes(e: ValidNewEvent): number {
  return typeof e.data === 'string' && sealedKid(e.meta) !== undefined
    ? e.data.length + 2
    : jsonByteLength(e.data);
}

/** A part as queued: its events sealed, and the stream key parts to write with it. */
interface SealedPart {
  request: StreamAppendRequest;
  keyParts: StreamAppendRequest[];
  written: (() => void)[];
}

/** Seals a part's events (store/encryption.ts). */
export type Sealer = (stream: string, events: ValidNewEvent[]) => Promise<Sealing>;

/** An expectedVersion of the right kind as it is; anything else as absent (validation refuses it). */
function knownVersion(value: unknown): ExpectedVersion | undefined {
  return typeof value === 'number' || value === 'any' || value === 'none' ? value : undefined;
}

function asRequest(valid: ReturnType<typeof validateAppend>): StreamAppendRequest {
  return {
    stream: valid.stream,
    // Events without an id get the canonical id of their (replica, seq) in the transaction.
    events: valid.events as (ValidNewEvent & { id?: EventId })[],
    expectedVersion: valid.expectedVersion,
  };
}
