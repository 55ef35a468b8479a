/**
 * Rendered text lines and their onnxruntime-node references for the size-class test
 * (test/edge/buffer/size-classes.test.ts): each line rendered as PP-OCR prepares a crop
 * (test/fixtures/text-lines.ts) and run alone at its own width, with the decoded text.
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import * as ort from "onnxruntime-node";
import { ctcSymbols, greedyCtcDecode } from "../../src/models/ctc";
import type { TextLineReference } from "../fixtures/provided-context";
import { renderTextLine } from "../fixtures/text-lines";

/** The lines: three of one class (widths 328-352 under classes [128, 256, 384, 1280]) and one of another (216). */
export const SIZE_CLASS_LINES: ReadonlyArray<{ text: string; font: string }> = [
  { text: "Invoice No. 4711", font: "DejaVuSerif.ttf" },
  { text: "Total: 12.50 EUR", font: "DejaVuSans-Bold.ttf" },
  { text: "batching & padding", font: "DejaVuSansMono.ttf" },
  { text: "Receipt #17", font: "DejaVuSans.ttf" },
];

const base64 = (data: Float32Array) => Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString("base64");

/** Renders the lines and runs each alone on onnxruntime-node. */
export async function textLineReferences(root: string): Promise<TextLineReference[]> {
  const symbols = ctcSymbols(readFileSync(resolve(root, "models", "ppocr-rec", "ppocr_keys_v1.txt"), "utf8"));
  const session = await ort.InferenceSession.create(resolve(root, "models", "ppocr-rec", "model.onnx"));
  const lines: TextLineReference[] = [];
  for (const { text, font } of SIZE_CLASS_LINES) {
    const line = await renderTextLine(text, { font });
    const output = Object.values(await session.run({ x: new ort.Tensor("float32", line.data, [1, 3, 48, line.width]) }))[0]!;
    const probabilities = output.data as Float32Array;
    lines.push({ text, font, width: line.width, input: base64(line.data), shape: [...output.dims], probabilities: base64(probabilities), decoded: greedyCtcDecode(probabilities, output.dims[1]!, symbols).text });
  }
  await session.release();
  return lines;
}
