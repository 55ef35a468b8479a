import { abortAllDurableObjects, env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { BufferJob } from "../../../src/buffer/batch-buffer";
import { runtimeConfig } from "../../../src/config";
import { parseInferRequest } from "../../../src/protocol/infer-request";
import { vadBody } from "../../fixtures/model-inputs";
import { bufferStub, eventually, infer } from "../helpers";

// This project runs silero-vad with maxBatch 8, windowMs 5000, maxQueueRows 16 and a 10 s SLO
// (vitest.config.ts): within a test, batches leave only by size unless the test moves the clock.

const manifest = runtimeConfig(env).models.get("silero-vad")!.manifest;

/** A buffer job for `rows` VAD chunks at sample rate `sr` (different rates never share a batch). */
function vadJob(id: string, rows: number, sr: number, deadlineAtMs = Date.now() + 10_000): BufferJob {
  const request = parseInferRequest(vadBody(rows, rows * 31 + sr, sr), manifest);
  return { id, model: "silero-vad", rows, batchKey: request.batchKey, inputs: request.inputs, outputs: request.outputs, deadlineAtMs };
}

const queuedRows = async () => (await bufferStub("silero-vad").stats()).queuedRows;

describe("BatchBuffer", () => {
  it("releases a batch as soon as it holds maxBatch rows", async () => {
    const responses = await Promise.all([infer("silero-vad", vadBody(3, 1)), infer("silero-vad", vadBody(5, 2))]);
    expect(responses.map((r) => r.status)).toEqual([200, 200]);
    expect(responses.map((r) => r.headers.get("x-batch-size"))).toEqual(["8", "8"]);
  });

  it("refuses at admission, at once and without running it, a request that cannot finish by its deadline", async () => {
    await runInDurableObject(bufferStub("silero-vad"), async (buffer) => {
      const startMs = Date.now();
      buffer.now = () => startMs;
      const before = buffer.stats();
      const waiting = buffer.infer(vadJob("waiting", 7, 16000), 0);
      // Joining the waiting 7 rows fills a batch of 8 at once; no batch runs in 0.01 ms (the profile says so too).
      const refused = await buffer.infer(vadJob("hurried", 1, 16000, startMs + 0.01), 0);
      // Retry-After: the queue drains when the 7 rows' 5 s window ends and their batch has run.
      expect(refused).toMatchObject({ ok: false, failure: { status: 503, retryAfterS: 6, message: expect.stringMatching(/overloaded: it would finish in about \d+ ms, after its deadline/) } });
      expect(buffer.cancel("waiting")).toBe(true);
      await waiting;
      buffer.now = () => Date.now();
      const after = buffer.stats();
      expect(after.rejectedLate - before.rejectedLate).toBe(1);
      expect(after.batches).toBe(before.batches);
      expect(after.queuedRows).toBe(0);
    });
  });

  it("answers 503 to a queued request whose deadline passes, and never runs it", async () => {
    const stub = bufferStub("silero-vad");
    let pending: Promise<unknown> | undefined;
    let expiredBefore = 0;
    await runInDurableObject(stub, (buffer) => {
      const startMs = Date.now();
      buffer.now = () => startMs;
      expiredBefore = buffer.stats().expired;
      pending = buffer.infer(vadJob("expiring", 1, 16000, startMs + 2_000), 0);
      // Time passes the deadline before the request could start (the server was slower than predicted).
      buffer.now = () => startMs + 2_001;
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await pending).toMatchObject({ ok: false, failure: { status: 503, message: expect.stringMatching(/deadline exceeded while waiting in the queue/) } });
    await runInDurableObject(stub, (buffer) => {
      buffer.now = () => Date.now();
      expect(buffer.stats().expired - expiredBefore).toBe(1);
      expect(buffer.stats().queuedRows).toBe(0);
    });
  });

  it("says in each reply how long it held the request (the Worker's PIE subtracts it from the round trip)", async () => {
    const buffer = bufferStub("silero-vad");
    const sentAtMs = Date.now();
    const replies = await Promise.all([buffer.infer(vadJob("held-a", 3, 16000), 0), buffer.infer(vadJob("held-b", 5, 16000), 0)]);
    const roundTripMs = Date.now() - sentAtMs;
    for (const reply of replies) {
      if (!reply.ok) throw new Error(reply.failure.message);
      // Held from its arrival to its reply: its wait in the queue and its batch, within the round trip.
      expect(reply.heldMs).toBeGreaterThanOrEqual(reply.queueMs + reply.inferMs);
      expect(reply.heldMs).toBeLessThanOrEqual(roundTripMs);
    }
    const refused = await buffer.infer(vadJob("held-late", 1, 16000, Date.now() - 1), 0);
    expect(refused).toMatchObject({ ok: false, heldMs: expect.any(Number) });
  });

  it("refuses a request that arrives past its deadline", async () => {
    const reply = await bufferStub("silero-vad").infer(vadJob("late", 1, 16000, Date.now() - 1), 0);
    expect(reply).toMatchObject({ ok: false, failure: { status: 503 } });
  });

  it("answers 503 at once when the queue is full, and drops cancelled requests", async () => {
    await runInDurableObject(bufferStub("silero-vad"), async (buffer) => {
      const before = buffer.stats();
      const a = buffer.infer(vadJob("a", 7, 16000), 0);
      const b = buffer.infer(vadJob("b", 7, 8000), 0);
      expect(buffer.stats().queuedRows).toBe(14);
      const refused = await buffer.infer(vadJob("c", 3, 16000), 0);
      expect(refused).toMatchObject({ ok: false, failure: { status: 503, message: expect.stringMatching(/overloaded: queue full/) } });
      expect(buffer.cancel("a")).toBe(true);
      expect(buffer.cancel("b")).toBe(true);
      expect(buffer.cancel("b")).toBe(false);
      expect(await a).toMatchObject({ ok: false, failure: { status: 503, message: expect.stringMatching(/cancelled/) } });
      expect(await b).toMatchObject({ ok: false });
      const after = buffer.stats();
      expect(after.queuedRows).toBe(0);
      expect([after.cancelled - before.cancelled, after.rejectedFull - before.rejectedFull, after.cancelledRows - before.cancelledRows]).toEqual([2, 1, 14]);
    });
  });

  it("drops a waiting request when its client aborts", async () => {
    const before = await bufferStub("silero-vad").stats();
    const controller = new AbortController();
    const pending = infer("silero-vad", vadBody(1, 4), { signal: controller.signal }).catch((error: unknown) => error);
    await eventually(async () => (await queuedRows()) === 1);
    controller.abort();
    await pending;
    await eventually(async () => (await queuedRows()) === 0);
    expect((await bufferStub("silero-vad").stats()).cancelled).toBe(before.cancelled + 1);
  });

  it("releases through the alarm backstop when the window has passed", async () => {
    const stub = bufferStub("silero-vad");
    let pending: Promise<unknown> | undefined;
    await runInDurableObject(stub, (buffer) => {
      const startMs = Date.now();
      buffer.now = () => startMs;
      pending = buffer.infer(vadJob("alarm", 1, 16000), 0);
      // The in-memory timer is 5 s away; move the buffer's clock past the window instead of waiting.
      buffer.now = () => startMs + manifest.batching.windowMs + 1;
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await pending).toMatchObject({ ok: true, batchRows: 1 });
    await runInDurableObject(stub, (buffer) => {
      buffer.now = () => Date.now();
      expect(buffer.stats().startedByWindow).toBeGreaterThan(0);
    });
  });

  it("retries once on a fresh buffer when the Durable Object resets, answering exactly once", async () => {
    const pending = infer("silero-vad", vadBody(1, 5));
    await eventually(async () => (await queuedRows()) === 1);
    await abortAllDurableObjects();
    // The retried request waits in the new instance; fill its batch so it is released now.
    await eventually(async () => (await queuedRows()) === 1);
    const filler = infer("silero-vad", vadBody(7, 6));
    const [response, fillerResponse] = await Promise.all([pending, filler]);
    expect(response.status).toBe(200);
    expect(response.headers.get("x-batch-size")).toBe("8");
    expect(fillerResponse.status).toBe(200);
    const stats = await bufferStub("silero-vad").stats();
    expect(stats).toMatchObject({ batches: 1, rows: 8, queuedRows: 0 });
  });
});
