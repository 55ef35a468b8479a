/**
 * Protocol errors: each has the HTTP status the Open Inference Protocol gives it, and the message a
 * client sees. Anything that is not one of these is answered 500 with a generic message (no
 * internals leak). `toErrorBody` is the one place errors become `{"error": ...}` bodies.
 */

/** An error a client should see, with its HTTP status. */
export class InferenceError extends Error {
  constructor(
    readonly status: 400 | 401 | 403 | 404 | 405 | 408 | 413 | 415 | 429 | 500 | 503,
    message: string,
    /** Seconds after which a retry may succeed (sent as `Retry-After`). */
    readonly retryAfterS?: number,
    /** Why a scheduler did not run the request (503s of the batch queue), for the metrics. */
    readonly rejection?: RejectionReason,
  ) {
    super(message);
    this.name = "InferenceError";
  }
}

/** 400: the request is malformed or does not match the model. */
export const badRequest = (message: string) => new InferenceError(400, message);
/** 404: no such model (or version). */
export const notFound = (message: string) => new InferenceError(404, message);
/** 413: the body or a tensor is larger than allowed. */
export const tooLarge = (message: string) => new InferenceError(413, message);
/**
 * Why a scheduler did not run a request: refused at admission (queue_full: its queue is full; late:
 * it would finish after its deadline), expired (its deadline passed first) or cancelled (its client
 * went away).
 */
export type RejectionReason = "queue_full" | "late" | "expired" | "cancelled";

/** 503: overloaded, not ready, or the deadline passed; retry later. */
export const unavailable = (message: string, retryAfterS = 1, rejection?: RejectionReason) => new InferenceError(503, message, retryAfterS, rejection);

/** A failure as plain data, so it can cross a Durable Object RPC boundary (classes do not). */
export interface FailureRecord {
  status: InferenceError["status"];
  message: string;
  retryAfterS?: number;
  rejection?: RejectionReason;
}

/** Turns an InferenceError into a record; anything else becomes a generic 500. */
export function toFailureRecord(error: unknown): FailureRecord {
  if (error instanceof InferenceError) {
    return { status: error.status, message: error.message, ...(error.retryAfterS !== undefined && { retryAfterS: error.retryAfterS }), ...(error.rejection && { rejection: error.rejection }) };
  }
  return { status: 500, message: "internal error" };
}

/**
 * The HTTP answer for any error: an InferenceError keeps its status, message and Retry-After;
 * anything else is a 500 with a generic message (the caller logs the real error).
 */
export function errorResponse(error: unknown): Response {
  const record = toFailureRecord(error);
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (record.retryAfterS !== undefined) headers["retry-after"] = String(record.retryAfterS);
  return new Response(JSON.stringify({ error: record.message }), { status: record.status, headers });
}

/** Rebuilds the InferenceError a record describes. */
export function fromFailureRecord(record: FailureRecord): InferenceError {
  return new InferenceError(record.status, record.message, record.retryAfterS, record.rejection);
}
