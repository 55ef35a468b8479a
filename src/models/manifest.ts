/**
 * Model manifests (models/<name>/manifest.json): what a model takes and returns, where it runs, its
 * latency SLO and its batching limits. Validated once at start-up; a bad manifest fails fast with a
 * message naming the file and the field.
 */
import { z } from "zod";
import { DATATYPES } from "../protocol/datatypes";

/**
 * Where a model's batches run: "edge", in the edge's buffer Durable Objects (onnxruntime-web);
 * "origin", forwarded by those buffers to the origin pool; "direct", in the Worker isolate that
 * took the request (onnxruntime-web, no buffer hop: batches form only from requests that queued in
 * the isolate while its session was busy).
 */
export const PLACEMENTS = ["edge", "origin", "direct"] as const;

/** One of PLACEMENTS. */
export type Placement = (typeof PLACEMENTS)[number];

/** The runtimes a model's service time is measured on (profile.json): onnxruntime-web in workerd, onnxruntime-node on the origin. */
export type Runtime = "edge" | "origin";

/** The runtime a placement runs its batches on: "direct" runs the same WASM session as "edge". */
export function runtimeOf(placement: Placement): Runtime {
  return placement === "origin" ? "origin" : "edge";
}

/** Whether a placement's requests go through the buffer Durable Objects (a hop from the Worker). */
export function isBuffered(placement: Placement): boolean {
  return placement !== "direct";
}

const dim = z.number().int().min(-1, "dimension must be -1 (dynamic) or >= 0");

export const tensorSpec = z
  .object({
    name: z.string().min(1),
    datatype: z.enum(DATATYPES),
    /** Shape with -1 for dynamic dimensions; the batch axis is one of them. */
    shape: z.array(dim),
    /** Upper bounds for each dimension (required to bound dynamic non-batch dims). */
    maxShape: z.array(z.number().int().positive()).optional(),
    /** Inputs only: each dimension must be a multiple of this (1: any), e.g. a detector's stride of 32. */
    shapeMultipleOf: z.array(z.number().int().positive()).optional(),
    /** Axis along which requests are concatenated: 0 by default, null for a tensor shared by the batch. */
    batchAxis: z.number().int().nonnegative().nullable().default(0),
    /** Inputs only: value to fill when a request omits this input (makes it optional). */
    default: z.number().optional(),
    /**
     * FP32 inputs only: the input may also be sent as UINT8 pixels v, normalised next to the session
     * to (v * scale - mean[c]) / std[c] for channel c along `axis` (src/models/uint8-inputs.ts).
     */
    fromUint8: z
      .object({ axis: z.number().int().nonnegative(), scale: z.number().positive().default(1 / 255), mean: z.array(z.number()).min(1), std: z.array(z.number().positive()).min(1) })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((t, ctx) => {
    if (t.fromUint8) {
      const { axis, mean, std } = t.fromUint8;
      const issue = (message: string) => ctx.addIssue({ code: "custom", path: ["fromUint8"], message });
      if (t.datatype !== "FP32") issue("is for FP32 inputs");
      else if (axis >= t.shape.length || axis === t.batchAxis || t.shape[axis] === -1) issue("axis must be a fixed dimension other than the batch axis");
      else if (mean.length !== t.shape[axis] || std.length !== t.shape[axis]) issue(`needs a mean and a std for each of the ${t.shape[axis]} channels on axis ${axis}`);
    }
    if (t.batchAxis !== null && (t.batchAxis >= t.shape.length || t.shape[t.batchAxis] !== -1)) {
      ctx.addIssue({ code: "custom", path: ["batchAxis"], message: "must point at a -1 dimension of shape" });
    }
    for (const field of ["maxShape", "shapeMultipleOf"] as const) {
      if (t[field] && t[field].length !== t.shape.length) ctx.addIssue({ code: "custom", path: [field], message: "must have as many dimensions as shape" });
    }
  });

/** A manifest's description of one input or output tensor. */
export type TensorSpec = z.infer<typeof tensorSpec>;

/**
 * Size classes (MBS, multi-buffer serving) on one variable axis of one input: requests whose sizes
 * on that axis differ share a batch when they fall in the same class; each is padded to its class's
 * width, and each output named in `outputs` is cropped back to the request's own steps.
 */
const sizeClassesSpec = z
  .object({
    /** The input whose axis varies (ppocr-rec: "x"). */
    input: z.string().min(1),
    /** The axis of that input the classes are on (ppocr-rec: 3, the text line's width); not its batch axis. */
    axis: z.number().int().nonnegative(),
    /**
     * Class widths along `axis`, in elements, ascending; a request of width w joins the smallest class
     * >= w and is padded to it. The last must be the input's maxShape on the axis, so every valid
     * request has a class. Absent: every width is its own class (no padding; requests of one width batch together).
     */
    widths: z.array(z.number().int().positive()).min(1).optional(),
    /** Value the padding is filled with (PP-OCR pads normalised images with 0). */
    padValue: z.number().default(0),
    /** Outputs whose `axis` follows the input's: a request's own steps are its width / `stride`; the rest is cropped off. */
    outputs: z.record(z.string(), z.object({ axis: z.number().int().nonnegative(), stride: z.number().int().positive() }).strict()).default({}),
  })
  .strict();

/**
 * An output the serving core derives from a session output, next to the session wherever the model
 * runs (src/models/derived-outputs.ts): a reduction over `from`'s last axis, "argmax" (INT32, the
 * first index of the largest value) or "max" (the largest value, `from`'s datatype). A client that
 * needs only each step's winner asks for these and gets bytes per step instead of per step and class.
 */
const derivedOutputSpec = z
  .object({
    name: z.string().min(1),
    /** The session output it reduces. */
    from: z.string().min(1),
    op: z.enum(["argmax", "max"]),
  })
  .strict();

/** A manifest's description of one derived output. */
export type DerivedOutput = z.infer<typeof derivedOutputSpec>;

/** A model's size classes (see sizeClassesSpec). */
export type SizeClasses = z.infer<typeof sizeClassesSpec>;

/** Schema of a manifest's `batching` (its fields also bound plans and pins). */
export const batchingSpec = z
  .object({
    /** Most rows one batch may hold. */
    maxBatch: z.number().int().min(1).max(1024),
    /** Longest time the oldest request of a batch waits for company, in ms. */
    windowMs: z.number().min(0).max(60_000),
    /** Most rows a shard's buffer holds before new requests get 503. */
    maxQueueRows: z.number().int().min(1),
    /** Buffer Durable Objects per model; requests spread over them. */
    shards: z.number().int().min(1).max(256),
    /** Most rows (shape[batchAxis]) one request may carry. */
    maxRowsPerRequest: z.number().int().min(1),
    /** Skip the window when the recent arrival rate predicts no company within it (src/scheduler/adaptive-window.ts). */
    adaptiveWindow: z.boolean().default(true),
    /** Size classes on a variable input axis (src/batching/size-classes.ts); absent: requests batch only with equal shapes. */
    sizeClasses: sizeClassesSpec.optional(),
  })
  .strict();

/** Batching limits of a model. */
export type BatchingConfig = z.infer<typeof batchingSpec>;

/**
 * One combination of input values and shapes a model takes, when it takes fewer than its tensor specs
 * allow (Silero VAD: 512 samples at 16 kHz or 256 at 8 kHz). `values` fixes scalar unbatched inputs;
 * `shapes` gives input shapes with -1 for any size.
 */
const variantSpec = z
  .object({
    values: z.record(z.string(), z.number()).default({}),
    shapes: z.record(z.string(), z.array(dim)).default({}),
  })
  .strict();

/** A combination of input values and shapes a model takes. */
export type ModelVariant = z.infer<typeof variantSpec>;

/** Schema of models/<name>/manifest.json. */
export const manifestSchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, "lowercase letters, digits, '.', '_' and '-' only"),
    version: z.string().regex(/^[A-Za-z0-9._-]{1,32}$/),
    description: z.string().default(""),
    source: z.object({ package: z.string(), file: z.string(), license: z.string() }).strict(),
    placement: z.enum(PLACEMENTS),
    inputs: z.array(tensorSpec).min(1),
    outputs: z.array(tensorSpec).min(1),
    /** Outputs computed from `outputs` next to the session; returned only when a request names them. */
    derivedOutputs: z.array(derivedOutputSpec).default([]),
    /** When given, a request must match one of these (else 400 before it reaches a batch). */
    variants: z.array(variantSpec).min(1).optional(),
    /** The latency target the planner plans for: `percentile` of requests within `ms`. Not a deadline. */
    slo: z.object({ percentile: z.number().gt(0).lt(1), ms: z.number().positive() }).strict(),
    /** The most a request waits (its deadline; a client's timeout_ms may shorten it), in ms; default MAX_LATENCY_SLO_MULTIPLE x slo.ms. */
    maxLatencyMs: z.number().positive().max(600_000).optional(),
    batching: batchingSpec,
    /** Plan fields the controller keeps at this manifest's values (e.g. a model too large for the edge pins its placement). */
    pinned: z.array(z.enum(["placement", "maxBatch", "windowMs", "shards", "streamShards"])).default([]),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.batching.maxRowsPerRequest > m.batching.maxBatch) {
      ctx.addIssue({ code: "custom", path: ["batching", "maxRowsPerRequest"], message: "must not exceed maxBatch" });
    }
    if (m.batching.maxBatch > m.batching.maxQueueRows) {
      ctx.addIssue({ code: "custom", path: ["batching", "maxQueueRows"], message: "must be at least maxBatch" });
    }
    m.inputs.forEach((t, i) => {
      if (!t.maxShape && t.shape.some((d, axis) => d === -1 && axis !== t.batchAxis)) {
        ctx.addIssue({ code: "custom", path: ["inputs", i, "maxShape"], message: "is required to bound dynamic dimensions other than the batch axis" });
      }
    });
    m.variants?.forEach((v, i) => {
      for (const name of Object.keys(v.values)) {
        const spec = m.inputs.find((t) => t.name === name);
        if (!spec || spec.batchAxis !== null || spec.shape.length !== 0) ctx.addIssue({ code: "custom", path: ["variants", i, "values", name], message: "must name a scalar unbatched input" });
      }
      for (const [name, shape] of Object.entries(v.shapes)) {
        const spec = m.inputs.find((t) => t.name === name);
        if (!spec || shape.length !== spec.shape.length) ctx.addIssue({ code: "custom", path: ["variants", i, "shapes", name], message: "must name an input and have its rank" });
      }
    });
    if (!m.inputs.some((t) => t.batchAxis !== null)) {
      ctx.addIssue({ code: "custom", path: ["inputs"], message: "at least one input needs a batch axis" });
    }
    m.outputs.forEach((t, i) => t.fromUint8 && ctx.addIssue({ code: "custom", path: ["outputs", i, "fromUint8"], message: "is for inputs" }));
    if (m.batching.sizeClasses?.input && m.inputs.find((t) => t.name === m.batching.sizeClasses!.input)?.fromUint8) {
      ctx.addIssue({ code: "custom", path: ["batching", "sizeClasses", "input"], message: "must not take UINT8 pixels (its padding value is a normalised one)" });
    }
    if (m.batching.sizeClasses) checkSizeClasses(m.batching.sizeClasses, m.inputs, m.outputs, (path, message) => ctx.addIssue({ code: "custom", path: ["batching", "sizeClasses", ...path], message }));
    m.derivedOutputs.forEach((d, i) => {
      const issue = (message: string) => ctx.addIssue({ code: "custom", path: ["derivedOutputs", i], message });
      const from = m.outputs.find((t) => t.name === d.from);
      if ([...m.outputs, ...m.derivedOutputs.slice(0, i)].some((t) => t.name === d.name)) issue(`name '${d.name}' is already an output's`);
      if (!from) return issue(`'from' must name one of the outputs`);
      const last = from.shape.length - 1;
      if (from.datatype === "BYTES" || from.datatype === "BOOL") issue(`'from' must be a numeric output`);
      if (last < 1 || from.batchAxis === last) issue(`'from' must have an axis to reduce after its batch axis`);
      if (m.batching.sizeClasses?.outputs[d.from]?.axis === last) issue(`'from' is cropped on its last axis, the one reduced`);
    });
  });

/** The rules that tie size classes to the model's tensors: a dynamic, bounded, non-batch axis; widths that end at its bound; outputs whose crop is exact. */
function checkSizeClasses(classes: SizeClasses, inputs: TensorSpec[], outputs: TensorSpec[], issue: (path: (string | number)[], message: string) => void): void {
  const spec = inputs.find((t) => t.name === classes.input);
  if (!spec || spec.batchAxis === null) return issue(["input"], "must name a batched input");
  if (classes.axis >= spec.shape.length || spec.shape[classes.axis] !== -1 || classes.axis === spec.batchAxis) return issue(["axis"], "must be a dynamic (-1) dimension of the input other than its batch axis");
  const maxWidth = spec.maxShape?.[classes.axis];
  const multiple = spec.shapeMultipleOf?.[classes.axis] ?? 1;
  const widths = classes.widths;
  if (widths) {
    if (widths.some((w, i) => i > 0 && w <= widths[i - 1]!)) issue(["widths"], "must be strictly ascending");
    if (widths.at(-1) !== maxWidth) issue(["widths"], `must end at the input's maxShape on axis ${classes.axis} (${maxWidth}), so every request has a class`);
    if (widths.some((w) => w % multiple !== 0)) issue(["widths"], `must be multiples of the input's shapeMultipleOf on axis ${classes.axis} (${multiple})`);
  }
  for (const [name, crop] of Object.entries(classes.outputs)) {
    const out = outputs.find((t) => t.name === name);
    if (!out || out.batchAxis === null) issue(["outputs", name], "must name a batched output");
    else if (crop.axis >= out.shape.length || out.shape[crop.axis] !== -1 || crop.axis === out.batchAxis) issue(["outputs", name, "axis"], "must be a dynamic (-1) dimension of the output other than its batch axis");
    else if (multiple % crop.stride !== 0) issue(["outputs", name, "stride"], `must divide the input's shapeMultipleOf on axis ${classes.axis} (${multiple}), so a request's own steps are a whole number`);
  }
}

/** A validated model manifest. */
export type ModelManifest = z.infer<typeof manifestSchema>;

/** What parsing a request needs of a manifest (a model's, or a pipeline's: src/ocr/pipeline-manifest.ts). */
export type RequestSpec = Pick<ModelManifest, "name" | "inputs" | "outputs" | "variants"> & Partial<Pick<ModelManifest, "derivedOutputs">> & { batching: Pick<BatchingConfig, "maxRowsPerRequest" | "sizeClasses"> };

/** Without maxLatencyMs, a request's deadline is this many times the SLO's ms. */
export const MAX_LATENCY_SLO_MULTIPLE = 4;

/** The most a request of this model waits, in ms: maxLatencyMs, default MAX_LATENCY_SLO_MULTIPLE x slo.ms. */
export function maxLatencyMsOf(manifest: Pick<ModelManifest, "maxLatencyMs" | "slo">): number {
  return manifest.maxLatencyMs ?? MAX_LATENCY_SLO_MULTIPLE * manifest.slo.ms;
}

/**
 * A request's deadline budget in ms: the model's maxLatencyMs, shortened by the client's timeout_ms
 * when it gives a shorter one. The SLO itself is a planning target, not a deadline.
 */
export function deadlineBudgetMs(manifest: Pick<ModelManifest, "maxLatencyMs" | "slo">, timeoutMs?: number): number {
  return Math.min(maxLatencyMsOf(manifest), timeoutMs ?? Infinity);
}

/** Thrown when a manifest or configuration is invalid; the message names the file and the field. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Formats zod issues as "file: field.path: message" lines. */
export function describeIssues(file: string, error: z.ZodError): string {
  return error.issues.map((i) => `${file}: ${i.path.length ? i.path.join(".") : "(root)"}: ${i.message}`).join("\n");
}

/** Validates a parsed manifest; `file` names it in errors. Throws ConfigError. */
export function parseManifest(json: unknown, file: string): ModelManifest {
  const result = manifestSchema.safeParse(json);
  if (!result.success) throw new ConfigError(describeIssues(file, result.error));
  const expected = file.split("/").at(-2);
  if (expected && file.endsWith("manifest.json") && expected !== result.data.name) {
    throw new ConfigError(`${file}: name: "${result.data.name}" must match its folder "${expected}"`);
  }
  return result.data;
}
