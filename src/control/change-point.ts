/**
 * Online detection of a step in a Poisson arrival rate from per-interval counts: a two-sided CUSUM
 * (Page's test) on the Poisson log-likelihood ratio. With baseline rate l0 (per second) and interval
 * dt seconds, a count x adds
 *   up:   x ln(l1 / l0) - (l1 - l0) dt,   l1 = upRatio l0
 *   down: x ln(l2 / l0) - (l2 - l0) dt,   l2 = downRatio l0
 * to a statistic floored at 0; a statistic above `threshold` is an alarm in its direction.
 *
 * The baseline is learnt: first from the mean of the first `warmupIntervals` counts (no alarms
 * before), then refined by every count `baselineLagIntervals` intervals after it arrives (so a
 * change being detected does not leak into the baseline it is tested against); the mean is
 * cumulative over the last `baselineWindowMs` and exponentially weighted beyond. The up test uses
 * the baseline plus `baselineZ` standard errors of its mean, the down test the baseline minus
 * them, so a baseline resting on few intervals raises no alarms of its own. An alarm re-baselines
 * on the post-change data: the baseline becomes the mean of the counts since the alarming
 * statistic last left 0 (the CUSUM estimate of the change point), resting on that many intervals;
 * both statistics reset, and monitoring resumes once the baseline rests on `warmupIntervals`
 * intervals. A baseline below `minBaselineRatePerS` is floored there for the up test, and the down
 * test is off while the baseline (less its margin) is below the floor: there is nothing below it
 * worth an alarm, and silence at a zero rate must not raise "down" forever.
 *
 * Defaults: upRatio 1.5, downRatio 1/1.5, threshold 8, baselineZ 2, warmupIntervals 5,
 * baselineLagIntervals 10, baselineWindowMs 120 000, minBaselineRatePerS 0.5. They are calibrated
 * at intervalMs 1000; measured by the tests there on fixed-seed Poisson counts, 200 trials per
 * step, the baseline learnt from 120 s before it (delay 1 = the alarm comes with the first interval
 * at the new rate):
 *   - 20/s -> 60/s: "up" within 2 intervals in every trial (mean 1.04);
 *   - 60/s -> 20/s: "down" within 2 intervals in every trial (mean 1.05);
 *   - 2/s -> 6/s: "up" within 11 intervals in every trial (mean 6.5);
 *   - (not asserted: 6/s -> 2/s "down" within 16, mean 8.1; 20/s -> 30/s "up" within 15, mean 5.3);
 *   - 10 minutes of silence: no alarm; then 5/s: "up" within 9 intervals (one seeded trial);
 *   - stationary Poisson at 2, 20 and 200/s, 50 seeded hours each: 0.02, 0.12 and 0.06 false
 *     alarms per hour (asserted: at most 0.2 per hour, i.e. one per 5 hours);
 *   - a drift from 20/s to 30/s over 20 minutes: 3 "up" alarms in 20 runs, the baseline within 6 %
 *     of the rate at the end (a longer baselineWindowMs lags more: 300 000 gave 53 in 100 runs).
 * Threshold 7 detects a little faster (2/s -> 6/s: mean 5.8) and alarms up to 0.28 times per hour.
 * The false-alarm rate per interval hardly depends on the interval, so shorter intervals alarm more
 * per hour: at intervalMs 100 the same defaults gave 4.7 false alarms per hour at 200/s (and
 * detected 20/s -> 60/s within 1 s); sum short bins to 1 s, or raise the threshold.
 */

/** Which way the rate moved when an alarm fires. */
export type RateChange = "up" | "down";

/** Options of RateChangeDetector. */
export interface RateChangeDetectorOptions {
  /** Length of the interval each pushed count covers, ms (> 0). */
  intervalMs: number;
  /** The up alternative, as a multiple of the baseline (> 1); default 1.5. */
  upRatio?: number;
  /** The down alternative, as a multiple of the baseline (in (0, 1)); default 1 / 1.5. */
  downRatio?: number;
  /** Alarm level of each statistic, log-likelihood units (> 0); default 8 (see the module doc). */
  threshold?: number;
  /** Floor of the baseline used by the up test, requests per second (> 0); default 0.5. */
  minBaselineRatePerS?: number;
  /** Intervals a baseline must rest on before alarms are possible (>= 1); default 5. */
  warmupIntervals?: number;
  /**
   * Memory of the baseline mean, ms: cumulative up to it, exponentially weighted after (weight one
   * interval / window); default 120 000 (2 minutes). In time, not intervals, so that the baseline's
   * precision (and its margin, see baselineZ) does not depend on intervalMs.
   */
  baselineWindowMs?: number;
  /**
   * Standard errors of the baseline mean (sqrt(mean count / intervals behind it)) added to it for
   * the up test and taken from it for the down test, so that a baseline resting on few intervals
   * (just after an alarm) does not raise alarms of its own; default 2.
   */
  baselineZ?: number;
  /**
   * While monitoring, a count joins the baseline only this many intervals later (>= 1), so a change
   * being detected does not leak into the baseline it is tested against; default 10.
   */
  baselineLagIntervals?: number;
}

/** Two-sided Poisson-rate CUSUM over per-interval counts; see the module doc. */
export class RateChangeDetector {
  private readonly intervalS: number;
  private readonly logUp: number;
  private readonly logDown: number;
  private readonly upRatio: number;
  private readonly downRatio: number;
  private readonly threshold: number;
  private readonly minBaselineRatePerS: number;
  private readonly warmupIntervals: number;
  private readonly baselineWindowIntervals: number;
  private readonly baselineZ: number;

  /** Baseline mean count per interval and the number of intervals (capped) behind it. */
  private baselineCount = 0;
  private baselineWeight = 0;
  private hasBaseline = false;
  /** The latest counts, not yet in the baseline (a ring of baselineLagIntervals). */
  private readonly lagged: Float64Array;
  private laggedCount = 0;
  private up = { statistic: 0, sum: 0, intervals: 0 };
  private down = { statistic: 0, sum: 0, intervals: 0 };
  private intervalsSinceAlarm = 0;

  /** Validates the options (RangeError naming the field); see RateChangeDetectorOptions for defaults. */
  constructor(options: RateChangeDetectorOptions) {
    const { intervalMs } = options;
    this.upRatio = options.upRatio ?? 1.5;
    this.downRatio = options.downRatio ?? 1 / 1.5;
    this.threshold = options.threshold ?? 8;
    this.minBaselineRatePerS = options.minBaselineRatePerS ?? 0.5;
    this.warmupIntervals = options.warmupIntervals ?? 5;
    const baselineWindowMs = options.baselineWindowMs ?? 120_000;
    this.baselineWindowIntervals = Math.max(1, Math.round(baselineWindowMs / intervalMs));
    this.baselineZ = options.baselineZ ?? 2;
    const lagIntervals = options.baselineLagIntervals ?? 10;
    const check = (isValid: boolean, field: string, rule: string, value: number) => {
      if (!isValid) throw new RangeError(`RateChangeDetector: ${field} must be ${rule}, got ${value}`);
    };
    check(intervalMs > 0 && Number.isFinite(intervalMs), "intervalMs", "> 0", intervalMs);
    check(this.upRatio > 1 && Number.isFinite(this.upRatio), "upRatio", "> 1", this.upRatio);
    check(this.downRatio > 0 && this.downRatio < 1, "downRatio", "in (0, 1)", this.downRatio);
    check(this.threshold > 0 && Number.isFinite(this.threshold), "threshold", "> 0", this.threshold);
    check(this.minBaselineRatePerS > 0 && Number.isFinite(this.minBaselineRatePerS), "minBaselineRatePerS", "> 0", this.minBaselineRatePerS);
    check(Number.isInteger(this.warmupIntervals) && this.warmupIntervals >= 1, "warmupIntervals", "an integer >= 1", this.warmupIntervals);
    check(this.baselineZ >= 0 && Number.isFinite(this.baselineZ), "baselineZ", ">= 0", this.baselineZ);
    check(this.baselineWindowIntervals >= this.warmupIntervals, "baselineWindowMs", "at least warmupIntervals intervals", baselineWindowMs);
    check(Number.isInteger(lagIntervals) && lagIntervals >= 1, "baselineLagIntervals", "an integer >= 1", lagIntervals);
    this.lagged = new Float64Array(lagIntervals);
    this.intervalS = intervalMs / 1000;
    this.logUp = Math.log(this.upRatio);
    this.logDown = Math.log(this.downRatio);
  }

  /**
   * Adds the count of the next interval (finite, >= 0). Returns the direction when an alarm fires
   * (the detector has then re-baselined on the post-change counts), else undefined.
   */
  push(count: number): RateChange | undefined {
    if (!(count >= 0) || !Number.isFinite(count)) throw new RangeError(`RateChangeDetector: count must be finite and >= 0, got ${count}`);
    this.intervalsSinceAlarm += 1;
    if (this.baselineWeight < this.warmupIntervals) {
      this.absorb(count);
      if (this.baselineWeight >= this.warmupIntervals) this.hasBaseline = true;
      return undefined;
    }
    const floorCount = this.minBaselineRatePerS * this.intervalS;
    const margin = this.baselineZ * Math.sqrt(Math.max(this.baselineCount, floorCount) / this.baselineWeight);
    const upMean = Math.max(this.baselineCount, floorCount) + margin;
    const downMean = this.baselineCount - margin;
    step(this.up, count, count * this.logUp - (this.upRatio - 1) * upMean);
    if (downMean >= floorCount) step(this.down, count, count * this.logDown - (this.downRatio - 1) * downMean);
    else this.down = { statistic: 0, sum: 0, intervals: 0 };
    if (this.up.statistic > this.threshold) return this.alarm("up", this.up);
    if (this.down.statistic > this.threshold) return this.alarm("down", this.down);
    const slot = this.laggedCount % this.lagged.length;
    if (this.laggedCount >= this.lagged.length) this.absorb(this.lagged[slot]!);
    this.lagged[slot] = count;
    this.laggedCount += 1;
    return undefined;
  }

  /**
   * Sets the baseline to `baselineRatePerS` (>= 0, requests per second), as if learnt from
   * `warmupIntervals` intervals (so alarms are possible at once and later counts refine it), and
   * clears both statistics; sinceAlarm restarts at 0.
   */
  reset(baselineRatePerS: number): void {
    if (!(baselineRatePerS >= 0) || !Number.isFinite(baselineRatePerS))
      throw new RangeError(`RateChangeDetector: baselineRatePerS must be finite and >= 0, got ${baselineRatePerS}`);
    this.restart(baselineRatePerS * this.intervalS, this.warmupIntervals);
  }

  /** The baseline rate, requests per second; undefined until the first warmupIntervals counts or a reset. */
  get baselineRatePerS(): number | undefined {
    return this.hasBaseline ? this.baselineCount / this.intervalS : undefined;
  }

  /** Intervals pushed since the last alarm or reset (or since construction). */
  get sinceAlarm(): number {
    return this.intervalsSinceAlarm;
  }

  private alarm(direction: RateChange, excursion: { sum: number; intervals: number }): RateChange {
    this.restart(excursion.sum / excursion.intervals, excursion.intervals);
    return direction;
  }

  private restart(baselineCount: number, weight: number): void {
    this.baselineCount = baselineCount;
    this.baselineWeight = Math.min(weight, this.baselineWindowIntervals);
    this.hasBaseline = true;
    this.laggedCount = 0;
    this.up = { statistic: 0, sum: 0, intervals: 0 };
    this.down = { statistic: 0, sum: 0, intervals: 0 };
    this.intervalsSinceAlarm = 0;
  }

  /** Adds one interval's count to the baseline mean. */
  private absorb(count: number): void {
    this.baselineWeight = Math.min(this.baselineWeight + 1, this.baselineWindowIntervals);
    this.baselineCount += (count - this.baselineCount) / this.baselineWeight;
  }
}

/** One CUSUM step: floor at 0, and track the counts since the statistic last left 0. */
function step(side: { statistic: number; sum: number; intervals: number }, count: number, increment: number): void {
  const next = Math.max(0, side.statistic + increment);
  if (next === 0) {
    side.sum = 0;
    side.intervals = 0;
  } else {
    side.sum += count;
    side.intervals += 1;
  }
  side.statistic = next;
}
