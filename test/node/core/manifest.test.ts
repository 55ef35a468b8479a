import { existsSync, readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ConfigError, parseManifest } from "../../../src/models/manifest";
import { parsePipelineManifest, PIPELINES } from "../../../src/ocr/pipeline-manifest";

const read = (name: string) => JSON.parse(readFileSync(`models/${name}/manifest.json`, "utf8"));

describe("parseManifest", () => {
  it("accepts every shipped manifest", () => {
    const names = readdirSync("models").filter((name) => existsSync(`models/${name}/manifest.json`));
    expect(names.sort()).toEqual(["ppocr-cls", "ppocr-det", "ppocr-rec", "silero-vad"]);
    for (const name of names) expect(parseManifest(read(name), `models/${name}/manifest.json`).name).toBe(name);
  });

  it("names the file and the field of a bad manifest", () => {
    const bad = read("ppocr-cls");
    bad.batching.maxBatch = 0;
    expect(() => parseManifest(bad, "models/ppocr-cls/manifest.json")).toThrow(/^models\/ppocr-cls\/manifest\.json: batching\.maxBatch: /);
    const unbounded = read("ppocr-rec");
    delete unbounded.inputs[0].maxShape;
    expect(() => parseManifest(unbounded, "models/ppocr-rec/manifest.json")).toThrow(/inputs\.0\.maxShape: is required/);
    const axis = read("silero-vad");
    axis.inputs[1].batchAxis = 0;
    expect(() => parseManifest(axis, "models/silero-vad/manifest.json")).toThrow(/inputs\.1\.batchAxis: must point at a -1 dimension/);
    expect(() => parseManifest({ ...read("ppocr-cls"), extra: 1 }, "m.json")).toThrow(ConfigError);
  });

  it("refuses a manifest whose name differs from its folder", () => {
    expect(() => parseManifest(read("ppocr-cls"), "models/other/manifest.json")).toThrow(/must match its folder "other"/);
  });
});

describe("parsePipelineManifest", () => {
  it("accepts the shipped pipeline, whose stages are served models, and names the field of a bad one", () => {
    const json = JSON.parse(readFileSync("models/ppocr/pipeline.json", "utf8"));
    const ppocr = parsePipelineManifest(json, "models/ppocr/pipeline.json");
    expect(PIPELINES.get("ppocr")).toEqual(ppocr);
    for (const stage of Object.values(ppocr.stages)) expect(existsSync(`models/${stage}/manifest.json`)).toBe(true);
    expect(ppocr.inputs[0]).toMatchObject({ datatype: "BYTES", shape: [-1], batchAxis: 0 });
    expect(ppocr.batching.maxRowsPerRequest).toBe(1);
    expect(() => parsePipelineManifest({ ...json, slo: { percentile: 1.5, ms: 10 } }, "models/ppocr/pipeline.json")).toThrow(/^models\/ppocr\/pipeline\.json: slo\.percentile/);
    expect(() => parsePipelineManifest({ ...json, stages: { det: "ppocr-det" } }, "p.json")).toThrow(/stages\.cls/);
  });
});
