/**
 * A width mix drawn from real text-line crops: lines of words from a fixed list (plus numbers,
 * prices and dates, as on receipts and forms), rendered in four DejaVu faces and prepared as PP-OCR
 * prepares a crop (test/fixtures/text-lines.ts), so each width is the one a client would send.
 * Line lengths follow a mix of short fields and full lines: half 1-3 words, 35 % 4-7, 15 % 8-12.
 * Seeded: the same seed gives the same lines.
 */
import { INFERENCE_HEADER_LENGTH, packBinary } from "../../src/protocol/oip-binary";
import { renderTextLine, type TextLine } from "../../test/fixtures/text-lines";
import { seededRandom } from "./open-loop";

const WORDS = (
  "the of and to in is for on with as by at from that this be are or an it not have was will your our all new more one " +
  "order invoice total amount date due payment account number customer service price quantity item description tax " +
  "net gross balance address street city phone email reference page report summary note office delivery shipping " +
  "receipt cash card change thank you please sign here name company limited road avenue suite north south east west " +
  "model batch window queue latency edge origin server request response buffer class width height text line image " +
  "quick brown fox jumps over lazy dog morning evening monday friday january march october december"
).split(" ");
const FONTS = ["DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Bold.ttf"];

/** One generated line's text and font. */
export interface LineSpec {
  text: string;
  font: string;
}

/** `count` line specs from `seed` (see the module doc). */
export function lineSpecs(count: number, seed: number): LineSpec[] {
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]) => items[Math.floor(random() * items.length)]!;
  const token = (): string => {
    const r = random();
    if (r < 0.08) return String(Math.floor(random() * 100_000));
    if (r < 0.13) return `${Math.floor(random() * 1000)}.${String(Math.floor(random() * 100)).padStart(2, "0")}`;
    if (r < 0.16) return `${1 + Math.floor(random() * 28)}/${1 + Math.floor(random() * 12)}/20${10 + Math.floor(random() * 16)}`;
    const word = pick(WORDS);
    return random() < 0.2 ? word[0]!.toUpperCase() + word.slice(1) : word;
  };
  return Array.from({ length: count }, () => {
    const r = random();
    const words = r < 0.5 ? 1 + Math.floor(random() * 3) : r < 0.85 ? 4 + Math.floor(random() * 4) : 8 + Math.floor(random() * 5);
    return { text: Array.from({ length: words }, token).join(" "), font: pick(FONTS) };
  });
}

/** Renders the lines (widths at most maxWidth). */
export async function renderLines(specs: LineSpec[], maxWidth = 1280): Promise<TextLine[]> {
  const lines: TextLine[] = [];
  for (const spec of specs) lines.push(await renderTextLine(spec.text, { font: spec.font, maxWidth }));
  return lines;
}

/** A ppocr-rec request body in the binary tensor extension ([rows, 3, 48, width] FP32), asking for binary outputs. */
export function recRequestBody(data: Float32Array, rows: number, width: number): { body: Uint8Array<ArrayBuffer>; headers: Record<string, string> } {
  const shape = [rows, 3, 48, width];
  const packed = packBinary({ inputs: [{ name: "x", datatype: "FP32", shape, parameters: { binary_data_size: data.byteLength } }], parameters: { binary_data_output: true } }, [{ name: "x", datatype: "FP32", shape, data }]);
  return { body: packed.body, headers: { "content-type": "application/octet-stream", [INFERENCE_HEADER_LENGTH]: String(packed.headerLength) } };
}
