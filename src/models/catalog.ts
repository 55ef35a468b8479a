/**
 * The models this Worker serves: manifests and profiles bundled at build time; weights are not
 * (they are static assets, loaded on first use: src/edge/weights.ts). Manifests are validated when
 * the module loads, so a bad one stops the Worker from starting with a message naming the file and
 * field. The profile's fitted service times seed the schedulers' estimates. To add a model, add its
 * folder under models/ and one entry here.
 */
import type { ServiceLine } from "../scheduler/service-estimate";
import { parseManifest, type ModelManifest } from "./manifest";
import { profileFootprint, profileOverhead, profileServiceLine, type ModelFootprint, type PathCpu } from "./profile";
import clsManifest from "../../models/ppocr-cls/manifest.json";
import clsProfile from "../../models/ppocr-cls/profile.json";
import recManifest from "../../models/ppocr-rec/manifest.json";
import recProfile from "../../models/ppocr-rec/profile.json";
import detManifest from "../../models/ppocr-det/manifest.json";
import detProfile from "../../models/ppocr-det/profile.json";
import vadManifest from "../../models/silero-vad/manifest.json";
import vadProfile from "../../models/silero-vad/profile.json";

/** A served model: its validated manifest, where its weights may run and its measured service time per runtime. */
export interface CatalogEntry {
  manifest: ModelManifest;
  /** Kept on the origin by its manifest (placement "origin", pinned): its weights are not deployed to the edge, so no override may move it there. */
  originOnly: boolean;
  service: { edge?: ServiceLine; origin?: ServiceLine };
  /** Per-request latency outside the batch on the direct path beyond its CPU (HTTP, the proxy), ms: the planner's overheadMs. */
  overheadMs: number;
  /** What the buffer hop (Worker -> Durable Object and back) adds to a buffered request beyond its CPU, ms. */
  hopMs: number;
  /** What requests and batches cost the thread that runs the batches beyond the kernel, per edge placement, and a stream's chunks and steps their shard (profile.ts). */
  pathCpu: Record<"edge" | "direct" | "stream", PathCpu>;
  /** Memory and output bytes measured in workerd (profile.json `memory`): the requests' platform limits (src/edge/limits.ts). */
  footprint?: ModelFootprint;
}

const entries: Array<[string, unknown, unknown]> = [
  ["models/ppocr-cls/manifest.json", clsManifest, clsProfile],
  ["models/ppocr-rec/manifest.json", recManifest, recProfile],
  ["models/ppocr-det/manifest.json", detManifest, detProfile],
  ["models/silero-vad/manifest.json", vadManifest, vadProfile],
];

/** Whether a manifest keeps its model on the origin: the install step (src/cli/link-models.mjs) leaves such weights out of the edge's assets. */
export function isOriginOnly(manifest: Pick<ModelManifest, "placement" | "pinned">): boolean {
  return manifest.placement === "origin" && manifest.pinned.includes("placement");
}

/** Served models by name. */
export const CATALOG: ReadonlyMap<string, CatalogEntry> = new Map(
  entries.map(([file, json, profile]) => {
    const manifest = parseManifest(json, file);
    const footprint = profileFootprint(profile);
    return [manifest.name, { manifest, originOnly: isOriginOnly(manifest), service: { edge: profileServiceLine(profile, "edge"), origin: profileServiceLine(profile, "origin") }, ...profileOverhead(profile), ...(footprint && { footprint }) }];
  }),
);
