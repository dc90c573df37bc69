/**
 * What a replica does when the authority of a strict stream rejects its events (core/strict.ts,
 * sync protocol 8): it takes them out of its log, tells the app, and runs the commands they came
 * from again on the stream as the authority has it (a rebase), once the accepted events reached
 * it.
 *
 * Invariants:
 * 1. Only this replica's own events, at the seq the authority named, leave the log (adapter.ts
 *    `discard`); projections fold the log without them (store.ts does the rebase).
 * 2. Every rejection is reported: an entry in SyncStatus.rejected (meta `strict.rejected`, the
 *    last REJECTED_KEPT), grouped per command (store.execute) or per stream, written before the
 *    command runs again.
 * 3. A command is run again only once the event the authority had at the head is held here (so
 *    its handler decides on what won; at once where it had none: NO_HEAD), at most MAX_REBASES
 *    times; its events carry the rebase count (`$rebase`). What the command needs to run again
 *    travels in its first event's meta (`$aggregate`, `$input`: strict-stream commands take JSON
 *    input), so nothing else must be kept for it. Runs waiting for their head are kept in meta
 *    (`strict.reruns`): a restart resumes them.
 * 4. Its outcome updates its entry: `rebased` (new tentative events), `rejected` (the handler
 *    refused on the new state, with its reason) or `failed`.
 * 5. A command is never run twice: when its stream (the last DOOMED_TAIL events) already holds
 *    events of the same command id, it is not run again, and its outcome is `rebased` with those
 *    events. A device restored from a backup holds a command's first run that the authority
 *    rejected long ago, while the run its former self made after the backup was accepted and
 *    comes back from the server: running the command once more applied it twice.
 * 6. An own strict event that lost to another copy of its id or (replica, seq) (core/copies.ts: a
 *    device restored from a backup wrote at a slot its former self had used, and the server's
 *    copy came first in the total order) has left the log by that rule: it is reported and its
 *    command runs again as for a rejection, once the copy kept is held. Before, such a command
 *    was gone with nothing but the ID_CONFLICT error to say so.
 */
import { COMMAND_META, type CommandChain } from '../core/aggregate.ts';
import { CommandRejectedError, StoreClosedError } from '../core/errors.ts';
import type {
  JsonObject,
  JsonValue,
  LocalRecord,
  StoredEvent,
  StoredEventRecord,
} from '../core/events.ts';
import { doomedAfter, NO_HEAD, type StrictRejection } from '../core/strict.ts';
import type { RejectedAppend } from '../core/sync-types.ts';
import type { EventLog } from '../storage/adapter.ts';

/** Rejected appends listed in the status at most (the most recent). */
export const REJECTED_KEPT = 100;
/** Runs of one command against a moving head before it is given up (invariant 3). */
export const MAX_REBASES = 10;

export const REJECTED_META_KEY = 'strict.rejected';
/** Events of a stream's end read for the ones decided after a rejected one. */
const DOOMED_TAIL = 1000;
export const RERUNS_META_KEY = 'strict.reruns';

/** The meta a strict-stream command's events carry for a rebase (invariant 3). */
export const REBASE_META = {
  aggregate: '$aggregate',
  input: '$input',
  rebase: '$rebase',
} as const;

/** A command to run again once `waitFor` is held. */
export interface Rerun {
  aggregate: string;
  stream: string;
  command: string;
  input: JsonValue;
  chain: CommandChain;
  named: boolean;
  rebase: number;
  waitFor: string;
}

export interface StrictRejectionsHost {
  log: EventLog;
  /**
   * Ids the log had before it moved to a fresh one: events under them are own too. Learnt here
   * from the log's stored identity when a rejection names an id not yet in it (learnFormerIds).
   */
  formerIds?: Set<string>;
  now(): number;
  /** Takes the events out and rebases projections (invariant 1); the records taken out. */
  discard(rejections: readonly StrictRejection[]): Promise<LocalRecord[]>;
  /** Runs a command again; rejects as store.execute does. */
  rerun(rerun: Rerun): Promise<StoredEvent<unknown>[]>;
  /** Called when the entries changed. */
  changed(): void;
}

const isObject = (v: JsonValue | undefined): v is JsonObject =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

function parseEntries(value: JsonValue | undefined): RejectedAppend[] {
  if (!Array.isArray(value)) return [];
  return value.filter(
    (e): e is JsonObject =>
      isObject(e) && typeof e.stream === 'string' && Array.isArray(e.eventIds),
  ) as unknown as RejectedAppend[];
}

function parseReruns(value: JsonValue | undefined): Rerun[] {
  if (!Array.isArray(value)) return [];
  return value.filter(
    (r): r is JsonObject =>
      isObject(r) && typeof r.waitFor === 'string' && typeof r.aggregate === 'string',
  ) as unknown as Rerun[];
}

/** The run a rejected command's records call for, or why there is none. */
function rerunOf(
  records: readonly LocalRecord[],
  waitFor: string,
): { rerun: Rerun } | { failed: string } {
  const first = records.reduce((a, b) => (b.event.seq < a.event.seq ? b : a));
  const meta = first.event.meta ?? {};
  const aggregate = meta[REBASE_META.aggregate];
  const command = meta[COMMAND_META.command];
  const commandId = meta[COMMAND_META.commandId];
  if (
    typeof aggregate !== 'string' ||
    typeof command !== 'string' ||
    typeof commandId !== 'string'
  ) {
    return { failed: 'the events do not say which command made them' };
  }
  if (!Object.hasOwn(meta, REBASE_META.input)) {
    return { failed: 'the events do not carry the command input' };
  }
  const rebase =
    typeof meta[REBASE_META.rebase] === 'number' ? (meta[REBASE_META.rebase] as number) : 0;
  if (rebase + 1 > MAX_REBASES) {
    return { failed: `run ${MAX_REBASES + 1} times against a moving stream: given up` };
  }
  const text = (key: string) => (typeof meta[key] === 'string' ? (meta[key] as string) : commandId);
  return {
    rerun: {
      aggregate,
      stream: first.event.stream,
      command,
      input: meta[REBASE_META.input] ?? null,
      chain: {
        commandId,
        correlationId: text(COMMAND_META.correlationId),
        causationId: text(COMMAND_META.causationId),
      },
      named: first.event.id === `${commandId}:0`,
      rebase: rebase + 1,
      waitFor,
    },
  };
}

export class StrictRejections {
  private entries: RejectedAppend[] = [];
  private reruns: Rerun[] = [];
  private running: Promise<void> | undefined;
  private again = false;
  private readonly host: StrictRejectionsHost;

  constructor(host: StrictRejectionsHost) {
    this.host = host;
  }

  async load(): Promise<void> {
    const [entries, reruns] = await Promise.all([
      this.host.log.getMeta(REJECTED_META_KEY),
      this.host.log.getMeta(RERUNS_META_KEY),
    ]);
    this.entries = parseEntries(entries);
    this.reruns = parseReruns(reruns);
  }

  list(): RejectedAppend[] {
    return this.entries.map((e) => structuredClone(e));
  }

  /** Invariants 1, 2: takes the events out, reports them, and queues their commands' runs. */
  async reject(rejections: readonly StrictRejection[]): Promise<void> {
    await this.learnFormerIds(rejections);
    const all = [...rejections, ...(await this.doomed(rejections))];
    await this.report(all, await this.host.discard(all));
  }

  /**
   * Invariant 6: own strict events that left the log as the losing copy of their id or
   * (replica, seq) are reported, and their commands run again, as rejected ones are. Nothing
   * is discarded: the copy kept holds the same id, and may hold the same slot.
   */
  async lostCopies(lost: readonly { event: StoredEventRecord; keptId: string }[]): Promise<void> {
    if (lost.length === 0) return;
    const rejections = lost.map(
      ({ event, keptId }): StrictRejection => ({
        id: event.id,
        replica: event.replica,
        seq: event.seq,
        stream: event.stream,
        version: event.version,
        reason: 'stale',
        head: { version: event.version, id: keptId },
      }),
    );
    await this.report(
      rejections,
      lost.map(({ event }) => ({ pos: 0, event })),
    );
  }

  /** Invariant 2 for the records that left: entries, and the runs their commands call for. */
  private async report(
    all: readonly StrictRejection[],
    left: readonly LocalRecord[],
  ): Promise<void> {
    const removed = [...left].sort((a, b) => a.event.seq - b.event.seq);
    if (removed.length === 0) return;
    // By id and seq: a command's re-run reuses its ids (core/strict.ts invariant 4), and one
    // message may name a late rejection of an earlier run beside that of the run held here.
    const slot = (id: string, seq: number) => `${seq}\u0000${id}`;
    const headOf = new Map(all.map((r) => [slot(r.id, r.seq), r]));
    const groups = new Map<string, LocalRecord[]>();
    for (const record of removed) {
      const commandId = record.event.meta?.[COMMAND_META.commandId];
      const key =
        typeof commandId === 'string' ? `c\u0000${commandId}` : `s\u0000${record.event.stream}`;
      const group = groups.get(key);
      if (group === undefined) groups.set(key, [record]);
      else group.push(record);
    }
    const at = this.host.now();
    for (const [key, records] of groups) {
      const rejection = headOf.get(slot(records[0]!.event.id, records[0]!.event.seq))!;
      const entry: RejectedAppend = {
        stream: records[0]!.event.stream,
        eventIds: records.map((r) => r.event.id),
        reason: rejection.reason,
        at,
      };
      if (key.startsWith('c\u0000')) {
        const meta = records[0]!.event.meta ?? {};
        const planned = rerunOf(records, rejection.head.id);
        entry.command = {
          aggregate: String(meta[REBASE_META.aggregate] ?? ''),
          name: String(meta[COMMAND_META.command] ?? ''),
          commandId: key.slice(2),
          outcome: 'failed' in planned ? 'failed' : 'pending',
        };
        if ('failed' in planned) entry.command.message = planned.failed;
        else this.reruns.push(planned.rerun);
      }
      this.entries.push(entry);
    }
    this.entries = this.entries.slice(-REJECTED_KEPT);
    await this.save();
    this.host.changed();
    this.runDue();
  }

  /**
   * Strict-store.ts invariant 3 across restarts and handles: the ids this log had before a move
   * are kept in its stored identity (one nonce each: core/replica-identity.ts), so a rejection
   * naming an id the store has not seen move (it moved before this store opened, or another tab's
   * handle moved it) is looked up there, once per such id.
   */
  private async learnFormerIds(rejections: readonly StrictRejection[]): Promise<void> {
    const former = this.host.formerIds;
    if (former === undefined) return;
    const me = this.host.log.replicaId;
    if (rejections.every((r) => r.replica === me || former.has(r.replica))) return;
    const identity = await this.host.log.identity();
    for (const id of Object.keys(identity?.nonces ?? {})) if (id !== me) former.add(id);
  }

  /** The own events decided after the rejected ones (core/strict.ts invariant 5). */
  private async doomed(rejections: readonly StrictRejection[]): Promise<StrictRejection[]> {
    const me = this.host.log.replicaId;
    const former = this.host.formerIds;
    const own = rejections.filter((r) => r.replica === me || former?.has(r.replica) === true);
    const out: StrictRejection[] = [];
    for (const stream of new Set(own.map((r) => r.stream))) {
      // Tentative events are the last of their stream: its tail holds them.
      const tail = await this.host.log.readByCursor({ stream, reverse: true, limit: DOOMED_TAIL });
      const records = tail.reverse().map((r) => r.event);
      // Each replica id's chain apart (strict-store.ts invariant 3: a former id is own too).
      for (const replica of new Set(own.filter((r) => r.stream === stream).map((r) => r.replica))) {
        const named = own.filter((r) => r.stream === stream && r.replica === replica);
        out.push(...doomedAfter(named, records, replica));
      }
    }
    return out;
  }

  /** Runs the queued commands whose head is held now (invariant 3); call after every ingest. */
  runDue(): void {
    if (this.reruns.length === 0) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    // Assigned before the body's first await returns: the body's finally sees it.
    let running: Promise<void> | undefined;
    running = (async () => {
      try {
        do {
          this.again = false;
          await this.runHeld();
        } while (this.again);
      } finally {
        // In the same turn as the last check of `again` (see strict-sync.ts recount).
        if (this.running === running) this.running = undefined;
      }
    })().catch(() => {});
    this.running = running;
  }

  /** Resolves once no run is going on (tests and close). */
  async settled(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  private async runHeld(): Promise<void> {
    const waiting = this.reruns;
    if (waiting.length === 0) return;
    // A stream the authority holds nothing of (NO_HEAD) waits for nothing: no id to look up.
    const ids = waiting.map((r) => r.waitFor).filter((id) => id !== NO_HEAD.id);
    const found = ids.length === 0 ? [] : await this.host.log.getByIds(ids);
    const held = new Set(ids.filter((_, i) => found[i] !== undefined));
    const due = waiting.filter((r) => r.waitFor === NO_HEAD.id || held.has(r.waitFor));
    if (due.length === 0) return;
    for (const rerun of due) {
      // A store closing meanwhile keeps the run for its next start.
      if (!(await this.runOne(rerun))) return;
      this.reruns = this.reruns.filter((r) => r !== rerun);
      await this.save();
      this.host.changed();
    }
  }

  /** Runs one command again and records how it went; false when the store is closing. */
  private async runOne(rerun: Rerun): Promise<boolean> {
    const entry = [...this.entries]
      .reverse()
      .find(
        (e) => e.command?.commandId === rerun.chain.commandId && e.command.outcome === 'pending',
      );
    const outcome = entry?.command;
    const ran = await this.ranAlready(rerun);
    if (ran.length > 0) {
      if (outcome !== undefined) {
        outcome.outcome = 'rebased';
        outcome.eventIds = ran;
      }
      return true;
    }
    try {
      const events = await this.host.rerun(rerun);
      if (outcome !== undefined) {
        outcome.outcome = 'rebased';
        outcome.eventIds = events.map((e) => e.id);
      }
    } catch (error) {
      if (error instanceof StoreClosedError) return false;
      if (outcome === undefined) return true;
      if (error instanceof CommandRejectedError) {
        outcome.outcome = 'rejected';
        outcome.reason = error.reason;
        outcome.message = error.message;
      } else {
        outcome.outcome = 'failed';
        outcome.message = error instanceof Error ? error.message : String(error);
      }
    }
    return true;
  }

  /** Invariant 5: the ids of the events of the command that the stream's end holds. */
  private async ranAlready(rerun: Rerun): Promise<string[]> {
    const tail = await this.host.log.readByCursor({
      stream: rerun.stream,
      reverse: true,
      limit: DOOMED_TAIL,
    });
    return tail
      .filter((r) => r.event.meta?.[COMMAND_META.commandId] === rerun.chain.commandId)
      .reverse()
      .map((r) => r.event.id);
  }

  private async save(): Promise<void> {
    await Promise.all([
      this.host.log.setMeta(REJECTED_META_KEY, this.entries as unknown as JsonValue),
      this.host.log.setMeta(RERUNS_META_KEY, this.reruns as unknown as JsonValue),
    ]);
  }
}
