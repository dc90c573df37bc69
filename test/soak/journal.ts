/**
 * What the soak's client children write and the harness reads back: journal lines, dumps, a
 * payload hash that ignores key order, and the order-sensitive projection they all fold.
 */

import { existsSync, readFileSync } from 'node:fs';
import type { JsonObject } from '../../src/core/events.ts';
import { withoutIntegrity } from '../../src/core/integrity.ts';

export type JournalLine =
  | { t: 'start'; replica: string; seed: number; at: number }
  /** A resolved append: id, seq, payload hash, real time of the append, the event's `time`. */
  | { t: 'a'; id: string; seq: number; h: string; at: number; time: number; shared?: true }
  /** Appends seen acknowledged by the server (client-child.ts invariant 1). */
  | { t: 'k'; ids: string[] }
  /** A refused append. */
  | { t: 'r'; code: string; message: string };

/** [id, replica, seq, hlc, payload hash], in the replica's read() order. */
export type DumpedEvent = [string, string, number, string, string];

export interface ChainState {
  count: number;
  chain: number;
}

export interface Dump {
  replica: string;
  status: { state: string; pending: number; lastError?: { code: string; message: string } };
  head: number;
  events: DumpedEvent[];
  state: ChainState;
  fold: ChainState;
}

function fnv1a(text: string, basis = 0x811c9dc5): number {
  let h = basis;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** A 64-bit hash of what an event says (stream, type, schema, data, meta), key order ignored. */
function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function canonicalHash(event: {
  stream: string;
  type: string;
  schema?: number;
  data: unknown;
  meta?: unknown;
}): string {
  // What the app wrote: a signature (core/integrity.ts) is added on the way, not written by it.
  const meta = isJsonObject(event.meta) ? withoutIntegrity(event.meta) : event.meta;
  const text = canonical([event.stream, event.type, event.schema ?? 1, event.data, meta]);
  return fnv1a(text).toString(16).padStart(8, '0') + fnv1a(text, 0x050c5d1f).toString(16);
}

/** The soak's projection: depends on every event, its payload and the order they come in. */
export function foldChain(
  state: ChainState,
  event: { id: string; stream: string; type: string; data: unknown; meta?: unknown },
): ChainState {
  return {
    count: state.count + 1,
    chain: fnv1a(`${state.chain}|${event.id}|${canonicalHash(event)}`),
  };
}

export function readJournal(path: string): JournalLine[] {
  if (!existsSync(path)) return [];
  const out: JournalLine[] = [];
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    if (line === '') continue;
    try {
      out.push(JSON.parse(line) as JournalLine);
    } catch {
      // The last line of a SIGKILLed client may be cut short: it was never complete.
    }
  }
  return out;
}

export function readDump(path: string): Dump | undefined {
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, 'utf8')) as Dump;
}
