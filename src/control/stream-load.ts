/**
 * The stream load of one model, as its stream shards report it (src/stream/stream-buffer.ts), and
 * how many shards new streams should spread over (the plan's `streamShards`). Pure (time passed in).
 *
 * A stream stays on its shard for its life, and a shard admits a stream only while its open
 * real-time streams keep the SLO by the planner's step model (`maxStreams`, planStreamWindows). So
 * a shard's capacity is a count of streams, and the load is the streams that want a place: those
 * open plus those refused in the last REFUSED_WINDOW_MS (clients that were turned away). Each set of
 * stream scalars (a key, e.g. `sr=16000`) has shards of its own; the plan's count serves them all,
 * so it is the most any key needs:
 *
 *   streamShards = max over keys of ceil((open + refused) * (1 + headroomShare) / capacity),
 *
 * capacity being the median `maxStreams` the key's shards report (they share one service line).
 */

/** What a stream shard reports to its model's controller: at a change (at most once a second) and every REPORT_EVERY_MS while streams are open. */
export interface StreamReport {
  model: string;
  /** The stream scalars the shard serves (e.g. "sr=16000"). */
  key: string;
  shard: number;
  /** Streams open (or admitted and joining) on the shard now. */
  openStreams: number;
  /** The most real-time streams it admits now (absent: its streams have no real-time pace). */
  maxStreams?: number;
  /** Streams it refused at open since it started (a running count). */
  refusedStreams: number;
}

/** What the plan's stream shards were decided from, per the key that needs the most. */
export interface StreamDemand {
  key: string;
  openStreams: number;
  /** Streams refused in the last REFUSED_WINDOW_MS. */
  refusedStreams: number;
  /** Streams one shard carries (the median of its shards' maxStreams). */
  streamsPerShard: number;
  /** Shards needed for the open and refused streams with the headroom. */
  shards: number;
}

/** A refused stream counts as wanting a place for this long, ms. */
export const REFUSED_WINDOW_MS = 10_000;
/** A shard reports at least this often while it has open streams, ms. */
export const REPORT_EVERY_MS = 10_000;
/** A shard silent for this long counts as gone (its streams closed with it), ms. */
const SILENT_SHARD_MS = 3 * REPORT_EVERY_MS;

/** One model's stream load over its shards. */
export class StreamLoad {
  private readonly shards = new Map<string, { key: string; atMs: number; openStreams: number; maxStreams?: number; refusedStreams: number }>();
  private readonly refusals: Array<{ atMs: number; key: string; count: number }> = [];

  /** Folds one shard's report in. */
  observe(report: StreamReport, nowMs: number): void {
    const id = `${report.key}#${report.shard}`;
    const last = this.shards.get(id);
    // A running count that went down is a restarted shard: all of it is new.
    const refused = last && report.refusedStreams >= last.refusedStreams ? report.refusedStreams - last.refusedStreams : report.refusedStreams;
    if (refused > 0) this.refusals.push({ atMs: nowMs, key: report.key, count: refused });
    this.shards.set(id, { key: report.key, atMs: nowMs, openStreams: report.openStreams, refusedStreams: report.refusedStreams, ...(report.maxStreams !== undefined && { maxStreams: report.maxStreams }) });
  }

  /** The demand of the key that needs the most shards, undefined when no shard with a real-time pace reported recently. */
  demand(nowMs: number, headroomShare: number): StreamDemand | undefined {
    while (this.refusals.length && this.refusals[0]!.atMs < nowMs - REFUSED_WINDOW_MS) this.refusals.shift();
    const byKey = new Map<string, { openStreams: number; capacities: number[] }>();
    for (const [id, shard] of this.shards) {
      if (nowMs - shard.atMs > SILENT_SHARD_MS) {
        this.shards.delete(id);
        continue;
      }
      const key = byKey.get(shard.key) ?? { openStreams: 0, capacities: [] };
      key.openStreams += shard.openStreams;
      if (shard.maxStreams !== undefined) key.capacities.push(shard.maxStreams);
      byKey.set(shard.key, key);
    }
    let most: StreamDemand | undefined;
    for (const [key, { openStreams, capacities }] of byKey) {
      if (!capacities.length) continue;
      const streamsPerShard = Math.max(1, median(capacities));
      const refusedStreams = this.refusals.filter((r) => r.key === key).reduce((sum, r) => sum + r.count, 0);
      const shards = Math.max(1, Math.ceil(((openStreams + refusedStreams) * (1 + headroomShare)) / streamsPerShard));
      if (!most || shards > most.shards) most = { key, openStreams, refusedStreams, streamsPerShard, shards };
    }
    return most;
  }
}

/** The lower median. */
function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.ceil(sorted.length / 2) - 1]!;
}
