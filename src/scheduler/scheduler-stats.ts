/**
 * Counters and recent samples of one scheduler, served by the statistics endpoints of the edge and
 * the origin and read by the benchmarks. Counts are in requests and in rows (batch sizes, queue
 * bounds and service times count rows). Pure and bounded in memory.
 */
import type { StartReason } from "./flush-policy";

/** Most recent samples kept per series. */
const SAMPLE_LIMIT = 4096;

type Outcome = "rejectedFull" | "rejectedLate" | "expired" | "expiredRunning" | "cancelled" | "failedBatches";

/** A snapshot of one scheduler's statistics. */
export interface SchedulerStatsSnapshot {
  /** Requests and rows admitted to the queue. */
  admitted: number;
  admittedRows: number;
  batches: number;
  /** Rows in started batches. */
  rows: number;
  startedBySize: number;
  startedByWindow: number;
  /** Started before the window ended because no company was expected (adaptive window). */
  startedIdle: number;
  /** Started before the window ended so that a request could meet its own deadline. */
  startedByDeadline: number;
  /** Refused at admission: queue full, or predicted to finish after the deadline. */
  rejectedFull: number;
  rejectedLate: number;
  /** Deadline passed while queued (never run), or while its batch ran (the batch went on). */
  expired: number;
  expiredRunning: number;
  cancelled: number;
  failedBatches: number;
  /** Rows of the refused, expired and cancelled requests, in the same order. */
  rejectedFullRows: number;
  rejectedLateRows: number;
  expiredRows: number;
  expiredRunningRows: number;
  cancelledRows: number;
  /** Recent start time minus the window end, for window starts woken by the timer (ms). */
  windowErrorMs: number[];
  /** Recent batch sizes in rows. */
  batchRows: number[];
}

/** Accumulates a scheduler's statistics. */
export class SchedulerStats {
  private readonly counts = {
    admitted: 0, admittedRows: 0, batches: 0, rows: 0, startedBySize: 0, startedByWindow: 0, startedIdle: 0, startedByDeadline: 0,
    rejectedFull: 0, rejectedLate: 0, expired: 0, expiredRunning: 0, cancelled: 0, failedBatches: 0,
    rejectedFullRows: 0, rejectedLateRows: 0, expiredRows: 0, expiredRunningRows: 0, cancelledRows: 0,
  };
  private readonly windowErrorMs: number[] = [];
  private readonly batchRows: number[] = [];

  admitted(rows: number): void {
    this.counts.admitted++;
    this.counts.admittedRows += rows;
  }

  /** Records a started batch; `windowErrorMs` only when the start measured the timer's precision. */
  started(rows: number, reason: StartReason, windowErrorMs?: number): void {
    this.counts.batches++;
    this.counts.rows += rows;
    if (reason === "size") this.counts.startedBySize++;
    else if (reason === "window") this.counts.startedByWindow++;
    else if (reason === "idle") this.counts.startedIdle++;
    else this.counts.startedByDeadline++;
    push(this.batchRows, rows);
    if (windowErrorMs !== undefined) push(this.windowErrorMs, windowErrorMs);
  }

  /** Counts one request (of `rows` rows) with the given outcome; failedBatches counts batches. */
  count(kind: Outcome, rows: number): void {
    if (kind === "failedBatches") {
      this.counts.failedBatches++;
      return;
    }
    this.counts[kind]++;
    this.counts[`${kind}Rows`] += rows;
  }

  snapshot(): SchedulerStatsSnapshot {
    return { ...this.counts, windowErrorMs: this.windowErrorMs.slice(), batchRows: this.batchRows.slice() };
  }
}

function push(series: number[], value: number): void {
  if (series.length >= SAMPLE_LIMIT) series.shift();
  series.push(value);
}
