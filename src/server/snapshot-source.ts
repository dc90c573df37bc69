/**
 * Where a connection finds a space's snapshot for a device joining from one (docs/storage-growth.md
 * part 4). The snapshotter implements it; a server without registered projections has none, and
 * its clients replay the log.
 */
import type { ProjectionVersion, SpaceSnapshot } from '../core/space-snapshot.ts';

export interface SnapshotSource {
  /**
   * The newest snapshot of `space` holding every one of `wanted` at exactly its version, or
   * undefined (none yet, a version differs, or the space's projections cannot run here).
   */
  latest(space: string, wanted: readonly ProjectionVersion[]): Promise<SpaceSnapshot | undefined>;
}
