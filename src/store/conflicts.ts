/**
 * Concurrent appends to one stream (store.conflicts()): a stream version that events of more
 * than one replica hold. Reads each stream in pages of the total order, so a long stream is never
 * held at once beyond its conflicting records. The `$keyring` stream is left out unless named.
 */
import type { LocalRecord } from '../core/events.ts';
import { KEYRING_STREAM } from '../core/sealing.ts';
import type { EventLog } from '../storage/adapter.ts';

const CONFLICT_PAGE = 500;

export interface FoundConflict {
  stream: string;
  version: number;
  /** In the total order. */
  records: LocalRecord[];
}

/** The conflicts of `stream`, or of every stream the log marks as having one. */
export async function findConflicts(
  log: Pick<EventLog, 'conflictStreams' | 'readByCursor'>,
  stream?: string,
): Promise<FoundConflict[]> {
  // The keyring's events are appended by every replica at once by design: not the app's
  // conflicts (read-query.ts invariant 3), unless asked for.
  const streams =
    stream !== undefined
      ? [stream]
      : (await log.conflictStreams()).filter((name) => name !== KEYRING_STREAM);
  const out: FoundConflict[] = [];
  for (const name of streams) {
    const byVersion = new Map<number, LocalRecord[]>();
    let after: string | undefined;
    for (;;) {
      const page = await log.readByCursor(
        after === undefined
          ? { stream: name, limit: CONFLICT_PAGE }
          : { stream: name, after, limit: CONFLICT_PAGE },
      );
      for (const record of page) {
        const list = byVersion.get(record.event.version) ?? [];
        list.push(record);
        byVersion.set(record.event.version, list);
      }
      if (page.length < CONFLICT_PAGE) break;
      after = page[page.length - 1]!.event.cursor;
    }
    for (const version of [...byVersion.keys()].sort((a, b) => a - b)) {
      const records = byVersion.get(version)!;
      if (new Set(records.map((r) => r.event.replica)).size > 1) {
        out.push({ stream: name, version, records });
      }
    }
  }
  return out;
}
