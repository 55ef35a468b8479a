/**
 * The Worker's front door for one model: what this isolate knows of the way to each of the model's
 * buffer shards, and the requests it refuses itself, before their bodies are parsed or a shard is
 * called, so that overload costs the buffer's thread as little as possible. Two signals:
 * - A buffer that refuses a request at admission says until when it is busy (a request due before
 *   then would be refused too): such requests are refused here until then.
 * - PIE (src/scheduler/pie.ts) on the way to each shard: a buffer cannot see the requests still on
 *   their way to it (in this event loop, in its input queue); each reply says how long the buffer
 *   held its request, the rest of the round trip is the way, and PIE refuses a share of new
 *   requests while it stays long.
 * A request refused here arrived all the same: it goes to the model's telemetry as an arrival
 * refused, so the controller sees the demand that never reached a buffer. Its body is not parsed,
 * so its rows are taken to be the mean of the requests this door sent on.
 * Pure: time is passed in; dispatch.ts keeps one door per model and sends the telemetry. The model's
 * maxLatencyMs (PIE's target) is not a plan field, so the manifest the door is made with holds.
 */
import type { TelemetryRecorder } from "../control/telemetry";
import { maxLatencyMsOf, type ModelManifest } from "../models/manifest";
import { type InferenceError, type RejectionReason, unavailable } from "../protocol/errors";
import { Pie } from "../scheduler/pie";

/** PIE's target delay on the way to a buffer and back, as a share of the model's longest wait (maxLatencyMs). */
export const PIE_TARGET_SHARE = 0.1;

/** Weight of a new request in the mean rows per request. */
const ROWS_WEIGHT = 1 / 16;

/** The 503 of a request that `model` cannot take before `busyUntilMs` (epoch ms), retried after then. */
export function busyRefusal(model: string, busyUntilMs: number, nowMs: number, reason: RejectionReason): InferenceError {
  return unavailable(`model '${model}' is overloaded: busy for about ${Math.ceil(busyUntilMs - nowMs)} ms`, Math.max(1, Math.ceil((busyUntilMs - nowMs) / 1000)), reason);
}

export class FrontDoor {
  /** Per shard: a request due before this epoch ms would be refused. */
  private readonly busyUntilMs = new Map<number, number>();
  private readonly pies = new Map<number, Pie>();
  /** Mean rows of the requests sent on. */
  private rowsPerRequest = 1;

  /** The model's name, in refusals. */
  private readonly model: string;
  /** PIE's target delay for this model, ms. */
  private readonly pieTargetMs: number;

  constructor(
    manifest: ModelManifest,
    private readonly telemetry: TelemetryRecorder,
    private readonly random: () => number = Math.random,
  ) {
    this.model = manifest.name;
    this.pieTargetMs = PIE_TARGET_SHARE * maxLatencyMsOf(manifest);
  }

  /**
   * The refusal (503) of a request for `shard`, due at `deadlineAtMs`, arriving at `nowMs`,
   * recorded in the telemetry; undefined when it may go on to the shard.
   */
  refusal(shard: number, deadlineAtMs: number, nowMs: number): InferenceError | undefined {
    const refusal = this.decide(shard, deadlineAtMs, nowMs);
    if (refusal) {
      const rows = Math.max(1, Math.round(this.rowsPerRequest));
      this.telemetry.arrived(rows, nowMs);
      this.telemetry.failed(rows, "refused");
    }
    return refusal;
  }

  private decide(shard: number, deadlineAtMs: number, nowMs: number): InferenceError | undefined {
    const untilMs = this.busyUntilMs.get(shard);
    if (untilMs !== undefined && untilMs <= nowMs) this.busyUntilMs.delete(shard);
    else if (untilMs !== undefined && deadlineAtMs < untilMs) return busyRefusal(this.model, untilMs, nowMs, "late");
    const pie = this.pieOf(shard);
    // The share refused falls gradually once the way clears (RFC 8033), so the message gives both.
    if (!pie.admits(nowMs)) return unavailable(`model '${this.model}' is overloaded: refusing ${Math.ceil(pie.probability * 100)} % of new requests; the way to its buffer took ${Math.round(pie.queueDelayMs)} ms more than usual lately`, 1, "late");
    return undefined;
  }

  /** A request of `rows` rows goes to `shard`. */
  sent(shard: number, rows: number): void {
    this.rowsPerRequest += (rows - this.rowsPerRequest) * ROWS_WEIGHT;
    this.pieOf(shard).sent();
  }

  /**
   * The call to `shard` ended after `roundTripMs`: with the buffer's reply (how long it held the
   * request; until when it is busy, when it refused it), or without one (the call failed).
   */
  replied(shard: number, roundTripMs: number, reply: { heldMs?: number; busyUntilMs?: number } | undefined, nowMs: number): void {
    this.pieOf(shard).replied(roundTripMs, reply?.heldMs, nowMs);
    if (reply?.busyUntilMs !== undefined) this.busyUntilMs.set(shard, reply.busyUntilMs);
  }

  private pieOf(shard: number): Pie {
    let pie = this.pies.get(shard);
    if (!pie) this.pies.set(shard, (pie = new Pie(this.pieTargetMs, this.random)));
    return pie;
  }
}
