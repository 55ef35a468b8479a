/**
 * How far behind this isolate's event loop runs, and the overload guard built on it. Locally (and
 * for the `direct` placement on Cloudflare) one thread runs the Worker's handlers, its Durable
 * Objects and the kernels. Past capacity, requests queue for that thread before any handler sees
 * them: a deadline counted from the handler's start misses that wait, so admission by predicted
 * completion keeps admitting while clients wait seconds (ppocr-cls at 3x capacity on plain
 * workerd: admitted p99 3.4 s against a 1 s deadline, and refusals that cost 1.1 ms of the thread
 * each because they came after the body was read and the buffer asked).
 *
 * The lag: a zero-delay timer set at a request's start fires once workerd's event loop has run
 * what is ready (timers wait while events keep coming: at 700 requests/s of 2 ms each, a sample
 * stayed unfired for seconds), so its delay is how long the loop has been busy without a pause. One
 * sample is in flight at a time; the lag is the moving average of taken samples, or the age of the
 * one in flight when that is more. A request arriving while the lag is past half its deadline
 * budget is refused at once with 503, before its body is parsed or any buffer is asked: the
 * cheapest refusal there is, so refusing leaves the thread to the requests it admits (the approach
 * of Fastify's under-pressure and toobusy). An admitted request's deadline counts from its
 * estimated arrival, the lag before its start.
 */

/** Refused when the lag is past this share of the request's deadline budget. */
export const MAX_LAG_SHARE_OF_BUDGET = 0.5;

/** A sample in flight longer than this is taken as lost (its timer cancelled with its request), ms. */
export const STALE_SAMPLE_MS = 10_000;

/** An event loop's lag, sampled by zero-delay timers (clock and timer injected for tests). */
export class IsolateLag {
  private lastMs = 0;
  /** When the sample in flight was started, and its number (a late callback of a dropped sample is ignored). */
  private pendingSinceMs?: number;
  private samples = 0;

  constructor(
    private readonly now: () => number = () => performance.now(),
    private readonly setTimer: (callback: () => void) => void = (callback) => setTimeout(callback, 0),
  ) {}

  /** The lag, ms: the last sample taken, or the age of the one in flight if more. */
  lagMs(): number {
    return Math.max(this.lastMs, this.pendingSinceMs === undefined ? 0 : this.now() - this.pendingSinceMs);
  }

  /** Starts a sample unless one is in flight; the returned promise (for waitUntil) settles when it is taken. */
  sample(): Promise<void> | undefined {
    const startMs = this.now();
    if (this.pendingSinceMs !== undefined && startMs - this.pendingSinceMs < STALE_SAMPLE_MS) return undefined;
    this.pendingSinceMs = startMs;
    const sample = ++this.samples;
    return new Promise((resolve) =>
      this.setTimer(() => {
        if (sample === this.samples) {
          this.lastMs = Math.max(0, this.now() - startMs);
          this.pendingSinceMs = undefined;
        }
        resolve();
      }),
    );
  }

  /** Whether a request with `budgetMs` to its deadline should be refused: the lag is past MAX_LAG_SHARE_OF_BUDGET of it. */
  isOverloadedFor(budgetMs: number): boolean {
    return this.lagMs() > MAX_LAG_SHARE_OF_BUDGET * budgetMs;
  }
}

/** This isolate's lag. */
export const isolateLag = new IsolateLag();
