/**
 * Compression on the wire (issue 18, part 1): the WebSocket's own permessage-deflate
 * (RFC 7692), which browsers and the `ws` client offer on every connection. The server accepts
 * it when configured, per connection: a client that does not offer it (an old or a minimal one)
 * keeps a plain connection, with nothing to negotiate in the sync protocol.
 *
 * Invariants:
 * 1. Messages under `threshold` bytes go uncompressed: acks, heads and small live batches gain
 *    little and would cost a deflate call each; catch-up batches (hundreds of events) gain most.
 * 2. No context takeover by default: each message deflates alone, so a connection keeps no
 *    sliding window between messages, at some ratio on small messages. A connection's deflate
 *    state stays allocated once used (ws resets it, never frees it): about 150 KB per connection
 *    with the default 8 KiB window, 270 KB with zlib's 32 KiB one (measured in a server process
 *    serving 500 connections), for a ratio within 2% on catch-up batches.
 * 3. `maxMessageBytes` bounds a message AFTER inflating (ws counts the inflated length), so a
 *    small compressed frame cannot expand past the limit.
 * 4. Only what a space's members may read anyway shares a compressed message (one connection,
 *    one space); tokens travel in the upgrade request, never in a compressed message.
 * 5. Binary frames (sync/binary-frame.ts) deflate like text ones, past the same threshold;
 *    their raw signatures and ciphertext do not shrink, so compression gains less on them than
 *    on their base64 text, which they already save.
 */
import type { PerMessageDeflateOptions } from 'ws';

export interface WireCompressionOptions {
  /** Messages shorter than this many bytes are sent plain (invariant 1). Default 1024. */
  threshold?: number;
  /** zlib level, 1 (fastest) to 9. Default 1: most of the gain at a fraction of the CPU. */
  level?: number;
  /** Keep each direction's deflate window across messages (invariant 2). Default false. */
  contextTakeover?: boolean;
  /**
   * The server's deflate window, 2^windowBits bytes, 9 to 15 (invariant 2). Default 13 (8 KiB):
   * events a batch repeats are neighbours, and memory per connection is about half of 15's.
   */
  windowBits?: number;
}

export const DEFAULT_WIRE_COMPRESSION: Required<WireCompressionOptions> = {
  threshold: 1024,
  level: 1,
  contextTakeover: false,
  windowBits: 13,
};

/** The `perMessageDeflate` setting of the server's WebSocketServer for `option`. */
export function perMessageDeflateOf(
  option: boolean | WireCompressionOptions | undefined,
): false | PerMessageDeflateOptions {
  if (option === undefined || option === false) return false;
  const o = { ...DEFAULT_WIRE_COMPRESSION, ...(option === true ? {} : option) };
  const within = (value: number, min: number, max: number) =>
    Number.isInteger(value) && value >= min && value <= max;
  if (!within(o.level, 0, 9)) throw new TypeError('wireCompression.level must be 0 to 9');
  if (!within(o.windowBits, 9, 15))
    throw new TypeError('wireCompression.windowBits must be 9 to 15');
  if (!within(o.threshold, 0, Number.MAX_SAFE_INTEGER)) {
    throw new TypeError('wireCompression.threshold must be a whole number of bytes');
  }
  return {
    threshold: o.threshold,
    serverMaxWindowBits: o.windowBits,
    // zlib's balance of hash memory to window: memLevel = windowBits - 7.
    zlibDeflateOptions: { level: o.level, memLevel: Math.max(1, o.windowBits - 7) },
    serverNoContextTakeover: !o.contextTakeover,
    clientNoContextTakeover: !o.contextTakeover,
    // ws runs deflate on libuv's pool; bounding it keeps one busy connection from queueing others.
    concurrencyLimit: 10,
  };
}
