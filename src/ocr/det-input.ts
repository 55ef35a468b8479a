/**
 * The PP-OCRv4 detector's input, as PaddleOCR's tools/infer/predict_det.py prepares it:
 * DetResizeForTest (limit_type "max", limit_side_len 960 by default) -> ToCHWImage, as UINT8
 * pixels; NormalizeImage (scale 1/255, mean [0.485, 0.456, 0.406], std [0.229, 0.224, 0.225])
 * runs next to the session, where ppocr-det's manifest declares it (`fromUint8`,
 * src/models/uint8-inputs.ts), so the tensor crosses the hop in a quarter of the bytes. Also the
 * `cv2.resize` (INTER_LINEAR) the det, cls and rec preprocessing share. Pure.
 *
 * Channel order: PaddleOCR reads images with cv2 (BGR) and NormalizeImage applies mean[0]/std[0]
 * to channel 0, i.e. to blue; the det model was trained that way (its configs decode BGR). So plane
 * 0 of the tensor is B (normalised with mean 0.485/std 0.229), plane 1 G (0.456/0.224), plane 2 R
 * (0.406/0.225). The peer JS port (@gutenye/ocr-common) also feeds B, G, R, but without mean/std
 * (plain v / 255); we follow PaddleOCR.
 */
import type { RgbImage } from "./image";

/** PaddleOCR's det_limit_side_len default (utility.py): the longer side is scaled down to at most this. */
export const DET_LIMIT_SIDE_LEN = 960;

/** A det input: `data` is [1, 3, height, width] UINT8 pixels (B, G, R planes); ratios are input size / image size. */
export interface DetInput {
  data: Uint8Array;
  height: number;
  width: number;
  ratioH: number;
  ratioW: number;
}

/**
 * DetResizeForTest type 0, limit_type "max": an image whose height + width < 64 is first padded
 * with black to at least 32x32 (bottom/right); if its longer side exceeds `limitSideLen` it is
 * scaled so that side is `limitSideLen`; each side is then truncated to an integer and rounded to
 * the nearest multiple of 32 (Python's round: halves to even), at least 32, and the image resized
 * to that (bilinear). Laid out CHW in B, G, R order.
 */
export function detInput(image: RgbImage, limitSideLen = DET_LIMIT_SIDE_LEN): DetInput {
  const padded = image.width + image.height < 64 ? padToAtLeast32(image) : image;
  const { width: w, height: h } = padded;
  const ratio = Math.max(h, w) > limitSideLen ? limitSideLen / (h > w ? h : w) : 1;
  const height = Math.max(roundHalfEven(Math.trunc(h * ratio) / 32) * 32, 32);
  const width = Math.max(roundHalfEven(Math.trunc(w * ratio) / 32) * 32, 32);
  const resized = width === w && height === h ? padded : resizeBilinear(padded, width, height);
  const plane = width * height;
  const data = new Uint8Array(3 * plane);
  const [green, red] = [data.subarray(plane), data.subarray(2 * plane)];
  const src = resized.data;
  for (let i = 0, s = 0; i < plane; i++, s += 3) {
    data[i] = src[s + 2]!; // B
    green[i] = src[s + 1]!;
    red[i] = src[s]!;
  }
  return { data, height, width, ratioH: height / h, ratioW: width / w };
}

function padToAtLeast32(image: RgbImage): RgbImage {
  const width = Math.max(32, image.width);
  const height = Math.max(32, image.height);
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < image.height; y++) data.set(image.data.subarray(y * image.width * 3, (y + 1) * image.width * 3), y * width * 3);
  return { width, height, data };
}

/** Python's round() / numpy.round: to nearest, halves to even. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * `cv2.resize(src, (width, height))` with its default INTER_LINEAR, as OpenCV computes it for
 * 8-bit images: source coordinate (d + 0.5) * src / dst - 0.5 (half-pixel centres), no
 * anti-aliasing when shrinking, edge pixels replicated; weights in 11-bit fixed point, the
 * horizontal pass in integers and the vertical pass rounded as OpenCV's SIMD path does (bit-exact
 * with OpenCV 4.9 (opencv.js) at the sizes we compared; a native build's scalar tail, the last few
 * bytes of a row, can round 1 level differently).
 */
export function resizeBilinear(src: RgbImage, width: number, height: number): RgbImage {
  if (width === src.width && height === src.height) return { width, height, data: src.data.slice() };
  const xs = linearTaps(src.width, width, true);
  const ys = linearTaps(src.height, height, false);
  // Source rows after the horizontal pass (values x 2048), two kept: consecutive output rows share them.
  const rows = [0, 1].map(() => ({ y: -1, data: new Int32Array(width * 3) }));
  const rowOf = (y: number, keep?: Int32Array): Int32Array => {
    const hit = rows.find((row) => row.y === y);
    if (hit) return hit.data;
    const row = rows[0]!.data === keep ? rows[1]! : rows[0]!;
    const line = y * src.width * 3;
    for (let x = 0, o = 0; x < width; x++) {
      const a = line + xs.index[x]! * 3;
      const b = line + Math.min(xs.index[x]! + 1, src.width - 1) * 3;
      const w0 = xs.w0[x]!;
      const w1 = xs.w1[x]!;
      for (let c = 0; c < 3; c++, o++) row.data[o] = src.data[a + c]! * w0 + src.data[b + c]! * w1;
    }
    row.y = y;
    return row.data;
  };
  const out = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const sy = ys.index[y]!;
    const s0 = rowOf(Math.min(Math.max(sy, 0), src.height - 1));
    const s1 = rowOf(Math.min(Math.max(sy + 1, 0), src.height - 1), s0);
    const b0 = ys.w0[y]!;
    const b1 = ys.w1[y]!;
    for (let i = 0, o = y * width * 3; i < width * 3; i++, o++) {
      const v = ((((s0[i]! >> 4) * b0) >> 16) + (((s1[i]! >> 4) * b1) >> 16) + 2) >> 2;
      out[o] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return { width, height, data: out };
}

/**
 * OpenCV's INTER_LINEAR taps along one axis: first source index and the two weights (x 2048,
 * rounded half to even from float32). Horizontally the taps are clamped inside the image (weight
 * 2048 on the edge pixel); vertically only the rows are clamped, at use.
 */
function linearTaps(srcSize: number, dstSize: number, clamp: boolean) {
  const scale = 1 / (dstSize / srcSize);
  const index = new Int32Array(dstSize);
  const w0 = new Int32Array(dstSize);
  const w1 = new Int32Array(dstSize);
  for (let d = 0; d < dstSize; d++) {
    let f = Math.fround((d + 0.5) * scale - 0.5);
    let s = Math.floor(f);
    f = Math.fround(f - s);
    if (clamp && s < 0) (s = 0), (f = 0);
    if (clamp && s >= srcSize - 1) (s = srcSize - 1), (f = 0);
    index[d] = s;
    w0[d] = roundHalfEven(Math.fround(1 - f) * 2048);
    w1[d] = roundHalfEven(f * 2048);
  }
  return { index, w0, w1 };
}
