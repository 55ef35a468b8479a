/**
 * The step policy: cellular batching (BatchMaker, EuroSys'18) on the shared scheduler. Each stream
 * (src/stream/) has at most one chunk queued at a time, so a group of queued chunks is one step of
 * the active streams. A step is due as soon as it holds a chunk of every active stream (at most
 * maxBatch rows: a larger step leaves in several batches), otherwise by the window rule: when its
 * oldest chunk has waited windowMs. So a slow or silent stream never holds a step back beyond the
 * window, and streams join and leave at step boundaries: a chunk that arrives while a step runs
 * goes into the next one. Like every policy, it only ever starts a batch earlier than the window
 * rule. A complete step starts with reason "size" (the group holds all the rows it can get).
 */
import { type FlushPolicy, windowDue } from "./flush-policy";

/** A step policy for a host whose open stream count is `activeStreams()` (read at every decision). */
export function stepPolicy(activeStreams: () => number): FlushPolicy {
  return {
    name: "step",
    due(group, _nowMs, limits) {
      const due = windowDue(group, limits);
      if (due.reason === "size" || group.rows < Math.min(activeStreams(), limits.maxBatch)) return due;
      return { atMs: -Infinity, reason: "size" };
    },
  };
}
