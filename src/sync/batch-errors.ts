/**
 * What decoding a wire batch throws (event-codec.ts invariant 2), apart so that the codec's
 * column readers (meta-columns.ts) throw the same errors without importing the codec.
 *
 * Invariants:
 * 1. A fault of the batch as a whole is a BatchShapeError (the session's PROTOCOL); a fault of one
 *    event is a ValidationError naming the event's field, which the decoder wraps in a
 *    BatchEventError with the event's id (the session's VALIDATION or LIMIT_EXCEEDED).
 */
import { ValidationError } from '../core/errors.ts';

/** A structural fault of the batch as a whole (not of one event): the session's PROTOCOL. */
export class BatchShapeError extends Error {}

/** An event's data + meta are over the receiver's maxEventBytes (the session's LIMIT_EXCEEDED). */
export class EventTooLargeError extends ValidationError {
  readonly bytes: number;
  readonly limit: number;

  constructor(path: string, bytes: number, limit: number) {
    super(path, `encoded size ${bytes} bytes is over the limit of ${limit}`);
    this.bytes = bytes;
    this.limit = limit;
  }
}

/** One event of the batch failed validation: the session's VALIDATION, naming the event. */
export class BatchEventError extends Error {
  readonly error: ValidationError;
  readonly eventId: string | undefined;

  constructor(error: ValidationError, eventId: string | undefined) {
    super(error.message);
    this.error = error;
    this.eventId = eventId;
  }
}
