/**
 * Joining from a snapshot within a session (protocol.ts invariant 10), both halves: the side that
 * serves snapshots answers a `join`, the joining side waits for that answer and installs it
 * before it pulls. session.ts calls these; the decisions are core/space-join.ts's.
 *
 * Invariants:
 * 1. A serving side answers each `join` exactly once, before its pull: with the snapshot when
 *    one matches and its message fits both the asker's `maxBytes` and what this side sends at
 *    once, else with none. A failure to find one is answered with none, never with an error: the
 *    device replays, as it would from an older server.
 * 2. A joining side installs a snapshot only when it holds every projection it asked for at its
 *    version (core/space-join.ts invariant 2), whatever the peer said; a refused or failed
 *    install leaves the log as it was, and the pull goes out all the same (a full catch-up).
 */
import { utf8Length } from '../core/json.ts';
import { matchSnapshot } from '../core/space-join.ts';
import type { ProjectionVersion, SpaceSnapshot } from '../core/space-snapshot.ts';
import { encodeMessage } from './messages.ts';
import type { HelloMessage, JoinRequest, SnapshotMessage } from './protocol.ts';

/** A snapshot as a serving side finds it, with the id of its event at `pos`. */
export interface FoundSnapshot {
  snapshot: SpaceSnapshot;
  id?: string;
}

/** The joining side's part (PeerSessionOptions.join). */
export interface JoinOptions {
  /** Every projection this side runs, at its version. */
  projections: readonly ProjectionVersion[];
  /** The largest `snapshot` message taken (default core/space-join.ts DEFAULT_JOIN_BYTES). */
  maxBytes: number;
  /**
   * Lays the snapshot under the log and sets this side's checkpoint of `peer` to (its epoch,
   * `snapshot.pos`, `id`), all at once; false when the log is no longer empty (it replays).
   */
  install(snapshot: SpaceSnapshot, peer: HelloMessage, id: string | undefined): Promise<boolean>;
}

/** The serving side's part (PeerSessionOptions.snapshotFor). */
export type SnapshotFinder = (
  wanted: readonly ProjectionVersion[],
) => Promise<FoundSnapshot | undefined>;

/** The text of the answer to `join` (invariant 1); `cap`: the most this side sends at once. */
export async function answerJoin(
  find: SnapshotFinder,
  join: JoinRequest,
  cap: number,
): Promise<{ text: string; sent: boolean }> {
  const none = encodeMessage({ type: 'snapshot' });
  let found: FoundSnapshot | undefined;
  try {
    found = await find(join.projections);
  } catch {
    return { text: none, sent: false };
  }
  if (found === undefined || matchSnapshot(found.snapshot, join.projections) === undefined) {
    return { text: none, sent: false };
  }
  const message: SnapshotMessage = { type: 'snapshot', snapshot: found.snapshot };
  if (found.id !== undefined) message.id = found.id;
  const text = encodeMessage(message);
  // text.length bounds the UTF-8 size from below: the cheap check first.
  const limit = Math.min(join.maxBytes, cap);
  if (text.length > limit || utf8Length(text) > limit) {
    return { text: none, sent: false };
  }
  return { text, sent: true };
}

/** What the joining side does with the answer (invariant 2): whether it installed it. */
export async function takeSnapshot(
  join: JoinOptions,
  message: SnapshotMessage,
  peer: HelloMessage,
): Promise<boolean> {
  const snapshot = message.snapshot;
  if (snapshot === undefined) return false;
  if (matchSnapshot(snapshot, join.projections) === undefined) return false;
  return join.install(snapshot, peer, message.id);
}
