/**
 * The local scaler: its reconcile loop with a fake launcher (no processes: concurrent targets,
 * clamping, port reuse, failures), then real gpu-origin processes on 127.0.0.1 scaled 0 -> 2 -> 1 -> 0,
 * with a heartbeat receiver in the test standing in for the edge (it verifies each heartbeat's hop
 * signature). Every process started is stopped in afterAll, by pid, even when a test fails.
 */
import type { ChildProcess } from "node:child_process";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { freePort, type OriginOptions, type Started } from "../../../src/cli/processes";
import { canListen, LocalScaler, type OriginLauncher } from "../../../src/scaling/local-scaler";
import { parsePoolScalerConfig, type LocalScalerConfig } from "../../../src/scaling/pool-scaler";
import { TEST_SECRET } from "../origin/origin-process";
import { SignedReceiver } from "./signed-receiver";

const localConfig = (fields: Partial<LocalScalerConfig>): LocalScalerConfig =>
  parsePoolScalerConfig({ kind: "local", minReplicas: 0, maxReplicas: 4, basePort: 20_000, secret: TEST_SECRET, edgeUrl: "http://127.0.0.1:8787", threads: 1, ...fields }) as LocalScalerConfig;

/** A launcher whose replicas become ready when the test says so; it counts replicas alive (starting or running). */
class FakeLauncher {
  readonly launches: { options: OriginOptions; ready: () => void; fail: (error: Error) => void; settled: boolean }[] = [];
  alive = 0;
  maxAlive = 0;
  private waiters: { count: number; resolve: () => void }[] = [];

  readonly launch: OriginLauncher = (options) =>
    new Promise<Started>((resolve, reject) => {
      this.alive++;
      this.maxAlive = Math.max(this.maxAlive, this.alive);
      const entry = {
        options,
        settled: false,
        ready: () => {
          entry.settled = true;
          resolve(this.started(options.port));
        },
        fail: (error: Error) => {
          entry.settled = true;
          this.alive--;
          reject(error);
        },
      };
      options.signal?.addEventListener("abort", () => entry.fail(new Error("aborted")), { once: true });
      this.launches.push(entry);
      this.waiters = this.waiters.filter((w) => (this.launches.length >= w.count ? (w.resolve(), false) : true));
    });

  /** Resolves once `count` replicas were launched in all. */
  launched(count: number): Promise<void> {
    if (this.launches.length >= count) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ count, resolve }));
  }

  /** Makes every pending launch ready. */
  readyAll(): void {
    for (const l of this.launches.filter((l) => !l.settled)) l.ready();
  }

  private started(port: number): Started {
    let isStopped = false;
    return {
      url: `http://127.0.0.1:${port}`,
      process: { pid: 40_000 + port } as ChildProcess,
      stop: async () => {
        if (!isStopped) this.alive--;
        isStopped = true;
      },
    };
  }
}

describe("LocalScaler (reconcile loop)", () => {
  const quiet = { isPortFree: async () => true, log: () => {} };

  it("ends at the latest target without passing the highest one when targets change while replicas start", async () => {
    const fake = new FakeLauncher();
    const scaler = new LocalScaler(localConfig({ basePort: 20_000 }), { launch: fake.launch, ...quiet });
    await scaler.setReplicas(3, "up");
    await fake.launched(3);
    await scaler.setReplicas(1, "down while starting");
    await scaler.setReplicas(2, "up again");
    fake.readyAll();
    await fake.launched(4);
    fake.readyAll();
    await scaler.settled();

    expect(await scaler.replicas()).toBe(2);
    expect(scaler.members().map((m) => m.port)).toEqual([20_000, 20_001]);
    expect(fake.alive).toBe(2);
    expect(fake.maxAlive).toBe(3);
    expect(fake.launches.map((l) => l.options.port)).toEqual([20_000, 20_001, 20_002, 20_001]);
    await scaler.close();
    expect(fake.alive).toBe(0);
  });

  it("clamps targets to [minReplicas, maxReplicas] and starts minReplicas at once", async () => {
    const fake = new FakeLauncher();
    const scaler = new LocalScaler(localConfig({ minReplicas: 1, maxReplicas: 2 }), { launch: fake.launch, ...quiet });
    await fake.launched(1);
    fake.readyAll();
    await scaler.settled();
    expect(scaler.members()).toHaveLength(1);

    await scaler.setReplicas(9, "burst");
    expect(await scaler.replicas()).toBe(2);
    await fake.launched(2);
    fake.readyAll();
    await scaler.settled();
    expect(scaler.members()).toHaveLength(2);

    await scaler.setReplicas(-4, "idle");
    expect(await scaler.replicas()).toBe(1);
    await scaler.settled();
    expect(scaler.members().map((m) => m.port)).toEqual([20_000]);
    await scaler.close();
  });

  it("starts replicas with --edge, --threads and the configured flags on free ports only", async () => {
    const fake = new FakeLauncher();
    const busy = new Set([20_000, 20_002]);
    const scaler = new LocalScaler(localConfig({ edgeUrl: "http://127.0.0.1:8787/", originArgs: ["--models", "silero-vad"] }), { launch: fake.launch, isPortFree: async (p) => !busy.has(p), log: () => {} });
    await scaler.setReplicas(2, "up");
    await fake.launched(2);
    expect(fake.launches.map((l) => l.options.port)).toEqual([20_001, 20_003]);
    expect(fake.launches[0]!.options).toMatchObject({ secret: TEST_SECRET, args: ["--edge", "http://127.0.0.1:8787", "--threads", "1", "--models", "silero-vad"] });
    fake.readyAll();
    await scaler.close();
  });

  it("rejects settled() when a replica fails to start, and tries again on the next request", async () => {
    const fake = new FakeLauncher();
    const logs: string[] = [];
    const scaler = new LocalScaler(localConfig({}), { launch: fake.launch, isPortFree: async () => true, log: (line) => logs.push(line) });
    await scaler.setReplicas(1, "up");
    await fake.launched(1);
    fake.launches[0]!.fail(new Error("process for http://127.0.0.1:20000/v2/health/ready exited with code 1"));
    await expect(scaler.settled()).rejects.toThrow("replica failed to start: process for http://127.0.0.1:20000/v2/health/ready exited with code 1");
    expect(logs.at(-1)).toBe("local scaler: replica failed to start: process for http://127.0.0.1:20000/v2/health/ready exited with code 1");

    await scaler.setReplicas(1, "retry");
    await fake.launched(2);
    fake.readyAll();
    await scaler.settled();
    expect(scaler.members()).toHaveLength(1);
    await scaler.close();
  });
});


const isAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe("LocalScaler (real gpu-origin replicas)", () => {
  let edge: SignedReceiver;
  let scaler: LocalScaler | undefined;
  const pids = new Set<number>();

  beforeAll(async () => {
    edge = await SignedReceiver.start(TEST_SECRET);
  });

  afterEach(() => {
    for (const m of scaler?.members() ?? []) if (m.pid) pids.add(m.pid);
  });

  afterAll(async () => {
    await scaler?.close();
    for (const pid of pids) if (isAlive(pid)) process.kill(pid, "SIGKILL");
    await edge?.close();
  });

  it("starts ready replicas that heartbeat to the edge, and stops the newest with a leaving message as the target goes 0 -> 2 -> 1 -> 0", async () => {
    const basePort = await freePort();
    scaler = new LocalScaler(localConfig({ maxReplicas: 2, basePort, edgeUrl: edge.url, originArgs: ["--models", "silero-vad"] }), { readyTimeoutMs: 40_000, stopGraceMs: 10_000, log: () => {} });
    expect(scaler.members()).toEqual([]);

    await scaler.setReplicas(2, "test: up");
    await scaler.settled();
    const two = scaler.members();
    for (const m of two) if (m.pid) pids.add(m.pid);
    expect(two).toHaveLength(2);
    expect(new Set(two.map((m) => m.port)).size).toBe(2);
    for (const m of two) {
      expect(m.port).toBeGreaterThanOrEqual(basePort);
      expect(m.url).toBe(`http://127.0.0.1:${m.port}`);
      expect((await fetch(`${m.url}/v2/health/ready`)).status).toBe(200);
    }
    const beats = await Promise.all(two.map((m) => edge.waitFor((r) => (r.json as { url?: string })?.url === m.url)));
    for (const beat of beats) {
      expect(beat).toMatchObject({ method: "POST", path: "/v2/pool/heartbeat", contentType: "application/json" });
      expect(beat.verdict.ok).toBe(true);
      expect(beat.json).toEqual({ url: expect.any(String), ttlMs: 3000 });
    }

    await scaler.setReplicas(1, "test: down");
    await scaler.settled();
    const [kept] = scaler.members();
    const stopped = two.find((m) => m.port !== kept!.port)!;
    expect(kept!.pid).toBe(two.find((m) => m.port === kept!.port)!.pid);
    expect(isAlive(stopped.pid!)).toBe(false);
    expect(await canListen(stopped.port)).toBe(true);
    expect(isAlive(kept!.pid!)).toBe(true);
    const fromStopped = edge.received.filter((r) => (r.json as { url?: string })?.url === stopped.url);
    expect(fromStopped.at(-1)!.json).toEqual({ url: stopped.url, leaving: true });
    expect(fromStopped.every((r) => r.verdict.ok)).toBe(true);
    expect(fromStopped.filter((r) => (r.json as { leaving?: boolean }).leaving)).toHaveLength(1);

    await scaler.setReplicas(0, "test: idle");
    await scaler.settled();
    expect(scaler.members()).toEqual([]);
    expect(isAlive(kept!.pid!)).toBe(false);
    expect(await canListen(kept!.port)).toBe(true);
    expect(edge.received.filter((r) => (r.json as { url?: string })?.url === kept!.url).at(-1)!.json).toEqual({ url: kept!.url, leaving: true });
  }, 60_000);
});
