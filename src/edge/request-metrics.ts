/**
 * The edge's inference metrics, recorded where every inference request ends: in the Worker isolate
 * that answered it (all statuses, including refusals that never reached a buffer), on the isolate's
 * turn after the answer left, so recording adds nothing to a request's latency. Each isolate
 * keeps what it recorded per model in a prom-client registry and delivers it to the model's
 * controller (ModelController.addMetrics) from the first request that ends FLUSH_EVERY_MS or more
 * after the last delivery (kept alive by waitUntil; no timer holds a request open); the controller
 * stores the sums, so /metrics holds every isolate's traffic and survives isolates and evictions.
 * Records made since an isolate's last delivery reach the totals with its next request (or its
 * eviction loses them: at most one interval's worth). A delivery that fails is kept and sent with
 * the next one. `/metrics` delivers its own isolate's pending records before it reads.
 *
 * Deployed with an Analytics Engine binding (INFERENCE_ANALYTICS), each request is also one data
 * point there, under the same names (see `analyticsPoint` and docs/observability.md).
 */
import { controllerOf } from "../control/model-controller";
import { InferenceMetrics, mergeFamilies, type AnsweredRequest, type MetricFamily } from "../observability/inference-metrics";

/**
 * An isolate delivers a model's metrics at most this often, ms. Each delivery (a Durable Object call
 * and the controller's merge) cost about 25 ms under wrangler dev: once a second, that was 0.45 ms
 * more at a light load's p50 (bench/reports/observability.md); once in 10 s, a tenth of it. A
 * Prometheus scrape every 15 s or more sees the same; `/metrics` delivers its own isolate's records
 * before it reads.
 */
export const FLUSH_EVERY_MS = 10_000;

/** What a delivery takes: a set of metrics that reads as families. */
interface Recorder {
  families(): Promise<MetricFamily[]>;
}

/**
 * One model's records in this isolate (or Durable Object), and their delivery to the model's
 * controller: the request metrics here, a stream shard's too (src/stream/stream-buffer.ts).
 */
export class MetricsDelivery<M extends Recorder> {
  private metrics: M;
  private hasRecords = false;
  /** A failed delivery, sent again with the next. */
  private undelivered: MetricFamily[] = [];
  private lastFlushAtMs = -Infinity;
  /** The delivery in flight. */
  private flushing?: Promise<void>;

  constructor(
    readonly model: string,
    private readonly create: () => M,
  ) {
    this.metrics = create();
  }

  /** Records with `observe`; a caller that may stay open (`waitUntil`) delivers what is due. */
  record(env: Env, observe: (metrics: M) => void, waitUntil: ((task: Promise<unknown>) => void) | undefined): void {
    observe(this.metrics);
    this.hasRecords = true;
    if (waitUntil && !this.flushing && Date.now() - this.lastFlushAtMs >= FLUSH_EVERY_MS) waitUntil(this.flush(env));
  }

  /** Delivers what was recorded since the last delivery (and any undelivered before it), after a delivery in flight. */
  async flush(env: Env): Promise<void> {
    while (this.flushing) await this.flushing;
    if (!this.hasRecords && !this.undelivered.length) return;
    this.flushing = this.deliver(env).finally(() => void (this.flushing = undefined));
    await this.flushing;
  }

  private async deliver(env: Env): Promise<void> {
    // A fresh set takes the records that arrive while this one is read and sent.
    const taken = this.metrics;
    this.metrics = this.create();
    this.hasRecords = false;
    this.lastFlushAtMs = Date.now();
    const recorded = await taken.families();
    const families = this.undelivered.length ? mergeFamilies(this.undelivered, recorded) : recorded;
    this.undelivered = [];
    try {
      await controllerOf(env, this.model).addMetrics(families);
    } catch (error) {
      this.undelivered = families;
      console.warn(`metrics of ${this.model} not delivered: ${(error as Error).message}`);
    }
  }
}

const records = new Map<string, MetricsDelivery<InferenceMetrics>>();

type Answered = AnsweredRequest & { placement?: string };
/** Requests answered and not yet recorded: they are recorded once their answers have left. */
const unrecorded: Answered[] = [];
/** The task that records them (a timer's turn after the answer). */
let recording: Promise<void> | undefined;

/**
 * Records an answered inference request of a served model (and writes its Analytics Engine data
 * point when bound), off the request's path: queued now, recorded on the isolate's next turn, after
 * the answer has left (kept alive by `waitUntil`). Without `waitUntil` (a request that must not stay
 * open) it waits for the next request's turn, and nothing is delivered now.
 */
export function recordRequest(env: Env, request: Answered, waitUntil: ((task: Promise<unknown>) => void) | undefined): void {
  unrecorded.push(request);
  if (!waitUntil) return;
  recording ??= new Promise((resolve) => setTimeout(resolve, 0)).then(() => {
    recording = undefined;
    recordQueued(env, waitUntil);
  });
  waitUntil(recording);
}

/** Records the queued requests; a caller that may stay open (`waitUntil`) delivers what is due. */
function recordQueued(env: Env, waitUntil: ((task: Promise<unknown>) => void) | undefined): void {
  for (const request of unrecorded.splice(0)) {
    let model = records.get(request.model);
    if (!model) records.set(request.model, (model = new MetricsDelivery(request.model, () => new InferenceMetrics())));
    model.record(env, (metrics) => metrics.observe(request), waitUntil);
    env.INFERENCE_ANALYTICS?.writeDataPoint(analyticsPoint(request));
  }
}

/** Delivers this isolate's pending records of every model now (the queued ones recorded first). */
export async function flushRequestMetrics(env: Env): Promise<void> {
  recordQueued(env, undefined);
  await Promise.all([...records.values()].map((model) => model.flush(env)));
}

/**
 * A request as an Analytics Engine data point, in the metrics' names and base units: index1 and
 * blob1 the model, blob2 the HTTP status, blob3 the placement that served it, blob4 the rejection
 * reason; double1 eir_inference_request_duration_seconds, double2 ..._queue_duration_seconds,
 * double3 ..._compute_duration_seconds, double4 eir_inference_batch_size (0 when it did not run).
 */
export function analyticsPoint({ model, status, totalMs, served, rejection, placement }: AnsweredRequest & { placement?: string }): AnalyticsEngineDataPoint {
  return {
    indexes: [model],
    blobs: [model, String(status), placement ?? "", rejection ?? ""],
    doubles: [totalMs / 1000, (served?.queueMs ?? 0) / 1000, (served?.inferMs ?? 0) / 1000, served?.batchRows ?? 0],
  };
}
