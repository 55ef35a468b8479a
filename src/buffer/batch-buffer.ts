/**
 * BatchBuffer: the Durable Object that coalesces one model shard's requests into micro-batches
 * ("edge" and "origin" placements). Thin glue around the model server (model-server.ts, the shared
 * scheduler's loop with concat, run, split and telemetry): this object supplies the clock, the
 * shard's name in telemetry and an alarm backstop (local alarms fire tens of ms late, so the
 * in-memory timer does the waiting and the alarm only catches a lost timer).
 *
 * Warm starts: the object remembers its model (synchronous storage) from its first call, and when
 * it starts again (after an eviction or a restart) it creates and warms the model's session inside
 * `blockConcurrencyWhile`, so requests wait for one warm-up rather than each running on a cold
 * session. The edge's readiness route warms every planned shard of its buffered models (`warm`).
 */
import { DurableObject } from "cloudflare:workers";
import type { Tensor } from "../protocol/tensor";
import { ModelServer, statsSnapshot, type BufferJob, type BufferReply, type BufferStatsSnapshot } from "./model-server";

export type { BufferJob, BufferReply, BufferStatsSnapshot } from "./model-server";

/** Storage key of the model and shard this object serves. */
const HOME_KEY = "home";
interface Home {
  model: string;
  shard: number;
}

/** Backstop delay of the alarm beyond the in-memory timer, in ms. */
const ALARM_BACKSTOP_MS = 250;

/** Buffers and runs one model shard's batches. */
export class BatchBuffer extends DurableObject<Env> {
  private server?: ModelServer;
  private alarmAtMs?: number;
  /** The clock (epoch ms). Tests replace it to move time without sleeping. */
  now: () => number = () => Date.now();

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const home = ctx.storage.kv.get<Home>(HOME_KEY);
    if (home) void ctx.blockConcurrencyWhile(() => this.serverFor(home.model, home.shard).warm().catch((error) => console.warn(`warming ${home.model}#${home.shard}: ${(error as Error).message}`)));
  }

  /** Queues a job sent to `shard` and resolves with its reply once its batch ran (or it was refused, expired, cancelled). */
  infer(job: BufferJob, shard: number): Promise<BufferReply> {
    return this.serverFor(job.model, shard).infer(job);
  }

  /** Creates and warms the session of `model` (served as `shard`) before traffic, running `inputs` as one request outside the queue; resolves with its outputs. */
  warm(model: string, shard: number, inputs?: Tensor[]): Promise<Tensor[]> {
    return this.serverFor(model, shard).warm(inputs);
  }

  /** Drops a waiting job whose client went away. Returns whether it was still waiting. */
  cancel(id: string): boolean {
    return this.server?.cancel(id) ?? false;
  }

  /** This shard's counters and recent samples. */
  stats(): BufferStatsSnapshot {
    return this.server?.stats() ?? statsSnapshot(undefined, { queuedRows: 0, runningRows: 0 });
  }

  /** Backstop: starts whatever is due if the in-memory timer did not (e.g. after a restart). */
  override async alarm(): Promise<void> {
    this.alarmAtMs = undefined;
    this.server?.wake();
  }

  /** This object's model server, created on first use (its model and shard remembered for warm starts). */
  private serverFor(model: string, shard: number): ModelServer {
    if (this.server) return this.server;
    const home = this.ctx.storage.kv.get<Home>(HOME_KEY);
    if (home?.model !== model || home.shard !== shard) this.ctx.storage.kv.put<Home>(HOME_KEY, { model, shard });
    return (this.server = new ModelServer(model, { env: this.env, reporter: shard, now: () => this.now(), onNextDue: (atMs) => this.armAlarm(atMs) }));
  }

  /** Arms the alarm as a backstop behind the loop's timer (never earlier than needed, once at a time). */
  private armAlarm(dueAtMs: number | undefined): void {
    if (dueAtMs === undefined || this.alarmAtMs !== undefined) return;
    this.alarmAtMs = dueAtMs + ALARM_BACKSTOP_MS;
    // The backstop neither holds replies behind the output gate nor blocks events while it is stored.
    void this.ctx.storage.setAlarm(this.alarmAtMs, { allowUnconfirmed: true, allowConcurrency: true });
  }
}
