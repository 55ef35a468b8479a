/**
 * The OCR pipeline end to end through the real stack: `wrangler dev` runs the edge (the `ppocr`
 * routes, the cls buffer in workerd) in front of a real gpu-origin replica serving ppocr-det and
 * ppocr-rec (whose derived outputs, each step's best symbol and its probability, are all the
 * pipeline asks of it). Images are rendered here (sharp, DejaVu fonts) with known text; each answer must read
 * that text (a few characters of error at most: the models are not perfect, and the bound is the
 * same one the peer meets, bench/reports/ocr.md), through both routes and both OIP encodings. Lines
 * of concurrent images must share cls batches. Bad images get their 4xx and nothing else
 * breaks.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import sharp from "sharp";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { levenshtein } from "../../../bench/ocr/cer";
import { freePort, ROOT } from "../../../src/cli/processes";
import { startStack, type Stack } from "../../../src/cli/stack";
import { packBytes, toJsonValues } from "../../../src/protocol/datatypes";
import { INFERENCE_HEADER_LENGTH, packBinary, unpackBinary } from "../../../src/protocol/oip-binary";

/**
 * Character error rate of the lines in reading order, spaces left out: the recogniser sometimes
 * drops a word space on these clean renders (so does the peer on the same model files:
 * bench/reports/ocr.md), and a space more or less is not what these tests are about.
 */
const cer = (predicted: string[], truth: string[]) => {
  const text = (lines: string[]) => lines.join("\n").replace(/ /g, "");
  return levenshtein(text(predicted), text(truth)) / text(truth).length;
};

const escape = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;");

/** A white page with `lines` of black text, one per 48 px, as a PNG (or JPEG). */
async function page(lines: string[], format: "png" | "jpeg" = "png", width = 640): Promise<Uint8Array<ArrayBuffer>> {
  const height = 40 + 48 * lines.length;
  const text = lines.map((line, i) => `<text x="24" y="${56 + 48 * i}" font-family="DejaVu Sans" font-size="26" fill="#111">${escape(line)}</text>`).join("");
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="#fff"/>${text}</svg>`;
  const image = sharp(Buffer.from(svg));
  return new Uint8Array(await (format === "png" ? image.png() : image.jpeg({ quality: 92 })).toBuffer());
}

const PAGES = [
  ["Invoice 2041 due 12 March", "Total amount: 318.40 EUR", "Thank you for your order"],
  ["Edge inference runtime", "Batch size 16 window 4 ms"],
  ["The quick brown fox jumps", "over the lazy dog 0123456789"],
  ["Meeting room B at 10:30", "Bring the quarterly report", "Coffee is provided"],
];

// cls batches at the edge; rec runs on the origin, as the planned split has it (bench/reports/ocr.md), so its derived outputs cross the hop.
const OVERRIDES = {
  "ppocr-cls": { batching: { maxBatch: 16, windowMs: 30, maxQueueRows: 256, shards: 1, maxRowsPerRequest: 16, adaptiveWindow: false } },
  "ppocr-rec": { placement: "origin", pinned: ["placement"] },
};

interface OcrAnswer {
  lines: Array<{ text: string; score: number; box: number[][] }>;
}

describe("OCR pipeline (ppocr) end to end", () => {
  let stack: Stack | undefined;
  let url = "";
  let port = 0;

  beforeAll(async () => {
    port = await freePort();
    stack = await startStack({ replicas: 1, maxReplicas: 1, port, originPort: await freePort(), originArgs: ["--models", "ppocr-det,ppocr-rec"], vars: { CONTROL_MODE: "static", MODEL_OVERRIDES: JSON.stringify(OVERRIDES) } });
    url = stack.edge.url;
  }, 180_000);

  afterAll(async () => {
    await stack?.stop();
    if (port) rmSync(join(ROOT, ".wrangler", `state-${port}`), { recursive: true, force: true });
  });

  it("reads rendered pages through POST /v1/ocr, lines in reading order with boxes around them", async () => {
    const lines = PAGES[0]!;
    const response = await fetch(`${url}/v1/ocr`, { method: "POST", headers: { "content-type": "image/png" }, body: await page(lines) });
    expect(response.status).toBe(200);
    expect(response.headers.get("server-timing")).toMatch(/det;dur=[\d.]+.*rec;dur=[\d.]+/);
    const body = (await response.json()) as OcrAnswer;
    expect(body.lines.map((l) => l.text)).toHaveLength(lines.length);
    expect(cer(body.lines.map((l) => l.text), lines)).toBeLessThan(0.05);
    body.lines.forEach((line, i) => {
      const ys = line.box.map(([, y]) => y!);
      const baseline = 56 + 48 * i;
      // The box spans the rendered line: its glyphs sit between baseline - ~26 px and baseline + ~6 px.
      expect(Math.min(...ys)).toBeLessThan(baseline - 10);
      expect(Math.max(...ys)).toBeGreaterThan(baseline - 4);
      expect(line.score).toBeGreaterThan(0.5);
    });
  }, 60_000);

  it("turns lines the angle classifier calls upside down, long ones included", async () => {
    const lines = ["Upside down but still read", "The quick brown fox jumps over the lazy dog 0123456789"];
    const turned = await sharp(Buffer.from(await page(lines, "png", 900))).rotate(180).png().toBuffer();
    const response = await fetch(`${url}/v1/ocr`, { method: "POST", body: new Uint8Array(turned) });
    expect(response.status).toBe(200);
    const texts = ((await response.json()) as OcrAnswer).lines.map((l) => l.text);
    // Turned 180 degrees the lines come in the opposite order; each reads as itself.
    expect(cer([...texts].reverse(), lines)).toBeLessThan(0.05);
  }, 60_000);

  it("answers the Open Inference Protocol in JSON (base64 image) and binary, with the same text", async () => {
    const png = await page(PAGES[1]!, "jpeg");
    const json = await fetch(`${url}/v2/models/ppocr/infer`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ id: "r1", inputs: [{ name: "image", datatype: "BYTES", shape: [1], parameters: { content_type: "base64" }, data: [Buffer.from(png).toString("base64")] }] }),
    });
    expect(json.status).toBe(200);
    const answer = (await json.json()) as { id: string; model_name: string; outputs: Array<{ name: string; datatype: string; shape: number[]; data: unknown[] }> };
    expect(answer.id).toBe("r1");
    expect(answer.outputs.map((o) => [o.name, o.datatype])).toEqual([["boxes", "FP32"], ["text", "BYTES"], ["scores", "FP32"]]);
    const texts = answer.outputs[1]!.data as string[];
    expect(answer.outputs[0]!.shape).toEqual([texts.length, 4, 2]);
    expect(cer(texts, PAGES[1]!)).toBeLessThan(0.05);

    const image = packBytes([png]);
    const packed = packBinary({ inputs: [{ name: "image", datatype: "BYTES", shape: [1], parameters: { binary_data_size: image.byteLength } }], outputs: [{ name: "text", parameters: { binary_data: true } }] }, [{ name: "image", datatype: "BYTES", shape: [1], data: image }]);
    const binary = await fetch(`${url}/v2/models/ppocr/infer`, { method: "POST", headers: { "content-type": "application/octet-stream", [INFERENCE_HEADER_LENGTH]: String(packed.headerLength) }, body: packed.body });
    expect(binary.status).toBe(200);
    const unpacked = unpackBinary(new Uint8Array(await binary.arrayBuffer()), binary.headers.get(INFERENCE_HEADER_LENGTH));
    expect((unpacked.header as { outputs: Array<{ name: string }> }).outputs.map((o) => o.name)).toEqual(["text"]);
    expect(toJsonValues("BYTES", unpacked.payload)).toEqual(texts);

    const metadata = (await (await fetch(`${url}/v2/models/ppocr`)).json()) as { platform: string; inputs: Array<{ datatype: string }> };
    expect(metadata.platform).toBe("pipeline");
    expect(metadata.inputs[0]!.datatype).toBe("BYTES");
  }, 60_000);

  it("serves ppocr-rec's derived outputs from the origin: each step's first largest probability and its index, in 8 bytes a step", async () => {
    const steps = 24;
    const x = Array.from({ length: 3 * 48 * 8 * steps }, (_, i) => Math.sin(i * 0.37) * 0.9);
    const ask = async (outputs: string[]) => {
      const response = await fetch(`${url}/v2/models/ppocr-rec/infer`, { method: "POST", body: JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 3, 48, 8 * steps], data: x }], outputs: outputs.map((name) => ({ name, parameters: { binary_data: true } })) }) });
      expect(response.status).toBe(200);
      expect(response.headers.get("x-placement")).toBe("origin");
      const body = new Uint8Array(await response.arrayBuffer());
      const { header, payload } = unpackBinary(body, response.headers.get(INFERENCE_HEADER_LENGTH));
      let offset = 0;
      const tensors = (header as { outputs: Array<{ name: string; shape: number[]; parameters: { binary_data_size: number } }> }).outputs.map((o) => ({ ...o, bytes: payload.slice(offset, (offset += o.parameters.binary_data_size)).buffer }));
      return { payloadBytes: payload.length, tensors: new Map(tensors.map((t) => [t.name, t])) };
    };
    const all = await ask(["softmax_11.tmp_0", "argmax", "max"]);
    const derived = await ask(["argmax", "max"]);
    const probabilities = new Float32Array(all.tensors.get("softmax_11.tmp_0")!.bytes);
    const classes = probabilities.length / steps;
    const expected = Array.from({ length: steps }, (_, t) => {
      const row = Array.from(probabilities.subarray(t * classes, (t + 1) * classes));
      return [row.indexOf(Math.max(...row)), Math.max(...row)];
    });
    for (const answer of [all, derived]) {
      expect(answer.tensors.get("argmax")!.shape).toEqual([1, steps]);
      const best = new Int32Array(answer.tensors.get("argmax")!.bytes);
      const value = new Float32Array(answer.tensors.get("max")!.bytes);
      expect(Array.from(best, (b, t) => [b, value[t]])).toEqual(expected);
    }
    expect(derived.payloadBytes).toBe(8 * steps);
  }, 60_000);

  it("takes ppocr-det's input as UINT8 pixels, normalised on the origin to what the FP32 request sends", async () => {
    const [h, w] = [64, 96];
    const pixels = Uint8Array.from({ length: 3 * h * w }, (_, i) => (i * 7 + (i >> 5)) & 255);
    const mean = [0.485, 0.456, 0.406];
    const std = [0.229, 0.224, 0.225];
    const f = Math.fround;
    const normalised = Float32Array.from(pixels, (v, i) => f(f(f(v * f(1 / 255)) - f(mean[Math.floor(i / (h * w))]!)) / f(std[Math.floor(i / (h * w))]!)));
    const ask = async (datatype: string, data: Uint8Array | Float32Array) => {
      const shape = [1, 3, h, w];
      const packed = packBinary({ inputs: [{ name: "x", datatype, shape, parameters: { binary_data_size: data.byteLength } }], parameters: { binary_data_output: true } }, [{ name: "x", datatype: datatype as "FP32", shape, data }]);
      const response = await fetch(`${url}/v2/models/ppocr-det/infer`, { method: "POST", body: packed.body, headers: { "content-type": "application/octet-stream", [INFERENCE_HEADER_LENGTH]: String(packed.headerLength) } });
      expect(response.status).toBe(200);
      return { bodyBytes: packed.body.length, out: new Float32Array(unpackBinary(new Uint8Array(await response.arrayBuffer()), response.headers.get(INFERENCE_HEADER_LENGTH)).payload.slice().buffer) };
    };
    const [fromPixels, fromFloats] = [await ask("UINT8", pixels), await ask("FP32", normalised)];
    expect(fromPixels.out.length).toBe(h * w);
    expect(Array.from(fromPixels.out)).toEqual(Array.from(fromFloats.out)); // the same session input, bit for bit
    expect(fromPixels.bodyBytes).toBeLessThan(fromFloats.bodyBytes / 3.5);
    const refused = await fetch(`${url}/v2/models/ppocr-cls/infer`, { method: "POST", body: JSON.stringify({ inputs: [{ name: "x", datatype: "UINT8", shape: [1, 3, 48, 192], data: new Array(3 * 48 * 192).fill(1) }] }) });
    expect([refused.status, ((await refused.json()) as { error: string }).error]).toEqual([400, expect.stringMatching(/datatype UINT8 given, FP32 expected/)]);
  }, 60_000);

  it("batches lines of concurrent images together at cls", async () => {
    const statsOf = async (model: string) => ((await (await fetch(`${url}/v2/models/${model}/stats`)).json()) as { model_stats: Array<{ shards: Array<{ counters?: Record<string, number> } & Record<string, unknown>> }> }).model_stats[0]!.shards[0]!;
    const images = await Promise.all(PAGES.map((lines) => page(lines)));
    const answers = await Promise.all(images.map((body) => fetch(`${url}/v1/ocr`, { method: "POST", body }).then(async (r) => ({ status: r.status, body: (await r.json()) as OcrAnswer }))));
    answers.forEach((a, i) => {
      expect(a.status).toBe(200);
      expect(cer(a.body.lines.map((l) => l.text), PAGES[i]!)).toBeLessThan(0.05);
    });
    const cls = JSON.stringify(await statsOf("ppocr-cls"));
    const mostLines = Math.max(...PAGES.map((p) => p.length));
    // Some cls batch held more rows than any one image has lines: lines of several images shared it.
    const sizes = [...cls.matchAll(/"batchRows":\[([\d,]*)\]/g)].flatMap((m) => m[1]!.split(",").filter(Boolean).map(Number));
    expect(Math.max(...sizes)).toBeGreaterThan(mostLines);
  }, 90_000);

  it("refuses undecodable, empty and oversized images with a 4xx, and keeps serving", async () => {
    const garbage = await fetch(`${url}/v1/ocr`, { method: "POST", body: new Uint8Array(64).fill(7) });
    expect(garbage.status).toBe(400);
    expect(((await garbage.json()) as { error: string }).error).toMatch(/PNG or JPEG|image/i);
    const empty = await fetch(`${url}/v1/ocr`, { method: "POST", body: new Uint8Array(0) });
    expect(empty.status).toBe(400);
    // A valid PNG header claiming 60000 x 60000 pixels: refused from the header, never decoded.
    const png = await sharp({ create: { width: 8, height: 8, channels: 3, background: "#fff" } }).png().toBuffer();
    const huge = Buffer.from(png);
    huge.writeUInt32BE(60_000, 16);
    huge.writeUInt32BE(60_000, 20);
    const oversized = await fetch(`${url}/v1/ocr`, { method: "POST", body: huge });
    expect(oversized.status).toBe(413);
    const truncated = await fetch(`${url}/v1/ocr`, { method: "POST", body: (await page(PAGES[2]!)).subarray(0, 500) });
    expect(truncated.status).toBe(400);
    const wrongType = await fetch(`${url}/v2/models/ppocr/infer`, { method: "POST", body: JSON.stringify({ inputs: [{ name: "image", datatype: "FP32", shape: [1], data: [1] }] }) });
    expect(wrongType.status).toBe(400);
    const after = await fetch(`${url}/v1/ocr`, { method: "POST", body: await page(PAGES[2]!) });
    expect(after.status).toBe(200);
    expect(cer(((await after.json()) as OcrAnswer).lines.map((l) => l.text), PAGES[2]!)).toBeLessThan(0.05);
  }, 60_000);

  it("counts the pipeline's requests end to end in /metrics, by status, with their duration and the SLO", async () => {
    type Family = { name: string; values: Array<{ labels: Record<string, string | number>; value: number; metricName?: string }> };
    const read = async () => {
      const { metrics } = (await (await fetch(`${url}/metrics`, { headers: { accept: "application/json" } })).json()) as { metrics: Family[] };
      const sample = (name: string, labels: Record<string, string>, metricName = name) =>
        metrics.find((f) => f.name === name)?.values.find((v) => (v.metricName ?? name) === metricName && Object.entries(labels).every(([k, x]) => String(v.labels[k]) === x))?.value ?? 0;
      return {
        ok: sample("eir_inference_requests_total", { model: "ppocr", status: "200" }),
        bad: sample("eir_inference_requests_total", { model: "ppocr", status: "400" }),
        timed: sample("eir_inference_request_duration_seconds", { model: "ppocr" }, "eir_inference_request_duration_seconds_count"),
        seconds: sample("eir_inference_request_duration_seconds", { model: "ppocr" }, "eir_inference_request_duration_seconds_sum"),
        slo: sample("eir_slo_seconds", { model: "ppocr", percentile: "95" }),
      };
    };
    const before = await read();
    const started = performance.now();
    const statuses = [];
    for (const lines of PAGES.slice(0, 2)) statuses.push((await fetch(`${url}/v1/ocr`, { method: "POST", body: await page(lines) })).status);
    const clientSeconds = (performance.now() - started) / 1000;
    statuses.push((await fetch(`${url}/v2/models/ppocr/infer`, { method: "POST", body: "{" })).status);
    expect(statuses).toEqual([200, 200, 400]);
    const after = await read();
    expect([after.ok - before.ok, after.bad - before.bad, after.timed - before.timed]).toEqual([2, 1, 3]);
    // The edge's own time for the two pages is within what their client saw.
    expect(after.seconds - before.seconds).toBeGreaterThan(0);
    expect(after.seconds - before.seconds).toBeLessThan(clientSeconds + 0.1);
    expect(after.slo).toBe(3);
  }, 60_000);
});
