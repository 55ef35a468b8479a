/**
 * End to end with the real PP-OCRv4 detector: a white page with three lines of black text rendered
 * by sharp (DejaVu Sans), decodeImage -> detInput -> onnxruntime-node (models/ppocr-det) ->
 * detectBoxes. Each line's known place is the bounding box of its ink (dark pixels in its band of
 * the rendered page); there must be exactly one box per line, in reading order, whose bounding
 * rectangle overlaps it with IoU > 0.5 (each side within 8 px, in fact), and whose crop is a wide
 * upright line.
 */
import * as ort from "onnxruntime-node";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import detManifest from "../../../models/ppocr-det/manifest.json";
import { detectBoxes } from "../../../src/ocr/db-postprocess";
import { parseManifest } from "../../../src/models/manifest";
import { sessionInputs } from "../../../src/models/uint8-inputs";
import { detInput } from "../../../src/ocr/det-input";
import { decodeImage, type RgbImage } from "../../../src/ocr/image";
import { cropLine } from "../../../src/ocr/line-crop";

const [W, H] = [1100, 640];
const LINES = [
  { text: "Edge inference with PaddleOCR", x: 60, baseline: 140, size: 44 },
  { text: "Invoice 2024-0042: total 1,234.56", x: 120, baseline: 330, size: 36 },
  { text: "the quick brown fox jumps over", x: 80, baseline: 520, size: 52 },
];

type Rect = [number, number, number, number]; // x0, y0, x1, y1 (inclusive pixels)

/** The bounding box of dark pixels between two rows. */
function inkBox(image: RgbImage, fromRow: number, toRow: number): Rect {
  const box: Rect = [Infinity, Infinity, -Infinity, -Infinity];
  for (let y = fromRow; y < toRow; y++) {
    for (let x = 0; x < image.width; x++) {
      if (image.data[(y * image.width + x) * 3]! < 128) box.splice(0, 4, Math.min(box[0], x), Math.min(box[1], y), Math.max(box[2], x), Math.max(box[3], y));
    }
  }
  return box;
}

function iou(a: Rect, b: Rect): number {
  const area = ([x0, y0, x1, y1]: Rect) => Math.max(0, x1 - x0 + 1) * Math.max(0, y1 - y0 + 1);
  const inter = area([Math.max(a[0], b[0]), Math.max(a[1], b[1]), Math.min(a[2], b[2]), Math.min(a[3], b[3])]);
  return inter / (area(a) + area(b) - inter);
}

describe("det model end to end", () => {
  it("finds one box per rendered text line, covering it", { timeout: 30_000 }, async () => {
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}"><rect width="100%" height="100%" fill="white"/>${LINES.map(
      (l) => `<text x="${l.x}" y="${l.baseline}" font-family="DejaVu Sans" font-size="${l.size}" fill="black">${l.text}</text>`,
    ).join("")}</svg>`;
    const image = decodeImage(new Uint8Array(await sharp(Buffer.from(svg)).png().toBuffer()), { maxPixels: 4_000_000 });
    expect([image.width, image.height]).toEqual([W, H]);
    // Bands between the lines (they are 190 px apart, each well under 100 px tall).
    const ink = LINES.map((l) => inkBox(image, l.baseline - 95, l.baseline + 95));

    const det = detInput(image);
    expect([det.width, det.height]).toEqual([960, 544]); // 1100 x 640 -> 960 x 558.5 -> 17.45 x 32
    const session = await ort.InferenceSession.create("models/ppocr-det/model.onnx");
    const input = detManifest.inputs[0]!.name;
    const output = detManifest.outputs[0]!.name;
    const [x] = sessionInputs(parseManifest(detManifest, "ppocr-det").inputs, [{ name: input, datatype: "UINT8", shape: [1, 3, det.height, det.width], data: det.data }]);
    const result = await session.run({ [input]: new ort.Tensor("float32", x!.data as Float32Array, x!.shape) });
    expect(result[output]!.dims).toEqual([1, 1, det.height, det.width]);
    const boxes = detectBoxes(result[output]!.data as Float32Array, det.height, det.width, image);

    expect(boxes).toHaveLength(LINES.length);
    boxes.forEach((box, i) => {
      const xs = box.points.map((p) => p[0]);
      const ys = box.points.map((p) => p[1]);
      const rect: Rect = [Math.min(...xs), Math.min(...ys), Math.max(...xs), Math.max(...ys)];
      expect(iou(rect, ink[i]!)).toBeGreaterThan(0.5);
      // In fact each side is within a few pixels of the ink's.
      rect.forEach((side, k) => expect(Math.abs(side - ink[i]![k]!)).toBeLessThanOrEqual(8));
      expect(box.score).toBeGreaterThan(0.6);
      const crop = cropLine(image, box.points);
      expect(crop.width / crop.height).toBeGreaterThan(8);
    });
  });
});
