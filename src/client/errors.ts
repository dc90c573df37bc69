/**
 * Errors across the worker boundary. comlink's built-in "throw" handler sends only `message`,
 * `name` and `stack`, so `instanceof ConcurrencyError` and `.code` would be lost on the main
 * thread. This handler sends a ChronicleError as its SerializedError (toJSON) and rebuilds the
 * right class with deserializeError; anything else keeps comlink's behaviour.
 *
 * Invariants:
 * 1. A ChronicleError thrown in the worker arrives as the same class with the same code,
 *    message and details.
 * 2. Installing is idempotent, and both sides (worker and page) install it before any call.
 */
import { type TransferHandler, transferHandlers } from 'comlink';
import { ChronicleError, deserializeError, type SerializedError } from '../core/errors.ts';

// comlink marks a thrown value with this symbol's description (see comlink's throwMarker).
const THROW_MARKER_DESCRIPTION = 'Comlink.thrown';

type Thrown = { value: unknown };

type WireThrown =
  | { kind: 'chronicle'; error: SerializedError; stack?: string }
  | { kind: 'error'; name: string; message: string; stack?: string }
  | { kind: 'value'; value: unknown };

function isThrown(value: unknown): value is Thrown {
  if ((typeof value !== 'object' && typeof value !== 'function') || value === null) return false;
  return Object.getOwnPropertySymbols(value).some(
    (s) => s.description === THROW_MARKER_DESCRIPTION,
  );
}

function toWire(value: unknown): WireThrown {
  if (value instanceof ChronicleError) {
    const wire: WireThrown = { kind: 'chronicle', error: value.toJSON() };
    if (value.stack !== undefined) wire.stack = value.stack;
    return wire;
  }
  if (value instanceof Error) {
    const wire: WireThrown = { kind: 'error', name: value.name, message: value.message };
    if (value.stack !== undefined) wire.stack = value.stack;
    return wire;
  }
  return { kind: 'value', value };
}

function fromWire(wire: WireThrown): unknown {
  switch (wire.kind) {
    case 'chronicle': {
      const error = deserializeError(wire.error);
      // The worker's stack says where it failed; the main thread's would only show comlink.
      if (wire.stack !== undefined) error.stack = wire.stack;
      return error;
    }
    case 'error': {
      const error = new Error(wire.message);
      error.name = wire.name;
      if (wire.stack !== undefined) error.stack = wire.stack;
      return error;
    }
    case 'value':
      return wire.value;
    default: {
      const never: never = wire;
      return never;
    }
  }
}

const errorTransferHandler: TransferHandler<Thrown, WireThrown> = {
  canHandle: (value: unknown): value is Thrown => isThrown(value),
  serialize: (thrown) => [toWire(thrown.value), []],
  deserialize: (wire) => {
    throw fromWire(wire);
  },
};

/** Replaces comlink's "throw" handler in this thread (invariant 2). */
export function installErrorTransfer(): void {
  if (transferHandlers.get('throw') === errorTransferHandler) return;
  transferHandlers.set('throw', errorTransferHandler as TransferHandler<unknown, unknown>);
}
