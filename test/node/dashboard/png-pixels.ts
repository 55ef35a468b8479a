/**
 * Just enough of a PNG decoder for the dashboard's screenshot check: 8-bit RGB or RGBA,
 * non-interlaced (what Chromium writes), inflated with node:zlib and unfiltered row by row. It
 * answers the image's size and how many distinct colours it has, so a test can tell a drawn page
 * from a blank one without an image library.
 */
import { inflateSync } from "node:zlib";

/** What the check needs of an image. */
export interface PngSummary {
  width: number;
  height: number;
  distinctColours: number;
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** The Paeth predictor of the PNG specification. */
function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Undoes the filter of one row in place, given the previous (unfiltered) row. */
function unfilter(filter: number, row: Buffer, previous: Buffer, bpp: number): void {
  for (let i = 0; i < row.length; i++) {
    const left = i >= bpp ? row[i - bpp]! : 0;
    const up = previous[i]!;
    const upLeft = i >= bpp ? previous[i - bpp]! : 0;
    const predictor = [0, left, up, (left + up) >> 1, paeth(left, up, upLeft)][filter];
    if (predictor === undefined) throw new Error(`PNG: unknown filter ${filter}`);
    row[i] = (row[i]! + predictor) & 0xff;
  }
}

/** The size and distinct colours of an 8-bit RGB(A), non-interlaced PNG. */
export function summarisePng(png: Buffer): PngSummary {
  if (!png.subarray(0, 8).equals(SIGNATURE)) throw new Error("not a PNG");
  let width = 0;
  let height = 0;
  let bpp = 0;
  const data: Buffer[] = [];
  for (let at = 8; at < png.length; ) {
    const length = png.readUInt32BE(at);
    const type = png.toString("latin1", at + 4, at + 8);
    const body = png.subarray(at + 8, at + 8 + length);
    if (type === "IHDR") {
      [width, height] = [body.readUInt32BE(0), body.readUInt32BE(4)];
      const [depth, colourType, interlace] = [body[8], body[9], body[12]];
      if (depth !== 8 || (colourType !== 2 && colourType !== 6) || interlace !== 0) throw new Error(`PNG: unsupported depth ${depth}, colour type ${colourType}, interlace ${interlace}`);
      bpp = colourType === 6 ? 4 : 3;
    } else if (type === "IDAT") data.push(body);
    at += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(data));
  const stride = width * bpp;
  const colours = new Set<number>();
  let previous = Buffer.alloc(stride);
  for (let y = 0; y < height; y++) {
    const row = Buffer.from(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
    unfilter(raw[y * (stride + 1)]!, row, previous, bpp);
    for (let x = 0; x < stride; x += bpp) colours.add(row.readUIntBE(x, 3));
    previous = row;
  }
  return { width, height, distinctColours: colours.size };
}
