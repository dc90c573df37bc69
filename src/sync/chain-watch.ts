/**
 * What a client store learns about other replicas' chains (core/integrity.ts invariant 6), kept
 * in its log's meta and shown in SyncStatus.tampered:
 *
 * - a gap: an event arrived whose link names an event never received here. It stays open until
 *   that event arrives (then it was reordered on the way: a finding), or an event with its id
 *   arrives from another slot (it lost a copy collision: explained, no finding), and while open
 *   it is shown as `missing-link` (dropped on the way);
 * - a refusal: an event this store refused (TAMPERED, the signature or key failed).
 *
 * Invariants:
 * 1. Gaps are written before the batch that opened them is stored (one meta write per batch that
 *    changes them); a crash between loses nothing: the next delivery opens them again.
 * 2. Bounded: at most MAX_KEPT gaps and MAX_KEPT findings, the most recent.
 */
import type { JsonValue, StoredEventRecord } from '../core/events.ts';
import {
  eventDigest,
  isChained,
  type LinkCheck,
  linkHash,
  TAMPER_REASONS,
  type TamperReason,
} from '../core/integrity.ts';
import type { TamperedEvent } from '../core/sync-types.ts';
import type { EventLog } from '../storage/adapter.ts';

export const CHAIN_META_KEY = 'sync.chain';
const MAX_KEPT = 100;

interface Gap {
  replica: string;
  seq: number;
  id: string;
  hash: string;
  /** The event whose link found it missing. */
  after: string;
  at: number;
}

function isGap(value: unknown): value is Gap {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.replica === 'string' &&
    typeof v.seq === 'number' &&
    typeof v.id === 'string' &&
    typeof v.hash === 'string' &&
    typeof v.after === 'string' &&
    typeof v.at === 'number'
  );
}

function isFinding(value: unknown): value is TamperedEvent {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.eventId === 'string' &&
    typeof v.replica === 'string' &&
    typeof v.seq === 'number' &&
    TAMPER_REASONS.includes(v.reason as TamperReason) &&
    typeof v.at === 'number'
  );
}

export class ChainWatch {
  private readonly log: EventLog;
  private readonly now: () => number;
  private gaps: Gap[] = [];
  private findings: TamperedEvent[] = [];
  private loaded: Promise<void> | undefined;
  private readonly listeners = new Set<() => void>();

  constructor(log: EventLog, now: () => number) {
    this.log = log;
    this.now = now;
  }

  private load(): Promise<void> {
    this.loaded ??= this.log.getMeta(CHAIN_META_KEY).then((value) => {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return;
      const { gaps, findings } = value as { gaps?: unknown; findings?: unknown };
      if (Array.isArray(gaps)) this.gaps = gaps.filter(isGap);
      if (Array.isArray(findings)) this.findings = findings.filter(isFinding);
    });
    return this.loaded;
  }

  /** Called when what tampered() lists changed. Returns unsubscribe. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The findings, then the open gaps (as `missing-link` of the event after each). */
  tampered(): TamperedEvent[] {
    const open = this.gaps.map(
      (g): TamperedEvent => ({
        eventId: g.after,
        replica: g.replica,
        seq: g.seq + 1,
        reason: 'missing-link',
        missing: { seq: g.seq, id: g.id },
        at: g.at,
      }),
    );
    return [...this.findings, ...open];
  }

  /** Ready: what meta holds is read. */
  async ready(): Promise<void> {
    await this.load();
  }

  /** An event refused for its signature or key (session-receiver.ts invariant 5). */
  async refused(event: StoredEventRecord, reason: TamperReason, peer?: string): Promise<void> {
    await this.load();
    const finding: TamperedEvent = {
      eventId: event.id,
      replica: event.replica,
      seq: event.seq,
      reason,
      at: this.now(),
    };
    if (peer !== undefined) finding.peer = peer;
    if (this.findings.some((f) => f.eventId === event.id && f.reason === reason)) return;
    this.findings = [...this.findings, finding].slice(-MAX_KEPT);
    await this.save();
  }

  /**
   * A verified batch, before it is stored (invariant 1): opens a gap for each link whose event
   * is missing and not explained, and closes the gaps the batch fills or explains.
   */
  async note(
    events: readonly StoredEventRecord[],
    links: readonly LinkCheck[],
    peer: string | undefined,
  ): Promise<void> {
    await this.load();
    if (links.length === 0 && this.gaps.length === 0) return;
    let changed = false;
    for (const l of links) {
      if (l.status !== 'reordered') continue;
      const finding: TamperedEvent = {
        eventId: l.link.id,
        replica: l.event.replica,
        seq: l.link.seq,
        reason: 'reordered',
        at: this.now(),
      };
      if (peer !== undefined) finding.peer = peer;
      this.findings = [...this.findings, finding].slice(-MAX_KEPT);
      changed = true;
    }
    const batchIds = new Set<string>(events.map((e) => e.id));
    const missing = links.filter((l) => l.status === 'missing' && !batchIds.has(l.link.id));
    if (missing.length > 0) {
      const held = await this.log.getByIds(missing.map((l) => l.link.id));
      const at = this.now();
      missing.forEach((l, i) => {
        // Explained: its id is held at another slot (it lost a copy collision).
        if (held[i] !== undefined) return;
        if (this.gaps.some((g) => g.replica === l.event.replica && g.seq === l.link.seq)) return;
        this.gaps = [
          ...this.gaps,
          {
            replica: l.event.replica,
            seq: l.link.seq,
            id: l.link.id,
            hash: l.link.hash,
            after: l.event.id,
            at,
          },
        ].slice(-MAX_KEPT);
        changed = true;
      });
    }
    if (this.gaps.length > 0) {
      const kept: Gap[] = [];
      for (const gap of this.gaps) {
        const filler = events.find(
          (e) => (e.replica === gap.replica && e.seq === gap.seq) || e.id === gap.id,
        );
        if (filler === undefined) {
          kept.push(gap);
          continue;
        }
        changed = true;
        const same =
          filler.replica === gap.replica &&
          filler.seq === gap.seq &&
          isChained(filler) &&
          linkHash(eventDigest(filler)) === gap.hash;
        if (!same) continue; // another copy: a collision explains the gap
        const finding: TamperedEvent = {
          eventId: filler.id,
          replica: filler.replica,
          seq: filler.seq,
          reason: 'reordered',
          at: this.now(),
        };
        if (peer !== undefined) finding.peer = peer;
        this.findings = [...this.findings, finding].slice(-MAX_KEPT);
      }
      this.gaps = kept;
    }
    if (changed) await this.save();
  }

  private async save(): Promise<void> {
    const value = {
      gaps: this.gaps.map((g) => ({ ...g })),
      findings: this.findings.map((f) => ({ ...f })),
    } as unknown as JsonValue;
    await this.log.setMeta(CHAIN_META_KEY, value);
    for (const listener of [...this.listeners]) listener();
  }
}
