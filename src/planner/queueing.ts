/**
 * Queueing of batches for a fixed number of servers by a GI/G/c approximation. Latency no longer
 * uses it (fixed-servers.ts solves fixed servers for both formations); the optimizer keeps its mean
 * wait only in the cost estimate (how long a Durable Object or replica is held per batch), and the
 * types (ServerSpec, Formation) live here.
 *
 * Batches of one buffer leave at the releases; the time between releases is A = I + R (the idle gap
 * until the next arrival, then the next window's open time), treated as a renewal process with the
 * exact mean and a squared coefficient of variation from the exact moments of I and R (I and R are
 * taken as independent, which holds for Poisson). When several shards feed one server group, their
 * streams are merged with Whitt's QNA superposition rule. The group is then a GI/G/c queue:
 *   - probability of waiting: Erlang C, and the mean wait by Allen-Cunneen,
 *       E[Wq] = C(c, a) E[S] / (c (1 - rho)) * (ca2 + cs2) / 2,
 *     with the Kraemer-Langenbach-Belz correction for c = 1 and ca2 < 1 (regular arrivals);
 *   - shape: the wait is 0 with probability 1 - Pw and otherwise exponential with the heavy-traffic
 *     decay rate eta = 2 c (1 - rho) / (E[S] (ca2 + cs2)); Pw = min(1, E[Wq] eta) keeps the mean.
 * This is exact in mean for M/G/1 and exact in distribution for M/M/c; it ignores that a request in
 * a long (timed-out) window tends to find the servers less busy. bench/planner-accuracy.ts measures
 * the error against the simulator.
 */

/** How a batch is formed when servers are fixed (see ServerSpec). */
export type Formation = "sealed" | "lazy";

/**
 * How batches are served: at once (serverless), or by `count` servers.
 *
 * `scope` "shared": one pool serves all shards (origin replicas); "per-shard": each shard has its
 * own `count` servers (a Durable Object runs one batch at a time). `formation` "sealed" (the
 * default): a batch is sealed at release (maxBatch requests, or windowMs after the arrival that
 * opened it) and then waits FIFO for one of the servers. "lazy" (the runtime's policy): one queue of
 * requests; whenever a server is free it starts a batch of min(maxBatch, queued) as soon as maxBatch
 * requests are queued or the oldest queued request has waited windowMs (window 0: as soon as anything
 * is queued); while all servers are busy the queue grows. Lazy + per-shard: each shard is its own
 * queue with `count` servers; lazy + shared: the pool is one queue that receives every request (the
 * shard count does not matter then). `sharedThread` (lazy, one server per queue): the requests'
 * front door runs on the server's thread, as the Worker and its Durable Objects share one workerd
 * thread locally, so a request that arrives while a batch runs joins the queue when it ends and
 * its window counts from then (fixed-servers.ts). `answerMsPerRow`: the last k x answerMsPerRow ms
 * of a batch of k rows answer its requests one at a time in arrival order, so the i-th of them is
 * done (k - i) x answerMsPerRow before the batch's service ends (on a shared thread, each request's
 * own handling runs in turn once the batch is computed); default 0, every request done at the end.
 */
export type ServerSpec = { kind: "unbounded" } | { kind: "fixed"; count: number; scope?: "shared" | "per-shard"; formation?: Formation; sharedThread?: boolean; answerMsPerRow?: number };

/** What the queue approximation needs about one buffer's batches. */
export interface BatchStream {
  /** Batches per second from one shard. */
  batchRatePerS: number;
  /** Mean and second moment of the time between releases of one shard, ms and ms^2. */
  interReleaseMeanMs: number;
  interReleaseSecondMomentMs2: number;
  /** Mean and second moment of a batch's service time, ms and ms^2. */
  serviceMeanMs: number;
  serviceSecondMomentMs2: number;
}

/** The delay a batch waits for a server: 0 with probability 1 - waitProb, else exponential. */
export interface QueueDelay {
  /** Utilisation of each server (offered load / servers); >= 1 means unstable. */
  utilisation: number;
  isStable: boolean;
  waitProb: number;
  /** Rate of the exponential part, per ms (Infinity when waitProb is 0). */
  decayPerMs: number;
  meanWaitMs: number;
}

/** Erlang C: probability that an arrival waits in M/M/c with offered load a (a < c). */
export function erlangC(servers: number, offeredLoad: number): number {
  let erlangB = 1;
  for (let k = 1; k <= servers; k++) erlangB = (offeredLoad * erlangB) / (k + offeredLoad * erlangB);
  const rho = offeredLoad / servers;
  return erlangB / (1 - rho * (1 - erlangB));
}

/** Whitt's QNA superposition: SCV of the merged stream of `streams` identical renewal streams. */
export function superposedScv(scv: number, streams: number, utilisation: number): number {
  if (streams <= 1) return scv;
  const w = 1 / (1 + 4 * (1 - utilisation) ** 2 * (streams - 1));
  return w * scv + (1 - w);
}

/**
 * The mean queueing delay of a batch (ms) when `streams` identical buffers feed `servers` FIFO
 * servers; Infinity when unstable. The same number as queueDelay(...).meanWaitMs, without allocating.
 */
export function meanQueueWaitMs(stream: BatchStream, streams: number, servers: number): number {
  const offeredLoad = (streams * stream.batchRatePerS * stream.serviceMeanMs) / 1000;
  const utilisation = offeredLoad / servers;
  if (utilisation >= 1) return Infinity;
  if (utilisation <= 0) return 0;
  const scvA = Math.max(0, stream.interReleaseSecondMomentMs2 / stream.interReleaseMeanMs ** 2 - 1);
  const ca2 = superposedScv(scvA, streams, utilisation);
  const cs2 = Math.max(0, stream.serviceSecondMomentMs2 / stream.serviceMeanMs ** 2 - 1);
  if (ca2 + cs2 === 0) return 0;
  let meanWaitMs = ((erlangC(servers, offeredLoad) * stream.serviceMeanMs) / (servers * (1 - utilisation))) * ((ca2 + cs2) / 2);
  if (servers === 1 && ca2 < 1) meanWaitMs *= Math.exp((-2 * (1 - utilisation) * (1 - ca2) ** 2) / (3 * utilisation * (ca2 + cs2)));
  return meanWaitMs;
}

/**
 * The approximate queueing delay of a batch when `streams` identical buffers feed `servers` FIFO
 * servers.
 */
export function queueDelay(stream: BatchStream, streams: number, servers: number): QueueDelay {
  const offeredLoad = (streams * stream.batchRatePerS * stream.serviceMeanMs) / 1000;
  const utilisation = offeredLoad / servers;
  if (utilisation >= 1) return { utilisation, isStable: false, waitProb: 1, decayPerMs: 0, meanWaitMs: Infinity };
  if (utilisation <= 0) return { utilisation, isStable: true, waitProb: 0, decayPerMs: Infinity, meanWaitMs: 0 };
  const scvA = Math.max(0, stream.interReleaseSecondMomentMs2 / stream.interReleaseMeanMs ** 2 - 1);
  const ca2 = superposedScv(scvA, streams, utilisation);
  const cs2 = Math.max(0, stream.serviceSecondMomentMs2 / stream.serviceMeanMs ** 2 - 1);
  const variability = (ca2 + cs2) / 2;
  if (variability === 0) return { utilisation, isStable: true, waitProb: 0, decayPerMs: Infinity, meanWaitMs: 0 };
  const meanWaitMs = meanQueueWaitMs(stream, streams, servers);
  const decayPerMs = (servers * (1 - utilisation)) / (stream.serviceMeanMs * variability);
  const waitProb = Math.min(1, meanWaitMs * decayPerMs);
  return { utilisation, isStable: true, waitProb, decayPerMs: waitProb >= 1 ? 1 / meanWaitMs : decayPerMs, meanWaitMs };
}
