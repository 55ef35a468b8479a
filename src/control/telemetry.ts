/**
 * Telemetry: what a buffer shard tells its model's controller about once a second. The recorder is
 * pure (time passed in) and bounded: arrivals are counted in rows per `binMs` bin, batches by size,
 * and answered requests' latencies are kept as a bounded sample.
 */
import type { ServiceLine } from "../scheduler/service-estimate";

/** Width of an arrival bin, ms. */
export const TELEMETRY_BIN_MS = 100;

/** Most latency samples one report carries. */
const LATENCY_SAMPLE_LIMIT = 256;

/** One report of one shard. */
export interface Telemetry {
  model: string;
  shard: number;
  /** Start of the first bin, epoch ms (a multiple of binMs). */
  startMs: number;
  binMs: number;
  /** Rows that arrived in each bin from startMs on (admitted or refused). */
  arrivalRows: number[];
  /** Batches run since the last report, by size in rows, with their mean service time, ms. */
  batches: Array<{ rows: number; count: number; meanServiceMs: number }>;
  /** The shard's learnt service line (baseMs + perRowMs * rows), when it has one. */
  serviceLine?: ServiceLine;
  /** Rows queued and running at the time of the report. */
  queuedRows: number;
  runningRows: number;
  /** Rows refused at admission and rows whose deadline passed, since the last report. */
  refusedRows: number;
  expiredRows: number;
  /** A sample of answered requests' time in the buffer (queue + batch), ms. */
  latencyMs: number[];
  /** Requests answered since the last report (the sample may hold fewer). */
  answered: number;
}

/** Accumulates one shard's telemetry between reports. */
export class TelemetryRecorder {
  private bins = new Map<number, number>();
  private batches = new Map<number, { count: number; totalMs: number }>();
  private latencyMs: number[] = [];
  private answered = 0;
  private refusedRows = 0;
  private expiredRows = 0;

  constructor(
    readonly model: string,
    readonly shard: number,
    readonly binMs = TELEMETRY_BIN_MS,
  ) {}

  /** A request of `rows` rows arrived at `nowMs`. */
  arrived(rows: number, nowMs: number): void {
    const bin = Math.floor(nowMs / this.binMs);
    this.bins.set(bin, (this.bins.get(bin) ?? 0) + rows);
  }

  /** A batch of `rows` rows ran for `serviceMs`. */
  ran(rows: number, serviceMs: number): void {
    const entry = this.batches.get(rows) ?? { count: 0, totalMs: 0 };
    entry.count++;
    entry.totalMs += serviceMs;
    this.batches.set(rows, entry);
  }

  /** A request was answered after `latencyMs` in the buffer. */
  answeredIn(latencyMs: number): void {
    this.answered++;
    // Reservoir sampling keeps a uniform sample of the period's latencies.
    if (this.latencyMs.length < LATENCY_SAMPLE_LIMIT) this.latencyMs.push(latencyMs);
    else {
      const slot = Math.floor(Math.random() * this.answered);
      if (slot < LATENCY_SAMPLE_LIMIT) this.latencyMs[slot] = latencyMs;
    }
  }

  /** A request of `rows` rows was refused (at admission) or expired. */
  failed(rows: number, how: "refused" | "expired"): void {
    if (how === "refused") this.refusedRows += rows;
    else this.expiredRows += rows;
  }

  /** Whether anything was recorded since the last report. */
  get isEmpty(): boolean {
    return this.bins.size === 0 && this.batches.size === 0 && this.answered === 0 && this.refusedRows === 0 && this.expiredRows === 0;
  }

  /**
   * The report of everything recorded before `nowMs`'s bin (the current bin stays for the next
   * report), with the queue state given; resets what it reports.
   */
  take(nowMs: number, state: { queuedRows: number; runningRows: number; serviceLine?: ServiceLine }): Telemetry {
    const current = Math.floor(nowMs / this.binMs);
    const complete = [...this.bins.keys()].filter((b) => b < current).sort((a, b) => a - b);
    const first = complete[0] ?? current;
    const arrivalRows = complete.length ? new Array<number>(complete.at(-1)! - first + 1).fill(0) : [];
    for (const bin of complete) {
      arrivalRows[bin - first] = this.bins.get(bin)!;
      this.bins.delete(bin);
    }
    const report: Telemetry = {
      model: this.model,
      shard: this.shard,
      startMs: first * this.binMs,
      binMs: this.binMs,
      arrivalRows,
      batches: [...this.batches].map(([rows, { count, totalMs }]) => ({ rows, count, meanServiceMs: totalMs / count })),
      ...(state.serviceLine && { serviceLine: state.serviceLine }),
      queuedRows: state.queuedRows,
      runningRows: state.runningRows,
      refusedRows: this.refusedRows,
      expiredRows: this.expiredRows,
      latencyMs: this.latencyMs,
      answered: this.answered,
    };
    this.batches = new Map();
    this.latencyMs = [];
    this.answered = 0;
    this.refusedRows = 0;
    this.expiredRows = 0;
    return report;
  }
}
