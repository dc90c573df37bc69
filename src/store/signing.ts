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
 *    extends it. Signing is deterministic (Ed25519, RFC 8032, and a chain of digests), so two
 *    passes over the same events, in two tabs or after a crash, write the same bytes.
 * 3. A re-stamp rewrites only events no peer holds, and strips their signatures and those of
 *    every own event after them (core/restamp.ts invariant 7): the prefix of invariant 2 holds.
 * 4. Only replica ids derived from this log's identity are signed (core/integrity.ts invariant
 *    2); an older, random id is left unsigned (what it wrote before signing existed).
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

export class Signer {
  private readonly log: EventLog;
  private readonly privateKey: CryptoKey;
  private identity: StoredIdentity;
  /** Replica ids of this log not derived from its key (invariant 4): never signed. */
  private readonly unsignable = new Set<string>();
  /** One pass at a time (invariant 2: a second one would only redo the first's work). */
  private running: Promise<unknown> = Promise.resolve();

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
    const pass = this.running.then(() => this.sign(records));
    this.running = pass.catch(() => {});
    return pass;
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
      if (pending.size === 0) continue;
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
      const slots: { replica: string; seq: number }[] = [];
      for (let s = top; s >= Math.max(1, top - LOOKBACK + 1); s--) slots.push({ replica, seq: s });
      const found = await this.log.eventsAtSlots(slots);
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

function headOf(event: StoredEventRecord): ChainHead {
  return { seq: event.seq, id: event.id, digest: eventDigest(event) };
}
