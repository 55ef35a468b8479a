/**
 * BatchBuffer: the Durable Object that coalesces one model shard's requests into micro-batches
 * ("edge" and "origin" placements). Thin glue around the model server (model-server.ts, the shared
 * scheduler's loop with concat, run, split and telemetry): this object supplies the clock, the
 * shard's name in telemetry and an alarm backstop (local alarms fire tens of ms late, so the
 * in-memory timer does the waiting and the alarm only catches a lost timer).
 */
import { DurableObject } from "cloudflare:workers";
import { ModelServer, statsSnapshot, type BufferJob, type BufferReply, type BufferStatsSnapshot } from "./model-server";

export type { BufferJob, BufferReply, BufferStatsSnapshot } from "./model-server";

/** Backstop delay of the alarm beyond the in-memory timer, in ms. */
const ALARM_BACKSTOP_MS = 250;

/** Buffers and runs one model shard's batches. */
export class BatchBuffer extends DurableObject<Env> {
  private server?: ModelServer;
  private alarmAtMs?: number;
  /** The clock (epoch ms). Tests replace it to move time without sleeping. */
  now: () => number = () => Date.now();

  /** Queues a job sent to `shard` and resolves with its reply once its batch ran (or it was refused, expired, cancelled). */
  infer(job: BufferJob, shard: number): Promise<BufferReply> {
    this.server ??= new ModelServer(job.model, {
      env: this.env,
      reporter: shard,
      now: () => this.now(),
      onNextDue: (atMs) => this.armAlarm(atMs),
    });
    return this.server.infer(job);
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

  /** Arms the alarm as a backstop behind the loop's timer (never earlier than needed, once at a time). */
  private armAlarm(dueAtMs: number | undefined): void {
    if (dueAtMs === undefined || this.alarmAtMs !== undefined) return;
    this.alarmAtMs = dueAtMs + ALARM_BACKSTOP_MS;
    // The backstop neither holds replies behind the output gate nor blocks events while it is stored.
    void this.ctx.storage.setAlarm(this.alarmAtMs, { allowUnconfirmed: true, allowConcurrency: true });
  }
}
