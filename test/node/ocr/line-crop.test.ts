/**
 * The det input (src/ocr/det-input.ts) and the line crops and cls/rec inputs
 * (src/ocr/line-crop.ts): DetResizeForTest's sizes (multiples of 32, Python's half-to-even
 * rounding, the 32 x 32 padding of tiny images), B, G, R planes and NormalizeImage's values next to the session,
 * cv2.resize's half-pixel bilinear on known pixels, the upright crop of a rotated rectangle drawn
 * with a known colour field, np.rot90 of tall crops, rotate180, the cls/rec layouts (normalised
 * values, zero padding) and the rec widths the served model accepts (its manifest).
 */
import { describe, expect, it } from "vitest";
import clsManifest from "../../../models/ppocr-cls/manifest.json";
import detManifest from "../../../models/ppocr-det/manifest.json";
import recManifest from "../../../models/ppocr-rec/manifest.json";
import type { Quad } from "../../../src/ocr/db-postprocess";
import { parseManifest } from "../../../src/models/manifest";
import { sessionInputs } from "../../../src/models/uint8-inputs";
import { detInput, resizeBilinear } from "../../../src/ocr/det-input";
import type { RgbImage } from "../../../src/ocr/image";
import { CLS_HEIGHT, CLS_WIDTH, clsInput, cropLine, REC_MAX_WIDTH, REC_WIDTH_MULTIPLE, recInput, recWidthOf, rotate180 } from "../../../src/ocr/line-crop";

/** An image whose pixel (x, y) is colour(x, y). */
function image(width: number, height: number, colour: (x: number, y: number) => [number, number, number]): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(colour(x, y), (y * width + x) * 3);
  return { width, height, data };
}
const uniform = (width: number, height: number, rgb: [number, number, number]) => image(width, height, () => rgb);
const pixel = (img: RgbImage, x: number, y: number) => [...img.data.subarray((y * img.width + x) * 3, (y * img.width + x) * 3 + 3)];
const clamp8 = (v: number) => Math.max(0, Math.min(255, Math.round(v)));

describe("detInput", () => {
  it("scales the longer side to at most 960 and rounds each side to a multiple of 32 (halves to even)", () => {
    const size = (w: number, h: number, limit?: number) => {
      const { width, height, data } = detInput(uniform(w, h, [200, 200, 200]), limit);
      expect(data.length).toBe(3 * width * height);
      return [width, height];
    };
    expect(size(960, 960)).toEqual([960, 960]);
    expect(size(1000, 700)).toEqual([960, 672]); // ratio 0.96: 700 -> 672 = 21 x 32
    expect(size(500, 300)).toEqual([512, 288]); // no scaling (<= 960): 15.6 -> 16, 9.4 -> 9
    expect(size(1200, 900)).toEqual([960, 704]); // 900 x 0.8 = 720 = 22.5 x 32 -> 22 (Python's round)
    expect(size(2000, 100)).toEqual([960, 64]); // 100 x 0.48 = 48 = 1.5 x 32 -> 2
    expect(size(100, 2000)).toEqual([64, 960]);
    expect(size(40, 600)).toEqual([32, 608]); // 1.25 -> 1 x 32; 18.75 -> 19
    expect(size(3000, 1000, 1280)).toEqual([1280, 416]); // a larger limit: 1000 x 1280 / 3000 = 426.7 -> 426 -> 13.3 -> 13
    // height + width < 64: padded (black, bottom/right) to 32 x 32 first.
    const tiny = detInput(uniform(20, 10, [255, 255, 255]));
    expect([tiny.width, tiny.height, tiny.ratioW, tiny.ratioH]).toEqual([32, 32, 1, 1]);
    expect(tiny.data[31 * 32 + 31]).toBe(0); // padding is black
    expect(tiny.data[0]).toBe(255);
    const scaled = detInput(uniform(1000, 700, [0, 0, 0]));
    expect([scaled.ratioW, scaled.ratioH]).toEqual([0.96, 672 / 700]);
  });

  it("lays out B, G, R planes of pixels, which ppocr-det's manifest normalises as (v / 255 - mean) / std next to the session", () => {
    const { data, width, height } = detInput(uniform(64, 64, [10, 128, 250]));
    const plane = width * height;
    const [x] = sessionInputs(parseManifest(detManifest, "ppocr-det").inputs, [{ name: "x", datatype: "UINT8", shape: [1, 3, height, width], data }]);
    expect(x!.datatype).toBe("FP32");
    for (const i of [0, plane - 1]) {
      expect([data[i], data[plane + i], data[2 * plane + i]]).toEqual([250, 128, 10]);
      // NormalizeImage in float32, as numpy computes it: v * float32(1/255), minus the mean, over the std.
      const f = Math.fround;
      const normalised = (v: number, mean: number, std: number) => f(f(f(v * f(1 / 255)) - f(mean)) / f(std));
      expect(x!.data[i]).toBe(normalised(250, 0.485, 0.229)); // B
      expect(x!.data[plane + i]).toBe(normalised(128, 0.456, 0.224)); // G
      expect(x!.data[2 * plane + i]).toBe(normalised(10, 0.406, 0.225)); // R
      expect(x!.data[i]).toBeCloseTo((250 / 255 - 0.485) / 0.229, 5);
    }
  });
});

describe("resizeBilinear", () => {
  it("samples at half-pixel centres, replicating the edges (cv2.INTER_LINEAR)", () => {
    // 0, 255 widened to 4: source x = (d + 0.5) / 2 - 0.5 = -0.25 (edge), 0.25, 0.75, 1.25 (edge).
    const ramp = image(2, 1, (x) => [x * 255, 0, 0]);
    expect([0, 1, 2, 3].map((x) => pixel(resizeBilinear(ramp, 4, 1), x, 0)[0])).toEqual([0, 64, 191, 255]);
    // Halving averages 2 x 2 blocks, rounding halves up.
    const src = image(6, 4, (x, y) => [(x * 37 + y * 91) & 255, (x * 13) & 255, (y * 60 + 7) & 255]);
    const half = resizeBilinear(src, 3, 2);
    for (let y = 0; y < 2; y++) {
      for (let x = 0; x < 3; x++) {
        const block = [pixel(src, 2 * x, 2 * y), pixel(src, 2 * x + 1, 2 * y), pixel(src, 2 * x, 2 * y + 1), pixel(src, 2 * x + 1, 2 * y + 1)];
        expect(pixel(half, x, y)).toEqual([0, 1, 2].map((c) => (block.reduce((sum, p) => sum + p[c]!, 0) + 2) >> 2));
      }
    }
    expect(resizeBilinear(src, 6, 4).data).toEqual(src.data);
    // A linear ramp stays linear (to rounding) at any scale.
    const wide = image(50, 3, (x) => [x * 5, 100, 200 - x * 4]);
    const narrow = resizeBilinear(wide, 20, 3);
    for (let x = 1; x < 19; x++) expect(Math.abs(pixel(narrow, x, 1)[0]! - 5 * ((x + 0.5) * 2.5 - 0.5))).toBeLessThanOrEqual(1);
  });
});

describe("cropLine", () => {
  /** A 240 x 200 image whose colour encodes position in the frame of a rectangle rotated by `angle` about (120, 100): R = 2u + 40, G = 6v + 40 (u, v from its top-left corner). */
  function rotatedField(angle: number, w: number, h: number) {
    const [c, s] = [Math.cos(angle), Math.sin(angle)];
    const origin: [number, number] = [120 - (w / 2) * c + (h / 2) * s, 100 - (w / 2) * s - (h / 2) * c];
    const img = image(240, 200, (x, y) => {
      const [dx, dy] = [x - origin[0], y - origin[1]];
      return [clamp8(2 * (dx * c + dy * s) + 40), clamp8(6 * (-dx * s + dy * c) + 40), 90];
    });
    const corner = (u: number, v: number): [number, number] => [origin[0] + u * c - v * s, origin[1] + u * s + v * c];
    return { img, quad: [corner(0, 0), corner(w, 0), corner(w, h), corner(0, h)] as Quad };
  }

  it("warps a rotated rectangle upright: size from its sides, each crop pixel the colour of its place in the rectangle", () => {
    for (const degrees of [0, 20, -35]) {
      const { img, quad } = rotatedField((degrees * Math.PI) / 180, 90.6, 30.4);
      const crop = cropLine(img, quad);
      expect([crop.width, crop.height]).toEqual([90, 30]); // truncated side lengths
      // Crop pixel (x, y) samples the rectangle at (x * 90.6 / 90, y * 30.4 / 30); away from its
      // edges, bicubic reproduces the linear field to a level or so.
      for (let y = 2; y < 28; y += 5) {
        for (let x = 2; x < 88; x += 7) {
          const [r, g, b] = pixel(crop, x, y);
          expect(Math.abs(r! - (2 * x * (90.6 / 90) + 40))).toBeLessThanOrEqual(1.5);
          expect(Math.abs(g! - (6 * y * (30.4 / 30) + 40))).toBeLessThanOrEqual(1.5);
          expect(b).toBe(90);
        }
      }
    }
  });

  it("copies an axis-aligned integer box exactly, and turns a tall crop 90 degrees counter-clockwise", () => {
    const src = image(40, 30, (x, y) => [(x * 37 + y * 11) & 255, (x * y) & 255, (200 - x - y) & 255]);
    const crop = cropLine(src, [[5, 4], [25, 4], [25, 12], [5, 12]]);
    expect([crop.width, crop.height]).toEqual([20, 8]);
    for (let y = 0; y < 8; y++) for (let x = 0; x < 20; x++) expect(pixel(crop, x, y)).toEqual(pixel(src, x + 5, y + 4));
    // 6 wide, 15 tall (>= 1.5): np.rot90, the top row becomes the left column, read bottom to top.
    const tall = cropLine(src, [[10, 2], [16, 2], [16, 17], [10, 17]]);
    expect([tall.width, tall.height]).toEqual([15, 6]);
    for (let y = 0; y < 6; y++) for (let x = 0; x < 15; x++) expect(pixel(tall, x, y)).toEqual(pixel(src, 10 + 5 - y, 2 + x));
    // 10 wide, 14 tall (< 1.5): left as it is.
    expect(cropLine(src, [[10, 2], [20, 2], [20, 16], [10, 16]])).toMatchObject({ width: 10, height: 14 });
  });

  it("rotate180 reverses the pixel order; twice is the identity", () => {
    const src = image(7, 5, (x, y) => [x * 30, y * 50, (x + y) * 10]);
    const turned = rotate180(src);
    expect(pixel(turned, 0, 0)).toEqual(pixel(src, 6, 4));
    expect(pixel(turned, 2, 1)).toEqual(pixel(src, 4, 3));
    expect(rotate180(turned)).toEqual(src);
  });
});

describe("cls and rec inputs", () => {
  const norm = (v: number) => (v / 255 - 0.5) / 0.5;

  it("clsInput: [n, 3, 48, 192], each line at height 48 and its own width (<= 192), B, G, R planes, zero padded; a long line's leading window only", () => {
    const lines = [uniform(100, 50, [0, 128, 255]), image(1000, 20, (x) => (x < 80 ? [255, 0, 0] : [0, 0, 255]))];
    const data = clsInput(lines);
    const plane = CLS_HEIGHT * CLS_WIDTH;
    expect(data.length).toBe(2 * 3 * plane);
    // Line 0: 100 x 50 -> 96 x 48.
    for (const [x, y] of [[0, 0], [95, 47], [50, 20]]) {
      const at = y! * CLS_WIDTH + x!;
      expect([data[at], data[plane + at], data[2 * plane + at]]).toEqual([1, expect.closeTo(norm(128), 6), -1]);
    }
    for (const x of [96, 150, 191]) for (let c = 0; c < 3; c++) expect(data[c * plane + 10 * CLS_WIDTH + x]).toBe(0);
    // Line 1: 1000 x 20: its first 80 columns (4 x its height, red), not the whole line, fill the 192.
    const line1 = 3 * plane;
    expect([data[line1 + 47 * CLS_WIDTH + 191], data[line1 + plane], data[line1 + 2 * plane + 5]]).toEqual([-1, -1, 1]);
    expect(data[line1 + 2 * plane + 47 * CLS_WIDTH + 190]).toBe(1);
  });

  it("recInput: [n, 3, 48, width], each line at height 48 and width min(width, ceil(48 w / h)), zero padded", () => {
    const lines = [uniform(60, 30, [255, 255, 255]), uniform(300, 24, [0, 0, 0])];
    const width = 320;
    const data = recInput(lines, width);
    const plane = 48 * width;
    expect(data.length).toBe(2 * 3 * plane);
    expect([data[0], data[95], data[96], data[319]]).toEqual([1, 1, 0, 0]); // 60 x 30 -> 96 wide
    expect([data[3 * plane], data[3 * plane + 319], data[3 * plane + 47 * width + 319]]).toEqual([-1, -1, -1]); // 300 x 24 -> 600, squeezed to 320
    expect(() => recInput(lines, 0)).toThrow(RangeError);
  });

  it("recWidthOf: the line's width at height 48, at least 320, a multiple of 8, at most the model's widest input", () => {
    expect(recWidthOf(uniform(60, 30, [0, 0, 0]))).toBe(320);
    expect(recWidthOf(uniform(480, 48, [0, 0, 0]))).toBe(480);
    expect(recWidthOf(uniform(500, 48, [0, 0, 0]))).toBe(504);
    expect(recWidthOf(uniform(401, 40, [0, 0, 0]))).toBe(488); // ceil(481.2) = 482 -> 488
    expect(recWidthOf(uniform(2000, 20, [0, 0, 0]))).toBe(1280);
    // What the served models take (their manifests).
    const [recInputSpec] = recManifest.inputs;
    expect([recInputSpec!.maxShape[2], recInputSpec!.maxShape[3], recInputSpec!.shapeMultipleOf[3]]).toEqual([48, REC_MAX_WIDTH, REC_WIDTH_MULTIPLE]);
    expect(clsManifest.inputs[0]!.shape).toEqual([-1, 3, CLS_HEIGHT, CLS_WIDTH]);
  });
});
