/**
 * A fresh store joining its space from a server snapshot (StoreOptions.join,
 * docs/storage-growth.md "A new device joins from a snapshot"): what it asks the server for, and
 * how it lays the answer under its log (storage/adapter.ts invariant 7). The sync side calls
 * these through StoreInternals (joinRequest, installSnapshot).
 *
 * Invariants:
 * 1. A store asks only when the app opted in (`join: 'snapshot'`), its log can take a base, its
 *    log is empty (core/space-join.ts invariant 1), and it has no encryption key: a server folds
 *    what it holds, and an encrypted space's data is sealed to it, so its states would be wrong.
 * 2. The snapshot is trusted: it is the server's fold of events this device never gets, so no
 *    signature of theirs is checked here (StoreOptions.join says so). Every event received after
 *    it is verified as usual, and so is every history page read below the horizon.
 * 3. Everything is written in one installBase: the horizon, vector and stream heads; each
 *    projection's state as its snapshot at the horizon (position 0: no event of this log is in
 *    it), with its version recorded so the runtime keeps it; and the server's checkpoint, so the
 *    pull that follows resumes after the snapshot's position. Then each runtime loads it.
 */
import type { JsonValue } from '../core/events.ts';
import { projectionVersionKey } from '../core/projection.ts';
import { matchSnapshot } from '../core/space-join.ts';
import type { ProjectionVersion, SpaceSnapshot } from '../core/space-snapshot.ts';
import type { EventLog, LogBase } from '../storage/adapter.ts';

/** StoreOptions.join: 'snapshot' to join from a server snapshot; default 'replay'. */
export type JoinMode = 'snapshot' | 'replay';

export interface JoinHost {
  readonly log: EventLog;
  readonly mode: JoinMode | undefined;
  readonly encrypted: boolean;
  /** Every projection the store runs, at its version. */
  projections(): ProjectionVersion[];
  /** Each runtime loads the installed snapshot (projection-runtime.ts reload). */
  reload(): Promise<void>;
}

/** The projections to ask for (invariant 1), or undefined: replay. */
export async function joinRequest(host: JoinHost): Promise<ProjectionVersion[] | undefined> {
  const { log } = host;
  if (host.mode !== 'snapshot' || host.encrypted || log.installBase === undefined) return undefined;
  const [head, horizon] = await Promise.all([log.headPos(), log.horizon?.()]);
  if (head > 0 || horizon !== undefined) return undefined;
  return host.projections();
}

/** Where the server's checkpoint is kept: sync/store-log.ts CHECKPOINT_META_PREFIX + its id. */
export interface CheckpointMeta {
  key: string;
  value: JsonValue;
}

/** Lays `snapshot` under the log (invariant 3); false when the log took nothing (replay). */
export async function installSnapshot(
  host: JoinHost,
  snapshot: SpaceSnapshot,
  checkpoint: CheckpointMeta,
): Promise<boolean> {
  const { log } = host;
  // An empty space: nothing to lay, the pull from 0 is the whole (empty) log.
  if (snapshot.cursor === '' || log.installBase === undefined) return false;
  const wanted = host.projections();
  const states = matchSnapshot(snapshot, wanted);
  if (states === undefined) return false;
  const meta: Record<string, JsonValue> = { [checkpoint.key]: checkpoint.value };
  for (const { name, version } of wanted) meta[projectionVersionKey(name)] = version;
  const base: LogBase = {
    horizon: snapshot.cursor,
    vector: snapshot.vector,
    streams: snapshot.streams,
    snapshots: states.map((s) => ({
      projection: s.name,
      version: s.version,
      cursor: snapshot.cursor,
      pos: 0,
      count: snapshot.count,
      state: s.state,
    })),
    meta,
  };
  if (!(await log.installBase(base))) return false;
  await host.reload();
  return true;
}
