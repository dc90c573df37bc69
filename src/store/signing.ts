/**
 * The store's signer (core/integrity.ts): it signs this replica's own events right before they
 * leave it, so that the append path stays one IndexedDB transaction (WebCrypto cannot run inside
 * one) and the tabs sharing the replica never race for the chain.
 *
 * Invariants:
 * 1. Nothing leaves unsigned: every page of records sync reads to send goes through signPage,
 *    which signs the own events in it (and any unsigned own event before them) and writes the
 *    signed copies to the log; sync then reads the page again and sends it only up to the first
 *    own event still unsigned (sync/store-log.ts).
 * 2. A replica's signed own events are a prefix of its own events in seq order; the signer
 *    extends it. The chain is deterministic (digests), and so is a signature (Ed25519, RFC
 *    8032): two passes over the same events, in two tabs or after a crash, write the same links
 *    and, where they start at the same event, the same trees (core/sign-trees.ts). Passes that
 *    group the events otherwise write other `$sig` and `$tree` values for the same digests:
 *    each holds, and copies that differ only in them are one copy (core/copies.ts invariant 6).
 * 3. A re-stamp rewrites only events no peer holds, and strips their signatures and those of
 *    every own event after them (core/restamp.ts invariant 7): the prefix of invariant 2 holds.
 * 4. Only replica ids derived from this log's identity are signed (core/integrity.ts invariant
 *    2); an older, random id is left unsigned (what it wrote before signing existed).
 * 5. Signing also runs in the background, at quiet moments (no append for BACKGROUND_QUIET_MS),
 *    so that a reconnect sends events already signed instead of signing them all then: an
 *    Ed25519 signature costs more than an append (~150 µs in Chromium, ~30 in Node), though
 *    one covers up to 16 events (core/sign-trees.ts). It never
 *    competes with appends: it goes up the own events in seq order, BACKGROUND_CHUNK at a time
 *    (each step one pass of invariant 2; sync's passes take turns with it), and an append stops
 *    it after the step under way, until the next quiet moment. Appends that never pause are
 *    signed as they leave. It is only ahead of invariant 1, never instead of it: a failed,
 *    stopped or cancelled background pass leaves the sending path to sign, as it always did.
 */
import type { LocalRecord, StoredEventRecord } from '../core/events.ts';
import { type ChainHead, eventDigest, isChained, isSigned, signEvents } from '../core/integrity.ts';
import { isErasedCopy } from '../core/keyring-events.ts';
import {
  generateSigningKey,
  importSigningKey,
  type SigningIdentity,
  type StoredIdentity,
} from '../core/replica-identity.ts';
import type { EventLog } from '../storage/adapter.ts';

/** Own events looked up at once while searching back for the chain's head. */
const LOOKBACK = 32;
/** Invariant 5: no append for this long is a quiet moment, when the background signs. */
const BACKGROUND_QUIET_MS = 50;
/** Own events one background step signs and writes back: an append waits for at most one. */
const BACKGROUND_CHUNK = 100;

export class Signer {
  private readonly log: EventLog;
  private readonly privateKey: CryptoKey;
  private identity: StoredIdentity;
  /** Replica ids of this log not derived from its key (invariant 4): never signed. */
  private readonly unsignable = new Set<string>();
  /** One pass at a time (invariant 2: a second one would only redo the first's work). */
  private running: Promise<unknown> = Promise.resolve();
  /** Invariant 5: the pending background start (at the next quiet moment). */
  private timer: ReturnType<typeof setTimeout> | undefined;
  /** The background run going on; `stopped`: an append came since it started. */
  private background: Promise<void> | undefined;
  private stopped = false;
  /** A quiet moment came while a stopped run was finishing its step: start again after it. */
  private restart = false;
  /** Appends under way (appending()). */
  private appends = 0;
  /** Per replica id, the highest own seq below which everything is known signed. */
  private readonly signedThrough = new Map<string, number>();
  private closed = false;

  private constructor(log: EventLog, privateKey: CryptoKey, identity: StoredIdentity) {
    this.log = log;
    this.privateKey = privateKey;
    this.identity = identity;
  }

  /** The log's signer; a log without an identity takes a fresh key first. */
  static async open(log: EventLog): Promise<Signer> {
    let identity = await log.identity();
    if (identity === undefined) {
      await log.adoptIdentity(await generateSigningKey());
      identity = await log.identity();
    }
    if (identity === undefined) throw new Error('the log kept no signing identity');
    return new Signer(log, await importSigningKey(identity), identity);
  }

  get publicKey(): string {
    return this.identity.publicKey;
  }

  /** The `$key` of one of this log's replica ids, as last read (for verifying them back). */
  keyTextOf(replica: string): string | undefined {
    const nonce = this.identity.nonces[replica];
    return nonce === undefined ? undefined : `${this.identity.publicKey}.${nonce}`;
  }

  /** Invariant 4: the identity of a replica id of this log, if it is derived from its key. */
  private async identityOf(replica: string): Promise<SigningIdentity | undefined> {
    let nonce = this.identity.nonces[replica];
    if (nonce === undefined) {
      // A fork (core/append.ts invariant 8) gave the log a new id since we read the identity.
      const fresh = await this.log.identity();
      if (fresh !== undefined) this.identity = fresh;
      nonce = this.identity.nonces[replica];
    }
    if (nonce === undefined) {
      this.unsignable.add(replica);
      return undefined;
    }
    return {
      replicaId: replica,
      privateKey: this.privateKey,
      keyText: `${this.identity.publicKey}.${nonce}`,
    };
  }

  /** Whether the page holds own events not signed yet. */
  needsSigning(records: readonly LocalRecord[]): boolean {
    return this.firstUnsigned(records) >= 0;
  }

  /** Index of the page's first own event not signed yet, or -1. */
  firstUnsigned(records: readonly LocalRecord[]): number {
    return records.findIndex((r) => unsigned(r.event) && this.mayOwn(r.event.replica));
  }

  /**
   * Invariant 1: stores the page's own events signed. The caller reads the page again to send
   * it: the log may have moved while WebCrypto worked (sync/store-log.ts readByPos).
   */
  signPage(records: readonly LocalRecord[]): Promise<void> {
    if (!this.needsSigning(records)) return Promise.resolve();
    return this.enqueue(() => this.sign(records));
  }

  /**
   * Invariant 5: an append begins. The background stops after its step and waits until every
   * append under way is done (a large append outlasts the quiet time); the returned function
   * ends it.
   */
  appending(): () => void {
    this.appends += 1;
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.appends -= 1;
      if (this.appends === 0) this.signSoon();
    };
  }

  /** Invariant 5: own events were appended; the background signs them at the next quiet moment. */
  signSoon(): void {
    if (this.closed || this.appends > 0) return;
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(() => this.startBackground(), BACKGROUND_QUIET_MS);
    // A store left open must not keep a Node process alive for this.
    (this.timer as { unref?: () => void }).unref?.();
  }

  /** Own events were re-stamped or rewritten (invariant 3): what was known signed may not be. */
  forget(): void {
    this.signedThrough.clear();
  }

  /** Settles once no background signing is scheduled or running (tests, benchmarks). */
  async idle(): Promise<void> {
    while (this.timer !== undefined || this.background !== undefined) {
      if (this.timer !== undefined && this.background === undefined) {
        clearTimeout(this.timer);
        this.startBackground();
      }
      await this.background;
    }
  }

  /** Stops background signing and waits for a step under way (before the log closes). */
  async close(): Promise<void> {
    this.closed = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.background;
    await this.running;
  }

  private startBackground(): void {
    this.timer = undefined;
    if (this.closed || this.appends > 0) return;
    if (this.background !== undefined) {
      this.restart = true;
      return;
    }
    this.stopped = false;
    const run = async () => {
      while (!this.closed && !this.stopped && (await this.enqueue(() => this.backgroundStep()))) {}
    };
    this.background = run()
      // Invariant 5: whatever stopped it (the log closed under it, a full disk), the sending
      // path signs what is left when it reads it.
      .catch(() => {})
      .finally(() => {
        this.background = undefined;
        if (this.restart) {
          this.restart = false;
          if (this.timer === undefined) this.startBackground();
        }
      });
  }

  private enqueue<T>(step: () => Promise<T>): Promise<T> {
    const pass = this.running.then(step);
    this.running = pass.catch(() => {});
    return pass;
  }

  /** Signs the next BACKGROUND_CHUNK own events of the current replica id; true if more remain. */
  private async backgroundStep(): Promise<boolean> {
    if (this.closed) return false;
    const replica = this.log.replicaId;
    const identity = this.mayOwn(replica) ? await this.identityOf(replica) : undefined;
    if (identity === undefined) return false;
    const top = await this.log.ownSeq();
    const from = this.signedThrough.get(replica) ?? (await this.signedPrefix(replica, top));
    const to = Math.min(top, from + BACKGROUND_CHUNK);
    if (to > from) {
      // Read within this pass (invariant 2): what it finds unsigned is still unsigned, so it is
      // signed as read, without sign()'s second read of a page read outside a pass.
      const pending = new Map<number, LocalRecord>();
      for (const r of await this.log.eventsAtSlots(slotsDown(replica, to, to - from))) {
        if (r !== undefined && unsigned(r.event)) pending.set(r.event.seq, r);
      }
      await this.signHeld(replica, identity, pending);
    }
    this.signedThrough.set(replica, to);
    return to < top;
  }

  /** The highest own seq at or below `top` under which every own event is signed (invariant 2). */
  private async signedPrefix(replica: string, top: number): Promise<number> {
    let window = LOOKBACK;
    for (let high = top; high >= 1; high -= window, window = Math.min(window * 2, 4096)) {
      const slots = slotsDown(replica, high, window);
      const found = await this.log.eventsAtSlots(slots);
      for (const r of found) if (r !== undefined && !unsigned(r.event)) return r.event.seq;
      // Trimmed here (a partial replica) means acknowledged by a server: sent, so signed.
      if (
        found.every((r) => r === undefined) &&
        (await this.log.trimmedSlots?.([slots[0]!]))?.[0]
      ) {
        return high;
      }
    }
    return 0;
  }

  /** A replica id of this log (the current one, or one before a fork) that it can sign for. */
  private mayOwn(replica: string): boolean {
    if (this.identity.nonces[replica] !== undefined) return true;
    return replica === this.log.replicaId && !this.unsignable.has(replica);
  }

  private async sign(records: readonly LocalRecord[]): Promise<void> {
    const replicas = new Set(records.filter((r) => unsigned(r.event)).map((r) => r.event.replica));
    for (const replica of replicas) {
      const identity = await this.identityOf(replica);
      if (identity === undefined) continue;
      const inPage = records.filter((r) => r.event.replica === replica && unsigned(r.event));
      // A previous pass may have signed some of them since the page was read, or an erasure
      // (a crypto-shred) replaced one: only what is still held unsigned is signed.
      const fresh = await this.log.eventsAtSlots(inPage.map((r) => r.event));
      const pending = new Map<number, LocalRecord>();
      inPage.forEach((r, i) => {
        const now = fresh[i];
        if (now?.pos === r.pos && now.event.id === r.event.id && unsigned(now.event)) {
          pending.set(now.event.seq, now);
        }
      });
      await this.signHeld(replica, identity, pending);
    }
  }

  /** Signs a replica's own events held unsigned, by seq, and any unsigned right before them. */
  private async signHeld(
    replica: string,
    identity: SigningIdentity,
    pending: Map<number, LocalRecord>,
  ): Promise<void> {
    if (pending.size === 0) return;
    const { before, head } = await this.unsignedBefore(replica, Math.min(...pending.keys()));
    for (const r of before) pending.set(r.event.seq, r);
    const ordered = [...pending.values()].sort((a, b) => a.event.seq - b.event.seq);
    const { signed } = await signEvents(
      ordered.map((r) => r.event),
      identity,
      head,
    );
    await this.log.replaceOwn(ordered.map((r, i) => ({ pos: r.pos, event: signed[i]! })));
  }

  /**
   * The replica's unsigned own events below `seq` (invariant 2: they come right before it), and
   * the head of its chain under them: the last signed event in the chain, if any.
   */
  private async unsignedBefore(
    replica: string,
    seq: number,
  ): Promise<{ before: LocalRecord[]; head: ChainHead | undefined }> {
    const before: LocalRecord[] = [];
    let top = seq - 1;
    while (top >= 1) {
      const found = await this.log.eventsAtSlots(slotsDown(replica, top, LOOKBACK));
      for (const r of found) {
        if (r === undefined) continue; // a discarded or lost seq: no event there
        if (unsigned(r.event)) {
          before.push(r);
          continue;
        }
        if (isChained(r.event)) return { before, head: headOf(r.event) };
      }
      top -= LOOKBACK;
    }
    return { before, head: undefined };
  }
}

/**
 * An own event the signer has yet to sign. Not an erased StreamKey (a crypto-shred, core/
 * keyring-events.ts): every replica erases to one copy, which nobody signs; it stays a link of
 * the chain as it is.
 */
function unsigned(event: StoredEventRecord): boolean {
  return !isSigned(event) && !isErasedCopy(event);
}

/** A replica's slots from `high` down, `count` of them at most (none below seq 1). */
function slotsDown(
  replica: string,
  high: number,
  count: number,
): { replica: string; seq: number }[] {
  const slots: { replica: string; seq: number }[] = [];
  for (let seq = high; seq >= Math.max(1, high - count + 1); seq--) slots.push({ replica, seq });
  return slots;
}

function headOf(event: StoredEventRecord): ChainHead {
  return { seq: event.seq, id: event.id, digest: eventDigest(event) };
}
