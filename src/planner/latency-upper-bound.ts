/**
 * The optimizer's cheap necessary latency condition: from a configuration's batch size distribution
 * alone, an upper bound of the fraction of requests served within a latency. A configuration whose
 * bound is below the SLO's percentile cannot meet the SLO, whatever the queueing.
 */

/** Batch sizes minus one, ordered by service time (it need not be monotone for tables). */
export function sizesByServiceTime(service: Float64Array): number[] {
  return Array.from({ length: service.length }, (_, i) => i).sort((a, b) => service[a]! - service[b]!);
}

/**
 * An upper bound of P(latency <= xMs) from the batch sizes alone (probs[k - 1] = P(size = k)): a
 * request waits at least the service of its batch, and the opener of a batch released by the window
 * also waits the window. `order` is sizesByServiceTime(service); service[k - 1] = s(k), ms.
 */
export function latencyUpperBoundAt(probs: Float64Array, meanBatch: number, maxBatch: number, windowMs: number, service: Float64Array, order: number[], xMs: number): number {
  let bound = 0;
  for (const i of order) {
    if (service[i]! > xMs) break;
    if (i >= maxBatch) continue;
    bound += ((i + 1) * probs[i]!) / meanBatch;
    if (i < maxBatch - 1 && windowMs + service[i]! > xMs) bound -= probs[i]! / meanBatch;
  }
  return bound;
}
