import { deserialize, serialize } from "node:v8";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import clsJson from "../../../models/ppocr-cls/manifest.json";
import vadJson from "../../../models/silero-vad/manifest.json";
import { parseManifest } from "../../../src/models/manifest";
import { InferenceError } from "../../../src/protocol/errors";
import { windowDue } from "../../../src/scheduler/flush-policy";
import { stepPolicy } from "../../../src/scheduler/step-policy";
import { MAX_ATTACHMENT_BYTES, readAttachment } from "../../../src/stream/stream-attachment";
import { answerText, CLOSE_CODES, closeCodeFor, closeReason, errorText, parseFrame, streamSpecOf } from "../../../src/stream/stream-protocol";

const vad = parseManifest(vadJson, "models/silero-vad/manifest.json");
const cls = parseManifest(clsJson, "models/ppocr-cls/manifest.json");

/** `samples` as little-endian float32 bytes. */
function littleEndian(samples: number[]): ArrayBuffer {
  const view = new DataView(new ArrayBuffer(4 * samples.length));
  samples.forEach((v, i) => view.setFloat32(4 * i, v, true));
  return view.buffer;
}

describe("streamSpecOf", () => {
  it("derives Silero's stream: 512-sample chunks at the default 16 kHz, 256 at 8 kHz, state -> stateN", () => {
    expect(streamSpecOf(vad, {})).toEqual({ model: "silero-vad", chunkInput: "input", stateInput: "state", stateOutput: "stateN", resultOutput: "output", chunkSamples: 512, stateShape: [2, 1, 128], scalars: { sr: 16000 }, key: "sr=16000", realTimeIntervalMs: 32 });
    // 256 samples at 8 kHz: a real-time stream still sends a chunk every 32 ms.
    expect(streamSpecOf(vad, { sr: "8000" })).toMatchObject({ chunkSamples: 256, scalars: { sr: 8000 }, key: "sr=8000", realTimeIntervalMs: 32 });
  });

  it("refuses with 400 a model without recurrent state, a rate the model does not take, and unknown parameters", () => {
    const refusal = (run: () => unknown) => {
      try {
        run();
      } catch (error) {
        return error instanceof InferenceError ? `${error.status} ${error.message}` : String(error);
      }
      return "accepted";
    };
    expect(refusal(() => streamSpecOf(cls, {}))).toMatch(/^400 model 'ppocr-cls' does not stream: it has no recurrent state/);
    expect(refusal(() => streamSpecOf(vad, { sr: "44100" }))).toBe("400 model 'silero-vad' streams with sr=16000 or sr=8000");
    expect(refusal(() => streamSpecOf(vad, { sr: "16k" }))).toBe("400 query parameter sr: must be an integer");
    expect(refusal(() => streamSpecOf(vad, { rate: "1" }))).toBe('400 unknown query parameter "rate"; this stream takes sr');
  });
});

describe("parseFrame", () => {
  it("decodes a binary chunk as little-endian float32 samples", () => {
    const samples = Array.from({ length: 512 }, (_, i) => Math.fround(Math.sin(i) / 3));
    const frame = parseFrame(littleEndian(samples), 512);
    expect(frame.kind).toBe("chunk");
    expect(Array.from((frame as { samples: Float32Array }).samples)).toEqual(samples);
  });

  it("answers a frame of the wrong size or kind with 1003, and a non-finite sample with 1007", () => {
    expect(parseFrame(new ArrayBuffer(1024), 512)).toEqual({ kind: "invalid", code: CLOSE_CODES.unsupportedData, message: "a binary frame must hold 512 little-endian float32 samples (2048 bytes); got 1024 bytes" });
    for (const text of ["", "hello", '{"type":"rewind"}', '{"type":"reset","extra":1}', "[]", `{"type":"reset"${" ".repeat(300)}}`]) {
      expect(parseFrame(text, 512)).toMatchObject({ kind: "invalid", code: 1003 });
    }
    for (const bad of [NaN, Infinity, -Infinity]) expect(parseFrame(littleEndian([0, 0, bad, 0]), 4)).toEqual({ kind: "invalid", code: 1007, message: "sample 2 is not a finite number" });
  });

  it("reads the control messages", () => {
    expect(parseFrame('{"type":"reset"}', 512)).toEqual({ kind: "reset" });
    expect(parseFrame(' { "type" : "close" } ', 512)).toEqual({ kind: "close" });
  });
});

describe("stream messages", () => {
  it("writes answers and errors as JSON, close reasons within 123 bytes, and maps failures to close codes", () => {
    expect(JSON.parse(answerText(7, 0.25))).toEqual({ seq: 7, probability: 0.25 });
    expect(JSON.parse(errorText("late", 3))).toEqual({ error: "late", seq: 3 });
    expect(JSON.parse(errorText("bad frame"))).toEqual({ error: "bad frame" });
    expect(new TextEncoder().encode(closeReason("x".repeat(500))).length).toBeLessThanOrEqual(123);
    expect(closeCodeFor(new InferenceError(503, "overloaded"))).toBe(1013);
    expect(closeCodeFor(new Error("kernel"))).toBe(1011);
  });

  it("keeps a stream's attachment under the platform's 2,048 bytes and reads it back", () => {
    const attachment = { v: 1, model: "silero-vad", scalars: { sr: 16000 }, nextSeq: 123_456_789, state: Float32Array.from({ length: 256 }, (_, i) => i / 7) };
    const bytes = serialize(attachment);
    expect(bytes.byteLength).toBeLessThanOrEqual(MAX_ATTACHMENT_BYTES);
    expect(readAttachment(deserialize(bytes))).toEqual(attachment);
    expect(readAttachment({ ...attachment, state: Array.from(attachment.state) })).toBeUndefined();
    expect(readAttachment("a string")).toBeUndefined();
  });
});

describe("stepPolicy", () => {
  const limits = { maxBatch: 32, windowMs: 2 };

  it("starts a step once it holds a chunk of every active stream, capped at maxBatch; else by the window", () => {
    let active = 3;
    const policy = stepPolicy(() => active);
    expect(policy.due({ rows: 3, oldestAtMs: 100 }, 100, limits)).toEqual({ atMs: -Infinity, reason: "size" });
    expect(policy.due({ rows: 2, oldestAtMs: 100 }, 100, limits)).toEqual({ atMs: 102, reason: "window" });
    active = 2; // a stream left: the two chunks now are the whole step
    expect(policy.due({ rows: 2, oldestAtMs: 100 }, 100, limits)).toEqual({ atMs: -Infinity, reason: "size" });
    active = 100;
    expect(policy.due({ rows: 32, oldestAtMs: 100 }, 100, limits)).toEqual({ atMs: -Infinity, reason: "size" });
    expect(policy.due({ rows: 31, oldestAtMs: 100 }, 100, limits).reason).toBe("window");
  });

  it("never starts a step later than the window rule", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 50 }), fc.integer({ min: 1, max: 64 }), fc.integer({ min: 1, max: 64 }), fc.double({ min: 0, max: 100, noNaN: true }), (active, rows, maxBatch, windowMs) => {
        const group = { rows, oldestAtMs: 10 };
        expect(stepPolicy(() => active).due(group, 10, { maxBatch, windowMs }).atMs).toBeLessThanOrEqual(windowDue(group, { maxBatch, windowMs }).atMs);
      }),
    );
  });
});
