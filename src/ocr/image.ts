/**
 * Image decoding for the OCR pipeline: PNG (fast-png) or JPEG (jpeg-js) bytes in, an 8-bit RGB
 * image out, as PaddleOCR's `cv2.imread` + `alpha_to_color` would see it (in RGB order: the det,
 * cls and rec inputs put it in the BGR order PaddleOCR feeds). Pure: plain typed arrays, no Node
 * APIs, so it runs in workerd and Node alike.
 *
 * - The format is sniffed from the magic bytes (PNG signature, JPEG SOI); anything else is a 400.
 * - The pixel count is read from the header (PNG IHDR, JPEG SOF) and checked against
 *   `limits.maxPixels` before any pixel memory is allocated: more is a 413, so a decompression bomb
 *   costs a header read. A PNG's compressed image data is also inflated once, in bounded steps,
 *   before fast-png sees it: data that inflates past what the header declares (a zlib bomb behind
 *   small dimensions) or short of it (truncated) is a 400 without the memory it would take.
 * - PNG, any bit depth and colour type: 16-bit samples keep their high byte (libpng's strip_16, as
 *   OpenCV reads them); 1/2/4-bit grey is scaled to 0..255; palettes are expanded. Transparency
 *   (an alpha channel, a palette's tRNS alpha, or a tRNS colour key) is composited onto white as
 *   PaddleOCR's `alpha_to_color` does: `trunc(255 * (1 - a) + c * a)` with `a = alpha / 255`.
 * - JPEG: baseline and progressive (what jpeg-js reads), grey, YCbCr, Adobe CMYK/YCCK. The EXIF
 *   orientation is applied, as `cv2.imread` does. jpeg-js's IDCT and chroma upsampling differ
 *   from libjpeg-turbo's, so pixels can differ from OpenCV's by a few levels (not bit-exact).
 *
 * Errors are InferenceErrors: 400 for an unknown format or undecodable/truncated data, 413 beyond
 * `maxPixels`.
 */
import { decode as decodePng, type DecodedPng } from "fast-png";
import { Unzlib } from "fflate";
import jpeg from "jpeg-js";
import { badRequest, InferenceError, tooLarge } from "../protocol/errors";

/** An 8-bit RGB image: `data` is interleaved R, G, B, row-major, `width * height * 3` bytes. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Decodes PNG or JPEG `bytes` to RGB. Throws InferenceError: 400 undecodable, 413 more than `limits.maxPixels` pixels. */
export function decodeImage(bytes: Uint8Array, limits: { maxPixels: number }): RgbImage {
  if (startsWith(bytes, PNG_SIGNATURE)) return decodePngImage(bytes, limits.maxPixels);
  if (startsWith(bytes, JPEG_SOI)) return decodeJpegImage(bytes, limits.maxPixels);
  throw badRequest("unsupported image format: expected PNG or JPEG");
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const JPEG_SOI = [0xff, 0xd8, 0xff];

function startsWith(bytes: Uint8Array, magic: number[]): boolean {
  return bytes.length >= magic.length && magic.every((b, i) => bytes[i] === b);
}

function checkPixels(format: string, width: number, height: number, maxPixels: number): void {
  if (width <= 0 || height <= 0) throw badRequest(`invalid ${format}: its header gives a size of ${width}x${height}`);
  if (width * height > maxPixels) throw tooLarge(`image too large: ${width}x${height} is ${width * height} pixels, the limit is ${maxPixels}`);
}

const u16 = (b: Uint8Array, at: number) => (b[at]! << 8) | b[at + 1]!;
const u32 = (b: Uint8Array, at: number) => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;

// --- PNG ---------------------------------------------------------------------------------------

/** Channels per PNG colour type (0 grey, 2 RGB, 3 palette, 4 grey+alpha, 6 RGBA). */
const PNG_CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

function decodePngImage(bytes: Uint8Array, maxPixels: number): RgbImage {
  if (bytes.length < 33 || String.fromCharCode(...bytes.subarray(12, 16)) !== "IHDR") throw badRequest("invalid PNG: truncated or missing its IHDR header");
  const width = u32(bytes, 16);
  const height = u32(bytes, 20);
  checkPixels("PNG", width, height, maxPixels);
  const channels = PNG_CHANNELS[bytes[25]!];
  const depth = bytes[24]!;
  if (!channels || ![1, 2, 4, 8, 16].includes(depth)) throw badRequest(`invalid PNG: colour type ${bytes[25]} with bit depth ${depth}`);
  checkImageData(bytes, width, height, channels * depth, bytes[28] === 1);
  let png: DecodedPng;
  try {
    png = decodePng(bytes);
  } catch (error) {
    throw badRequest(`invalid PNG: ${error instanceof Error ? error.message : String(error)}`);
  }
  return pngToRgb(png);
}

/**
 * Walks the chunks and inflates the IDAT stream in 4 KiB input steps (each can inflate to at most
 * ~4 MiB, deflate's ratio being at most ~1032), stopping as soon as the output passes the size
 * the header implies: rows of filter byte + packed samples, per Adam7 pass when interlaced.
 */
function checkImageData(bytes: Uint8Array, width: number, height: number, bitsPerPixel: number, interlaced: boolean): void {
  const rowBytes = (w: number) => 1 + Math.ceil((w * bitsPerPixel) / 8);
  let expected = 0;
  if (!interlaced) expected = height * rowBytes(width);
  else {
    for (const [x0, y0, dx, dy] of ADAM7) {
      const w = Math.ceil((width - x0) / dx);
      const h = Math.ceil((height - y0) / dy);
      if (w > 0 && h > 0) expected += h * rowBytes(w);
    }
  }
  let inflated = 0;
  const inflater = new Unzlib((chunk) => {
    inflated += chunk.length;
    if (inflated > expected) throw badRequest("invalid PNG: its image data is longer than its header declares");
  });
  const push = (chunk: Uint8Array, final: boolean) => {
    try {
      inflater.push(chunk, final);
    } catch (error) {
      throw error instanceof InferenceError ? error : badRequest("invalid PNG: its image data does not inflate (corrupt or truncated)");
    }
  };
  for (let at = 8; at + 12 <= bytes.length; ) {
    const length = u32(bytes, at);
    const type = String.fromCharCode(...bytes.subarray(at + 4, at + 8));
    if (at + 12 + length > bytes.length) break;
    if (type === "IDAT") for (let i = 0; i < length; i += 4096) push(bytes.subarray(at + 8 + i, at + 8 + Math.min(length, i + 4096)), false);
    if (type === "IEND") {
      push(new Uint8Array(0), true);
      if (inflated < expected) break;
      return;
    }
    at += 12 + length;
  }
  throw badRequest("invalid PNG: truncated");
}

/** Adam7 passes: first column, first row, column step, row step. */
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

/** fast-png's output (samples packed below 8 bits, Uint16Array at 16) to RGB composited onto white. */
function pngToRgb(png: DecodedPng): RgbImage {
  const { width, height, depth, channels, palette, transparency } = png;
  const n = width * height;
  if (depth === 8 && channels === 3 && !transparency) return { width, height, data: png.data as Uint8Array };
  const raw = depth < 8 ? unpackSamples(png.data as Uint8Array, width, height, depth) : png.data;
  // A tRNS colour key (grey or RGB) marks pixels transparent, compared on the raw samples.
  const keyed = transparency && !palette ? Uint8Array.from({ length: n }, (_, p) => +transparency.every((v, c) => raw[p * channels + c] === v)) : undefined;
  // Samples to 8 bits: the high byte of 16-bit (libpng strip_16); 1/2/4-bit grey scaled to 0..255; palette indices as they are.
  const levels = (1 << depth) - 1;
  const samples = depth === 16 ? Uint8Array.from(raw, (v) => v >> 8) : depth < 8 && !palette ? raw.map((v) => Math.round((v * 255) / levels)) : raw;
  // Palette entries as RGBA; an index past the palette reads as opaque black (libpng zero-fills the 256 entries).
  const rgba = new Uint8Array(256 * 4).map((_, i) => (i % 4 === 3 ? 255 : 0));
  palette?.forEach((entry, i) => rgba.set(entry.length === 4 ? entry : [...entry, 255], i * 4));
  const out = new Uint8Array(n * 3);
  for (let p = 0, s = 0, o = 0; p < n; p++, s += channels, o += 3) {
    let r = samples[s]!;
    let g = r;
    let b = r;
    let a = 255;
    if (palette) {
      const at = r * 4;
      [r, g, b, a] = [rgba[at]!, rgba[at + 1]!, rgba[at + 2]!, rgba[at + 3]!];
    } else if (channels >= 3) {
      g = samples[s + 1]!;
      b = samples[s + 2]!;
    }
    if (channels === 2 || channels === 4) a = samples[s + channels - 1]!;
    if (keyed?.[p]) a = 0;
    if (a !== 255) {
      // PaddleOCR's alpha_to_color onto white, in float64 as numpy computes it, truncated by astype(uint8).
      const f = a / 255;
      const white = 255 * (1 - f);
      r = Math.trunc(white + r * f);
      g = Math.trunc(white + g * f);
      b = Math.trunc(white + b * f);
    }
    out[o] = r;
    out[o + 1] = g;
    out[o + 2] = b;
  }
  return { width, height, data: out };
}

/** 1/2/4-bit single-channel rows (each starting on a byte) to one sample per byte. */
function unpackSamples(packed: Uint8Array, width: number, height: number, depth: number): Uint8Array {
  const out = new Uint8Array(width * height);
  const rowBytes = Math.ceil((width * depth) / 8);
  const mask = (1 << depth) - 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const bit = x * depth;
      out[y * width + x] = (packed[y * rowBytes + (bit >> 3)]! >> (8 - depth - (bit & 7))) & mask;
    }
  }
  return out;
}

// --- JPEG --------------------------------------------------------------------------------------

function decodeJpegImage(bytes: Uint8Array, maxPixels: number): RgbImage {
  const { width, height, orientation } = readJpegHeader(bytes);
  checkPixels("JPEG", width, height, maxPixels);
  let decoded: { width: number; height: number; data: Uint8Array };
  try {
    decoded = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      maxResolutionInMP: maxPixels / 1e6,
      // jpeg-js's own accounting: ~4 bytes per coefficient per component plus its planes and output.
      maxMemoryUsageInMB: Math.ceil((width * height * 32) / 2 ** 20) + 16,
    });
  } catch (error) {
    throw badRequest(`invalid JPEG: ${error instanceof Error ? error.message : String(error)}`);
  }
  return orient({ width: decoded.width, height: decoded.height, data: decoded.data }, orientation);
}

/** SOF markers that carry a frame header (not DHT C4, JPG C8, DAC CC). */
const isSof = (marker: number) => marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;

/** The frame size (first SOF) and EXIF orientation (APP1 before it), from the marker segments. */
function readJpegHeader(bytes: Uint8Array): { width: number; height: number; orientation: number } {
  let orientation = 1;
  let at = 2;
  while (at + 4 <= bytes.length) {
    if (bytes[at] !== 0xff) throw badRequest("invalid JPEG: corrupt marker segments");
    const marker = bytes[at + 1]!;
    if (marker === 0xff) {
      at++; // fill byte
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      at += 2; // markers without a length
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) break; // EOI or SOS before any frame header
    const length = u16(bytes, at + 2);
    if (length < 2 || at + 2 + length > bytes.length) break;
    if (isSof(marker)) {
      if (length < 8) break;
      return { height: u16(bytes, at + 5), width: u16(bytes, at + 7), orientation };
    }
    if (marker === 0xe1) orientation = exifOrientation(bytes.subarray(at + 4, at + 2 + length)) ?? orientation;
    at += 2 + length;
  }
  throw badRequest("invalid JPEG: truncated, or no frame header");
}

/** The Orientation tag (0x0112) of IFD0 in an APP1 "Exif" payload, when present and valid (1..8). */
function exifOrientation(app1: Uint8Array): number | undefined {
  if (app1.length < 14 || String.fromCharCode(...app1.subarray(0, 4)) !== "Exif") return undefined;
  const tiff = app1.subarray(6);
  const little = tiff[0] === 0x49; // "II" little-endian, "MM" big-endian
  const view = new DataView(tiff.buffer, tiff.byteOffset, tiff.byteLength);
  const ifd = view.getUint32(4, little);
  if (ifd + 2 > tiff.length) return undefined;
  const count = view.getUint16(ifd, little);
  for (let i = 0; i < count && ifd + 2 + i * 12 + 12 <= tiff.length; i++) {
    const entry = ifd + 2 + i * 12;
    if (view.getUint16(entry, little) !== 0x0112) continue;
    const value = view.getUint16(entry + 8, little);
    return value >= 1 && value <= 8 ? value : undefined;
  }
  return undefined;
}

/**
 * Applies an EXIF orientation (1..8) so the image reads upright: 2 mirror, 3 rotate 180, 4 flip,
 * 5 transpose, 6 rotate 90 clockwise, 7 transverse, 8 rotate 90 counter-clockwise.
 */
function orient(image: RgbImage, orientation: number): RgbImage {
  const { width: w, height: h, data } = image;
  // The source pixel shown at (x, y) is (ax * x + bx * y + cx, ay * x + by * y + cy).
  const map: Record<number, [number, number, number, number, number, number]> = {
    2: [-1, 0, w - 1, 0, 1, 0],
    3: [-1, 0, w - 1, 0, -1, h - 1],
    4: [1, 0, 0, 0, -1, h - 1],
    5: [0, 1, 0, 1, 0, 0],
    6: [0, 1, 0, -1, 0, h - 1],
    7: [0, -1, w - 1, -1, 0, h - 1],
    8: [0, -1, w - 1, 1, 0, 0],
  };
  const m = map[orientation];
  if (!m) return image;
  const [ax, bx, cx, ay, by, cy] = m;
  const outW = orientation >= 5 ? h : w;
  const outH = orientation >= 5 ? w : h;
  const out = new Uint8Array(data.length);
  for (let y = 0, to = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++, to += 3) {
      const from = ((ay * x + by * y + cy) * w + ax * x + bx * y + cx) * 3;
      out[to] = data[from]!;
      out[to + 1] = data[from + 1]!;
      out[to + 2] = data[from + 2]!;
    }
  }
  return { width: outW, height: outH, data: out };
}
