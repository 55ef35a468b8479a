/**
 * The `timed` stand-in accelerator (gpu-origin/timed-backend.ts) on the real silero-vad session:
 * its outputs are the CPU session's, row for row (state on batch axis 1, a shared `sr`); each
 * distinct row runs once; a batch waits for the profile's line from its start, scaled by its rows'
 * elements; rows forgotten beyond the cache's bytes run again; a model without an origin fit does
 * not load. Time is an injected clock, so the waits are asserted exactly.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ProviderUnavailableError, type OriginSession } from "../../../gpu-origin/backend-registry";
import { loadCpuBackend } from "../../../gpu-origin/ort-backends";
import { readTimedProfile, timedSession, type TimedClock } from "../../../gpu-origin/timed-backend";
import { concatBatch } from "../../../src/batching/tensor-batch";
import type { Tensor } from "../../../src/protocol/tensor";
import { manifestOf, vadInputs } from "./fixtures";

const manifest = manifestOf("silero-vad");
const modelPath = join(import.meta.dirname, "..", "..", "..", "models", "silero-vad", "model.onnx");
const cpu = await (await loadCpuBackend(1)).createSession(modelPath, manifest);

/** The CPU session, counting the rows it was asked to run. */
function counting(): { session: OriginSession; rowsRun: number[] } {
  const rowsRun: number[] = [];
  return { rowsRun, session: { run: (inputs) => (rowsRun.push(inputs[0]!.shape[0]!), cpu.run(inputs)) } };
}

/** A clock at a fixed time that records each wait. */
function fakeClock(atMs: number): TimedClock & { waits: number[] } {
  const waits: number[] = [];
  return { waits, nowMs: () => atMs, sleepUntil: async (untilMs) => void waits.push(untilMs) };
}

/** One batch of the given single-row inputs, in order. */
const batchOf = (rows: Tensor[][]) => concatBatch(manifest.inputs, rows);
const row = (seed: number) => vadInputs(1, seed);
const line = { baseMs: 0.5, perRowMs: 2 };

describe("timed backend (stand-in accelerator)", () => {
  it("answers the CPU session's outputs row for row and runs each distinct row once", async () => {
    const inner = counting();
    const session = timedSession(inner.session, manifest, { line }, { clock: fakeClock(0) });
    const rows = [row(1), row(2), row(1), row(3)];
    const got = await session.run(batchOf(rows));
    const want = await cpu.run(batchOf(rows));
    expect(got.map((t) => t.shape)).toEqual(want.map((t) => t.shape));
    got.forEach((t, i) => expect(Array.from(t.data as Float32Array)).toEqual(Array.from(want[i]!.data as Float32Array)));
    expect(inner.rowsRun).toEqual([3]);
    const again = await session.run(batchOf([row(3), row(2)]));
    expect(inner.rowsRun).toEqual([3]);
    expect(Array.from(again[0]!.data as Float32Array)).toEqual([got[0]!.data[3], got[0]!.data[1]]);
  });

  it("waits for the profile's line from the batch's start, scaled by a row's elements over the reference row", async () => {
    const clock = fakeClock(1000);
    const session = timedSession(counting().session, manifest, { line }, { clock });
    await session.run(batchOf([row(1)]));
    await session.run(batchOf([row(1), row(2), row(3), row(4)]));
    expect(clock.waits).toEqual([1000 + 0.5 + 2, 1000 + 0.5 + 8]);
    // A row of 512 samples and a [2,1,128] state (768 elements) against a reference of half that: twice the time a row.
    const scaled = fakeClock(0);
    await timedSession(counting().session, manifest, { line, referenceRowElements: 384 }, { clock: scaled }).run(batchOf([row(1), row(2)]));
    expect(scaled.waits).toEqual([0.5 + 2 * 2 * 2]);
  });

  it("runs a row again once the cache has forgotten it", async () => {
    const inner = counting();
    // One row's outputs: 1 + 256 floats = 1,028 bytes; room for two.
    const session = timedSession(inner.session, manifest, { line }, { clock: fakeClock(0), cacheBytes: 2100 });
    await session.run(batchOf([row(1), row(2)]));
    await session.run(batchOf([row(3)]));
    await session.run(batchOf([row(2), row(3)]));
    await session.run(batchOf([row(1)]));
    expect(inner.rowsRun).toEqual([2, 1, 1]);
  });

  it("reads the origin line and reference row from a profile, and refuses a model without one", () => {
    const profile = readTimedProfile(join(import.meta.dirname, "..", "..", "..", "models"), "ppocr-det");
    expect(profile.line.perRowMs).toBeGreaterThan(0);
    expect(profile.referenceRowElements).toBe(3 * 640 * 640);
    const dir = mkdtempSync(join(tmpdir(), "timed-"));
    mkdirSync(join(dir, "m"));
    writeFileSync(join(dir, "m", "profile.json"), JSON.stringify({ runtimes: { edge: { fit: { baseMs: 1, perItemMs: 1 } } } }));
    expect(() => readTimedProfile(dir, "m")).toThrow(ProviderUnavailableError);
    expect(() => readTimedProfile(dir, "none")).toThrow(/npm run profile -- --models none --runtimes origin/);
  });
});
