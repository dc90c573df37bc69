/**
 * The soak, short and seeded, in `npm test`: a server child on SQLite, four client children
 * (memory and fake-indexeddb), and the fault kinds main survives, for a few seconds; then every
 * check of checks.ts. `npm run soak` runs the long one.
 */
import { describe, expect, it } from 'vitest';
import { SAFE_KINDS } from './plan.ts';
import { runSoak } from './soak.ts';

describe('soak (short, seeded)', () => {
  it('keeps every acknowledged event once, in one order, on the server and every replica, through server and client kills and restarts, cut and stalled connections, clocks up to a day off, oversized events, colliding ids and (replica, seq), numbers JSON cannot carry and garbage', async () => {
    const report = await runSoak({
      seed: 65,
      durationMs: 12_000,
      clients: 4,
      faults: SAFE_KINDS,
      appendEveryMs: 200,
      faultRate: 3,
      settleMs: 30_000,
    });
    const explain = [
      ...report.failures,
      `replay: ${report.replay}`,
      `kept: ${report.dir}`,
      ...report.history,
    ].join('\n');
    expect(report.failures, explain).toEqual([]);
    expect(report.ok).toBe(true);
    // The run did what it says: faults of every kind landed, events were acknowledged.
    for (const kind of [
      'server-kill',
      'client-kill',
      'cut',
      'garbage',
      'dup-id',
      'oversized',
      'big-number',
    ])
      expect(report.injected[kind] ?? 0, `${kind} injected\n${explain}`).toBeGreaterThan(0);
    expect(report.acknowledged).toBeGreaterThan(50);
  }, 120_000);
});
