/**
 * Size classes for ppocr-rec at the edge (MBS): text lines of different widths in one class share a
 * batch, padded to the class width, and each gets its own time steps back with the text it reads
 * alone. The lines are real crops rendered at setup (test/setup/text-line-references.ts).
 *
 * Tolerances. Against the same line alone in its class (a batch of one, padded to the same width)
 * the probabilities agree within 1e-4: the same computation at another batch size. Against the line
 * alone at its own width (what a client got before size classes, from onnxruntime-node) no
 * elementwise bound holds: PP-OCRv4's recogniser mixes the whole line globally (its SVTR neck
 * attends over every column), so the padded columns move the probabilities at every step. Measured
 * on these crops (padded by 9-17 %): median per-step deviation 6e-5 to 2.4e-4, largest 0.27; with
 * 19 % padding single steps move by up to 0.99, where the top symbol flips between CTC-equivalent
 * paths (a character held one step more or less against a blank), and padded to 1280 one of five
 * crops lost its spaces (bench/reports/size-classes.md). What a client reads is the greedy CTC
 * decoding, so that is asserted equal; the deviations are printed.
 */
import { describe, expect, inject, it } from "vitest";
import { ctcDecodeSteps, greedyCtcDecode } from "../../../src/models/ctc";
import { INFERENCE_HEADER_LENGTH, packBinary, unpackBinary } from "../../../src/protocol/oip-binary";
import "../../fixtures/provided-context";
import { infer, maxAbsDiff } from "../helpers";

// This project serves ppocr-rec with size classes [128, 256, 384, 1280], maxBatch 3 and a 300 ms
// window (vitest.config.ts): the three lines of class 384 leave together by size.
const CLASS_WIDTH = 384;
const lines = inject("textLines");
const floats = (base64: string) => {
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return new Float32Array(bytes.buffer);
};

/** Sends one line in the binary extension, asking for binary outputs; resolves with the batch size and the probabilities. */
async function recognise(line: (typeof lines)[number]): Promise<{ batchSize: number; shape: number[]; probabilities: Float32Array }> {
  const input = floats(line.input);
  const shape = [1, 3, 48, line.width];
  const packed = packBinary({ inputs: [{ name: "x", datatype: "FP32", shape, parameters: { binary_data_size: input.byteLength } }], parameters: { binary_data_output: true } }, [{ name: "x", datatype: "FP32", shape, data: input }]);
  const response = await infer("ppocr-rec", packed.body, { headers: { "content-type": "application/octet-stream", [INFERENCE_HEADER_LENGTH]: String(packed.headerLength) } });
  expect(response.status).toBe(200);
  const { header, payload } = unpackBinary(new Uint8Array(await response.arrayBuffer()), response.headers.get(INFERENCE_HEADER_LENGTH));
  const output = (header as { outputs: Array<{ shape: number[] }> }).outputs[0]!;
  return { batchSize: Number(response.headers.get("x-batch-size")), shape: output.shape, probabilities: new Float32Array(payload.slice().buffer) };
}

/** Largest absolute difference per time step of [steps, classes] probabilities. */
function stepDeviations(a: Float32Array, b: Float32Array, classes: number): number[] {
  return Array.from({ length: a.length / classes }, (_, t) => maxAbsDiff(a.subarray(t * classes, (t + 1) * classes), b.subarray(t * classes, (t + 1) * classes)));
}

describe("size classes for ppocr-rec", () => {
  const symbols = inject("recSymbols");
  const inClass = lines.filter((l) => l.width > 256 && l.width <= CLASS_WIDTH);
  const other = lines.find((l) => l.width <= 256)!;

  it("batches lines of one class together, and each reads as it does alone", async () => {
    expect(new Set(inClass.map((l) => l.width)).size).toBe(3); // three different widths, one class
    const alone: Awaited<ReturnType<typeof recognise>>[] = [];
    for (const line of inClass) alone.push(await recognise(line));
    expect(alone.map((r) => r.batchSize)).toEqual([1, 1, 1]);
    const [together, apart] = await Promise.all([Promise.all(inClass.map(recognise)), recognise(other)]);
    expect(together.map((r) => r.batchSize)).toEqual([3, 3, 3]);
    expect(apart.batchSize).toBe(1); // another class: not in their batch
    inClass.forEach((line, i) => {
      const classes = line.shape[2]!;
      expect(together[i]!.shape).toEqual([1, line.width / 8, classes]);
      // Same class, batch of three against batch of one: the same padded computation.
      expect(maxAbsDiff(together[i]!.probabilities, alone[i]!.probabilities)).toBeLessThan(1e-4);
      // Against the line alone at its own width: the text a client reads.
      const reference = floats(line.probabilities);
      const decoded = greedyCtcDecode(together[i]!.probabilities, line.width / 8, symbols).text;
      expect(decoded).toBe(line.decoded);
      const deviations = stepDeviations(together[i]!.probabilities, reference, classes).sort((a, b) => a - b);
      console.log(`${JSON.stringify(line.text)} (${line.font}, width ${line.width} -> ${CLASS_WIDTH}): read ${JSON.stringify(decoded)}; deviation from its own width per step: median ${deviations[deviations.length >> 1]!.toExponential(1)}, max ${deviations.at(-1)!.toFixed(3)}`);
    });
  });

  it("pads a lone line to its class and crops its steps back", async () => {
    const result = await recognise(other);
    expect(result.shape).toEqual([1, other.width / 8, 6625]);
    expect(greedyCtcDecode(result.probabilities, other.width / 8, symbols).text).toBe(other.decoded);
  });

  it("derives argmax and max next to the session, per request in a mixed batch, cropped to each line's steps", async () => {
    // One line asks for the probabilities and both derived outputs, the other two for the derived ones only: one batch serves all.
    const ask = (line: (typeof lines)[number], outputs: string[]) => {
      const input = floats(line.input);
      const shape = [1, 3, 48, line.width];
      const packed = packBinary({ inputs: [{ name: "x", datatype: "FP32", shape, parameters: { binary_data_size: input.byteLength } }], outputs: outputs.map((name) => ({ name, parameters: { binary_data: true } })) }, [{ name: "x", datatype: "FP32", shape, data: input }]);
      return infer("ppocr-rec", packed.body, { headers: { "content-type": "application/octet-stream", [INFERENCE_HEADER_LENGTH]: String(packed.headerLength) } });
    };
    const responses = await Promise.all(inClass.map((line, i) => ask(line, i === 0 ? ["softmax_11.tmp_0", "argmax", "max"] : ["argmax", "max"])));
    const bodies = await Promise.all(responses.map(async (r) => ({ batchSize: Number(r.headers.get("x-batch-size")), ...unpackBinary(new Uint8Array(await r.arrayBuffer()), r.headers.get(INFERENCE_HEADER_LENGTH)) })));
    expect(bodies.map((b) => b.batchSize)).toEqual([3, 3, 3]);
    bodies.forEach(({ header, payload }, i) => {
      const line = inClass[i]!;
      const steps = line.width / 8;
      const outputs = (header as { outputs: Array<{ name: string; datatype: string; shape: number[]; parameters: { binary_data_size: number } }> }).outputs;
      expect(outputs.slice(-2).map((o) => [o.name, o.datatype, o.shape])).toEqual([["argmax", "INT32", [1, steps]], ["max", "FP32", [1, steps]]]);
      let offset = 0;
      const bytes = new Map(outputs.map((o) => [o.name, payload.slice(offset, (offset += o.parameters.binary_data_size)).buffer]));
      const best = new Int32Array(bytes.get("argmax")!);
      const bestProbability = new Float32Array(bytes.get("max")!);
      if (i === 0) {
        // Against the probabilities returned with them: each step's first largest value, and that value.
        const p = new Float32Array(bytes.get("softmax_11.tmp_0")!);
        const classes = p.length / steps;
        const expected = Array.from({ length: steps }, (_, t) => {
          const row = Array.from(p.subarray(t * classes, (t + 1) * classes));
          return [row.indexOf(Math.max(...row)), Math.max(...row)];
        });
        expect(Array.from(best, (b, t) => [b, bestProbability[t]])).toEqual(expected);
      } else expect(payload.length).toBe(8 * steps); // 4 + 4 bytes per step, not 4 x 6625
      expect(ctcDecodeSteps(best, bestProbability, steps, symbols).text).toBe(line.decoded);
    });
  });

  it("reads the rendered strings", () => {
    // The model reads these crops as written (asserted on the reference; the batched reads equal it above).
    expect(lines.map((l) => l.decoded)).toEqual(lines.map((l) => l.text));
  });
});
