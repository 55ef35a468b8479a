/**
 * The reactive baseline: Ray Serve's default autoscaling rule, for comparison with the closed loop.
 * Replicas = ceil(ongoing requests / target_ongoing_requests), where ongoing counts the rows queued
 * and running over all shards, averaged over the last look_back_period_s; a change is made only
 * when every decision over the last upscale_delay_s (or downscale_delay_s) pointed the same way.
 * Defaults are Ray Serve's (AutoscalingConfig, Ray 2.3x): target 2, look-back 30 s, upscale delay
 * 30 s, downscale delay 600 s. It sizes the origin pool for origin models and the shard count for
 * edge models (a shard is the edge's replica); batching stays as the manifest says. Pure.
 */

/** Ray Serve's autoscaling defaults. */
export const RAY_SERVE_DEFAULTS = { targetOngoingRequests: 2, lookBackMs: 30_000, upscaleDelayMs: 30_000, downscaleDelayMs: 600_000 };

/** Options of the reactive rule (Ray Serve's defaults unless given). */
export type ReactiveOptions = typeof RAY_SERVE_DEFAULTS & { minReplicas: number; maxReplicas: number };

/** Ray Serve's rule on a stream of ongoing-request samples. */
export class ReactivePolicy {
  private samples: Array<{ atMs: number; ongoing: number }> = [];
  /** Since when every decision wanted more (or fewer) replicas than the current count, epoch ms. */
  private upSinceMs?: number;
  private downSinceMs?: number;

  constructor(readonly options: ReactiveOptions) {}

  /** Records the ongoing requests (queued + running rows, all shards) seen at `atMs`. */
  observe(atMs: number, ongoing: number): void {
    this.samples.push({ atMs, ongoing });
    const oldestMs = atMs - this.options.lookBackMs;
    while (this.samples.length && this.samples[0]!.atMs < oldestMs) this.samples.shift();
  }

  /** Mean ongoing requests over the look-back period. */
  meanOngoing(): number {
    return this.samples.length ? this.samples.reduce((s, x) => s + x.ongoing, 0) / this.samples.length : 0;
  }

  /** The replica count the rule wants now. */
  desired(): number {
    const { minReplicas, maxReplicas, targetOngoingRequests } = this.options;
    if (!this.samples.length) return minReplicas;
    return Math.min(maxReplicas, Math.max(minReplicas, Math.ceil(this.meanOngoing() / targetOngoingRequests)));
  }

  /** The count to apply at `nowMs` given the current one: changed only after the delay held. */
  decide(nowMs: number, current: number): number {
    const want = this.desired();
    if (want > current) {
      this.downSinceMs = undefined;
      this.upSinceMs ??= nowMs;
      if (nowMs - this.upSinceMs >= this.options.upscaleDelayMs) return (this.upSinceMs = undefined), want;
    } else if (want < current) {
      this.upSinceMs = undefined;
      this.downSinceMs ??= nowMs;
      if (nowMs - this.downSinceMs >= this.options.downscaleDelayMs) return (this.downSinceMs = undefined), want;
    } else {
      this.upSinceMs = this.downSinceMs = undefined;
    }
    return current;
  }
}
