/**
 * The measured service time of a batch by its size in rows, learnt online: a moving average per
 * observed size (each sample capped at SPIKE_LIMIT times its mean), and between sizes a
 * least-squares line baseMs + perRowMs * k over the sizes seen (weighted by how often each was seen). Until a size has been seen, a prior line (for example the
 * model's profile) stands in; with neither, the estimate is 0 (admission then refuses only on a
 * full queue). Pure and bounded: one slot per batch size.
 */

/** Weight of the newest sample in a size's moving average. */
const EWMA_WEIGHT = 0.2;
/**
 * A sample counts at most this many times its size's mean (or this many clock ticks, SPIKE_FLOOR_MS,
 * whichever is more): a stall of the host (this one's workerd stops for 80-170 ms every 5-15 s)
 * lands in one batch's time, and taken whole it would raise a 1 ms mean to 35 ms, predicting
 * every request late for a while. A kernel that really slows still raises the mean by up to 60 % a
 * batch.
 */
const SPIKE_LIMIT = 4;
/** workerd's clock counts whole ms. */
const SPIKE_FLOOR_MS = 1;

/** A line baseMs + perRowMs * rows. */
export interface ServiceLine {
  baseMs: number;
  perRowMs: number;
}

/** Online service time per batch size. */
export class ServiceEstimate {
  private readonly meanMs: number[] = [];
  private readonly seen: number[] = [];
  private line?: ServiceLine;

  constructor(private readonly prior?: ServiceLine) {}

  /** Records one batch of `rows` rows that ran for `ms`. */
  observe(rows: number, ms: number): void {
    if (!(ms >= 0) || rows < 1) return;
    const mean = this.meanMs[rows];
    this.meanMs[rows] = mean === undefined ? ms : mean + EWMA_WEIGHT * (Math.min(ms, SPIKE_LIMIT * Math.max(mean, SPIKE_FLOOR_MS)) - mean);
    this.seen[rows] = (this.seen[rows] ?? 0) + 1;
    this.line = undefined;
  }

  /** Expected duration of a batch of `rows` rows, in ms. */
  ms(rows: number): number {
    const mean = this.meanMs[rows];
    if (mean !== undefined) return mean;
    const line = this.fit();
    return line ? Math.max(0, line.baseMs + line.perRowMs * rows) : 0;
  }

  /** The line through the observed sizes (or the prior, or through the one size seen and the origin). */
  fit(): ServiceLine | undefined {
    if (this.line) return this.line;
    let w = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
    this.meanMs.forEach((y, x) => {
      if (y === undefined) return;
      const n = Math.min(this.seen[x]!, 100);
      w += n; sx += n * x; sy += n * y; sxx += n * x * x; sxy += n * x * y;
    });
    if (w === 0) return this.prior;
    const variance = sxx / w - (sx / w) ** 2;
    if (variance < 1e-9) {
      // One size seen: keep the prior's shape through it, or scale through the origin.
      const x = sx / w, y = sy / w;
      if (this.prior && this.prior.baseMs + this.prior.perRowMs * x > 0) {
        const scale = y / (this.prior.baseMs + this.prior.perRowMs * x);
        return (this.line = { baseMs: this.prior.baseMs * scale, perRowMs: this.prior.perRowMs * scale });
      }
      return (this.line = { baseMs: 0, perRowMs: y / x });
    }
    const perRowMs = Math.max(0, (sxy / w - (sx / w) * (sy / w)) / variance);
    return (this.line = { baseMs: Math.max(0, sy / w - perRowMs * (sx / w)), perRowMs });
  }
}
