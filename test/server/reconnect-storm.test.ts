/**
 * RELIABILITY 19 with real sockets: a reconnect storm after a server restart (sync/link.ts
 * invariant 1). The scenario is reconnect-storm.ts; CHRONICLE_STORM_CLIENTS sets how many
 * clients: 100 by default (about 15 s), `CHRONICLE_STORM_CLIENTS=500` for the full storm (about
 * a minute, not part of `npm test`).
 *
 * Assertions are about the delays the real Syncer chose (recorded through its `timers` option)
 * and loose bounds on when connections arrived, never on how fast anything ran.
 */
import { describe, expect, it } from 'vitest';
import type { BackoffOptions } from '../../src/sync/link.ts';
import {
  type ClientPhase,
  ceilingOf,
  type PhaseResult,
  runReconnectStorm,
} from './reconnect-storm.ts';

const CLIENTS = Number(process.env.CHRONICLE_STORM_CLIENTS ?? 100);
/**
 * healthyAfterMs must outlast a whole reconnection wave (for the relapse), which on a shared
 * 2-core machine takes about a second per hundred clients of this one process: it scales.
 */
const backoff: BackoffOptions = {
  initialMs: 100,
  maxMs: 800,
  healthyAfterMs: 4000 * Math.ceil(CLIENTS / 100),
};

/** Every retry delay is below its ceiling: initialMs × 2^k, k counted since the last reset. */
function withinCeilings(c: ClientPhase): boolean {
  return c.delays.every((ms, j) => ms >= 0 && ms < ceilingOf(c.attemptsBefore + j, backoff));
}

/** How many 100 ms windows the arrivals fall in, and the most any one window holds. */
function windows(arrivalsMs: number[]): { used: number; most: number } {
  const counts = new Map<number, number>();
  for (const ms of arrivalsMs) {
    const w = Math.floor(ms / 100);
    counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  return { used: counts.size, most: Math.max(0, ...counts.values()) };
}

describe(`a reconnect storm of ${CLIENTS} WebSocket clients after a server restart (case 19)`, () => {
  let phases: PhaseResult[];
  const phaseOf = (name: PhaseResult['name']) => phases.find((p) => p.name === name)!;

  it(
    'every client resyncs after each restart: events appended after it and while it was down reach all',
    async () => {
      const result = await runReconnectStorm({
        clients: CLIENTS,
        backoff,
        downMs: 1000,
        phaseTimeoutMs: 10_000 + CLIENTS * 60,
      });
      phases = result.phases;
      // runReconnectStorm returns only once every client is connected, idle and holds every event.
      expect(phases.map((p) => p.name)).toEqual(['storm', 'relapse', 'healed']);
      const figures = phases.map((p) => {
        const w = windows(p.arrivalsMs);
        return `${p.name}: ${p.attempts} attempts, resync ${Math.round(p.resyncMs)} ms, ${p.arrivalsMs.length} arrivals in ${w.used} windows of 100 ms (most ${w.most}), closes ${JSON.stringify(p.closes)}`;
      });
      console.log(
        `reconnect storm, ${CLIENTS} clients, setup ${Math.round(result.setupMs)} ms\n  ${figures.join('\n  ')}`,
      );
    },
    60_000 + CLIENTS * 200,
  );

  it('retries with full jitter: every delay below its exponential ceiling, spread across it', () => {
    const storm = phaseOf('storm');
    for (const c of storm.clients) expect(c.delays.length).toBeGreaterThan(0);
    expect(storm.clients.every(withinCeilings)).toBe(true);
    // The first retry of each client, as a fraction of its ceiling: uniform, not all at once.
    const first = storm.clients.map((c) => c.delays[0]! / ceilingOf(c.attemptsBefore, backoff));
    const low = first.filter((f) => f < 0.5).length / first.length;
    expect(low).toBeGreaterThan(0.25);
    expect(low).toBeLessThan(0.75);
    expect(Math.min(...first)).toBeLessThan(0.25);
    expect(Math.max(...first)).toBeGreaterThan(0.75);
    // While the server stayed down, the ceilings grew: later retries waited past the first's.
    expect(storm.clients.some((c) => c.delays.some((ms) => ms >= backoff.initialMs))).toBe(true);
  });

  it('the new server sees the reconnections spread over time, not all in one instant', () => {
    const w = windows(phaseOf('storm').arrivalsMs);
    // At least one arrival per client: more where a client's open outlasted its open timeout on
    // an overloaded machine (the server saw it, the client gave up on it and retried: 1006).
    expect(phaseOf('storm').arrivalsMs.length).toBeGreaterThanOrEqual(CLIENTS);
    expect(w.used).toBeGreaterThanOrEqual(3);
    expect(w.most).toBeLessThanOrEqual(CLIENTS / 2);
  });

  it('does not reset the backoff on a mere open: a restart before healthyAfterMs keeps backing off', () => {
    const relapse = phaseOf('relapse');
    expect(relapse.clients.every(withinCeilings)).toBe(true);
    // Clients whose new connection was surely younger than healthyAfterMs at the restart.
    const young = relapse.clients.filter(
      (c) => c.connectionAgeMs !== undefined && c.connectionAgeMs < backoff.healthyAfterMs - 500,
    );
    expect(young.length).toBeGreaterThanOrEqual(CLIENTS / 4);
    // Had the open reset the backoff, every first delay would be below initialMs.
    const backedOff = young.filter((c) => c.delays[0]! >= backoff.initialMs).length;
    expect(backedOff / young.length).toBeGreaterThan(0.3);
  });

  it('resets the backoff once a connection stayed healthy: the next first retry is below initialMs', () => {
    const healed = phaseOf('healed');
    for (const c of healed.clients) {
      expect(c.delays[0]).toBeLessThan(backoff.initialMs);
    }
    expect(healed.clients.every(withinCeilings)).toBe(true);
  });
});
