/**
 * PIE (Proportional Integral controller Enhanced, RFC 8033) on the way to a batch buffer: the
 * Worker's front door refuses a share of new requests so that the delay on the way to the buffer
 * and back stays near a target. Pure: time is passed in.
 *
 * Why: a buffer's admission control (scheduler.ts) judges a request when it arrives, from its own
 * queue. It cannot see requests still on their way: under overload they wait before it, in the
 * caller's event loop and the Durable Object's input queue, and on a shared thread (workerd
 * locally) each still costs the body's decode and the call by the time the buffer refuses it as
 * expired. PIE measures that wait and sheds at the front door, where a refusal costs least.
 *
 * The delay of a request is its call's round trip minus the time the buffer held it (`heldMs` in
 * its reply), less the smallest such delay seen lately (the path's base: a far Durable Object's
 * network round trip is not congestion). Every UPDATE_MS the refusal probability p moves by
 * alpha (delay - target) + beta (delay - previous delay), with RFC 8033's scaling of both gains
 * while p is small (so p starts slowly) and its 2 % step when the delay passes 250 ms. A request is
 * admitted while the burst allowance lasts (the first MAX_BURST_MS after the path was last quiet, so
 * a burst is not cut at its start by the delay it causes itself), or while the delay is below half
 * the target and p is under 0.2; otherwise it is refused with probability p.
 */

/** Interval between updates of the refusal probability, ms (RFC 8033: 15 ms). */
export const UPDATE_MS = 15;
/** Burst allowance after an idle path, ms (RFC 8033: 150 ms). */
export const MAX_BURST_MS = 150;
/** Gains per second of delay (RFC 8033: alpha 0.125 Hz, beta 1.25 Hz). */
const ALPHA_PER_S = 0.125;
const BETA_PER_S = 1.25;
/** The path's base delay is the smallest sample of the buckets of BASE_BUCKET_MS begun in the last BASE_BUCKETS x BASE_BUCKET_MS. */
const BASE_BUCKET_MS = 10_000;
const BASE_BUCKETS = 6;

export class Pie {
  private p = 0;
  private delayMs = 0;
  private previousDelayMs = 0;
  private burstLeftMs = MAX_BURST_MS;
  private updatedAtMs?: number;
  private sampleSumMs = 0;
  private samples = 0;
  private inFlight = 0;
  /** Smallest raw delay per bucket (newest first), for the base. */
  private baseBuckets: { startMs: number; minMs: number }[] = [];

  constructor(
    /** The queueing delay to hold, ms. */
    readonly targetMs: number,
    private readonly random: () => number = Math.random,
  ) {}

  /** Whether a request arriving now is let through (then `sent`), or refused. */
  admits(nowMs: number): boolean {
    this.update(nowMs);
    if (this.burstLeftMs > 0) return true;
    if (this.delayMs < this.targetMs / 2 && this.p < 0.2) return true; // the latest estimate (RFC 8033: qdelay_old after an update)
    return this.random() >= this.p;
  }

  /** A request was sent on the path. */
  sent(): void {
    this.inFlight++;
  }

  /** A sent request's reply came back after `roundTripMs`, of which the buffer held it `heldMs` (undefined: it failed without a reply). */
  replied(roundTripMs: number, heldMs: number | undefined, nowMs: number): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    if (heldMs === undefined) return;
    const rawMs = Math.max(0, roundTripMs - heldMs);
    const bucket = this.baseBuckets[0];
    if (!bucket || nowMs - bucket.startMs >= BASE_BUCKET_MS) this.baseBuckets = [{ startMs: nowMs, minMs: rawMs }, ...this.baseBuckets.filter((b) => nowMs - b.startMs < BASE_BUCKETS * BASE_BUCKET_MS)].slice(0, BASE_BUCKETS);
    else bucket.minMs = Math.min(bucket.minMs, rawMs);
    this.sampleSumMs += rawMs - this.baseBuckets.reduce((base, b) => Math.min(base, b.minMs), Infinity);
    this.samples++;
  }

  /** Probability that a new request is refused (past the burst allowance). */
  get probability(): number {
    return this.p;
  }

  /** The current estimate of the queueing delay on the path, ms. */
  get queueDelayMs(): number {
    return this.delayMs;
  }

  private update(nowMs: number): void {
    this.updatedAtMs ??= nowMs;
    const steps = Math.floor((nowMs - this.updatedAtMs) / UPDATE_MS);
    if (steps <= 0) return;
    // A long idle gap is at most a few hundred updates of an empty path.
    this.updatedAtMs = steps > 400 ? nowMs : this.updatedAtMs + steps * UPDATE_MS;
    for (let i = 0; i < Math.min(steps, 400); i++) this.step();
  }

  private step(): void {
    // The delay since the last update: the mean of the samples that came back; none while nothing
    // is on the way means an empty path; none while requests are on the way keeps the last value.
    const delayMs = this.samples > 0 ? this.sampleSumMs / this.samples : this.inFlight === 0 ? 0 : this.delayMs;
    this.sampleSumMs = 0;
    this.samples = 0;
    this.previousDelayMs = this.delayMs;
    this.delayMs = delayMs;
    const scale = gainScale(this.p);
    let delta = (scale * (ALPHA_PER_S * (delayMs - this.targetMs) + BETA_PER_S * (delayMs - this.previousDelayMs))) / 1000;
    if (this.p >= 0.1 && delta > 0.02) delta = 0.02;
    if (delayMs > 250) delta += 0.02;
    this.p = Math.min(1, Math.max(0, this.p + delta));
    if (delayMs === 0 && this.previousDelayMs === 0) this.p *= 0.98;
    this.burstLeftMs = Math.max(0, this.burstLeftMs - UPDATE_MS);
    if (this.p === 0 && delayMs < this.targetMs / 2 && this.previousDelayMs < this.targetMs / 2) this.burstLeftMs = MAX_BURST_MS;
  }
}

/** RFC 8033's scaling of the gains while the probability is small. */
function gainScale(probability: number): number {
  if (probability < 0.000001) return 1 / 2048;
  if (probability < 0.00001) return 1 / 512;
  if (probability < 0.0001) return 1 / 128;
  if (probability < 0.001) return 1 / 32;
  if (probability < 0.01) return 1 / 8;
  if (probability < 0.1) return 1 / 2;
  return 1;
}
