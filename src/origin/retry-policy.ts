/**
 * When a failed origin attempt may be sent to another replica, and what the client hears when it
 * may not. Only failures that prove the batch did not run, or whose result can never reach anyone,
 * are retried: the connection was refused or reset (the replica died; nothing answered), or the
 * replica said 503/429 (it did not take the batch). Never after a timeout (the replica may still be
 * running it and the deadline is spent) or another 5xx (it may have run). Pure: time is passed in.
 */
import { InferenceError, unavailable } from "../protocol/errors";

/** How one attempt failed. */
export type AttemptFailure =
  /** fetch rejected before a full answer arrived: connection refused, reset, or closed. */
  | { kind: "network" }
  /** The replica answered 503 or 429: it did not take the batch. */
  | { kind: "unavailable"; status: number; retryAfterMs: number }
  /** The attempt ran past the batch's deadline and was aborted. */
  | { kind: "timeout" }
  /** The replica answered some other status, or an answer that does not fit the manifest. */
  | { kind: "server-error"; status: number };

/** Whether a failure of this kind leaves the batch safe to send again. */
export function isSafeToRetry(failure: AttemptFailure): boolean {
  return failure.kind === "network" || failure.kind === "unavailable";
}

/**
 * Whether to send the batch to another replica: the failure is safe to retry, an untried replica
 * may exist, and the deadline leaves at least `expectedAttemptMs` (a recent attempt's duration).
 */
export function shouldRetry(failure: AttemptFailure, nowMs: number, deadlineAtMs: number, expectedAttemptMs: number): boolean {
  return isSafeToRetry(failure) && deadlineAtMs - nowMs > Math.max(expectedAttemptMs, 0);
}

/** The error a client sees when the pool gives up after `failure`; it names no host. */
export function clientErrorFor(failure: AttemptFailure): InferenceError {
  switch (failure.kind) {
    case "network":
      return unavailable("no origin replica could be reached");
    case "unavailable":
      return unavailable("the origin pool is overloaded or not ready", Math.max(1, Math.ceil(failure.retryAfterMs / 1000)));
    case "timeout":
      return unavailable("deadline exceeded at the origin");
    case "server-error":
      return new InferenceError(500, `the origin failed to run the batch (status ${failure.status})`);
  }
}
