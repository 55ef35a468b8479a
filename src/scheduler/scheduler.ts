/**
 * The scheduler core shared by the edge buffer (a Durable Object), gpu-origin's batcher and, as a
 * model, the planner: one queue, `servers` servers, lazy batch formation, per-request deadlines and
 * admission control. Pure: time is passed in, nothing here reads a clock or arms a timer (the
 * driver, batch-loop.ts, does).
 *
 * Semantics (the planner's "lazy" formation models exactly this, counting rows):
 * - Lazy formation. Requests queue FIFO, grouped by batch key (only requests with equal non-batch
 *   dims and shared inputs can be concatenated). Whenever a server is free, it starts a batch of
 *   the due group whose oldest request is oldest: min(maxBatch rows, queued rows), a FIFO prefix
 *   (at least one request). A group is due when it holds maxBatch rows, or when its oldest request
 *   has waited windowMs, or earlier when the flush policy says so (flush-policy.ts), or when one of
 *   its requests must start now to meet its own deadline (a short timeout_ms never waits out a long
 *   window). While every server is busy the queue grows; nothing is sealed early.
 * - Rows, not requests: maxBatch, maxQueueRows, batch sizes and service times count rows
 *   (a request with shape[batchAxis] = k is k rows).
 * - Deadlines are per request. A queued request whose own deadline passes leaves the queue and
 *   fails; it never fails the other requests of its batch.
 * - Admission. A new request is refused at once when its rows would exceed maxQueueRows, or when
 *   its predicted completion is past its deadline. The prediction replays the queue FIFO on the
 *   servers: each server is free when its running batch's expected end has passed; queued rows
 *   (with the new request last) leave in batches of up to maxBatch rows; a batch of k rows takes
 *   the measured service time s(k) (service-estimate.ts). A last, partial batch starts at once if
 *   its group is due now on a free server, taking s(k); otherwise it starts when a server frees or
 *   its window ends, whichever is later, taking s(maxBatch), since later arrivals may fill it. With service times as estimated, a single batch
 *   key and FIFO order, an admitted request is therefore never late. A refusal carries the
 *   predicted drain time of the queue.
 */
import { type Due, type FlushPolicy, type StartReason, windowDue } from "./flush-policy";
import { ServiceEstimate } from "./service-estimate";

/** Limits of one scheduler; they may change while it runs (configure). */
export interface SchedulerLimits {
  /** Most rows in one batch. */
  maxBatch: number;
  /** Longest wait of a batch's oldest request for company, in ms. */
  windowMs: number;
  /** Most rows queued at once (running batches not counted). */
  maxQueueRows: number;
  /** Batches that may run at once; default 1 (a Durable Object, one session). */
  servers?: number;
}

/** A request as handed to the scheduler. */
export interface Job<T> {
  id: string;
  rows: number;
  batchKey: string;
  /** Epoch ms at which this request fails if it has not been answered. */
  deadlineAtMs: number;
  /** Most rows a batch of this request's key may hold when fewer than maxBatch fit (memory at its shape: src/edge/limits.ts). */
  maxBatchRows?: number;
  payload: T;
}

/** A queued request. */
export interface QueuedJob<T> extends Job<T> {
  enqueuedAtMs: number;
}

/** A batch a server started. */
export interface Batch<T> {
  id: number;
  jobs: QueuedJob<T>[];
  rows: number;
  reason: StartReason;
  startedAtMs: number;
  /** When the window of its oldest request ended (for the timer's precision). */
  windowEndsAtMs: number;
}

/**
 * The answer to a new request: queued, or refused at once with the predicted drain time and
 * `busyUntilMs`: requests due before then are best refused without asking (late: the completion a
 * request arriving now would get, plus one full batch, so that callers shed for about one batch
 * time, while the queue still holds work up to the deadline horizon; full: when the next batch
 * should have freed maxBatch rows).
 */
export type Admission = { ok: true } | { ok: false; reason: "full" | "late"; retryAfterMs: number; busyUntilMs: number; predictedCompletionAtMs?: number };

/** One queue, `servers` servers, lazy formation. */
export class Scheduler<T> {
  private readonly groups = new Map<string, QueuedJob<T>[]>();
  private readonly running = new Map<number, Batch<T>>();
  private rows = 0;
  private nextBatchId = 1;

  constructor(
    private limits: SchedulerLimits,
    readonly policy: FlushPolicy,
    readonly service: ServiceEstimate = new ServiceEstimate(),
  ) {}

  /** Changes the limits (a new plan); queued requests stay queued. */
  configure(limits: SchedulerLimits): void {
    this.limits = limits;
  }

  get queuedRows(): number {
    return this.rows;
  }

  get runningRows(): number {
    let n = 0;
    for (const b of this.running.values()) n += b.rows;
    return n;
  }

  get busyServers(): number {
    return this.running.size;
  }

  private get servers(): number {
    return this.limits.servers ?? 1;
  }

  /** Queues `job` at `nowMs`, or refuses it at once (queue full, or predicted to finish after its deadline). */
  admit(job: Job<T>, nowMs: number): Admission {
    if (this.rows + job.rows > this.limits.maxQueueRows) return { ok: false, reason: "full", retryAfterMs: this.drainMs(nowMs), busyUntilMs: this.nextBatchEndMs(nowMs) };
    this.policy.observe?.(nowMs, job.rows);
    const predicted = this.replay([...this.fifo(), { rows: job.rows, enqueuedAtMs: nowMs, deadlineAtMs: job.deadlineAtMs }], nowMs);
    const predictedCompletionAtMs = predicted.endMs;
    // Late itself, or its batch would end after the deadline of another request in it that the
    // batch would meet without it, started as predicted (one that is late anyway is not this
    // request's doing: refusing it would fail a request for another's deadline). An idle, empty
    // scheduler admits anyway: only batches that run correct a stale estimate.
    const isIdle = this.rows === 0 && this.running.size === 0;
    const makesOthersLate = predicted.endMs > predicted.othersDeadlineAtMs && predicted.lastStartMs + this.service.ms(predicted.lastRows - job.rows) <= predicted.othersDeadlineAtMs;
    if (!isIdle && (predicted.endMs > job.deadlineAtMs || makesOthersLate)) return { ok: false, reason: "late", retryAfterMs: this.drainMs(nowMs), busyUntilMs: predictedCompletionAtMs + this.service.ms(this.limits.maxBatch), predictedCompletionAtMs };
    const queued: QueuedJob<T> = { ...job, enqueuedAtMs: nowMs };
    const group = this.groups.get(job.batchKey);
    if (group) group.push(queued);
    else this.groups.set(job.batchKey, [queued]);
    this.rows += job.rows;
    return { ok: true };
  }

  /** Removes a queued request (its client went away); undefined if it is not queued. */
  remove(id: string): QueuedJob<T> | undefined {
    for (const [key, group] of this.groups) {
      const i = group.findIndex((r) => r.id === id);
      if (i >= 0) return this.take(key, group, i, 1)[0];
    }
    return undefined;
  }

  /** Removes and returns every queued request whose deadline is at or before `nowMs`. */
  expire(nowMs: number): QueuedJob<T>[] {
    const expired: QueuedJob<T>[] = [];
    for (const [key, group] of this.groups) {
      for (let i = group.length - 1; i >= 0; i--) if (group[i]!.deadlineAtMs <= nowMs) expired.unshift(...this.take(key, group, i, 1));
    }
    return expired;
  }

  /** Starts the next due batch on a free server, or returns undefined (no free server, nothing due). */
  start(nowMs: number): Batch<T> | undefined {
    if (this.running.size >= this.servers) return undefined;
    let best: { key: string; group: QueuedJob<T>[]; due: Due } | undefined;
    for (const [key, group] of this.groups) {
      const due = this.dueOf(group, nowMs);
      if (due.atMs <= nowMs && (!best || group[0]!.enqueuedAtMs < best.group[0]!.enqueuedAtMs)) best = { key, group, due };
    }
    if (!best) return undefined;
    const count = prefixCount(best.group, this.batchCapOf(best.group));
    const windowEndsAtMs = best.group[0]!.enqueuedAtMs + this.limits.windowMs;
    const jobs = this.take(best.key, best.group, 0, count);
    const batch: Batch<T> = { id: this.nextBatchId++, jobs, rows: sumRows(jobs), reason: best.due.reason, startedAtMs: nowMs, windowEndsAtMs };
    this.running.set(batch.id, batch);
    return batch;
  }

  /** Frees the batch's server; `serviceMs` (when it ran to completion) teaches the service estimate. */
  finish(batch: Batch<T>, serviceMs?: number): void {
    this.running.delete(batch.id);
    if (serviceMs !== undefined) this.service.observe(batch.rows, serviceMs);
  }

  /** The next time a queued request's deadline passes or, with a free server, a group becomes due. */
  nextWakeAtMs(nowMs: number): number | undefined {
    let wake = Infinity;
    const hasFreeServer = this.running.size < this.servers;
    for (const group of this.groups.values()) {
      for (const r of group) wake = Math.min(wake, r.deadlineAtMs);
      if (hasFreeServer) wake = Math.min(wake, Math.max(nowMs, this.dueOf(group, nowMs).atMs));
    }
    return wake === Infinity ? undefined : wake;
  }

  /** Predicted completion (epoch ms) of a request of `rows` rows queued now (see the module doc). */
  predictCompletionAtMs(rows: number, nowMs: number): number {
    return this.replay([...this.fifo(), { rows, enqueuedAtMs: nowMs, deadlineAtMs: Infinity }], nowMs).endMs;
  }

  /** Every queued request in arrival order. */
  private fifo(): QueuedJob<T>[] {
    return [...this.groups.values()].flat().sort((a, b) => a.enqueuedAtMs - b.enqueuedAtMs);
  }

  /** Predicted time (ms) until every queued and running batch has finished. */
  drainMs(nowMs: number): number {
    return Math.max(0, this.replay(this.fifo(), nowMs).endMs - nowMs);
  }

  /** When the earliest running batch should end (now, if none runs). */
  private nextBatchEndMs(nowMs: number): number {
    let endMs = Infinity;
    for (const b of this.running.values()) endMs = Math.min(endMs, b.startedAtMs + this.service.ms(b.rows));
    return endMs === Infinity ? nowMs : Math.max(nowMs, endMs);
  }

  /** Replays `order` on the servers: the last batch's start, rows and end, and the earliest deadline among its requests but the last. */
  private replay(order: { rows: number; enqueuedAtMs: number; deadlineAtMs: number }[], nowMs: number): { endMs: number; othersDeadlineAtMs: number; lastStartMs: number; lastRows: number } {
    const freeAtMs: number[] = [...this.running.values()].map((b) => Math.max(nowMs, b.startedAtMs + this.service.ms(b.rows)));
    while (freeAtMs.length < this.servers) freeAtMs.push(nowMs);
    let endMs = Math.max(nowMs, ...freeAtMs.slice(0, this.running.size));
    let othersDeadlineAtMs = Infinity;
    let [lastStartMs, lastRows] = [endMs, 0];
    for (let i = 0; i < order.length; ) {
      let k = order[i]!.rows;
      let j = i + 1;
      while (j < order.length && k + order[j]!.rows <= this.limits.maxBatch) k += order[j++]!.rows;
      let s = 0;
      for (let x = 1; x < freeAtMs.length; x++) if (freeAtMs[x]! < freeAtMs[s]!) s = x;
      let startMs = freeAtMs[s]!;
      let serviceRows = k;
      if (j === order.length && k < this.limits.maxBatch) {
        // A last, partial batch: it starts at once if its group is due now on a free server, taking
        // s(k); otherwise when a server frees or it is due (window end, or a request's latest start
        // for its deadline), taking s(maxBatch), since later arrivals may fill it.
        const group = { rows: k, oldestAtMs: order[i]!.enqueuedAtMs };
        const windowAtMs = (startMs <= nowMs ? this.policy.due(group, nowMs, this.limits) : windowDue(group, this.limits)).atMs;
        let deadlineAtMs = Infinity;
        for (let x = i; x < j; x++) deadlineAtMs = Math.min(deadlineAtMs, order[x]!.deadlineAtMs);
        const dueAtMs = (rows: number) => Math.min(windowAtMs, deadlineAtMs - this.service.ms(rows));
        if (startMs > nowMs || dueAtMs(k) > nowMs) serviceRows = this.limits.maxBatch;
        startMs = Math.max(startMs, dueAtMs(serviceRows));
      }
      endMs = freeAtMs[s] = startMs + this.service.ms(serviceRows);
      [lastStartMs, lastRows] = [startMs, k];
      othersDeadlineAtMs = Infinity;
      for (let x = i; x < j - 1; x++) othersDeadlineAtMs = Math.min(othersDeadlineAtMs, order[x]!.deadlineAtMs);
      i = j;
    }
    return { endMs, othersDeadlineAtMs, lastStartMs, lastRows };
  }

  /** Most rows in one batch of `group`: maxBatch, or fewer where its shape's memory bound says so. */
  private batchCapOf(group: QueuedJob<T>[]): number {
    return Math.max(1, Math.min(this.limits.maxBatch, group[0]!.maxBatchRows ?? Infinity));
  }

  private dueOf(group: QueuedJob<T>[], nowMs: number): Due {
    // A group whose FIFO prefix is cut short by a request that does not fit is full: start it now;
    // so is a group that holds as many rows as its shape allows in one batch.
    const cap = this.batchCapOf(group);
    const count = prefixCount(group, cap);
    const rows = sumRows(group);
    if (count < group.length || (cap < this.limits.maxBatch && rows >= cap)) return { atMs: -Infinity, reason: "size" };
    const due = this.policy.due({ rows, oldestAtMs: group[0]!.enqueuedAtMs }, nowMs, this.limits);
    // No request waits for company past the moment it must start to meet its own deadline.
    let latestStartMs = Infinity;
    for (const r of group) latestStartMs = Math.min(latestStartMs, r.deadlineAtMs - this.service.ms(rows));
    return latestStartMs < due.atMs ? { atMs: latestStartMs, reason: "deadline" } : due;
  }

  private take(key: string, group: QueuedJob<T>[], start: number, count: number): QueuedJob<T>[] {
    const taken = group.splice(start, count);
    if (group.length === 0) this.groups.delete(key);
    for (const r of taken) this.rows -= r.rows;
    return taken;
  }
}

/** How many requests from the front fit in maxBatch rows (at least one, even if it alone is larger). */
function prefixCount(group: { rows: number }[], maxBatch: number): number {
  let count = 1;
  let rows = group[0]!.rows;
  while (count < group.length && rows + group[count]!.rows <= maxBatch) rows += group[count++]!.rows;
  return count;
}

function sumRows(jobs: { rows: number }[]): number {
  let n = 0;
  for (const j of jobs) n += j.rows;
  return n;
}
