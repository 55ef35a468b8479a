/**
 * decodeImage (src/ocr/image.ts): PNGs of every colour type written by sharp (libvips/libspng) or
 * fast-png's encoder from known pixels, JPEGs written by sharp (libjpeg-turbo); the expected pixels
 * come from the known input or from sharp's own decoder, never from the code under test. Errors:
 * garbage and truncated data are 400s, a header claiming too many pixels a 413 before any decoding.
 */
import { encode as encodePng } from "fast-png";
import { zlibSync } from "fflate";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { decodeImage, type RgbImage } from "../../../src/ocr/image";

const limits = { maxPixels: 1_000_000 };
const W = 23;
const H = 17;

/** Deterministic pixels with `channels` samples each. */
function pixels(channels: number, seed = 1): Uint8Array {
  return Uint8Array.from({ length: W * H * channels }, (_, i) => (i * (37 + seed) + ((i * i) >> 3) + seed * 11) & 255);
}

const fromRaw = (data: Uint8Array, channels: 1 | 2 | 3 | 4, width = W, height = H) => sharp(data, { raw: { width, height, channels } });

/** sharp's decode of `bytes` as RGBA (alpha 255 where there is none). */
async function sharpRgba(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await sharp(bytes).ensureAlpha().toColourspace("srgb").raw().toBuffer());
}

/** PaddleOCR's alpha_to_color onto white: trunc(255 (1 - a) + c a), a = alpha / 255. */
function onWhite(rgba: Uint8Array): Uint8Array {
  const out = new Uint8Array((rgba.length / 4) * 3);
  for (let p = 0; p < rgba.length / 4; p++) {
    const a = rgba[p * 4 + 3]! / 255;
    for (let c = 0; c < 3; c++) out[p * 3 + c] = Math.trunc(255 * (1 - a) + rgba[p * 4 + c]! * a);
  }
  return out;
}

const expectImage = (image: RgbImage, width: number, height: number, data: Uint8Array) => {
  expect([image.width, image.height]).toEqual([width, height]);
  expect(Buffer.from(image.data).equals(Buffer.from(data))).toBe(true);
};

describe("decodeImage: PNG", () => {
  it("decodes 8-bit RGB exactly, interlaced (Adam7) or not", async () => {
    const rgb = pixels(3);
    for (const progressive of [false, true]) {
      const png = new Uint8Array(await fromRaw(rgb, 3).png({ progressive }).toBuffer());
      expect(png[28]).toBe(progressive ? 1 : 0); // IHDR interlace method
      expectImage(decodeImage(png, limits), W, H, rgb);
    }
  });

  it("composites RGBA onto white as PaddleOCR's alpha_to_color", async () => {
    const rgba = pixels(4);
    for (let p = 0; p < W * H; p += 7) rgba[p * 4 + 3] = 0; // some fully transparent
    for (let p = 3; p < W * H; p += 11) rgba[p * 4 + 3] = 255; // some opaque
    const png = new Uint8Array(await fromRaw(rgba, 4).png().toBuffer());
    expect(png[25]).toBe(6); // colour type RGBA
    const decoded = decodeImage(png, limits);
    expectImage(decoded, W, H, onWhite(await sharpRgba(png)));
    expect([...decoded.data.subarray(0, 3)]).toEqual([255, 255, 255]); // pixel 0 is fully transparent
  });

  it("replicates grey (8-bit, grey + alpha, and 1/2/4-bit scaled to 0..255)", async () => {
    const grey = pixels(1);
    const png = new Uint8Array(await fromRaw(grey, 1).toColourspace("b-w").png().toBuffer());
    expect(png[25]).toBe(0);
    expectImage(decodeImage(png, limits), W, H, Uint8Array.from(Array.from(grey).flatMap((v) => [v, v, v])));

    const greyAlpha = pixels(2);
    const pngGa = encodePng({ width: W, height: H, data: greyAlpha, channels: 2, depth: 8 });
    expect(pngGa[25]).toBe(4);
    expectImage(decodeImage(pngGa, limits), W, H, onWhite(await sharpRgba(pngGa)));

    for (const depth of [1, 2, 4] as const) {
      const levels = (1 << depth) - 1;
      const values = Uint8Array.from({ length: W * H }, (_, i) => (i * 7 + (i >> 4)) % (levels + 1));
      const rowBytes = Math.ceil((W * depth) / 8);
      const packed = new Uint8Array(rowBytes * H);
      values.forEach((v, i) => {
        const [x, y] = [i % W, Math.floor(i / W)];
        packed[y * rowBytes + ((x * depth) >> 3)]! |= v << (8 - depth - ((x * depth) & 7));
      });
      const lowBit = encodePng({ width: W, height: H, data: packed, channels: 1, depth });
      expect(lowBit[24]).toBe(depth);
      const expected = Uint8Array.from([...values].flatMap((v) => Array<number>(3).fill(Math.round((v * 255) / levels))));
      expectImage(decodeImage(lowBit, limits), W, H, expected);
      expectImage(decodeImage(lowBit, limits), W, H, (await sharp(lowBit).toColourspace("srgb").raw().toBuffer()) as unknown as Uint8Array);
    }
  });

  it("expands palettes, with their tRNS alpha composited, at 8 bits and fewer per index", async () => {
    // Colours with alpha 255, 128 and 0.
    const colours = Array.from({ length: 40 }, (_, k) => [(k * 53) & 255, (k * 97 + 40) & 255, (k * 29 + 200) & 255, [255, 128, 0][k % 3]!]);
    const indices = Uint8Array.from({ length: W * H }, (_, i) => (i * 5 + (i >> 3)) % 40);
    const eightBit = encodePng({ width: W, height: H, data: indices, channels: 1, depth: 8, palette: colours });
    // sharp, from RGBA, picks the smallest index depth for 4 colours.
    const fourColours = Uint8Array.from(Array.from(indices, (k) => colours[k % 4]!).flat());
    const lowBit = new Uint8Array(await fromRaw(fourColours, 4).png({ palette: true, colours: 4, dither: 0 }).toBuffer());
    for (const [png, colourOf] of [[eightBit, (k: number) => k], [lowBit, (k: number) => k % 4]] as const) {
      expect(png[25]).toBe(3); // indexed colour
      expect(Buffer.from(png).includes("tRNS")).toBe(true);
      const decoded = decodeImage(png, limits);
      expectImage(decoded, W, H, onWhite(await sharpRgba(png)));
      const clear = Array.from(indices).findIndex((k) => colours[colourOf(k)]![3] === 0);
      expect([...decoded.data.subarray(clear * 3, clear * 3 + 3)]).toEqual([255, 255, 255]);
    }
    expect([eightBit[24], lowBit[24]]).toEqual([8, 2]);
  });

  it("keeps the high byte of 16-bit samples (libpng strip_16, as OpenCV reads them), alpha included", async () => {
    const rgba16 = Uint16Array.from({ length: W * H * 4 }, (_, i) => (i * 40503 + 12345) & 0xffff);
    const png = encodePng({ width: W, height: H, data: rgba16, channels: 4, depth: 16 });
    expect(png[24]).toBe(16);
    // sharp reads back the same 16-bit samples (the encoding is as intended).
    expect([...new Uint16Array(new Uint8Array(await sharp(png).toColourspace("rgb16").raw({ depth: "ushort" }).toBuffer()).buffer)]).toEqual([...rgba16]);
    expectImage(decodeImage(png, limits), W, H, onWhite(Uint8Array.from(rgba16, (v) => v >> 8)));
  });

  it("treats a tRNS colour key as transparent", () => {
    const rgb = pixels(3);
    rgb.set([1, 2, 3], 0);
    const png = encodePng({ width: W, height: H, data: rgb, channels: 3, depth: 8 });
    // Insert a tRNS chunk (key 1, 2, 3) after IHDR: 8 signature + 25 IHDR bytes.
    const trns = chunk("tRNS", Uint8Array.of(0, 1, 0, 2, 0, 3));
    const keyed = concat(png.subarray(0, 33), trns, png.subarray(33));
    const expected = rgb.slice();
    expected.set([255, 255, 255], 0);
    expectImage(decodeImage(keyed, limits), W, H, expected);
  });
});

describe("decodeImage: JPEG", () => {
  // A smooth image, where baseline JPEG at high quality stays close to the original.
  const smooth = Uint8Array.from({ length: 64 * 48 * 3 }, (_, i) => {
    const [p, c] = [Math.floor(i / 3), i % 3];
    const [x, y] = [p % 64, Math.floor(p / 64)];
    return Math.round(128 + 90 * Math.sin(x / 9 + c) * Math.cos(y / 11 - c));
  });

  /**
   * Tolerance: jpeg-js and libjpeg-turbo differ in IDCT rounding, in jpeg-js truncating (not
   * rounding) YCbCr -> RGB, and in chroma upsampling (jpeg-js nearest, libjpeg-turbo "fancy"
   * triangular); with 4:4:4 sampling (no upsampling) the two decoders stay within 3 levels of each
   * other, and quality-95 compression within 6 of the original, measured over this image.
   */
  it("decodes baseline and progressive 4:4:4 JPEG within a few levels of libjpeg-turbo and the original", async () => {
    for (const progressive of [false, true]) {
      const jpeg = new Uint8Array(await fromRaw(smooth, 3, 64, 48).jpeg({ quality: 95, chromaSubsampling: "4:4:4", progressive }).toBuffer());
      const decoded = decodeImage(jpeg, limits);
      expect([decoded.width, decoded.height]).toEqual([64, 48]);
      const turbo = new Uint8Array(await sharp(jpeg).raw().toBuffer());
      expect(maxDiff(decoded.data, turbo)).toBeLessThanOrEqual(3);
      expect(maxDiff(decoded.data, smooth)).toBeLessThanOrEqual(6);
      expect(meanDiff(decoded.data, turbo)).toBeLessThan(1);
    }
  });

  it("decodes 4:2:0 and greyscale JPEG", async () => {
    const jpeg = new Uint8Array(await fromRaw(smooth, 3, 64, 48).jpeg({ quality: 90 }).toBuffer());
    const decoded = decodeImage(jpeg, limits);
    // Chroma upsampling differs (nearest vs triangular): larger at colour edges, small on average.
    expect(meanDiff(decoded.data, new Uint8Array(await sharp(jpeg).raw().toBuffer()))).toBeLessThan(2);

    const grey = new Uint8Array(await fromRaw(smooth, 3, 64, 48).greyscale().jpeg({ quality: 95 }).toBuffer());
    const g = decodeImage(grey, limits);
    for (let p = 0; p < 64 * 48; p++) expect(g.data[p * 3]).toBe(g.data[p * 3 + 2]);
    expect(maxDiff(g.data, new Uint8Array(await sharp(grey).toColourspace("srgb").raw().toBuffer()))).toBeLessThanOrEqual(2);
  });

  it("applies the EXIF orientation, as cv2.imread does", async () => {
    for (const orientation of [3, 6, 8, 5]) {
      const jpeg = new Uint8Array(await fromRaw(smooth, 3, 64, 48).jpeg({ quality: 95, chromaSubsampling: "4:4:4" }).withMetadata({ orientation }).toBuffer());
      const decoded = decodeImage(jpeg, limits);
      const upright = await sharp(jpeg).rotate().raw().toBuffer({ resolveWithObject: true });
      expect([decoded.width, decoded.height]).toEqual([upright.info.width, upright.info.height]);
      expect([decoded.width, decoded.height]).toEqual(orientation >= 5 ? [48, 64] : [64, 48]);
      expect(maxDiff(decoded.data, new Uint8Array(upright.data))).toBeLessThanOrEqual(3);
    }
  });
});

describe("decodeImage: errors", () => {
  const status = (bytes: Uint8Array, maxPixels = limits.maxPixels) => {
    try {
      decodeImage(bytes, { maxPixels });
      return 200;
    } catch (error) {
      return (error as { status?: number }).status;
    }
  };

  it("refuses unknown formats, garbage and truncated data with 400", async () => {
    expect(status(new Uint8Array(0))).toBe(400);
    expect(status(new TextEncoder().encode("GIF89a........"))).toBe(400);
    expect(status(Uint8Array.from({ length: 500 }, (_, i) => (i * 31) & 255))).toBe(400);
    const png = new Uint8Array(await fromRaw(pixels(3), 3).png().toBuffer());
    const jpeg = new Uint8Array(await fromRaw(pixels(3), 3).jpeg().toBuffer());
    for (const cut of [0.1, 0.5, 0.9]) {
      expect(status(png.subarray(0, Math.floor(png.length * cut)))).toBe(400);
      expect(status(jpeg.subarray(0, Math.floor(jpeg.length * cut)))).toBe(400);
    }
    expect(status(png.subarray(0, png.length - 12))).toBe(400); // no IEND
    expect(status(jpeg.subarray(0, jpeg.length - 2))).toBe(400); // no EOI
    // A corrupt zlib header on the image data.
    const corrupt = png.slice();
    corrupt[Buffer.from(png).indexOf("IDAT") + 4] = 0xff;
    expect(status(corrupt)).toBe(400);
    expect(() => decodeImage(png.subarray(0, 20), limits)).toThrow(/invalid PNG/);
    expect(() => decodeImage(new TextEncoder().encode("BM nonsense"), limits)).toThrow(/expected PNG or JPEG/);
  });

  it("answers 413 from the header alone for more pixels than allowed (PNG IHDR, JPEG SOF)", () => {
    // A PNG claiming 100000 x 100000 with almost no image data: refused before anything is inflated.
    const ihdr = new Uint8Array(13);
    new DataView(ihdr.buffer).setUint32(0, 100_000);
    new DataView(ihdr.buffer).setUint32(4, 100_000);
    ihdr.set([8, 2, 0, 0, 0], 8);
    const png = concat(Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a), chunk("IHDR", ihdr), chunk("IDAT", zlibSync(new Uint8Array(10))), chunk("IEND", new Uint8Array(0)));
    const started = performance.now();
    expect(() => decodeImage(png, limits)).toThrow(expect.objectContaining({ status: 413, message: expect.stringMatching(/100000x100000/) }));
    expect(performance.now() - started).toBeLessThan(50);
    // Exactly at the limit is fine as far as the size goes (the data is then too short: 400).
    expect(status(png, 100_000 * 100_000)).toBe(400);

    // A baseline JPEG frame header claiming 60000 x 60000.
    const sof = Uint8Array.of(0xff, 0xc0, 0, 17, 8, 0xea, 0x60, 0xea, 0x60, 3, 1, 0x11, 0, 2, 0x11, 1, 3, 0x11, 1);
    const jpeg = concat(Uint8Array.of(0xff, 0xd8), sof, Uint8Array.of(0xff, 0xd9));
    expect(() => decodeImage(jpeg, limits)).toThrow(expect.objectContaining({ status: 413 }));
  });

  it("refuses a PNG whose image data inflates past its declared size without inflating it all (400)", () => {
    // 1 x 1 RGB needs 4 bytes; this IDAT inflates to 16 MiB.
    const ihdr = Uint8Array.of(0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0);
    const bomb = zlibSync(new Uint8Array(16 * 2 ** 20), { level: 9 });
    const png = concat(Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a), chunk("IHDR", ihdr), chunk("IDAT", bomb), chunk("IEND", new Uint8Array(0)));
    const started = performance.now();
    expect(() => decodeImage(png, limits)).toThrow(expect.objectContaining({ status: 400, message: expect.stringMatching(/longer than its header/) }));
    expect(performance.now() - started).toBeLessThan(150); // inflating all 16 MiB takes longer
  });
});

function maxDiff(a: Uint8Array, b: Uint8Array): number {
  expect(a.length).toBe(b.length);
  return a.reduce((max, v, i) => Math.max(max, Math.abs(v - b[i]!)), 0);
}

function meanDiff(a: Uint8Array, b: Uint8Array): number {
  return a.reduce((sum, v, i) => sum + Math.abs(v - b[i]!), 0) / a.length;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  parts.reduce((at, p) => (out.set(p, at), at + p.length), 0);
  return out;
}

/** A PNG chunk (CRC left zero: neither decoder checks it). */
function chunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  new DataView(out.buffer).setUint32(0, data.length);
  out.set([...type].map((c) => c.charCodeAt(0)), 4);
  out.set(data, 8);
  return out;
}
