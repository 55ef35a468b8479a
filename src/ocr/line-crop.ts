/**
 * Text-line crops and the angle classifier's and recogniser's inputs, as PaddleOCR prepares them:
 * utility.get_rotate_crop_image (predict_system.py with det_box_type "quad"), predict_cls.py's and
 * predict_rec.py's resize_norm_img (PP-OCRv4: cls_image_shape 3,48,192; rec_image_shape 3,48,320,
 * rec_algorithm SVTR_LCNet). Pure.
 *
 * Channel order: PaddleOCR crops the BGR image cv2 read, so both models take B, G, R planes
 * (normalisation is the same for every channel, so only the order matters). The peer JS port
 * (@gutenye/ocr-common) also feeds B, G, R planes, but as v / 255 (PaddleOCR: (v / 255 - 0.5) /
 * 0.5) and without zero padding; we follow PaddleOCR.
 */
import type { Quad } from "./db-postprocess";
import { resizeBilinear } from "./det-input";
import type { RgbImage } from "./image";

/** cls input: [n, 3, 48, 192] (cls_image_shape). */
export const CLS_HEIGHT = 48;
export const CLS_WIDTH = 192;
/** rec input height (rec_image_shape 3,48,320). */
export const REC_HEIGHT = 48;
/** PaddleOCR pads a rec batch to at least 320 (max_wh_ratio starts at 320 / 48): a line alone is never narrower. */
export const REC_MIN_WIDTH = 320;
/** The widest rec input the served model takes (models/ppocr-rec/manifest.json maxShape[3]). */
export const REC_MAX_WIDTH = 1280;
/** rec input widths are multiples of this (manifest shapeMultipleOf[3]: the model's 8x width downsampling). */
export const REC_WIDTH_MULTIPLE = 8;

/**
 * get_rotate_crop_image: the quad `points` (clockwise from top-left, image pixels) warped upright
 * to width = trunc(max(|p0p1|, |p3p2|)), height = trunc(max(|p0p3|, |p1p2|)), corners mapped to
 * (0,0), (width,0), (width,height), (0,height) as cv2.getPerspectiveTransform +
 * cv2.warpPerspective(INTER_CUBIC, BORDER_REPLICATE) do: bicubic (a = -0.75) sampling at source
 * positions quantised to 1/32 pixel with OpenCV's 15-bit fixed-point weight table, edge pixels
 * replicated (bit-exact with OpenCV 4.9's warpPerspective on the crops we compared, rotated ones
 * included). A crop at least 1.5 times taller than wide is then turned 90 degrees
 * counter-clockwise (np.rot90), so vertical text reads left to right.
 */
export function cropLine(image: RgbImage, points: Quad): RgbImage {
  const [p0, p1, p2, p3] = points;
  const length = (a: number[], b: number[]) => Math.hypot(a[0]! - b[0]!, a[1]! - b[1]!);
  const width = Math.trunc(Math.max(length(p0, p1), length(p2, p3)));
  const height = Math.trunc(Math.max(length(p0, p3), length(p1, p2)));
  if (width < 1 || height < 1) throw new RangeError(`cannot crop a degenerate box (${width}x${height})`);
  const toSource = squareToQuad(points);
  const table = cubicTable();
  const { width: sw, height: sh, data: src } = image;
  const out = new Uint8Array(width * height * 3);
  const xs = [0, 0, 0, 0];
  const ys = [0, 0, 0, 0];
  for (let y = 0, o = 0; y < height; y++) {
    for (let x = 0; x < width; x++, o += 3) {
      const [sx, sy] = toSource(x / width, y / height);
      // Source position in 1/32 pixels, rounded (cvRound), as warpPerspective hands it to remap.
      const qx = roundHalfEvenInt(sx * 32);
      const qy = roundHalfEvenInt(sy * 32);
      const weights = ((qy & 31) * 32 + (qx & 31)) * 16;
      for (let k = 0; k < 4; k++) {
        xs[k] = clampInt((qx >> 5) - 1 + k, sw) * 3;
        ys[k] = clampInt((qy >> 5) - 1 + k, sh) * sw * 3;
      }
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let k1 = 0; k1 < 4; k1++) for (let k2 = 0; k2 < 4; k2++) sum += src[ys[k1]! + xs[k2]! + c]! * table[weights + k1 * 4 + k2]!;
        const v = (sum + 16384) >> 15;
        out[o + c] = v < 0 ? 0 : v > 255 ? 255 : v;
      }
    }
  }
  const crop = { width, height, data: out };
  return height / width >= 1.5 ? rotate90CounterClockwise(crop) : crop;
}

/** cv2.rotate(image, ROTATE_180): what PaddleOCR does to a line the classifier calls "180". */
export function rotate180(image: RgbImage): RgbImage {
  const { width, height, data } = image;
  const out = new Uint8Array(data.length);
  for (let i = 0, j = data.length - 3; i < data.length; i += 3, j -= 3) {
    out[i] = data[j]!;
    out[i + 1] = data[j + 1]!;
    out[i + 2] = data[j + 2]!;
  }
  return { width, height, data: out };
}

/**
 * predict_cls.py's resize_norm_img for a batch, on each line's leading window: each line resized
 * (bilinear) to height 48 and width min(192, ceil(48 * w / h)), (v / 255 - 0.5) / 0.5 per channel
 * in B, G, R planes, zero padded on the right to 192. Returns [n, 3, 48, 192] float32.
 *
 * Departure from PaddleOCR: a line longer than 192:48 is not squeezed whole into 192 columns; its
 * first 4 x height columns are (the text at its own aspect ratio). Squeezed, long lines look like
 * nothing the classifier was trained on, and it called many of them upside down with probability
 * ~1 (bench/reports/ocr.md: those lines then read as nothing; 16.3 % CER on the test set, 2.1 %
 * with the window, and the same on lines that are upside down).
 */
export function clsInput(lines: RgbImage[]): Float32Array {
  return normalisedBatch(lines.map(leadingWindow), CLS_WIDTH);
}

/** The first (CLS_WIDTH / CLS_HEIGHT) x height columns of a line (the whole line when it is shorter). */
function leadingWindow(line: RgbImage): RgbImage {
  const width = Math.min(line.width, Math.ceil((CLS_WIDTH / CLS_HEIGHT) * line.height));
  if (width === line.width) return line;
  const data = new Uint8Array(width * line.height * 3);
  for (let y = 0; y < line.height; y++) data.set(line.data.subarray(y * line.width * 3, (y * line.width + width) * 3), y * width * 3);
  return { width, height: line.height, data };
}

/**
 * predict_rec.py's resize_norm_img for a batch padded to `width` (PaddleOCR pads to
 * int(48 * max_wh_ratio) over the batch; here the caller picks the width, e.g. the largest
 * recWidthOf, or its size class): each line resized to height 48 and width min(width,
 * ceil(48 * w / h)), normalised as clsInput, zero padded on the right. Returns [n, 3, 48, width].
 */
export function recInput(lines: RgbImage[], width: number): Float32Array {
  if (!Number.isInteger(width) || width < 1) throw new RangeError(`rec width must be a positive integer, got ${width}`);
  return normalisedBatch(lines, width);
}

/**
 * The rec width a line needs on its own: its width at height 48, ceil(48 * w / h), at least 320
 * (PaddleOCR never pads a batch to less: the model's global mixing sees the padding, so this keeps
 * its results), rounded up to a multiple of 8, at most 1280 (wider lines are squeezed to 1280, where
 * PaddleOCR would go wider).
 */
export function recWidthOf(line: RgbImage): number {
  const needed = Math.max(REC_MIN_WIDTH, Math.ceil(REC_HEIGHT * (line.width / line.height)));
  return Math.min(REC_MAX_WIDTH, Math.ceil(needed / REC_WIDTH_MULTIPLE) * REC_WIDTH_MULTIPLE);
}

/** (v / 255 - 0.5) / 0.5 in float32, as numpy computes it, for v = 0..255. */
const NORM_LUT = Float32Array.from({ length: 256 }, (_, v) => Math.fround(Math.fround(Math.fround(v / 255) - 0.5) / 0.5));

function normalisedBatch(lines: RgbImage[], width: number): Float32Array {
  const height = REC_HEIGHT; // = CLS_HEIGHT
  const plane = height * width;
  const out = new Float32Array(lines.length * 3 * plane);
  lines.forEach((line, n) => {
    const resizedWidth = Math.min(width, Math.ceil(height * (line.width / line.height)));
    const { data } = resizeBilinear(line, resizedWidth, height);
    const base = n * 3 * plane;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < resizedWidth; x++) {
        const from = (y * resizedWidth + x) * 3;
        const to = base + y * width + x;
        out[to] = NORM_LUT[data[from + 2]!]!; // B
        out[to + plane] = NORM_LUT[data[from + 1]!]!; // G
        out[to + 2 * plane] = NORM_LUT[data[from]!]!; // R
      }
    }
  });
  return out;
}

/** np.rot90: 90 degrees counter-clockwise; the top row becomes the left column, read bottom to top. */
function rotate90CounterClockwise(image: RgbImage): RgbImage {
  const { width: w, height: h, data } = image;
  const out = new Uint8Array(data.length);
  // Output is h wide and w tall; output (x, y) is input (w - 1 - y, x).
  for (let y = 0, o = 0; y < w; y++) {
    for (let x = 0; x < h; x++, o += 3) {
      const from = (x * w + w - 1 - y) * 3;
      out[o] = data[from]!;
      out[o + 1] = data[from + 1]!;
      out[o + 2] = data[from + 2]!;
    }
  }
  return { width: h, height: w, data: out };
}

/**
 * The projective map of the unit square onto the quad (0,0)->p0, (1,0)->p1, (1,1)->p2, (0,1)->p3
 * (Heckbert's closed form): the inverse of cv2.getPerspectiveTransform(points, corners) up to the
 * crop's scale, which is what warpPerspective samples through.
 */
function squareToQuad([[x0, y0], [x1, y1], [x2, y2], [x3, y3]]: Quad): (u: number, v: number) => [number, number] {
  const sx = x0 - x1 + x2 - x3;
  const sy = y0 - y1 + y2 - y3;
  let g = 0;
  let h = 0;
  if (sx !== 0 || sy !== 0) {
    const [dx1, dx2, dy1, dy2] = [x1 - x2, x3 - x2, y1 - y2, y3 - y2];
    const den = dx1 * dy2 - dx2 * dy1;
    g = (sx * dy2 - dx2 * sy) / den;
    h = (dx1 * sy - sx * dy1) / den;
  }
  const [a, b, d, e] = [x1 - x0 + g * x1, x3 - x0 + h * x3, y1 - y0 + g * y1, y3 - y0 + h * y3];
  return (u, v) => {
    const w = g * u + h * v + 1;
    return [(a * u + b * v + x0) / w, (d * u + e * v + y0) / w];
  };
}

const roundHalfEvenInt = (x: number): number => {
  const clamped = x < -2147483648 ? -2147483648 : x > 2147483647 ? 2147483647 : x;
  const r = Math.round(clamped);
  return (r - clamped === 0.5 && r % 2 !== 0 ? r - 1 : r) | 0;
};
const clampInt = (i: number, size: number) => (i < 0 ? 0 : i >= size ? size - 1 : i);

let cubicWeights: Int16Array | undefined;

/**
 * OpenCV's INTER_CUBIC remap table for 8-bit images (initInterTab2D): for each of 32 x 32
 * sub-pixel positions the 4 x 4 products of interpolateCubic (a = -0.75, float32) weights, in
 * 1/32768 (rounded half to even, saturated to int16), with the sum forced to 32768 by adjusting one
 * of the taps (2..3, 2..3) as OpenCV does.
 */
function cubicTable(): Int16Array {
  if (cubicWeights) return cubicWeights;
  const f = Math.fround;
  const A = f(-0.75);
  const cubic = (x: number): number[] => {
    const x1 = f(x + 1);
    const c0 = f(f(f(f(f(f(A * x1) - f(5 * A)) * x1) + f(8 * A)) * x1) - f(4 * A));
    const c1 = f(f(f(f(f(f(A + 2) * x) - f(A + 3)) * x) * x) + 1);
    const y = f(1 - x);
    const c2 = f(f(f(f(f(f(A + 2) * y) - f(A + 3)) * y) * y) + 1);
    return [c0, c1, c2, f(f(f(1 - c0) - c1) - c2)];
  };
  const table = new Int16Array(32 * 32 * 16);
  for (let i = 0; i < 32; i++) {
    for (let j = 0; j < 32; j++) {
      const [wy, wx] = [cubic(f(i * f(1 / 32))), cubic(f(j * f(1 / 32)))];
      const t = table.subarray((i * 32 + j) * 16, (i * 32 + j + 1) * 16);
      let sum = 0;
      // saturate_cast<short>: a whole-pixel weight 1.0 becomes 32767, and the fix-up below adds the missing 1 elsewhere.
      for (let k1 = 0; k1 < 4; k1++) for (let k2 = 0; k2 < 4; k2++) sum += t[k1 * 4 + k2] = Math.min(32767, Math.max(-32768, roundHalfEvenInt(f(wy[k1]! * wx[k2]!) * 32768)));
      if (sum !== 32768) {
        // OpenCV scans taps (2..3, 2..3) for the smallest and largest, starting both at (2, 2).
        let [min, max] = [10, 10];
        for (let k1 = 2; k1 < 4; k1++) {
          for (let k2 = 2; k2 < 4; k2++) {
            if (t[k1 * 4 + k2]! < t[min]!) min = k1 * 4 + k2;
            else if (t[k1 * 4 + k2]! > t[max]!) max = k1 * 4 + k2;
          }
        }
        const diff = sum - 32768;
        if (diff < 0) t[max] = t[max]! - diff;
        else t[min] = t[min]! - diff;
      }
    }
  }
  return (cubicWeights = table);
}
