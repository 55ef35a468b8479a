/**
 * modelSeries on snapshots of a synthetic /metrics (prom-client's own JSON, metrics-fixture.ts):
 * rates from counter increases, restarts and series that appear late, quantiles over the sliding
 * window, batch sizes, the plan's gauges, and gaps where series are missing.
 */
import { describe, expect, it } from "vitest";
import { appendSnapshot } from "../../../src/dashboard/history";
import { modelsOf, parseSnapshot, pipelinesOf, type Snapshot } from "../../../src/dashboard/metrics-snapshot";
import { modelSeries } from "../../../src/dashboard/model-series";
import { MetricsFixture, type FixturePlan } from "./metrics-fixture";

const PLAN: FixturePlan = { version: 3, shards: 2, maxBatchRows: 16, windowS: 0.004, poolReplicas: 1, placement: "edge" };
const T0 = 1_700_000_000_000;

/** A fixture with model "m" configured (no SLO gauge when `slo` is null), and a way to take snapshots of it. */
function setup(slo: { percentile: string; seconds: number } | null = { percentile: "95", seconds: 0.1 }) {
  const fixture = new MetricsFixture();
  fixture.configure("m", PLAN, slo ?? undefined);
  let history: Snapshot[] = [];
  const take = async (second: number) => {
    const snapshot = parseSnapshot(await fixture.body(T0 + second * 1000));
    if (typeof snapshot === "string") throw new Error(snapshot);
    history = appendSnapshot(history, snapshot);
  };
  return { fixture, take, series: (windowMs = 60_000) => modelSeries(history, "m", windowMs), history: () => history };
}

describe("modelSeries", () => {
  it("turns counter increases between snapshots into per-second rates, non-2xx apart", async () => {
    const { fixture, take, series } = setup();
    await take(0);
    for (let i = 0; i < 10; i++) fixture.request("m", 200, 0.01, 1);
    await take(1);
    for (let i = 0; i < 6; i++) fixture.request("m", 200, 0.01, 1);
    for (let i = 0; i < 4; i++) fixture.request("m", 400, 0.001);
    await take(3);
    const s = series();
    expect(s.timesS).toEqual([T0 / 1000, T0 / 1000 + 1, T0 / 1000 + 3]);
    expect(s.requestsPerS).toEqual([null, 10, 5]);
    // The 400 series appeared between the 2nd and 3rd snapshot: it started at 0.
    expect(s.non2xxPerS).toEqual([null, 0, 2]);
    expect(s.requestsInHistory).toBe(20);
  });

  it("counts a counter that went down as restarted from zero", async () => {
    const { fixture, take, series } = setup();
    await take(0);
    for (let i = 0; i < 30; i++) fixture.request("m", 200, 0.01, 1);
    await take(1);
    fixture.restart();
    for (let i = 0; i < 5; i++) fixture.request("m", 200, 0.01, 1);
    fixture.reject("m", "queue_full");
    await take(2);
    const s = series();
    expect(s.requestsPerS).toEqual([null, 30, 5]);
    expect(s.rejectionsPerS.queue_full).toEqual([null, 0, 1]);
    expect(s.requestsInHistory).toBe(35);
    expect(s.p50Ms.every((v) => v === null || v >= 0)).toBe(true);
  });

  it("computes p50/p95/p99 from the buckets' increase over the window only", async () => {
    const { fixture, take, series } = setup();
    await take(0);
    // 100 requests of 12 ms, all in the (10 ms, 15 ms] bucket: quantile q is 10 + 5q ms.
    for (let i = 0; i < 100; i++) fixture.request("m", 200, 0.012, 4);
    await take(1);
    // Then 100 of 40 ms, in (30 ms, 50 ms]: 30 + 20q ms over a window that holds only them.
    for (let i = 0; i < 100; i++) fixture.request("m", 200, 0.04, 8);
    await take(11);
    const wide = series(60_000);
    expect(wide.p50Ms[1]).toBeCloseTo(12.5, 9);
    expect(wide.p99Ms[1]).toBeCloseTo(14.95, 9);
    // Over both: the median is the 100th of 200, the top of the first bucket.
    expect(wide.p50Ms[2]).toBeCloseTo(15, 9);
    expect(wide.p99Ms[2]).toBeCloseTo(30 + 20 * ((0.99 * 200 - 100) / 100), 9);
    const narrow = series(5_000);
    expect(narrow.p95Ms[2]).toBeCloseTo(30 + 20 * 0.95, 9);
    expect(narrow.p50Ms[0]).toBeNull();
    expect(narrow.batch.labels).toEqual(["1", "2", "3–4", "5–8", "9–16"]);
    expect(narrow.batch.counts).toEqual([0, 0, 0, 100, 0]);
    expect(wide.batch.counts).toEqual([0, 0, 100, 100, 0]);
    for (let i = 0; i < 3; i++) fixture.request("m", 200, 0.04, 300);
    fixture.request("m", 200, 0.04, 100);
    await take(12);
    expect(series(5_000).batch).toEqual({ labels: ["1", "2", "3–4", "5–8", "9–16", "17–32", "33–64", "65–128", "129–256", ">256"], counts: [0, 0, 0, 100, 0, 0, 0, 1, 0, 3] });
  });

  it("draws the SLO, the queue and the plan's gauges, and names the placement", async () => {
    const { fixture, take, series } = setup({ percentile: "99", seconds: 0.25 });
    fixture.queue("m", 7);
    await take(0);
    fixture.configure("m", { ...PLAN, version: 4, shards: 4, placement: "origin" }, { percentile: "99", seconds: 0.25 });
    await take(1);
    const s = series();
    expect(s.sloMs).toEqual([250, 250]);
    expect(s.sloLabel).toBe("SLO p99");
    expect(s.queueRows).toEqual([7, 7]);
    expect(s.plan.version).toEqual([3, 4]);
    expect(s.plan.shards).toEqual([2, 4]);
    expect(s.plan.maxBatchRows).toEqual([16, 16]);
    expect(s.plan.windowMs).toEqual([4, 4]);
    expect(s.plan.poolReplicas).toEqual([1, 1]);
    expect(s.placement).toEqual(["edge", "origin"]);
  });

  it("leaves gaps, not errors, where series are missing", async () => {
    const { take, series, history } = setup(null);
    await take(0);
    await take(1);
    expect(modelsOf(history()[0]!)).toEqual(["m"]);
    const s = series();
    expect(s.sloMs).toEqual([null, null]);
    expect(s.sloLabel).toBe("SLO");
    expect(s.queueRows).toEqual([null, null]);
    expect(s.requestsPerS).toEqual([null, 0]);
    expect(s.p95Ms).toEqual([null, null]);
    expect(s.batch).toEqual({ labels: [], counts: [] });
    expect(modelSeries(history(), "unknown", 60_000).plan.version).toEqual([null, null]);
    expect(modelSeries([], "m", 60_000).timesS).toEqual([]);
  });
});

describe("parseSnapshot", () => {
  it("drops malformed metrics and samples and says why a body is not a snapshot", () => {
    expect(parseSnapshot(null)).toBe("the answer is not a JSON object");
    expect(parseSnapshot({ metrics: [] })).toBe("the answer has no numeric atMs");
    expect(parseSnapshot({ atMs: 1 })).toBe("the answer has no metrics array");
    const snapshot = parseSnapshot({ atMs: 1, metrics: [null, { name: 3 }, { name: "eir_plan_version", type: "gauge", values: [{ labels: { model: "a" }, value: 1 }, { labels: { model: "b" }, value: "x" }, 7] }] });
    expect(typeof snapshot).toBe("object");
    expect(modelsOf(snapshot as Snapshot)).toEqual(["a"]);
  });

  it("tells pipelines (an SLO, no plan of their own) from models", () => {
    const snapshot = parseSnapshot({
      atMs: 1,
      metrics: [
        { name: "eir_plan_version", type: "gauge", values: [{ labels: { model: "ppocr-det" }, value: 1 }] },
        { name: "eir_slo_seconds", type: "gauge", values: [{ labels: { model: "ppocr-det", percentile: 99 }, value: 5 }, { labels: { model: "ppocr", percentile: 95 }, value: 3 }] },
      ],
    }) as Snapshot;
    expect([modelsOf(snapshot), pipelinesOf(snapshot)]).toEqual([["ppocr-det"], ["ppocr"]]);
  });
});

describe("appendSnapshot", () => {
  it("keeps the snapshots of the last historyMs and ignores one that is not newer", () => {
    const at = (atMs: number): Snapshot => ({ atMs, families: new Map() });
    let history: Snapshot[] = [];
    for (const t of [0, 1000, 2000, 2000, 1500, 5000]) history = appendSnapshot(history, at(t), 3000);
    expect(history.map((s) => s.atMs)).toEqual([2000, 5000]);
  });
});
