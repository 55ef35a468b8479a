/**
 * ModelController: the Durable Object that runs one model's control loop (controller.ts), one per
 * model (named by the model). Thin glue: buffers report telemetry to it, and stream shards their
 * streams, and get the published plan back; an alarm ticks the loop about once a second while
 * traffic was seen recently; a changed plan is persisted (it survives eviction) and its origin
 * demand is passed to the OriginRegistry. It also keeps the model's inference metrics: every Worker
 * isolate delivers what it recorded at most every 10 s, and the sums are stored, so /metrics
 * outlives isolates and Durable Object evictions.
 */
import { DurableObject } from "cloudflare:workers";
import { hasOriginPool, runtimeConfig } from "../config";
import { Controller, type ControllerState, type PlanView } from "./controller";
import { type PinUpdate, type PublishedPlan, updatePins } from "./plan";
import type { OriginRegistry } from "./origin-registry";
import type { StreamReport } from "./stream-load";
import type { Telemetry } from "./telemetry";
import { InferenceMetrics, mergeFamilies, type MetricFamily } from "../observability/inference-metrics";
import { modelGauges, sloGauge } from "../observability/model-gauges";
import { PIPELINES } from "../ocr/pipeline-manifest";

/** How often the loop ticks while active, ms. */
const TICK_MS = 1000;
/** The loop keeps ticking this long after the last report (to see the load fall to zero), ms. */
const ACTIVE_AFTER_REPORT_MS = 120_000;
/** Round trip edge -> origin added to the origin profile's kernel time until batches are measured, ms. */
const ORIGIN_NETWORK_MS = 1;
const STATE_KEY = "state";
/** Storage key of the model's inference metrics, summed over every isolate since the deployment began. */
const METRICS_KEY = "metrics";

/** The control loop of one model. */
export class ModelController extends DurableObject<Env> {
  private controller?: Controller;
  private lastReportAtMs = -Infinity;
  private isTicking = false;
  /** The configuration the stored state belongs to. */
  private fingerprint = "";
  /** The clock (epoch ms); tests replace it. */
  now: () => number = () => Date.now();

  /** Folds a shard's telemetry in and answers with the published plan. */
  report(telemetry: Telemetry): Promise<PublishedPlan> {
    return this.fold(telemetry.model, (controller, nowMs) => controller.observe(telemetry, nowMs));
  }

  /** Folds a stream shard's report in and answers with the published plan. */
  reportStreams(report: StreamReport): Promise<PublishedPlan> {
    return this.fold(report.model, (controller, nowMs) => controller.observeStreams(report, nowMs));
  }

  /** Folds a report into `model`'s loop now, keeps it ticking (unless static) and answers with the published plan. */
  private async fold(model: string, observe: (controller: Controller, nowMs: number) => void): Promise<PublishedPlan> {
    const controller = await this.load(model);
    const nowMs = this.now();
    observe(controller, nowMs);
    this.lastReportAtMs = nowMs;
    if (controller.options.mode !== "static") await this.keepTicking();
    return controller.published;
  }

  /** The published plan of `model`. */
  async published(model: string): Promise<PublishedPlan> {
    return (await this.load(model)).published;
  }

  /** The plan view of `model` (GET /v2/models/{m}/plan). */
  async view(model: string): Promise<PlanView> {
    return (await this.load(model)).view(this.now());
  }

  /** Changes the operator's pins of `model`; a pinned field applies at once. */
  async pin(model: string, update: PinUpdate): Promise<PlanView> {
    const controller = await this.load(model);
    const nowMs = this.now();
    if (controller.setPins(updatePins(controller.snapshot().pins, update), nowMs)) await this.persist(controller);
    else await this.ctx.storage.put(STATE_KEY, { fingerprint: this.fingerprint, state: controller.snapshot() });
    return controller.view(nowMs);
  }

  /** Adds an isolate's inference metrics since its last delivery (families of this model only) to the stored totals. */
  addMetrics(families: MetricFamily[]): void {
    this.ctx.storage.kv.put(METRICS_KEY, mergeFamilies(this.ctx.storage.kv.get<MetricFamily[]>(METRICS_KEY) ?? [], families));
  }

  /**
   * The model's metric families: its inference totals (every series from zero) and its gauges (SLO,
   * plan, queue). A pipeline (`ppocr`) has no plan of its own: its end-to-end totals and its SLO.
   */
  async metrics(model: string): Promise<MetricFamily[]> {
    const zeros = new InferenceMetrics();
    zeros.declare(model);
    const totals = mergeFamilies(await zeros.families(), this.ctx.storage.kv.get<MetricFamily[]>(METRICS_KEY) ?? []);
    const pipeline = PIPELINES.get(model);
    if (pipeline) return [...totals, sloGauge(pipeline)];
    const controller = await this.load(model);
    return [...totals, ...modelGauges(runtimeConfig(this.env).models.get(model)!.manifest, controller.published, controller.queuedRows(this.now()))];
  }

  /** Runs the loop to now (tests call it through runDurableObjectAlarm). */
  override async alarm(): Promise<void> {
    this.isTicking = false;
    const controller = this.controller;
    if (!controller) return;
    const nowMs = this.now();
    if (controller.tick(nowMs)) await this.persist(controller);
    if (nowMs - this.lastReportAtMs < ACTIVE_AFTER_REPORT_MS) await this.keepTicking();
  }

  private async keepTicking(): Promise<void> {
    if (this.isTicking) return;
    this.isTicking = true;
    await this.ctx.storage.setAlarm(this.now() + TICK_MS);
  }

  /** Persists a new plan and tells the registry how many origin replicas it needs. */
  private async persist(controller: Controller): Promise<void> {
    const state = controller.snapshot();
    await this.ctx.storage.put(STATE_KEY, { fingerprint: this.fingerprint, state });
    const { plan } = state.published;
    await registryOf(this.env).setDemand(controller.model, plan.placement === "origin" ? plan.poolSize : 0);
  }

  /** The controller of `model`, restored from storage on first use. */
  private async load(model: string): Promise<Controller> {
    if (this.controller) return this.controller;
    const config = runtimeConfig(this.env);
    const entry = config.models.get(model);
    if (!entry) throw new Error(`no such model: ${model}`);
    // A stored plan is kept only under the configuration it was decided for (manifest with its
    // overrides, mode, limits); otherwise the loop starts again from the manifest.
    const fingerprint = JSON.stringify([entry.manifest, config.control]);
    const stored = await this.ctx.storage.get<{ fingerprint: string; state: ControllerState }>(STATE_KEY);
    const state = stored?.fingerprint === fingerprint ? stored.state : undefined;
    this.fingerprint = fingerprint;
    const context = {
      manifest: entry.manifest,
      service: entry.service,
      overheadMs: entry.overheadMs,
      hopMs: entry.hopMs,
      pathCpu: entry.pathCpu,
      originNetworkMs: ORIGIN_NETWORK_MS,
      hasOrigin: hasOriginPool(config),
      limits: { maxShards: config.control.maxShards, maxPoolSize: Math.max(1, config.control.maxReplicas) },
      minPoolSize: config.control.minReplicas,
    };
    this.controller ??= new Controller(context, { mode: config.control.mode }, state);
    return this.controller;
  }
}

/** The controller stub of a model. */
export function controllerOf(env: Env, model: string): DurableObjectStub<ModelController> {
  return env.MODEL_CONTROLLER.get(env.MODEL_CONTROLLER.idFromName(model));
}

/** The registry stub (one per edge deployment). */
export function registryOf(env: Env): DurableObjectStub<OriginRegistry> {
  return env.ORIGIN_REGISTRY.get(env.ORIGIN_REGISTRY.idFromName("pool"));
}
