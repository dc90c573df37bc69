/**
 * Operations: counters in Prometheus text format, and one structured JSON log line per
 * connection event.
 *
 * Invariants:
 * 1. No label carries a space, subject or token: /metrics is unauthenticated and must reveal
 *    nothing about any tenant. Labels are error codes and close codes only (bounded sets).
 * 2. The logger never throws into the server: a failing sink is ignored.
 */

import type { LostCopy } from '../core/copies.ts';

export type LogLevel = 'info' | 'warn' | 'error';

export interface LogEntry {
  level: LogLevel;
  /** What happened: 'listening', 'connect', 'auth_failure', 'refused', 'close', 'error', ... */
  event: string;
  [field: string]: unknown;
}

export type ServerLogger = (entry: LogEntry & { time: string }) => void;

/** The default sink: one JSON line per entry on stderr. */
export const stderrLogger: ServerLogger = (entry) => {
  process.stderr.write(`${JSON.stringify(entry)}\n`);
};

export const silentLogger: ServerLogger = () => {};

export function makeLog(sink: ServerLogger): (entry: LogEntry) => void {
  return (entry) => {
    try {
      sink({ time: new Date().toISOString(), ...entry });
    } catch {
      // invariant 2
    }
  };
}

/** The broker publisher's figures (publisher.ts), read when rendered. */
export interface PublishStatus {
  /** Whether this server holds the publisher's lock (one server of a database publishes). */
  readonly leading: boolean;
  /** Events the broker acknowledged, since start. */
  readonly publishedTotal: number;
  /** Failed attempts (broker or storage), since start. */
  readonly failuresTotal: number;
  /** Positions not yet published, all spaces (publish-lag.ts); 0 when not leading. */
  lag(): number;
  /** Positions not yet published by space: for the app, never a label of /metrics (invariant 1). */
  lagBySpace(): Map<string, number>;
  /** Milliseconds since the oldest unpublished event was first seen; 0 when none. */
  oldestUnpublishedMs(): number;
}

export class ServerMetrics {
  connections = 0;
  connectionsTotal = 0;
  eventsIn = 0;
  eventsOut = 0;
  bytesIn = 0;
  bytesOut = 0;
  messagesIn = 0;
  messagesOut = 0;
  readonly errors = new Map<string, number>();
  readonly closes = new Map<number, number>();
  readonly refusedUpgrades = new Map<number, number>();
  /** Set when the server publishes to a broker. */
  publish: PublishStatus | undefined;

  error(code: string): void {
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1);
  }

  closed(code: number): void {
    this.closes.set(code, (this.closes.get(code) ?? 0) + 1);
  }

  refused(status: number): void {
    this.refusedUpgrades.set(status, (this.refusedUpgrades.get(status) ?? 0) + 1);
  }

  /** Prometheus text exposition format 0.0.4. */
  render(): string {
    const lines: string[] = [];
    const metric = (
      name: string,
      type: 'counter' | 'gauge',
      help: string,
      samples: [labels: string, value: number][],
    ) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`);
    };
    metric('chronicle_connections', 'gauge', 'Open WebSocket connections.', [
      ['', this.connections],
    ]);
    metric('chronicle_connections_total', 'counter', 'WebSocket connections accepted.', [
      ['', this.connectionsTotal],
    ]);
    metric('chronicle_events_in_total', 'counter', 'Events received and stored (new ones).', [
      ['', this.eventsIn],
    ]);
    metric('chronicle_events_out_total', 'counter', 'Events read from storage to send to peers.', [
      ['', this.eventsOut],
    ]);
    metric('chronicle_bytes_in_total', 'counter', 'Message bytes received.', [['', this.bytesIn]]);
    metric('chronicle_bytes_out_total', 'counter', 'Message bytes sent.', [['', this.bytesOut]]);
    metric('chronicle_messages_in_total', 'counter', 'Messages received.', [['', this.messagesIn]]);
    metric('chronicle_messages_out_total', 'counter', 'Messages sent.', [['', this.messagesOut]]);
    metric(
      'chronicle_errors_total',
      'counter',
      'Errors by code (sent to peers or refused upgrades).',
      [...this.errors].map(([code, n]) => [`{code="${code}"}`, n]),
    );
    metric(
      'chronicle_closes_total',
      'counter',
      'Closed connections by WebSocket close code.',
      [...this.closes].map(([code, n]) => [`{code="${code}"}`, n]),
    );
    metric(
      'chronicle_upgrades_refused_total',
      'counter',
      'Upgrade requests refused, by HTTP status.',
      [...this.refusedUpgrades].map(([status, n]) => [`{status="${status}"}`, n]),
    );
    const publish = this.publish;
    if (publish !== undefined) {
      metric('chronicle_publish_leader', 'gauge', 'Whether this server publishes to the broker.', [
        ['', publish.leading ? 1 : 0],
      ]);
      metric('chronicle_publish_lag_events', 'gauge', 'Log positions not yet published.', [
        ['', publish.lag()],
      ]);
      metric(
        'chronicle_publish_lag_spaces',
        'gauge',
        'Spaces with log positions not yet published.',
        [['', publish.lagBySpace().size]],
      );
      metric(
        'chronicle_publish_oldest_unpublished_seconds',
        'gauge',
        'Age of the oldest event not yet published.',
        [['', publish.oldestUnpublishedMs() / 1000]],
      );
      metric('chronicle_published_events_total', 'counter', 'Events the broker acknowledged.', [
        ['', publish.publishedTotal],
      ]);
      metric('chronicle_publish_failures_total', 'counter', 'Failed publishing attempts.', [
        ['', publish.failuresTotal],
      ]);
    }
    return `${lines.join('\n')}\n`;
  }
}

/**
 * Every held copy that a connection's batch took out (core/copies.ts), with who sent the winner:
 * any writer of a space can win an id by stamping its copy earlier, so the operator must be able
 * to see who replaced whose event (README, When replicas disagree).
 */
export function logReplaced(
  log: (entry: LogEntry) => void,
  claims: { space: string; sub: string },
  lost: readonly LostCopy[] | undefined,
): void {
  for (const copy of lost ?? []) {
    if (!copy.held) continue;
    log({
      level: 'warn',
      event: 'copy_replaced',
      space: claims.space,
      sub: claims.sub,
      code: copy.code,
      eventId: copy.event.id,
      replica: copy.event.replica,
      seq: copy.event.seq,
      keptId: copy.keptId,
      keptReplica: copy.keptReplica,
    });
  }
}
