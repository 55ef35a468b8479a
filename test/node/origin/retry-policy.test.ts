import { describe, expect, it } from "vitest";
import { clientErrorFor, isSafeToRetry, shouldRetry, type AttemptFailure } from "../../../src/origin/retry-policy";

const network: AttemptFailure = { kind: "network" };
const busy: AttemptFailure = { kind: "unavailable", status: 503, retryAfterMs: 2000 };
const timeout: AttemptFailure = { kind: "timeout" };
const crashed: AttemptFailure = { kind: "server-error", status: 500 };

describe("retry policy", () => {
  it("retries only failures that prove the batch did not run or cannot be answered", () => {
    expect([network, busy, timeout, crashed].map(isSafeToRetry)).toEqual([true, true, false, false]);
  });

  it("retries only while the deadline leaves at least the expected attempt time", () => {
    expect(shouldRetry(network, 1000, 1100, 50)).toBe(true);
    expect(shouldRetry(network, 1000, 1040, 50)).toBe(false);
    expect(shouldRetry(network, 1000, 1000, 0)).toBe(false);
    expect(shouldRetry(crashed, 0, 10_000, 1)).toBe(false);
  });

  it("gives clients 503 with Retry-After for unavailability and 500 for an origin failure, naming no host", () => {
    expect(clientErrorFor(busy)).toMatchObject({ status: 503, retryAfterS: 2 });
    expect(clientErrorFor(timeout)).toMatchObject({ status: 503, message: "deadline exceeded at the origin" });
    expect(clientErrorFor(network)).toMatchObject({ status: 503, message: "no origin replica could be reached" });
    expect(clientErrorFor(crashed)).toMatchObject({ status: 500, message: "the origin failed to run the batch (status 500)" });
  });
});
