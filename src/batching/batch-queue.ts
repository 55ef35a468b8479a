/**
 * The buffer of one shard: requests wait here until a batch is released, either when a group holds
 * `maxBatch` rows or when its oldest request has waited `windowMs`. Requests are grouped by batch key
 * (equal non-batch dims), FIFO within a group. Bounded by `maxQueueRows`; requests past their
 * deadline are expired, never released. Pure: time is passed in, nothing here reads a clock.
 *
 * With `adaptiveWindow`, a batch does not wait for company that is not coming: when the arrival
 * rate of the last second predicts fewer than MIN_EXPECTED_ARRIVALS arrivals within the window, it
 * is released at once (at light load waiting only adds latency; under load the window applies).
 */

/** Below this many expected arrivals within the window, an adaptive window releases at once. */
export const MIN_EXPECTED_ARRIVALS = 0.1;
/** How far back arrivals count towards the rate estimate, in ms. */
const RATE_HORIZON_MS = 1_000;

/** Limits that govern release and admission. */
export interface QueueLimits {
  /** Most rows in one batch. */
  maxBatch: number;
  /** Longest wait of a batch's oldest request before release, in ms. */
  windowMs: number;
  /** Most rows held at once; more are refused. */
  maxQueueRows: number;
  /** Release at once when the recent arrival rate predicts no company within the window. */
  adaptiveWindow?: boolean;
}

/** A request waiting in the buffer, with whatever the caller needs to answer it (`payload`). */
export interface QueuedRequest<T> {
  id: string;
  rows: number;
  batchKey: string;
  enqueuedAtMs: number;
  deadlineAtMs: number;
  payload: T;
}

/** A batch taken from the queue. */
export interface ReleasedBatch<T> {
  requests: QueuedRequest<T>[];
  rows: number;
  /** "size": the group reached maxBatch; "window": its oldest request waited windowMs; "idle": no company was expected. */
  reason: "size" | "window" | "idle";
  /** When the window of the oldest request ended (the ideal release time for "window"). */
  windowEndsAtMs: number;
}

/** A bounded, grouped FIFO buffer with size-or-window release. */
export class BatchQueue<T> {
  private readonly groups = new Map<string, QueuedRequest<T>[]>();
  private rows = 0;
  /** Arrival times within the last RATE_HORIZON_MS, oldest first. */
  private readonly recentArrivalsMs: number[] = [];

  constructor(public limits: QueueLimits) {}

  /** Rows currently held. */
  get queuedRows(): number {
    return this.rows;
  }

  /** Adds a request; returns false (and keeps nothing) when it would exceed maxQueueRows. */
  add(request: QueuedRequest<T>): boolean {
    if (this.rows + request.rows > this.limits.maxQueueRows) return false;
    const group = this.groups.get(request.batchKey);
    if (group) group.push(request);
    else this.groups.set(request.batchKey, [request]);
    this.rows += request.rows;
    this.recentArrivalsMs.push(request.enqueuedAtMs);
    while (this.recentArrivalsMs[0]! <= request.enqueuedAtMs - RATE_HORIZON_MS) this.recentArrivalsMs.shift();
    return true;
  }

  /** Requests expected to arrive within one window at the recent arrival rate. */
  expectedArrivalsInWindow(nowMs: number): number {
    const recent = this.recentArrivalsMs.filter((t) => t > nowMs - RATE_HORIZON_MS).length;
    return (recent / RATE_HORIZON_MS) * this.limits.windowMs;
  }

  /** Removes a waiting request (its client went away); undefined if it is not waiting. */
  remove(id: string): QueuedRequest<T> | undefined {
    for (const [key, group] of this.groups) {
      const i = group.findIndex((r) => r.id === id);
      if (i >= 0) return this.take(key, group, i, 1)[0];
    }
    return undefined;
  }

  /** Removes and returns every request whose deadline is at or before `nowMs`. */
  expire(nowMs: number): QueuedRequest<T>[] {
    const expired: QueuedRequest<T>[] = [];
    for (const [key, group] of this.groups) {
      for (let i = group.length - 1; i >= 0; i--) {
        if (group[i]!.deadlineAtMs <= nowMs) expired.unshift(...this.take(key, group, i, 1));
      }
    }
    return expired;
  }

  /** Takes the batch that is due at `nowMs` (oldest group first), or undefined if none is. */
  takeReady(nowMs: number): ReleasedBatch<T> | undefined {
    let best: { key: string; group: QueuedRequest<T>[]; reason: ReleasedBatch<T>["reason"] } | undefined;
    for (const [key, group] of this.groups) {
      const reason = this.releaseReason(group, nowMs);
      if (reason && (!best || group[0]!.enqueuedAtMs < best.group[0]!.enqueuedAtMs)) best = { key, group, reason };
    }
    if (!best) return undefined;
    const windowEndsAtMs = best.group[0]!.enqueuedAtMs + this.limits.windowMs;
    // FIFO prefix that fits in maxBatch; at least one request even if limits shrank below its rows.
    let count = 1;
    let rows = best.group[0]!.rows;
    while (count < best.group.length && rows + best.group[count]!.rows <= this.limits.maxBatch) rows += best.group[count++]!.rows;
    return { requests: this.take(best.key, best.group, 0, count), rows, reason: best.reason, windowEndsAtMs };
  }

  /** The next time something becomes due (a window ends or a deadline passes), if anything waits. */
  nextDueAtMs(nowMs: number): number | undefined {
    let due: number | undefined;
    const isIdle = this.isIdle(nowMs);
    for (const group of this.groups.values()) {
      for (const r of group) due = Math.min(due ?? Infinity, r.deadlineAtMs);
      due = Math.min(due ?? Infinity, isIdle ? nowMs : group[0]!.enqueuedAtMs + this.limits.windowMs);
    }
    return due;
  }

  private isIdle(nowMs: number): boolean {
    return this.limits.adaptiveWindow === true && this.expectedArrivalsInWindow(nowMs) < MIN_EXPECTED_ARRIVALS;
  }

  private releaseReason(group: QueuedRequest<T>[], nowMs: number): ReleasedBatch<T>["reason"] | undefined {
    const rows = group.reduce((n, r) => n + r.rows, 0);
    if (rows >= this.limits.maxBatch) return "size";
    if (nowMs >= group[0]!.enqueuedAtMs + this.limits.windowMs) return "window";
    if (this.isIdle(nowMs)) return "idle";
    return undefined;
  }

  private take(key: string, group: QueuedRequest<T>[], start: number, count: number): QueuedRequest<T>[] {
    const taken = group.splice(start, count);
    if (group.length === 0) this.groups.delete(key);
    for (const r of taken) this.rows -= r.rows;
    return taken;
  }
}
