/**
 * One answer of the edge's `GET /metrics` (Accept: application/json), checked and indexed for the
 * dashboard: `{atMs, metrics}` where `metrics` are prom-client's `getMetricsAsJSON()` objects. The
 * check is structural and forgiving: a malformed metric or sample is dropped, never thrown on, so
 * one odd series cannot stop the page. Pure: no DOM, no clock.
 */

/** Label values as prom-client gives them (a histogram's finite `le` is a number). */
export type Labels = Readonly<Record<string, string | number>>;

/** One sample: a series' labels and value; histogram samples name their series (`<name>_bucket`, `_sum`, `_count`). */
export interface Sample {
  labels: Labels;
  value: number;
  metricName?: string;
}

/** One metric family. */
export interface MetricFamily {
  name: string;
  type: string;
  samples: Sample[];
}

/** A checked answer: when it was taken (epoch ms) and its families by name. */
export interface Snapshot {
  atMs: number;
  families: ReadonlyMap<string, MetricFamily>;
}

const isRecord = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null && !Array.isArray(value);

/** The sample, or undefined when it is not one. */
function toSample(raw: unknown): Sample | undefined {
  if (!isRecord(raw) || typeof raw.value !== "number") return undefined;
  const labels: Record<string, string | number> = {};
  if (isRecord(raw.labels)) {
    for (const [key, value] of Object.entries(raw.labels)) if (typeof value === "string" || typeof value === "number") labels[key] = value;
  }
  return { labels, value: raw.value, ...(typeof raw.metricName === "string" && { metricName: raw.metricName }) };
}

/** The family, or undefined when it is not one. */
function toFamily(raw: unknown): MetricFamily | undefined {
  if (!isRecord(raw) || typeof raw.name !== "string" || !Array.isArray(raw.values)) return undefined;
  const samples = raw.values.map(toSample).filter((s): s is Sample => s !== undefined);
  return { name: raw.name, type: typeof raw.type === "string" ? raw.type : "untyped", samples };
}

/** A snapshot of the body of `GET /metrics` (JSON), or an error message saying why it is not one. */
export function parseSnapshot(body: unknown): Snapshot | string {
  if (!isRecord(body)) return "the answer is not a JSON object";
  if (typeof body.atMs !== "number" || !Number.isFinite(body.atMs)) return "the answer has no numeric atMs";
  if (!Array.isArray(body.metrics)) return "the answer has no metrics array";
  const families = new Map<string, MetricFamily>();
  for (const family of body.metrics.map(toFamily)) if (family) families.set(family.name, family);
  return { atMs: body.atMs, families };
}

/** The samples of `family` (or of its series `series`, e.g. `<name>_bucket`) for `model`. */
export function modelSamples(snapshot: Snapshot, family: string, model: string, series = family): Sample[] {
  const samples = snapshot.families.get(family)?.samples ?? [];
  return samples.filter((s) => s.labels.model === model && (s.metricName ?? family) === series);
}

/** The sum of `family`'s samples for `model` (undefined when it has none), e.g. queued rows over shards. */
export function modelSum(snapshot: Snapshot, family: string, model: string): number | undefined {
  const samples = modelSamples(snapshot, family, model);
  return samples.length ? samples.reduce((sum, s) => sum + s.value, 0) : undefined;
}

/** The models a snapshot knows, in name order: every configured model has a plan version gauge. */
export function modelsOf(snapshot: Snapshot): string[] {
  return namesIn(snapshot, "eir_plan_version");
}

/** The pipelines a snapshot knows (ppocr), in name order: an SLO gauge but no plan of their own. */
export function pipelinesOf(snapshot: Snapshot): string[] {
  const models = new Set(modelsOf(snapshot));
  return namesIn(snapshot, "eir_slo_seconds").filter((name) => !models.has(name));
}

function namesIn(snapshot: Snapshot, family: string): string[] {
  const samples = snapshot.families.get(family)?.samples ?? [];
  const names = samples.map((s) => s.labels.model).filter((m): m is string => typeof m === "string");
  return [...new Set(names)].sort();
}
