/**
 * gpu-origin as a real process on loopback: results through the pool match onnxruntime-node, the
 * hop signature is enforced, a model that fails to load leaves the server live but not ready, and
 * SIGTERM drains. Processes are bounded and always killed in afterAll.
 */
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeBinaryInferRequest, unpackBinary } from "../../../src/protocol/oip-binary";
import { decodeInferResponse } from "../../../src/origin/oip-json";
import { OriginPool } from "../../../src/origin/origin-pool";
import { OriginPoolRunner } from "../../../src/origin/origin-pool-runner";
import type { Tensor } from "../../../src/protocol/tensor";
import { manifestOf, maxAbsDiff, runReference, seededFloats, signedFetch, vadInputs } from "./fixtures";
import { startOrigin, stopOrigin, TEST_SECRET, waitReady, type OriginProcess } from "./origin-process";

const INFER_PATH = "/v2/models/silero-vad/infer";
const VAD_BODY = JSON.stringify({ inputs: [{ name: "input", datatype: "FP32", shape: [1, 512], data: Array.from(seededFloats(512, 7)) }] });

describe("gpu-origin", () => {
  let main: OriginProcess | undefined;
  let broken: OriginProcess | undefined;
  let draining: OriginProcess | undefined;
  const brokenDir = mkdtempSync(join(tmpdir(), "origin-broken-"));

  beforeAll(async () => {
    mkdirSync(join(brokenDir, "silero-vad"));
    copyFileSync(join(import.meta.dirname, "..", "..", "..", "models", "silero-vad", "manifest.json"), join(brokenDir, "silero-vad", "manifest.json"));
    writeFileSync(join(brokenDir, "silero-vad", "model.onnx"), "not an onnx model");
    [main, broken, draining] = await Promise.all([
      startOrigin(["--models", "ppocr-det,silero-vad"]),
      startOrigin(["--models-dir", brokenDir, "--max-body-bytes", "65536"]),
      startOrigin(["--models", "silero-vad", "--window-ms", "1500"]),
    ]);
    await Promise.all([waitReady(main), waitReady(draining)]);
  }, 90_000);

  afterAll(async () => {
    await Promise.all([stopOrigin(main), stopOrigin(broken), stopOrigin(draining)]);
    rmSync(brokenDir, { recursive: true, force: true });
  });

  it.each(["binary", "json"] as const)("returns ppocr-det outputs through the pool (%s hop) that match onnxruntime-node within 1e-4", async (wire) => {
    const manifest = manifestOf("ppocr-det");
    const inputs: Tensor[] = [{ name: "x", datatype: "FP32", shape: [1, 3, 64, 64], data: seededFloats(3 * 64 * 64, 42) }];
    const runner = new OriginPoolRunner(manifest, new OriginPool([main!.url], TEST_SECRET), wire);
    const result = await runner.run(inputs, Date.now() + 20_000);
    const reference = await runReference("ppocr-det", inputs);
    expect(result.servedBy).toBe("origin/0");
    expect(result.originMs).toBeGreaterThan(0);
    expect(result.outputs[0]!.shape).toEqual([1, 1, 64, 64]);
    expect(maxAbsDiff(result.outputs[0]!.data as Float32Array, reference["sigmoid_0.tmp_0"]!)).toBeLessThanOrEqual(1e-4);
  });

  it("answers a JSON request that asks for binary outputs in the binary extension", async () => {
    const body = JSON.stringify({ ...JSON.parse(VAD_BODY), parameters: { binary_data_output: true } });
    const response = await signedFetch(main!.url, INFER_PATH, { method: "POST", body });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/octet-stream");
    const { header, payload } = unpackBinary(new Uint8Array(await response.arrayBuffer()), response.headers.get("inference-header-content-length"));
    const outputs = decodeInferResponse(manifestOf("silero-vad"), header, "unused", payload);
    expect(outputs.map((t) => t.shape)).toEqual([[1, 1], [2, 1, 128]]);
  });

  it("merges rows of silero-vad batches and returns each request its own rows", async () => {
    const runner = new OriginPoolRunner(manifestOf("silero-vad"), new OriginPool([main!.url], TEST_SECRET));
    const [one, three] = await Promise.all([runner.run(vadInputs(1, 1), Date.now() + 10_000), runner.run(vadInputs(3, 3), Date.now() + 10_000)]);
    const [refOne, refThree] = [await runReference("silero-vad", vadInputs(1, 1)), await runReference("silero-vad", vadInputs(3, 3))];
    expect(maxAbsDiff(one.outputs[0]!.data as Float32Array, refOne.output!)).toBeLessThanOrEqual(1e-4);
    expect(maxAbsDiff(three.outputs[1]!.data as Float32Array, refThree.stateN!)).toBeLessThanOrEqual(1e-4);
  });

  it("leaves live and ready open but answers 401 to an unsigned request", async () => {
    expect((await fetch(`${main!.url}/v2/health/live`)).status).toBe(200);
    expect((await fetch(`${main!.url}/v2/health/ready`)).status).toBe(200);
    for (const [path, method] of [["/v2", "GET"], ["/v2/models/silero-vad", "GET"], [INFER_PATH, "POST"]] as const) {
      const response = await fetch(main!.url + path, { method, ...(method === "POST" && { body: VAD_BODY }) });
      expect(response.status).toBe(401);
      expect(await response.json()).toEqual({ error: "request refused: unsigned hop signature" });
    }
  });

  it("accepts a signed infer request and reports its timings", async () => {
    const response = await signedFetch(main!.url, INFER_PATH, { method: "POST", body: VAD_BODY });
    expect(response.status).toBe(200);
    expect(response.headers.get("server-timing")).toMatch(/auth;dur=[\d.]+, decode;dur=[\d.]+, queue;dur=[\d.]+, infer;dur=[\d.]+, encode;dur=[\d.]+, total;dur=[\d.]+/);
    const body = (await response.json()) as { model_name: string; outputs: Array<{ name: string; shape: number[] }> };
    expect(body.model_name).toBe("silero-vad");
    expect(body.outputs.map((o) => [o.name, o.shape])).toEqual([["output", [1, 1]], ["stateN", [2, 1, 128]]]);
  });

  it("continues the caller's trace, echoes its request id, and logs the request as one JSON line", async () => {
    const traceId = "4bf92f3577b34da6a3ce929d0e0e4736";
    const response = await signedFetch(main!.url, INFER_PATH, { method: "POST", body: VAD_BODY, headers: { traceparent: `00-${traceId}-00f067aa0ba902b7-01`, "x-request-id": "batch-7f3" } });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-request-id")).toBe("batch-7f3");
    const [, echoedTrace, span] = /^00-([0-9a-f]{32})-([0-9a-f]{16})-01$/.exec(response.headers.get("traceparent") ?? "") ?? [];
    expect([echoedTrace, span !== "00f067aa0ba902b7"]).toEqual([traceId, true]);
    await response.arrayBuffer();
    const lines = main!.output().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.find((l) => l.requestId === "batch-7f3")).toMatchObject({ event: "infer", traceId, spanId: span, parentSpanId: "00f067aa0ba902b7", status: 200, model: "silero-vad", batchRows: 1, batchId: expect.any(Number) });
  });

  it("exposes Prometheus metrics that a text-format parser reads, and that count the traffic sent", async () => {
    type Family = { name: string; type: string; metrics: Array<{ labels?: Record<string, string>; value?: string }> };
    const scrape = async () => {
      const response = await fetch(`${main!.url}/metrics`); // open, like the health probes
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toMatch(/^text\/plain; version=0\.0\.4/);
      const text = await response.text();
      return { text, families: new Map((parsePrometheusTextFormat(text) as Family[]).map((f) => [f.name, f])) };
    };
    // Counters and gauges through the parser; a labelled histogram's _count and _sum from its lines
    // (parse-prometheus-text-format keeps only unlabelled histograms' count and sum).
    const value = (s: Awaited<ReturnType<typeof scrape>>, name: string, labels: Record<string, string>) => Number(s.families.get(name)?.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v))?.value ?? 0);
    const series = (s: Awaited<ReturnType<typeof scrape>>, name: string) => Number(new RegExp(`^${name}\\{model="silero-vad"\\} (\\S+)$`, "m").exec(s.text)?.[1] ?? 0);
    const before = await scrape();
    const N = 5;
    for (let i = 0; i < N; i++) expect((await signedFetch(main!.url, INFER_PATH, { method: "POST", body: VAD_BODY })).status).toBe(200);
    expect((await signedFetch(main!.url, "/v2/models/no-such-model/infer", { method: "POST", body: VAD_BODY })).status).toBe(404);
    // A malformed percent-encoding in the name is a 404 too, not a failure of the metrics.
    expect((await signedFetch(main!.url, "/v2/models/%E0%A4%A/infer", { method: "POST", body: VAD_BODY })).status).toBe(404);
    const after = await scrape();
    expect(after.families.get("eir_inference_request_duration_seconds")?.type).toBe("HISTOGRAM");
    expect(value(after, "eir_inference_requests_total", { model: "silero-vad", status: "200" }) - value(before, "eir_inference_requests_total", { model: "silero-vad", status: "200" })).toBe(N);
    for (const histogram of ["eir_inference_request_duration_seconds", "eir_inference_queue_duration_seconds", "eir_inference_compute_duration_seconds", "eir_inference_batch_size"]) {
      expect([histogram, series(after, `${histogram}_count`) - series(before, `${histogram}_count`)]).toEqual([histogram, N]);
    }
    // One request at a time: each ran in a batch of one row.
    expect(series(after, "eir_inference_batch_size_sum") - series(before, "eir_inference_batch_size_sum")).toBe(N);
    expect(value(after, "eir_inference_queue_rows", { model: "silero-vad" })).toBe(0);
    expect(after.families.get("eir_inference_rejections_total")?.metrics.filter((m) => m.labels?.model === "silero-vad").map((m) => m.labels?.reason).sort()).toEqual(["cancelled", "expired", "late", "queue_full"]);
    // A name the server does not host is not a label.
    expect(value(after, "eir_inference_requests_total", { model: "(unknown)", status: "404" })).toBeGreaterThanOrEqual(1);
    expect(after.text).not.toContain("no-such-model");
    expect(after.families.has("eir_process_cpu_seconds_total")).toBe(true);
  });

  it("answers 401 to tampered, stale, future-dated, wrongly keyed, other servers' and replayed requests", async () => {
    const cases = {
      otherServer: await signedFetch(main!.url, INFER_PATH, { method: "POST", body: VAD_BODY, signedHost: "127.0.0.1:1" }),
      tamperedBody: await signedFetch(main!.url, INFER_PATH, { method: "POST", body: VAD_BODY.replace("0.", "1."), signedBody: VAD_BODY }),
      tamperedPath: await signedFetch(main!.url, "/v2/models/ppocr-det/infer", { method: "POST", body: VAD_BODY, signedPath: INFER_PATH }),
      stale: await signedFetch(main!.url, INFER_PATH, { method: "POST", body: VAD_BODY, atMs: Date.now() - 31_000 }),
      future: await signedFetch(main!.url, INFER_PATH, { method: "POST", body: VAD_BODY, atMs: Date.now() + 31_000 }),
      wrongSecret: await signedFetch(main!.url, INFER_PATH, { method: "POST", body: VAD_BODY, secret: "another-secret-0123456789" }),
    };
    for (const [name, response] of Object.entries(cases)) expect([name, response.status]).toEqual([name, 401]);
    expect(((await cases.stale.json()) as { error: string }).error).toBe("request refused: stale hop signature");

    const { signHop } = await import("../../../src/origin/hop-signature");
    const headers = { ...(await signHop(TEST_SECRET, { method: "POST", host: new URL(main!.url).host, path: INFER_PATH, body: VAD_BODY }, Date.now())), "content-type": "application/json" };
    const first = await fetch(main!.url + INFER_PATH, { method: "POST", headers, body: VAD_BODY });
    const replay = await fetch(main!.url + INFER_PATH, { method: "POST", headers, body: VAD_BODY });
    expect([first.status, replay.status]).toEqual([200, 401]);
    expect(await replay.json()).toEqual({ error: "request refused: replayed hop signature" });

    // The binary extension's header length is signed too: moving the JSON/binary boundary is tampering.
    const packed = encodeBinaryInferRequest(vadInputs(1, 1), "b", 1000);
    const signed = await signHop(TEST_SECRET, { method: "POST", host: new URL(main!.url).host, path: INFER_PATH, body: packed.body, inferenceHeaderLength: packed.headerLength }, Date.now());
    const moved = await fetch(main!.url + INFER_PATH, { method: "POST", headers: { ...signed, "inference-header-content-length": String(packed.headerLength - 1) }, body: packed.body });
    expect(moved.status).toBe(401);
  });

  it("answers protocol errors as {error} JSON that names no host, path or stack", async () => {
    const responses = [
      await signedFetch(main!.url, "/v2/models/nope"),
      await signedFetch(main!.url, "/v2/models/silero-vad/versions/9"),
      await signedFetch(main!.url, INFER_PATH, { method: "POST", body: "{not json" }),
      await signedFetch(main!.url, INFER_PATH, { method: "POST", body: JSON.stringify({ inputs: [{ name: "input", datatype: "FP32", shape: [1, 3], data: [1, 2, 3] }] }) }),
    ];
    expect(responses.map((r) => r.status)).toEqual([404, 404, 400, 400]);
    for (const r of responses) {
      const text = await r.text();
      expect(Object.keys(JSON.parse(text))).toEqual(["error"]);
      expect(text).not.toMatch(/127\.0\.0\.1|localhost|\/work|\/tmp|node_modules|\bat \w+ \(/);
    }
  });

  it("stays live but not ready, and answers 503 for a model that failed to load", async () => {
    await expect.poll(() => broken!.output(), { timeout: 20_000 }).toMatch(/not ready: silero-vad failed to load/);
    expect((await fetch(`${broken!.url}/v2/health/live`)).status).toBe(200);
    expect((await fetch(`${broken!.url}/v2/health/ready`)).status).toBe(503);
    expect((await signedFetch(broken!.url, "/v2/models/silero-vad/ready")).status).toBe(503);
    const infer = await signedFetch(broken!.url, INFER_PATH, { method: "POST", body: VAD_BODY });
    expect(infer.status).toBe(503);
    expect(infer.headers.get("retry-after")).toBe("5");
    expect(await infer.json()).toEqual({ error: "model 'silero-vad' is not ready" });
  });

  it("answers 413 to a body over --max-body-bytes, with or without Content-Length", async () => {
    const big = new Uint8Array(70_000);
    const sized = await fetch(broken!.url + INFER_PATH, { method: "POST", body: big });
    const chunked = await fetch(broken!.url + INFER_PATH, {
      method: "POST",
      body: new ReadableStream({ start: (c) => { c.enqueue(big); c.close(); } }),
      duplex: "half",
    } as RequestInit);
    expect([sized.status, chunked.status]).toEqual([413, 413]);
    expect(await sized.json()).toEqual({ error: "request body larger than 65536 bytes" });
  });

  it("drains on SIGTERM: turns not-ready, answers new work 503, finishes queued work and exits 0", async () => {
    const origin = draining!;
    const runner = new OriginPoolRunner(manifestOf("silero-vad"), new OriginPool([origin.url], TEST_SECRET));
    // A 1.5 s batch window keeps these three requests in flight while the signal arrives.
    const inFlight = [1, 2, 3].map((seed) => runner.run(vadInputs(1, seed), Date.now() + 20_000));
    await expect
      .poll(async () => ((await (await signedFetch(origin.url, "/v2/models/silero-vad/stats")).json()) as { model_stats: Array<{ queuedRows: number }> }).model_stats[0]!.queuedRows, { timeout: 10_000, interval: 20 })
      .toBe(3);
    origin.child.kill("SIGTERM");
    await expect.poll(async () => (await fetch(`${origin.url}/v2/health/ready`)).status, { timeout: 1000, interval: 10 }).toBe(503);
    const refused = await signedFetch(origin.url, INFER_PATH, { method: "POST", body: VAD_BODY });
    expect(refused.status).toBe(503);
    expect(await refused.json()).toEqual({ error: "server is shutting down" });
    // The pool routes around it: its 503 sends the batch to the other replica.
    const pool = new OriginPool([origin.url, main!.url], TEST_SECRET);
    pool.state.started(1); // one outstanding on the healthy replica, so the draining one is picked first
    const rerouted = new OriginPoolRunner(manifestOf("silero-vad"), pool);
    const attempts: string[] = [];
    rerouted.onAttempt = (a) => attempts.push(`${a.replica}:${a.result.ok ? "ok" : a.result.failure.kind}`);
    expect((await rerouted.run(vadInputs(1, 4), Date.now() + 10_000)).servedBy).toBe("origin/1");
    expect(attempts).toEqual(["0:unavailable", "1:ok"]);
    const results = await Promise.all(inFlight);
    expect(results.map((r) => r.outputs[0]!.shape)).toEqual([[1, 1], [1, 1], [1, 1]]);
    expect(await origin.exited).toBe(0);
    expect(origin.output()).toMatch(/drained; exiting/);
  });
});
