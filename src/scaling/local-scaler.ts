/**
 * Runs the origin pool as gpu-origin processes on this machine (127.0.0.1), between minReplicas
 * and maxReplicas (Node only). A new replica takes the lowest free port from basePort upward
 * (freed ports are reused) and starts with `--edge <edgeUrl>`, so it registers itself with the
 * edge by heartbeats once ready; scaling down sends SIGTERM to the newest replicas, which leave the
 * pool, drain and exit (SIGKILL after `stopGraceMs`).
 *
 * One reconcile loop does all the work, so concurrent `setReplicas` calls cannot over- or
 * under-shoot: each call only records its (clamped) target and wakes the loop, which starts or stops
 * replicas until the running count equals the latest target (a lower target also cancels starts it
 * no longer needs). `setReplicas` resolves at once (the
 * request is accepted); `settled()` resolves once the pool matches the target. A replica that fails
 * to start stops the loop (settled() rejects with the reason, which is also logged); the next
 * `setReplicas` tries again. The constructor starts minReplicas replicas.
 */
import { createServer } from "node:net";
import { availableParallelism } from "node:os";
import { startOrigin, type OriginOptions, type Started } from "../cli/processes";
import { clampReplicas, type LocalScalerConfig, type PoolScaler } from "./pool-scaler";

/** Starts one replica and resolves once it is ready (startOrigin from src/cli/processes.ts by default). */
export type OriginLauncher = (options: OriginOptions) => Promise<Started>;

/** A running replica. */
export interface LocalReplica {
  port: number;
  url: string;
  pid: number | undefined;
}

/** Process options; defaults suit `npm start`-like use. */
export interface LocalScalerOptions {
  launch?: OriginLauncher;
  /** Whether 127.0.0.1:port can be listened on (default: tries to). */
  isPortFree?: (port: number) => Promise<boolean>;
  /** Where the replicas' output goes (default "ignore"). */
  stdio?: "inherit" | "ignore";
  /** Longest wait for a new replica's readiness, in ms (default 60000). */
  readyTimeoutMs?: number;
  /** Longest wait for a stopped replica to drain and exit before SIGKILL, in ms (default 15000). */
  stopGraceMs?: number;
  log?: (line: string) => void;
}

/** Highest port tried above basePort. */
const PORT_SEARCH_SPAN = 1000;

/** A pool of local gpu-origin processes. */
export class LocalScaler implements PoolScaler {
  readonly kind = "local";
  private target: number;
  /** Oldest first; scaling down stops from the end. */
  private readonly running: { port: number; started: Started }[] = [];
  private readonly starting = new Map<number, AbortController>();
  private isPumping = false;
  private isClosed = false;
  private pump: Promise<void> = Promise.resolve();
  private lastError: Error | undefined;
  private waiters: { resolve: () => void; reject: (error: Error) => void }[] = [];
  private readonly launch: OriginLauncher;
  private readonly isPortFree: (port: number) => Promise<boolean>;
  private readonly threads: number;
  private readonly log: (line: string) => void;

  constructor(
    private readonly config: LocalScalerConfig,
    private readonly options: LocalScalerOptions = {},
  ) {
    this.launch = options.launch ?? startOrigin;
    this.isPortFree = options.isPortFree ?? canListen;
    this.threads = config.threads ?? Math.max(1, Math.floor(availableParallelism() / Math.max(1, config.maxReplicas)));
    this.log = options.log ?? ((line) => console.log(line));
    this.target = config.minReplicas;
    if (this.target > 0) this.kick();
  }

  async setReplicas(replicas: number, reason: string): Promise<void> {
    if (this.isClosed) throw new Error("local scaler: closed");
    const next = clampReplicas(replicas, this.config.minReplicas, this.config.maxReplicas);
    if (next !== this.target) this.log(`local scaler: ${this.target} -> ${next} replicas (${reason})`);
    this.target = next;
    this.abortSurplusStarts();
    this.kick();
  }

  async replicas(): Promise<number> {
    return this.target;
  }

  /** The replicas running now (ready when started), oldest first. */
  members(): LocalReplica[] {
    return this.running.map(({ port, started }) => ({ port, url: started.url, pid: started.process.pid }));
  }

  /** Resolves once the running replicas match the latest target; rejects if a replica failed to start. */
  settled(): Promise<void> {
    if (!this.isPumping) return this.lastError ? Promise.reject(this.lastError) : Promise.resolve();
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  async close(): Promise<void> {
    this.isClosed = true;
    for (const controller of this.starting.values()) controller.abort();
    await this.pump;
    await Promise.all(this.running.splice(0).map(({ started }) => started.stop(this.options.stopGraceMs ?? 15_000)));
  }

  /** Stops replicas still starting that the new target no longer needs (the newest first). */
  private abortSurplusStarts(): void {
    const pending = [...this.starting.values()].filter((c) => !c.signal.aborted);
    let surplus = this.running.length + pending.length - this.target;
    for (const controller of pending.reverse()) {
      if (surplus-- <= 0) break;
      controller.abort();
    }
  }

  private kick(): void {
    if (this.isPumping || this.isClosed) return;
    this.isPumping = true;
    this.lastError = undefined;
    this.pump = this.run();
  }

  /** The reconcile loop: one step at a time, re-reading the target after each. */
  private async run(): Promise<void> {
    try {
      await Promise.resolve();
      while (!this.isClosed && this.running.length !== this.target) {
        const have = this.running.length;
        if (have < this.target) await this.startReplicas(this.target - have);
        else await Promise.all(this.running.splice(this.target).map(({ started }) => started.stop(this.options.stopGraceMs ?? 15_000)));
      }
    } catch (error) {
      if (!this.isClosed) {
        this.lastError = error as Error;
        this.log(`local scaler: ${(error as Error).message}`);
      }
    } finally {
      this.isPumping = false;
      const waiters = this.waiters.splice(0);
      for (const w of waiters) this.lastError ? w.reject(this.lastError) : w.resolve();
    }
  }

  private async startReplicas(count: number): Promise<void> {
    const ports = await this.freePorts(count);
    const results = await Promise.allSettled(ports.map((port) => this.startReplica(port)));
    const failed = results.find((r) => r.status === "rejected");
    if (failed) throw new Error(`replica failed to start: ${(failed.reason as Error).message}`);
  }

  private async startReplica(port: number): Promise<void> {
    const controller = new AbortController();
    this.starting.set(port, controller);
    const { secret, edgeUrl, originArgs = [] } = this.config;
    try {
      const started = await this.launch({
        port,
        secret,
        args: ["--edge", edgeUrl, "--threads", String(this.threads), ...originArgs],
        stdio: this.options.stdio ?? "ignore",
        signal: controller.signal,
        readyTimeoutMs: this.options.readyTimeoutMs ?? 60_000,
      });
      if (this.isClosed) {
        await started.stop(this.options.stopGraceMs ?? 15_000);
        return;
      }
      this.running.push({ port, started });
    } catch (error) {
      if (!controller.signal.aborted) throw error; // aborted: no longer wanted
    } finally {
      this.starting.delete(port);
    }
  }

  /** The `count` lowest ports from basePort upward that no replica holds and nothing else listens on. */
  private async freePorts(count: number): Promise<number[]> {
    const held = new Set([...this.running.map((r) => r.port), ...this.starting.keys()]);
    const ports: number[] = [];
    const last = Math.min(65535, this.config.basePort + PORT_SEARCH_SPAN);
    for (let port = this.config.basePort; port <= last && ports.length < count; port++) {
      if (!held.has(port) && (await this.isPortFree(port))) ports.push(port);
    }
    if (ports.length < count) throw new Error(`no free port in ${this.config.basePort}-${last}`);
    return ports;
  }
}

/** True when 127.0.0.1:port can be listened on now. */
export function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen({ port, host: "127.0.0.1", exclusive: true }, () => server.close(() => resolve(true)));
  });
}
