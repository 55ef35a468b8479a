/**
 * The models this Worker serves: manifests and weights bundled at build time (wrangler's Data rule
 * turns `.onnx` imports into ArrayBuffers). Manifests are validated when the module loads, so a bad
 * one stops the Worker from starting with a message naming the file and field. To add a model, add
 * its folder under models/ and one entry here.
 */
import { parseManifest, type ModelManifest } from "./manifest";
import clsManifest from "../../models/ppocr-cls/manifest.json";
import clsWeights from "../../models/ppocr-cls/model.onnx";
import recManifest from "../../models/ppocr-rec/manifest.json";
import recWeights from "../../models/ppocr-rec/model.onnx";
import detManifest from "../../models/ppocr-det/manifest.json";
import detWeights from "../../models/ppocr-det/model.onnx";
import vadManifest from "../../models/silero-vad/manifest.json";
import vadWeights from "../../models/silero-vad/model.onnx";

/** A served model: its validated manifest and its ONNX bytes. */
export interface CatalogEntry {
  manifest: ModelManifest;
  weights: ArrayBuffer;
}

const entries: Array<[string, unknown, ArrayBuffer]> = [
  ["models/ppocr-cls/manifest.json", clsManifest, clsWeights],
  ["models/ppocr-rec/manifest.json", recManifest, recWeights],
  ["models/ppocr-det/manifest.json", detManifest, detWeights],
  ["models/silero-vad/manifest.json", vadManifest, vadWeights],
];

/** Served models by name. */
export const CATALOG: ReadonlyMap<string, CatalogEntry> = new Map(
  entries.map(([file, json, weights]) => {
    const manifest = parseManifest(json, file);
    return [manifest.name, { manifest, weights }];
  }),
);
