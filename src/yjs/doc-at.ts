/**
 * docAt: a Yjs document as it was at a point in the store's history: the updates of its stream
 * in the prefix of the total order up to `at`, like `store.state(projection, { at })`.
 *
 * Invariants:
 * 1. `at: Date | ms` takes the events whose HLC wall time is <= at; `{ eventId }` the events up
 *    to and including that event (of any stream), in the total order.
 * 2. A snapshot helps only if it lies inside the prefix; updates it does not cover are applied
 *    on top (load.ts), so the result equals a replay of the prefix's update events.
 * 3. The returned doc is detached: editing it writes nothing.
 */
import * as Y from 'yjs';
import { NotFoundError, ValidationError } from '../core/errors.ts';
import type { StoredEvent } from '../core/events.ts';
import type { EventStore, StateAt } from '../store/types.ts';
import { type LoadBound, loadDoc } from './load.ts';

const PAGE = 500;

async function findEvent(
  store: Pick<EventStore<unknown>, 'read'>,
  stream: string,
  eventId: string,
): Promise<StoredEvent> {
  // The usual case is an event of the document's own stream; any other stream costs a scan,
  // because the EventStore interface has no lookup by id.
  for (const query of [{ stream }, {}]) {
    let after: string | undefined;
    for (;;) {
      const page = await store.read(
        after === undefined ? { ...query, limit: PAGE } : { ...query, after, limit: PAGE },
      );
      const found = page.find((e) => e.id === eventId);
      if (found !== undefined) return found;
      if (page.length < PAGE) break;
      after = page[page.length - 1]!.cursor;
    }
  }
  throw new NotFoundError(`no event has id "${eventId}"`, { eventId });
}

async function boundOf(
  store: Pick<EventStore<unknown>, 'read'>,
  stream: string,
  at: StateAt,
): Promise<LoadBound> {
  if (at instanceof Date || typeof at === 'number') {
    const ms = at instanceof Date ? at.getTime() : at;
    if (!Number.isFinite(ms)) throw new ValidationError('at', 'must be a valid time');
    return { to: Math.max(0, Math.floor(ms)) };
  }
  if (typeof at === 'object' && at !== null && typeof at.eventId === 'string') {
    return { through: await findEvent(store, stream, at.eventId) };
  }
  throw new ValidationError('at', 'must be a Date, a time in ms or { eventId }');
}

export interface DocAtOptions {
  /** Malformed events are skipped and reported here. Default: ignored. */
  onError?: (error: unknown) => void;
}

/**
 * The document of `stream` as of `at` (a Date, ms since the epoch, or { eventId }).
 *
 * @example
 * const before = await docAt(store, 'card-1/notes', Date.parse('2026-01-01'));
 * before.getText('notes').toString();
 */
export async function docAt(
  store: Pick<EventStore<unknown>, 'read'>,
  stream: string,
  at: StateAt,
  options: DocAtOptions = {},
): Promise<Y.Doc> {
  const bound = await boundOf(store, stream, at);
  const loaded = await loadDoc(store, stream, bound, options.onError ?? (() => {}));
  const doc = new Y.Doc();
  doc.transact(() => {
    for (const update of loaded.updates) Y.applyUpdate(doc, update);
  });
  return doc;
}
