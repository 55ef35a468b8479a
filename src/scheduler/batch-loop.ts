/**
 * The driver of a Scheduler: the one pump/timer loop that the edge buffer and gpu-origin's batcher
 * share. It admits requests, starts due batches on free servers, runs them through `execute`, and
 * settles every request exactly once: with its rows of the batch's outputs, or with a failure
 * (refused at admission, deadline passed while queued or while its batch ran, cancelled, or the
 * batch failed). When the model itself fails on a batch of several requests, each is rerun alone on
 * the same server, so a request the model cannot take fails only itself. A request whose deadline passes while its batch runs is answered 503 at its
 * deadline; the batch goes on for the others. One timer wakes the loop at the next due time or
 * deadline; `onNextDue` lets a Durable Object arm an alarm as a backstop. Clock, timers and
 * deferral are injected, so tests run it on a fake clock.
 */
import { InferenceError, unavailable } from "../protocol/errors";
import type { Batch, Job, QueuedJob, Scheduler } from "./scheduler";
import { SchedulerStats } from "./scheduler-stats";

/** What a request gets: its part of the batch's result, or why it failed. */
export type Outcome<O> =
  | { ok: true; value: O; batchId: number; batchRows: number; queueMs: number; inferMs: number }
  /** `busyUntilMs` (refusals at admission): a request due before this epoch ms would be refused too. */
  | { ok: false; error: unknown; busyUntilMs?: number };

/** A request as submitted: a scheduler job whose payload is the caller's input. */
export type Submission<I> = Omit<Job<I>, "payload"> & { input: I };

/** What the loop needs from its host. */
export interface LoopHost<I, O> {
  /** Names the model in error messages. */
  label: string;
  /** Epoch ms clock. */
  now(): number;
  /** Runs a batch; resolves with one result per job, in order, or rejects (every unsettled job fails with the error). */
  execute(inputs: I[], batch: Batch<Entry<I, O>>): Promise<Executed<O>>;
  /** Defers the pump so requests arriving in the same turn join one batch; default queueMicrotask. */
  defer?(run: () => void): void;
  setTimer?(run: () => void, ms: number): unknown;
  clearTimer?(handle: unknown): void;
  /** Told the next time the loop must wake (undefined: nothing pending), e.g. to arm an alarm. */
  onNextDue?(atMs: number | undefined): void;
  /**
   * Starts a batch's run (`run`, which settles its requests): by default at once, here. A host
   * whose async work belongs to the request that started it (a Worker isolate: workerd cancels the
   * continuations of a request that has completed) starts it from one of the batch's own requests.
   */
  start?(batch: Batch<Entry<I, O>>, run: () => Promise<void>): void;
  /**
   * Awaited when a batch has run, before the loop forms the next one (no batch starts meanwhile).
   * A host whose requests reach it on the thread the batch ran on (workerd: a request that arrives
   * during a run is read only after it) yields the thread here once, so that those requests join
   * the queue together and a free server takes them as one batch, as the planner's shared thread
   * has it, rather than starting on the first alone. Default: none.
   */
  afterRun?(): Promise<void>;
}

/** A batch's results, one per job, and how long the batch itself took when that differs from the call (e.g. a first call that created the session). */
export interface Executed<O> {
  results: O[];
  serviceMs?: number;
}

/** A queued or running request and how to answer it. */
export interface Entry<I, O> {
  input: I;
  deadlineAtMs: number;
  settle(outcome: Outcome<O>): void;
  isSettled: boolean;
}

/** Runs one scheduler. */
export class BatchLoop<I, O> {
  readonly stats = new SchedulerStats();
  private readonly running = new Set<QueuedJob<Entry<I, O>>>();
  private timer: unknown;
  private timerAtMs?: number;
  private isPumpDeferred = false;
  /** Runs whose host's afterRun is pending: no batch is formed meanwhile. */
  private gathering = 0;
  private idleWaiters: Array<() => void> = [];

  constructor(
    readonly scheduler: Scheduler<Entry<I, O>>,
    private readonly host: LoopHost<I, O>,
  ) {}

  /** Admits a request; resolves once it is settled. Never rejects. */
  submit(request: Submission<I>): Promise<Outcome<O>> {
    const nowMs = this.host.now();
    return new Promise<Outcome<O>>((resolve) => {
      const entry: Entry<I, O> = {
        input: request.input,
        deadlineAtMs: request.deadlineAtMs,
        isSettled: false,
        settle(outcome) {
          if (entry.isSettled) return;
          entry.isSettled = true;
          resolve(outcome);
        },
      };
      if (request.deadlineAtMs <= nowMs) {
        this.stats.count("expired", request.rows);
        return entry.settle({ ok: false, error: unavailable("deadline exceeded before the request was queued", 1, "expired") });
      }
      const admission = this.scheduler.admit({ id: request.id, rows: request.rows, batchKey: request.batchKey, deadlineAtMs: request.deadlineAtMs, ...(request.maxBatchRows !== undefined && { maxBatchRows: request.maxBatchRows }), payload: entry }, nowMs);
      if (!admission.ok) {
        this.stats.count(admission.reason === "full" ? "rejectedFull" : "rejectedLate", request.rows);
        const retryAfterS = Math.min(3600, Math.max(1, Math.ceil(admission.retryAfterMs / 1000)));
        const why = admission.reason === "full" ? "queue full" : `it would finish in about ${Math.ceil(admission.predictedCompletionAtMs! - nowMs)} ms, after its deadline`;
        return entry.settle({ ok: false, error: unavailable(`model '${this.host.label}' is overloaded: ${why}`, retryAfterS, admission.reason === "full" ? "queue_full" : "late"), busyUntilMs: admission.busyUntilMs });
      }
      this.stats.admitted(request.rows);
      this.deferPump();
    });
  }

  /** Drops a queued request whose client went away. Returns whether it was still queued. */
  cancel(id: string): boolean {
    const removed = this.scheduler.remove(id);
    if (!removed) return false;
    this.stats.count("cancelled", removed.rows);
    removed.payload.settle({ ok: false, error: unavailable("request cancelled by the client", 1, "cancelled") });
    this.arm();
    return true;
  }

  /** Wakes the loop now (an alarm, a changed plan). */
  wake(): void {
    this.pump(false);
  }

  /** Resolves once nothing is queued or running. */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    return this.scheduler.queuedRows === 0 && this.scheduler.busyServers === 0;
  }

  private deferPump(): void {
    if (this.isPumpDeferred) return;
    this.isPumpDeferred = true;
    (this.host.defer ?? queueMicrotask)(() => {
      this.isPumpDeferred = false;
      this.pump(false);
    });
  }

  /** Fails what is late, starts every due batch a free server can take, and re-arms the timer. */
  private pump(isTimerFire: boolean): void {
    if (this.gathering > 0) return; // the run that is gathering pumps when it is done
    const nowMs = this.host.now();
    for (const job of this.scheduler.expire(nowMs)) {
      this.stats.count("expired", job.rows);
      job.payload.settle({ ok: false, error: unavailable("deadline exceeded while waiting in the queue", 1, "expired") });
    }
    for (const job of this.running) {
      if (job.payload.isSettled || job.deadlineAtMs > nowMs) continue;
      this.stats.count("expiredRunning", job.rows);
      job.payload.settle({ ok: false, error: unavailable("deadline exceeded while its batch ran", 1, "expired") });
    }
    let isFirst = true;
    for (let batch = this.scheduler.start(nowMs); batch; batch = this.scheduler.start(nowMs)) {
      const windowErrorMs = isTimerFire && isFirst && batch.reason === "window" ? nowMs - batch.windowEndsAtMs : undefined;
      this.stats.started(batch.rows, batch.reason, windowErrorMs);
      isFirst = false;
      for (const job of batch.jobs) this.running.add(job);
      const run = () => this.run(batch);
      if (this.host.start) this.host.start(batch, run);
      else void run();
    }
    this.arm();
    if (this.isIdle()) for (const wake of this.idleWaiters.splice(0)) wake();
  }

  /** Runs a started batch (its jobs already counted as running) and settles its requests. */
  private async run(batch: Batch<Entry<I, O>>): Promise<void> {
    const startMs = this.host.now();
    try {
      const { results, serviceMs } = await this.host.execute(batch.jobs.map((j) => j.payload.input), batch);
      const inferMs = this.host.now() - startMs;
      this.scheduler.finish(batch, serviceMs ?? inferMs);
      batch.jobs.forEach((job, i) => job.payload.settle({ ok: true, value: results[i]!, batchId: batch.id, batchRows: batch.rows, queueMs: startMs - job.enqueuedAtMs, inferMs }));
    } catch (error) {
      this.stats.count("failedBatches", 1);
      if (batch.jobs.length > 1 && !(error instanceof InferenceError)) {
        // The model itself failed, maybe on one request's input: rerun each request alone, so a
        // bad request fails only itself. (A protocol error, e.g. an origin's 503, is the batch's.)
        await this.isolate(batch);
        this.scheduler.finish(batch);
      } else {
        this.scheduler.finish(batch);
        if (!(error instanceof InferenceError) || error.status === 500) console.error(`batch of ${this.host.label} failed:`, error);
        for (const job of batch.jobs) job.payload.settle({ ok: false, error });
      }
    } finally {
      for (const job of batch.jobs) this.running.delete(job);
    }
    if (this.host.afterRun) {
      this.gathering++;
      try {
        await this.host.afterRun();
      } finally {
        this.gathering--;
      }
    }
    this.pump(false);
  }

  /** Runs a failed batch's requests one by one on the same server, each settling with its own outcome. */
  private async isolate(batch: Batch<Entry<I, O>>): Promise<void> {
    for (const job of batch.jobs) {
      if (job.payload.isSettled) continue;
      const startMs = this.host.now();
      try {
        const { results } = await this.host.execute([job.payload.input], { ...batch, jobs: [job], rows: job.rows });
        job.payload.settle({ ok: true, value: results[0]!, batchId: batch.id, batchRows: job.rows, queueMs: startMs - job.enqueuedAtMs, inferMs: this.host.now() - startMs });
      } catch (error) {
        if (!(error instanceof InferenceError) || error.status === 500) console.error(`request of ${this.host.label} failed alone:`, error);
        job.payload.settle({ ok: false, error });
      }
    }
  }

  /** Arms the one timer for the next due time: a group due on a free server, or a deadline. */
  private arm(): void {
    const nowMs = this.host.now();
    let dueAtMs = this.scheduler.nextWakeAtMs(nowMs);
    for (const job of this.running) if (!job.payload.isSettled) dueAtMs = Math.min(dueAtMs ?? Infinity, job.deadlineAtMs);
    this.host.onNextDue?.(dueAtMs);
    if (dueAtMs === this.timerAtMs) return;
    if (this.timer !== undefined) (this.host.clearTimer ?? clearTimeout)(this.timer as ReturnType<typeof setTimeout>);
    this.timer = this.timerAtMs = undefined;
    if (dueAtMs === undefined) return;
    this.timerAtMs = dueAtMs;
    this.timer = (this.host.setTimer ?? setTimeout)(() => {
      this.timer = this.timerAtMs = undefined;
      this.pump(true);
    }, Math.max(0, dueAtMs - nowMs));
  }
}
