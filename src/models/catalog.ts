/**
 * The models this Worker serves: manifests and weights bundled at build time (wrangler's Data rule
 * turns `.onnx` imports into ArrayBuffers). Manifests are validated when the module loads, so a bad
 * one stops the Worker from starting with a message naming the file and field. The profile's fitted
 * service times seed the schedulers' estimates. To add a model, add its folder under models/ and one
 * entry here.
 */
import type { ServiceLine } from "../scheduler/service-estimate";
import { parseManifest, type ModelManifest } from "./manifest";
import { profileOverhead, profileServiceLine } from "./profile";
import clsManifest from "../../models/ppocr-cls/manifest.json";
import clsWeights from "../../models/ppocr-cls/model.onnx";
import clsProfile from "../../models/ppocr-cls/profile.json";
import recManifest from "../../models/ppocr-rec/manifest.json";
import recWeights from "../../models/ppocr-rec/model.onnx";
import recProfile from "../../models/ppocr-rec/profile.json";
import detManifest from "../../models/ppocr-det/manifest.json";
import detWeights from "../../models/ppocr-det/model.onnx";
import detProfile from "../../models/ppocr-det/profile.json";
import vadManifest from "../../models/silero-vad/manifest.json";
import vadWeights from "../../models/silero-vad/model.onnx";
import vadProfile from "../../models/silero-vad/profile.json";

/** A served model: its validated manifest, its ONNX bytes and its measured service time per runtime. */
export interface CatalogEntry {
  manifest: ModelManifest;
  weights: ArrayBuffer;
  service: { edge?: ServiceLine; origin?: ServiceLine };
  /** Per-request latency outside the batch on the direct path (Worker, parsing), ms: the planner's overheadMs. */
  overheadMs: number;
  /** What the buffer hop (Worker -> Durable Object and back) adds to a buffered request, ms. */
  hopMs: number;
}

const entries: Array<[string, unknown, ArrayBuffer, unknown]> = [
  ["models/ppocr-cls/manifest.json", clsManifest, clsWeights, clsProfile],
  ["models/ppocr-rec/manifest.json", recManifest, recWeights, recProfile],
  ["models/ppocr-det/manifest.json", detManifest, detWeights, detProfile],
  ["models/silero-vad/manifest.json", vadManifest, vadWeights, vadProfile],
];

/** Served models by name. */
export const CATALOG: ReadonlyMap<string, CatalogEntry> = new Map(
  entries.map(([file, json, weights, profile]) => {
    const manifest = parseManifest(json, file);
    return [manifest.name, { manifest, weights, service: { edge: profileServiceLine(profile, "edge"), origin: profileServiceLine(profile, "origin") }, ...profileOverhead(profile) }];
  }),
);
