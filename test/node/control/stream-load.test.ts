import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { Controller } from "../../../src/control/controller";
import { REFUSED_WINDOW_MS, StreamLoad, type StreamReport } from "../../../src/control/stream-load";
import { parseManifest } from "../../../src/models/manifest";
import { profileOverhead, profileServiceLine } from "../../../src/models/profile";

/** A shard's report; maxStreams null: its streams have no real-time pace. */
const report = (shard: number, openStreams: number, refusedStreams: number, maxStreams: number | null = 30, key = "sr=16000"): StreamReport => ({ model: "silero-vad", key, shard, openStreams, refusedStreams, ...(maxStreams !== null && { maxStreams }) });

describe("StreamLoad", () => {
  it("needs ceil((open + recently refused) x (1 + headroom) / streams a shard) shards, the most of any key", () => {
    const load = new StreamLoad();
    load.observe(report(0, 30, 5), 0);
    load.observe(report(0, 30, 25), 1000); // 20 more refused
    load.observe(report(1, 12, 0), 1000);
    load.observe(report(0, 4, 0, 10, "sr=8000"), 1000);
    // sr=16000: 42 open, 25 refused (the first report's 5 count too), 30 a shard.
    expect(load.demand(2000, 0.25)).toEqual({ key: "sr=16000", openStreams: 42, refusedStreams: 25, streamsPerShard: 30, shards: Math.ceil((67 * 1.25) / 30) });
    // The refusals leave the window: the open streams alone.
    expect(load.demand(1000 + REFUSED_WINDOW_MS + 1, 0.25)?.shards).toBe(Math.ceil((42 * 1.25) / 30));
  });

  it("counts a restarted shard's running count from zero, ignores shards without a real-time pace, and forgets silent shards", () => {
    const load = new StreamLoad();
    load.observe(report(0, 10, 40), 0);
    load.observe(report(0, 10, 3), 1000); // restarted: 3 new refusals
    expect(load.demand(1000, 0)?.refusedStreams).toBe(43);
    const unpaced = new StreamLoad();
    unpaced.observe(report(0, 50, 0, null), 0);
    expect(unpaced.demand(0, 0)).toBeUndefined();
    expect(load.demand(1000 + 60_000, 0)).toBeUndefined();
  });
});

/** silero-vad's controller (closed loop), as the catalog builds its context. */
function sileroController(maxShards = 8): Controller {
  const file = "models/silero-vad/manifest.json";
  const manifest = parseManifest(JSON.parse(readFileSync(file, "utf8")), file);
  const profile = JSON.parse(readFileSync("models/silero-vad/profile.json", "utf8"));
  return new Controller({ manifest, service: { edge: profileServiceLine(profile, "edge"), origin: profileServiceLine(profile, "origin") }, ...profileOverhead(profile), originNetworkMs: 1, hasOrigin: false, limits: { maxShards, maxPoolSize: 1 }, minPoolSize: 0 });
}

describe("the controller's stream shards", () => {
  it("grows them at once when shards fill and refuse, records why, and shrinks them only after the least change interval", () => {
    const controller = sileroController();
    const { options } = controller;
    const start = controller.published.plan;
    expect(start.streamShards).toBe(start.shards);
    const t0 = 1_000_000;
    // 20 open streams of 30 a shard: ceil(20 x 1.25 / 30) = 1 shard.
    controller.observeStreams(report(0, 20, 0), t0);
    const first = controller.tick(t0);
    if (start.streamShards === 1) expect(first).toBeUndefined();
    else expect(first?.after.streamShards).toBe(1);
    const t1 = t0 + options.minChangeIntervalMs;
    // The shard fills and refuses 35: ceil((30 + 35) x 1.25 / 30) = 3 shards, at once.
    controller.observeStreams(report(0, 30, 35), t1);
    const grown = controller.tick(t1);
    const wanted = Math.ceil(((30 + 35) * (1 + options.headroomShare)) / 30);
    expect(grown?.after.streamShards).toBe(wanted);
    expect(grown?.inputs?.streams).toEqual({ key: "sr=16000", openStreams: 30, refusedStreams: 35, streamsPerShard: 30, shards: wanted });
    expect(grown?.reason).toContain("35 refused");
    // The other fields stay as they were.
    expect({ ...grown!.after, streamShards: 0 }).toEqual({ ...grown!.before, streamShards: 0 });
    // The streams leave: no shrink before minChangeIntervalMs, then down to 1.
    const t2 = t1 + REFUSED_WINDOW_MS + 1000;
    controller.observeStreams(report(0, 2, 35), t2);
    controller.observeStreams(report(1, 0, 0), t2);
    expect(controller.tick(t2)).toBeUndefined();
    const t3 = t1 + options.minChangeIntervalMs;
    controller.observeStreams(report(0, 2, 35), t3);
    expect(controller.tick(t3)?.after.streamShards).toBe(1);
  });

  it("holds a pinned stream shard count and the limit on shards", () => {
    const pinned = sileroController();
    pinned.setPins({ streamShards: 2 }, 0);
    pinned.observeStreams(report(0, 30, 200), 1_000_000);
    expect(pinned.tick(1_000_000)).toBeUndefined();
    expect(pinned.published.plan.streamShards).toBe(2);
    const limited = sileroController(4);
    limited.observeStreams(report(0, 30, 200), 1_000_000);
    expect(limited.tick(1_000_000)?.after.streamShards).toBe(4);
  });

  it("does not change stream shards in static mode", () => {
    const file = "models/silero-vad/manifest.json";
    const manifest = parseManifest(JSON.parse(readFileSync(file, "utf8")), file);
    const profile = JSON.parse(readFileSync("models/silero-vad/profile.json", "utf8"));
    const controller = new Controller({ manifest, service: { edge: profileServiceLine(profile, "edge") }, ...profileOverhead(profile), originNetworkMs: 1, hasOrigin: false, limits: { maxShards: 8, maxPoolSize: 1 }, minPoolSize: 0 }, { mode: "static" });
    controller.observeStreams(report(0, 30, 200), 1_000_000);
    expect(controller.tick(1_000_000)).toBeUndefined();
  });
});
