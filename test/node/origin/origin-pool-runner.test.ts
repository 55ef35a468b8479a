/**
 * OriginPoolRunner's retry rules against scripted replicas (a fake fetch per URL): which failures
 * move a batch to another replica, which end it, and that each run settles exactly once.
 */
import { describe, expect, it } from "vitest";
import { pickOutputs } from "../../../src/models/derived-outputs";
import { parseManifest } from "../../../src/models/manifest";
import { OriginPool } from "../../../src/origin/origin-pool";
import { unpackBinary } from "../../../src/protocol/oip-binary";
import { OriginPoolRunner, replicaServiceMs, type AttemptRecord, type HopWire } from "../../../src/origin/origin-pool-runner";
import type { PoolOptions } from "../../../src/origin/pool-state";
import type { Tensor } from "../../../src/protocol/tensor";

const manifest = parseManifest(
  {
    name: "double", version: "1", source: { package: "-", file: "-", license: "-" }, placement: "origin",
    inputs: [{ name: "x", datatype: "FP32", shape: [-1, 2] }], outputs: [{ name: "y", datatype: "FP32", shape: [-1, 2] }],
    slo: { percentile: 0.99, ms: 1000 }, batching: { maxBatch: 8, windowMs: 1, maxQueueRows: 8, shards: 1, maxRowsPerRequest: 8 },
  },
  "double",
);
const inputs: Tensor[] = [{ name: "x", datatype: "FP32", shape: [1, 2], data: Float32Array.of(1, 2) }];

type Behaviour = "ok" | "refuse" | "503" | "500" | "hang" | "bad-shape";

/** A pool of scripted replicas "http://r0", "http://r1", ...; `script[i]` gives replica i's answer to each infer. */
function scriptedPool(script: Behaviour[][], options: Partial<PoolOptions> = {}, now: () => number = () => Date.now(), wire: HopWire = "binary") {
  const calls: string[] = [];
  const wires: string[] = [];
  const fetcher = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = String(input);
    const replica = Number(/http:\/\/r(\d+)/.exec(url)![1]);
    calls.push(url.replace(/^http:\/\/r\d+/, `r${replica}`));
    if (url.endsWith("/v2/health/ready")) return Response.json({ ready: true });
    const behaviour = script[replica]!.shift() ?? "ok";
    if (behaviour === "refuse") throw new TypeError("fetch failed: connect ECONNREFUSED");
    if (behaviour === "503") return Response.json({ error: "busy" }, { status: 503, headers: { "Retry-After": "1" } });
    if (behaviour === "500") return Response.json({ error: "internal error" }, { status: 500 });
    if (behaviour === "hang") {
      return new Promise((_, reject) => init!.signal!.addEventListener("abort", () => reject(init!.signal!.reason)));
    }
    const body = init!.body as Uint8Array;
    const headerLength = (init!.headers as Record<string, string>)["inference-header-content-length"];
    wires.push(headerLength === undefined ? "json" : "binary");
    const { header, payload } = headerLength === undefined ? { header: JSON.parse(new TextDecoder().decode(body)), payload: undefined } : unpackBinary(body, headerLength);
    const request = header as { id: string; inputs: Array<{ shape: number[]; data?: number[] }> };
    const x = request.inputs[0]!;
    const values = x.data ?? Array.from(new Float32Array(payload!.slice().buffer));
    const shape = behaviour === "bad-shape" ? [x.shape[0]!, 3] : x.shape;
    return Response.json({ model_name: "double", id: request.id, outputs: [{ name: "y", datatype: "FP32", shape, data: values.map((v) => v * 2) }] });
  };
  const pool = new OriginPool(script.map((_, i) => `http://r${i}`), "unit-test-secret-0123456789", { fetch: fetcher, now, options: { healthIntervalMs: 60_000, ...options } });
  // Periodic health checks are not under test here: mark every replica checked now.
  for (const i of pool.state.dueChecks(now())) pool.state.checked(i, true, now());
  const runner = new OriginPoolRunner(manifest, pool, wire);
  const attempts: AttemptRecord[] = [];
  runner.onAttempt = (a) => attempts.push(a);
  return { pool, runner, attempts, calls, wires };
}

const outcome = (a: AttemptRecord) => `${a.replica}:${a.result.ok ? "ok" : a.result.failure.kind}`;

describe("OriginPoolRunner", () => {
  it("sends a batch as one signed OIP request and reports the replica and hop time", async () => {
    const { runner, calls, wires } = scriptedPool([["ok"]]);
    const result = await runner.run(inputs, Date.now() + 5000);
    expect(wires).toEqual(["binary"]);
    expect(Array.from(result.outputs[0]!.data as Float32Array)).toEqual([2, 4]);
    expect(result.servedBy).toBe("origin/0");
    expect(result.originMs).toBeGreaterThanOrEqual(0);
    expect(calls).toEqual(["r0/v2/models/double/versions/1/infer"]);
  });

  it("sends plain OIP JSON when the pool is configured for servers without the binary extension", async () => {
    const { runner, wires } = scriptedPool([["ok"]], {}, () => Date.now(), "json");
    expect(Array.from((await runner.run(inputs, Date.now() + 5000)).outputs[0]!.data as Float32Array)).toEqual([2, 4]);
    expect(wires).toEqual(["json"]);
  });

  it("accepts fractional deadlines and sub-ms clocks (timeouts are whole ms)", async () => {
    const { runner } = scriptedPool([["ok"]], {}, () => performance.timeOrigin + performance.now());
    expect((await runner.run(inputs, Date.now() + 5000.5)).servedBy).toBe("origin/0");
  });

  it("retries a refused connection on another replica", async () => {
    const { runner, attempts } = scriptedPool([["refuse"], ["ok"]]);
    const result = await runner.run(inputs, Date.now() + 5000);
    expect(result.servedBy).toBe("origin/1");
    expect(attempts.map(outcome)).toEqual(["0:network", "1:ok"]);
  });

  it("retries a 503 on another replica", async () => {
    const { runner, attempts } = scriptedPool([["503"], ["ok"]]);
    expect((await runner.run(inputs, Date.now() + 5000)).servedBy).toBe("origin/1");
    expect(attempts.map(outcome)).toEqual(["0:unavailable", "1:ok"]);
  });

  it("does not retry after a 500, which may have run", async () => {
    const { runner, attempts } = scriptedPool([["500"], ["ok"]]);
    await expect(runner.run(inputs, Date.now() + 5000)).rejects.toMatchObject({ status: 500 });
    expect(attempts.map(outcome)).toEqual(["0:server-error"]);
  });

  it("does not retry after a timeout, and answers 503", async () => {
    const { runner, attempts } = scriptedPool([["hang"], ["ok"]]);
    await expect(runner.run(inputs, Date.now() + 30)).rejects.toMatchObject({ status: 503, message: "deadline exceeded at the origin" });
    expect(attempts.map(outcome)).toEqual(["0:timeout"]);
  });

  it("does not retry when the deadline leaves less than an attempt's expected time", async () => {
    const { runner, attempts } = scriptedPool([["refuse"], ["ok"]]);
    runner.expectedAttemptMs = 10_000;
    await expect(runner.run(inputs, Date.now() + 1000)).rejects.toMatchObject({ status: 503, message: "no origin replica could be reached" });
    expect(attempts.map(outcome)).toEqual(["0:network"]);
  });

  it("answers 500 without retrying when a 200 does not fit the manifest", async () => {
    const { runner, attempts } = scriptedPool([["bad-shape"], ["ok"]]);
    await expect(runner.run(inputs, Date.now() + 5000)).rejects.toMatchObject({ status: 500 });
    expect(attempts.map(outcome)).toEqual(["0:ok"]);
  });

  it("fails with one 503 when every replica refuses, trying each once", async () => {
    const { runner, attempts } = scriptedPool([["refuse"], ["refuse"], ["refuse"]]);
    await expect(runner.run(inputs, Date.now() + 5000)).rejects.toMatchObject({ status: 503 });
    expect(attempts.map(outcome).sort()).toEqual(["0:network", "1:network", "2:network"]);
  });

  it("keeps an ejected replica out until its backoff ends, then re-admits it after a readiness probe", async () => {
    let clockMs = 1_000_000;
    const { runner, pool, calls } = scriptedPool([["refuse"]], { ejectAfterFailures: 1, baseBackoffMs: 1000 }, () => clockMs);
    await expect(runner.run(inputs, clockMs + 5000)).rejects.toMatchObject({ status: 503, message: "no origin replica could be reached" });
    expect(pool.state.snapshot()[0]!.state).toBe("ejected");
    clockMs += 500;
    await expect(runner.run(inputs, clockMs + 5000)).rejects.toMatchObject({ status: 503, message: "no origin replica is available" });
    clockMs += 500;
    expect((await runner.run(inputs, clockMs + 5000)).servedBy).toBe("origin/0");
    expect(calls).toEqual(["r0/v2/models/double/versions/1/infer", "r0/v2/health/ready", "r0/v2/models/double/versions/1/infer"]);
    expect(pool.state.snapshot()[0]!.state).toBe("admitted");
  });

  it("spreads concurrent batches over replicas by outstanding requests", async () => {
    const { runner } = scriptedPool([[], [], []]);
    const results = await Promise.all(Array.from({ length: 6 }, () => runner.run(inputs, Date.now() + 5000)));
    expect(results.map((r) => r.servedBy).sort()).toEqual(["origin/0", "origin/0", "origin/1", "origin/1", "origin/2", "origin/2"]);
  });
});

describe("replicaServiceMs", () => {
  it("is the replica's total minus its queue wait, from Server-Timing", () => {
    expect(replicaServiceMs("read;dur=0.5, queue;dur=12.000, infer;dur=30.5, total;dur=45.250")).toBeCloseTo(33.25, 9);
    expect(replicaServiceMs("total;dur=8")).toBeUndefined();
    expect(replicaServiceMs(null)).toBeUndefined();
  });
});

describe("OriginPool headers", () => {
  it("sends its configured headers (an Access service token) on probes and batches alike, beside the hop signature and the batch's traceparent", async () => {
    const seen: Array<{ url: string; headers: Record<string, string> }> = [];
    const fetcher = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
      seen.push({ url: String(input), headers: { ...(init?.headers as Record<string, string>) } });
      if (String(input).endsWith("/v2/health/ready")) return Response.json({ ready: true });
      return Response.json({ model_name: "double", outputs: [{ name: "y", datatype: "FP32", shape: [1, 2], data: [2, 4] }] });
    };
    const token = { "CF-Access-Client-Id": "id.access", "CF-Access-Client-Secret": "s3cret" };
    const pool = new OriginPool(["http://r0"], "unit-test-secret-0123456789", { fetch: fetcher, headers: token });
    await pool.refreshHealth();
    const traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    await new OriginPoolRunner(manifest, pool, "json").run(inputs, Date.now() + 5000, traceparent);
    expect(seen.map((s) => s.url)).toEqual(["http://r0/v2/health/ready", "http://r0/v2/models/double/versions/1/infer"]);
    for (const { headers } of seen) expect(headers).toMatchObject(token);
    expect(seen[1]!.headers).toHaveProperty("x-hop-signature");
    // The batch's span goes with it.
    expect(seen[1]!.headers).toMatchObject({ traceparent });
  });
});

describe("OriginPoolRunner and the project's extensions", () => {
  // x may be sent as UINT8 pixels (scale 1/2, no mean or std: v / 2); ymax is y's largest value per row.
  const pixels = parseManifest(
    {
      name: "double", version: "1", source: { package: "-", file: "-", license: "-" }, placement: "origin",
      inputs: [{ name: "x", datatype: "FP32", shape: [-1, 2], fromUint8: { axis: 1, scale: 0.5, mean: [0, 0], std: [1, 1] } }],
      outputs: [{ name: "y", datatype: "FP32", shape: [-1, 2] }],
      derivedOutputs: [{ name: "ymax", from: "y", op: "max" }],
      slo: { percentile: 0.99, ms: 1000 }, batching: { maxBatch: 8, windowMs: 1, maxQueueRows: 8, shards: 1, maxRowsPerRequest: 8 },
    },
    "double",
  );
  const batch: Tensor[] = [{ name: "x", datatype: "UINT8", shape: [2, 2], data: Uint8Array.of(2, 6, 10, 4) }];

  /** A replica that doubles x (normalising UINT8 when the request carries it) and answers the outputs asked for; records each request's header. */
  function replica(extensions: boolean) {
    const seen: Array<{ inputs: Array<{ datatype: string; data?: number[] }>; outputs?: Array<{ name: string }> }> = [];
    const fetcher = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
      if (String(input).endsWith("/v2/health/ready")) return Response.json({ ready: true });
      const request = JSON.parse(new TextDecoder().decode(init!.body as Uint8Array)) as { id: string; inputs: Array<{ datatype: string; shape: number[]; data: number[] }>; outputs?: Array<{ name: string }> };
      seen.push(request);
      const x = request.inputs[0]!;
      const y = x.data.map((v) => (x.datatype === "UINT8" ? v / 2 : v) * 2);
      const all = { y: { shape: x.shape, data: y }, ymax: { shape: [x.shape[0]!], data: [Math.max(y[0]!, y[1]!), Math.max(y[2]!, y[3]!)] } };
      const names = request.outputs?.map((o) => o.name) ?? ["y"];
      return Response.json({ id: request.id, outputs: names.map((name) => ({ name, datatype: "FP32", ...all[name as keyof typeof all] })) });
    };
    const pool = new OriginPool(["http://r0"], "unit-test-secret-0123456789", { fetch: fetcher, options: { healthIntervalMs: 60_000 } });
    for (const i of pool.state.dueChecks(Date.now())) pool.state.checked(i, true, Date.now());
    return { runner: new OriginPoolRunner(pixels, pool, "json", extensions), seen };
  }

  it("sends UINT8 pixels and asks for derived outputs by name from gpu-origin", async () => {
    const { runner, seen } = replica(true);
    const result = await runner.run(batch, Date.now() + 5000, undefined, ["ymax"]);
    expect(seen[0]!.inputs[0]!.datatype).toBe("UINT8");
    expect(seen[0]!.outputs).toEqual([{ name: "ymax" }]);
    expect(result.outputs.map((t) => [t.name, Array.from(t.data as Float32Array)])).toEqual([["ymax", [6, 10]]]);
  });

  it("normalises pixels itself and asks for the source output from a server without them (ORIGIN_EXTENSIONS=false)", async () => {
    const { runner, seen } = replica(false);
    const result = await runner.run(batch, Date.now() + 5000, undefined, ["ymax"]);
    expect(seen[0]!.inputs[0]).toMatchObject({ datatype: "FP32", data: [1, 3, 5, 2] });
    expect(seen[0]!.outputs).toEqual([{ name: "y" }]);
    // The buffer derives what was wanted from what came back.
    expect(pickOutputs(pixels, result.outputs, ["ymax"]).map((t) => Array.from(t.data as Float32Array))).toEqual([[6, 10]]);
  });
});
