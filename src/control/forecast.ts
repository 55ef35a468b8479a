/**
 * Holt's linear trend method (double exponential smoothing) for a non-negative series such as an
 * arrival rate sampled once per interval: a level and a per-step trend, each an exponentially
 * weighted average, and a straight-line forecast from them. Pure and O(1) per value; the caller
 * decides what a step is (one push per interval).
 *
 *   level_t = alpha x_t + (1 - alpha) (level_{t-1} + trend_{t-1})
 *   trend_t = beta (level_t - level_{t-1}) + (1 - beta) trend_{t-1}
 *   forecast(h) = max(0, level_t + h trend_t)
 *
 * The first value sets the level with trend 0, so until a second value arrives the forecast is that
 * value at every horizon (and 0 before any value).
 */

/** Options of HoltForecast. */
export interface HoltForecastOptions {
  /** Smoothing of the level, in (0, 1]; default 0.5 (suits per-second rates: a step is half followed in one step). */
  alpha?: number;
  /** Smoothing of the trend, in (0, 1]; default 0.3. */
  beta?: number;
}

/** Holt's linear trend forecaster over a series pushed one value per step (see the module doc). */
export class HoltForecast {
  private readonly alpha: number;
  private readonly beta: number;
  private smoothedLevel: number | undefined;
  private smoothedTrend = 0;

  /** Defaults: alpha 0.5, beta 0.3. Throws a RangeError when either is outside (0, 1]. */
  constructor(options: HoltForecastOptions = {}) {
    const alpha = options.alpha ?? 0.5;
    const beta = options.beta ?? 0.3;
    if (!(alpha > 0 && alpha <= 1)) throw new RangeError(`HoltForecast: alpha must be in (0, 1], got ${alpha}`);
    if (!(beta > 0 && beta <= 1)) throw new RangeError(`HoltForecast: beta must be in (0, 1], got ${beta}`);
    this.alpha = alpha;
    this.beta = beta;
  }

  /** Adds the next value of the series (finite; throws a RangeError otherwise). */
  push(value: number): void {
    if (!Number.isFinite(value)) throw new RangeError(`HoltForecast: value must be finite, got ${value}`);
    const previous = this.smoothedLevel;
    if (previous === undefined) {
      this.smoothedLevel = value;
      return;
    }
    const level = this.alpha * value + (1 - this.alpha) * (previous + this.smoothedTrend);
    this.smoothedTrend = this.beta * (level - previous) + (1 - this.beta) * this.smoothedTrend;
    this.smoothedLevel = level;
  }

  /**
   * The value expected `stepsAhead` steps after the last one (0 gives the smoothed level), never
   * below 0: level + stepsAhead * trend; the level alone after one value; 0 before any value.
   */
  forecast(stepsAhead: number): number {
    if (this.smoothedLevel === undefined) return 0;
    return Math.max(0, this.smoothedLevel + stepsAhead * this.smoothedTrend);
  }

  /** The smoothed level, in the series' units; undefined before the first value. */
  get level(): number | undefined {
    return this.smoothedLevel;
  }

  /** The smoothed change per step, in the series' units per step; 0 before the second value. */
  get trend(): number {
    return this.smoothedTrend;
  }
}
