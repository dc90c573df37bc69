/**
 * Joining from a snapshot within a session (protocol.ts invariant 10), both halves: the side that
 * serves snapshots answers a `join`, the joining side waits for that answer and installs it
 * before it pulls. session.ts calls these; the decisions are core/space-join.ts's.
 *
 * Invariants:
 * 1. A serving side answers each `join` exactly once, before its pull: with the snapshot when
 *    one matches and its message fits both the asker's `maxBytes` and what this side sends at
 *    once; else, to an asker that takes parts, with the snapshot in parts when its text fits the
 *    asker's `maxBytes` (snapshot-parts.ts); else with none. A failure to find one is answered
 *    with none, never with an error: the device replays, as it would from an older server.
 * 2. A joining side installs a snapshot only when it holds every projection it asked for at its
 *    version (core/space-join.ts invariant 2), whatever the peer said; a refused or failed
 *    install leaves the log as it was, and the pull goes out all the same (a full catch-up).
 */
import { utf8Length } from '../core/json.ts';
import { matchSnapshot } from '../core/space-join.ts';
import type { ProjectionVersion, SpaceSnapshot } from '../core/space-snapshot.ts';
import { encodeMessage } from './messages.ts';
import type { HelloMessage, JoinRequest, SnapshotMessage } from './protocol.ts';
import { splitSnapshotText } from './snapshot-parts.ts';

/** A snapshot as a serving side finds it, with the id of its event at `pos`. */
export interface FoundSnapshot {
  snapshot: SpaceSnapshot;
  id?: string;
}

/** The joining side's part (PeerSessionOptions.join). */
export interface JoinOptions {
  /** Every projection this side runs, at its version. */
  projections: readonly ProjectionVersion[];
  /** The largest snapshot taken (default core/space-join.ts DEFAULT_JOIN_BYTES). */
  maxBytes: number;
  /**
   * The longest wait for the next part of a snapshot sent in parts (ms): past it the device
   * gives up on the snapshot (SNAPSHOT_INVALID) and replays. Default SNAPSHOT_PART_TIMEOUT_MS.
   */
  partTimeoutMs?: number;
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

/** How long a joining side waits for the next part of a snapshot sent in parts (ms). */
export const SNAPSHOT_PART_TIMEOUT_MS = 30_000;

/** How a serving side sends within its means: at once, and per message to this peer. */
export interface AnswerLimits {
  /** The most this side sends at once (bytes). */
  cap: number;
  /** The largest message the peer takes (its maxMessageBytes). */
  peerMessageBytes: number;
}

/**
 * The texts of the answer to `join`, to be sent in order (invariant 1): one `snapshot` message,
 * or one announcing parts and the parts.
 */
export async function answerJoin(
  find: SnapshotFinder,
  join: JoinRequest,
  limits: AnswerLimits,
): Promise<{ texts: string[]; sent: boolean }> {
  const none = { texts: [encodeMessage({ type: 'snapshot' })], sent: false };
  let found: FoundSnapshot | undefined;
  try {
    found = await find(join.projections);
  } catch {
    return none;
  }
  if (found === undefined || matchSnapshot(found.snapshot, join.projections) === undefined) {
    return none;
  }
  const message: SnapshotMessage = { type: 'snapshot', snapshot: found.snapshot };
  if (found.id !== undefined) message.id = found.id;
  const text = encodeMessage(message);
  const limit = Math.min(join.maxBytes, limits.cap);
  if (fits(text, limit)) return { texts: [text], sent: true };
  if (join.parts !== true) return none;
  const body = JSON.stringify(found.snapshot);
  if (!fits(body, join.maxBytes)) return none;
  const parts = splitSnapshotText(body, Math.min(limits.peerMessageBytes, limits.cap));
  const header: SnapshotMessage = { type: 'snapshot', parts: parts.length, length: body.length };
  if (found.id !== undefined) header.id = found.id;
  return { texts: [encodeMessage(header), ...parts], sent: true };
}

/** Whether `text` is at most `limit` UTF-8 bytes (its length bounds that from below: cheap first). */
const fits = (text: string, limit: number): boolean =>
  text.length <= limit && utf8Length(text) <= limit;

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
