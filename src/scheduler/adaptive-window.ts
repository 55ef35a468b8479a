/**
 * The adaptive window: a batch does not wait for company that is not coming. When the arrival rate
 * of the last second (this group's own rows included) predicts fewer than MIN_EXPECTED_ARRIVALS
 * rows within one window, the group starts at once; otherwise the window rule applies. At light load this removes the window from the latency; in a burst the rate estimate
 * jumps with the first arrivals and every later request waits for its window (or maxBatch), so a
 * burst still forms batches: at most the first request of a burst leaves alone.
 */
import { type FlushPolicy, windowDue } from "./flush-policy";

/** Below this many expected rows within the rest of the window, a lone request starts at once. */
export const MIN_EXPECTED_ARRIVALS = 0.1;
/** How far back arrivals count towards the rate estimate, in ms. */
const RATE_HORIZON_MS = 1_000;

/** A new adaptive-window policy (it keeps its own arrival history). */
export function adaptiveWindowPolicy(): FlushPolicy {
  /** Times and rows of the arrivals within the horizon, oldest first. */
  const times: number[] = [];
  const rows: number[] = [];
  let rowsInHorizon = 0;
  const forget = (nowMs: number): void => {
    while (times.length && times[0]! <= nowMs - RATE_HORIZON_MS) {
      times.shift();
      rowsInHorizon -= rows.shift()!;
    }
  };
  return {
    name: "adaptive-window",
    observe(atMs, n) {
      times.push(atMs);
      rows.push(n);
      rowsInHorizon += n;
      forget(atMs);
    },
    due(group, nowMs, limits) {
      const due = windowDue(group, limits);
      if (due.reason === "size" || due.atMs <= nowMs) return due;
      forget(nowMs);
      const expectedRows = (rowsInHorizon / RATE_HORIZON_MS) * limits.windowMs;
      return expectedRows < MIN_EXPECTED_ARRIVALS ? { atMs: nowMs, reason: "idle" } : due;
    },
  };
}
