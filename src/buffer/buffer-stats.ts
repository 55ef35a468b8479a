/**
 * Counters and recent samples a buffer keeps about itself, served by the statistics endpoint and
 * read by the benchmark (window precision, batch sizes). Pure and bounded in memory.
 */

/** Most recent samples kept per series. */
const SAMPLE_LIMIT = 4096;

/** A snapshot of one shard's statistics. */
export interface BufferStatsSnapshot {
  batches: number;
  rows: number;
  releasedBySize: number;
  releasedByWindow: number;
  /** Released at once because no company was expected within the window (adaptive window). */
  releasedIdle: number;
  expired: number;
  rejectedFull: number;
  cancelled: number;
  failedBatches: number;
  /** Recent release time minus the configured window end, for window releases of an idle buffer (ms). */
  windowErrorMs: number[];
  /** Recent batch sizes in rows. */
  batchRows: number[];
}

/** Accumulates a buffer's statistics. */
export class BufferStats {
  private readonly counts = { batches: 0, rows: 0, releasedBySize: 0, releasedByWindow: 0, releasedIdle: 0, expired: 0, rejectedFull: 0, cancelled: 0, failedBatches: 0 };
  private readonly windowErrorMs: number[] = [];
  private readonly batchRows: number[] = [];

  /** Records a released batch; `windowErrorMs` only when the release measured the timer's precision. */
  released(rows: number, reason: "size" | "window" | "idle", windowErrorMs?: number): void {
    this.counts.batches++;
    this.counts.rows += rows;
    if (reason === "size") this.counts.releasedBySize++;
    else if (reason === "window") this.counts.releasedByWindow++;
    else this.counts.releasedIdle++;
    push(this.batchRows, rows);
    if (windowErrorMs !== undefined) push(this.windowErrorMs, windowErrorMs);
  }

  /** Counts an event of the given kind. */
  count(kind: "expired" | "rejectedFull" | "cancelled" | "failedBatches", n = 1): void {
    this.counts[kind] += n;
  }

  /** A copy of the current statistics. */
  snapshot(): BufferStatsSnapshot {
    return { ...this.counts, windowErrorMs: this.windowErrorMs.slice(), batchRows: this.batchRows.slice() };
  }
}

function push(series: number[], value: number): void {
  if (series.length >= SAMPLE_LIMIT) series.shift();
  series.push(value);
}
