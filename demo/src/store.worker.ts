/**
 * The demo's worker module, as small as README shows: it imports the projection (reducers are
 * code, they cannot cross threads) and serves the store. The page, not the worker, drives the
 * sync connection (sync.ts), because the demo lets the user go offline on purpose.
 */
import { serveStore } from '../../worker/index.ts';
import { boardProjection } from './board.ts';

// The database name comes in as the worker's name, so that one build can host several boards.
const name = (globalThis as unknown as { name?: string }).name || 'chronicle-demo';
serveStore({ name, projections: [boardProjection] });
