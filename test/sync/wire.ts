/**
 * Raw protocol peers in tests speak wire text: these turn a test's plain message (events as an
 * array of objects) into the columnar wire form, and a received text back into plain objects.
 * Anything else (strings, malformed messages) passes through untouched, so tests can still
 * speak the protocol wrongly.
 */
import { decodeEventBatch } from '../../src/sync/event-codec.ts';
import { encodeMessage } from '../../src/sync/messages.ts';
import type { SyncMessage } from '../../src/sync/protocol.ts';

export function toWire(message: unknown): string {
  if (typeof message === 'string') return message;
  const m = message as { type?: unknown; events?: unknown };
  if (m.type === 'events' && Array.isArray(m.events)) return encodeMessage(m as SyncMessage);
  return JSON.stringify(message);
}

export function fromWire<T>(text: string): T {
  const value = JSON.parse(text) as { type?: unknown; events?: unknown };
  if (value.type === 'events' && value.events !== null && typeof value.events === 'object') {
    return { ...value, events: decodeEventBatch(value.events) } as T;
  }
  return value as T;
}
