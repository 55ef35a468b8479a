/**
 * mergeFamilies against prom-client itself: the sum of two registries' families equals the
 * families of one registry that observed both sets of requests; and rendering keeps each
 * histogram's series together in the text format.
 */
import { describe, expect, it } from "vitest";
import { InferenceMetrics, mergeFamilies, renderFamilies, type AnsweredRequest, type MetricFamily } from "../../../src/observability/inference-metrics";

function requests(seed: number, count: number): AnsweredRequest[] {
  let x = seed;
  const next = () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  return Array.from({ length: count }, () => {
    const status = next() < 0.8 ? 200 : next() < 0.5 ? 400 : 503;
    return {
      model: next() < 0.6 ? "a" : "b",
      status,
      totalMs: next() * 300,
      ...(status === 200 && { served: { batchRows: 1 + Math.floor(next() * 20), queueMs: next() * 50, inferMs: next() * 100 } }),
      ...(status === 503 && { rejection: next() < 0.5 ? ("late" as const) : ("expired" as const) }),
    };
  });
}

async function familiesOf(sets: AnsweredRequest[][]): Promise<MetricFamily[]> {
  const metrics = new InferenceMetrics();
  for (const request of sets.flat()) metrics.observe(request);
  return metrics.families();
}

/** Series by name and labels, with values rounded (sums of floats in another order differ in the last bits). */
const bySeries = (families: MetricFamily[]) =>
  new Map(families.flatMap((f) => f.values.map((v) => [`${v.metricName ?? f.name}${JSON.stringify(Object.entries(v.labels).sort())}`, Number(v.value.toPrecision(12))] as const)));

describe("mergeFamilies", () => {
  it("sums two registries' families into what one registry observing both holds", async () => {
    const [first, second] = [requests(1, 300), requests(2, 200)];
    const merged = mergeFamilies(await familiesOf([first]), await familiesOf([second]));
    const reference = await familiesOf([first, second]);
    expect(bySeries(merged)).toEqual(bySeries(reference));
    expect(merged.map((f) => f.name).sort()).toEqual(reference.map((f) => f.name).sort());
  });

  it("renders merged histograms with each series' buckets, sum and count together", async () => {
    const { text } = await renderFamilies(mergeFamilies(await familiesOf([requests(3, 50)]), await familiesOf([requests(4, 50)])));
    const lines = text.split("\n").filter((l) => l.startsWith("eir_inference_batch_size"));
    const models = lines.map((l) => /model="(\w)"/.exec(l)?.[1]);
    // One contiguous run of lines per model.
    expect(models.filter((m, i) => i === 0 || m !== models[i - 1]).sort()).toEqual(["a", "b"]);
    expect(lines.filter((l) => l.includes('le="+Inf"')).length).toBe(2);
  });
});
