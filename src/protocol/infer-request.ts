/**
 * Parses an Open Inference Protocol infer request body against a model manifest: checks every name,
 * datatype, shape and data length, fills optional inputs from their defaults, and computes the
 * number of rows and the batch key (requests with equal keys can be concatenated into one batch).
 * Tensor data comes as JSON `data`, or, with the binary tensor extension, as bytes after the JSON
 * header (`parameters.binary_data_size`); both may mix in one request. Pure: no I/O. Every failure
 * is a 400/413 InferenceError naming the offending tensor.
 */
import { z } from "zod";
import { classWidthOf } from "../batching/size-classes";
import { outputSpecsOf } from "../models/derived-outputs";
import { acceptsDatatype } from "../models/uint8-inputs";
import type { ModelVariant, RequestSpec, SizeClasses, TensorSpec } from "../models/manifest";
import { BinaryFormatError, BinaryReader, binaryDataSize } from "./oip-binary";
import { allocateTensorData, bytesFromJson, writeJsonValue, type Datatype } from "./datatypes";
import { badRequest, tooLarge } from "./errors";
import { elementCount, type Tensor } from "./tensor";

const requestSchema = z.object({
  id: z.string().max(256).optional(),
  parameters: z.record(z.string(), z.unknown()).optional(),
  inputs: z
    .array(
      z.object({
        name: z.string().max(256),
        shape: z.array(z.number()).max(16),
        datatype: z.string().max(16),
        parameters: z.record(z.string(), z.unknown()).optional(),
        data: z.array(z.unknown()).optional(),
      }),
    )
    .min(1)
    .max(64),
  outputs: z.array(z.object({ name: z.string().max(256), parameters: z.record(z.string(), z.unknown()).optional() })).max(64).optional(),
});

/** A validated infer request, decoded and ready to be batched. */
export interface InferRequest {
  id?: string;
  /** Every manifest input, in manifest order, with defaults filled in. */
  inputs: Tensor[];
  /** Output names to return, in manifest order. */
  outputs: string[];
  /** Rows this request adds to a batch (shape[batchAxis] of its batched inputs). */
  rows: number;
  /** Requests with the same key have the same non-batch dims (or size class) and shared values, so they concatenate. */
  batchKey: string;
  /** Client's own deadline budget (parameters.timeout_ms), if it gave one. */
  timeoutMs?: number;
  /** The client asked for outputs in the binary tensor extension. */
  wantsBinaryOutputs: boolean;
}

/**
 * Parses and validates a request for `manifest`: `body` is the JSON body (or the binary extension's
 * JSON header), already `JSON.parse`d; `payload` the bytes after that header, if any. Throws
 * InferenceError.
 */
export function parseInferRequest(body: unknown, manifest: RequestSpec, payload?: Uint8Array): InferRequest {
  const parsed = requestSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw badRequest(`invalid inference request: ${issue.path.join(".") || "body"}: ${issue.message}`);
  }
  const request = parsed.data;
  const given = new Map<string, (typeof request.inputs)[number]>();
  for (const input of request.inputs) {
    if (given.has(input.name)) throw badRequest(`input '${input.name}' is given twice`);
    if (!manifest.inputs.some((s) => s.name === input.name)) throw badRequest(`unexpected input '${input.name}' for model '${manifest.name}'`);
    given.set(input.name, input);
  }

  const decoded = new Map<string, Tensor>();
  const reader = new BinaryReader(payload ?? new Uint8Array(0));
  let rows: number | undefined;
  // Binary data is read in the order the request lists its inputs.
  for (const input of request.inputs) {
    const spec = manifest.inputs.find((s) => s.name === input.name)!;
    if (!acceptsDatatype(spec, input.datatype)) throw badRequest(`input '${spec.name}': datatype ${input.datatype} given, ${spec.datatype}${spec.fromUint8 ? " (or UINT8 pixels)" : ""} expected`);
    const datatype = input.datatype as Datatype;
    const shape = checkShape(spec, input.shape, manifest);
    if (spec.batchAxis !== null) {
      const r = shape[spec.batchAxis]!;
      if (rows !== undefined && r !== rows) throw badRequest(`input '${spec.name}': ${r} rows, but other inputs have ${rows}`);
      rows = r;
    }
    decoded.set(spec.name, { name: spec.name, datatype, shape, data: decodeData({ ...spec, datatype }, shape, input, reader, payload !== undefined) });
  }
  binaryChecked(() => reader.finish());
  if (rows === undefined) throw badRequest(`model '${manifest.name}' needs input '${manifest.inputs.find((s) => s.batchAxis !== null)!.name}'`);

  const inputs = manifest.inputs.map((spec) => decoded.get(spec.name) ?? defaultInput(spec, rows!, manifest.name));
  checkVariant(manifest, inputs);
  return {
    ...(request.id !== undefined && { id: request.id }),
    inputs,
    outputs: selectOutputs(manifest, request.outputs),
    rows,
    batchKey: batchKeyOf(manifest.inputs, inputs, manifest.batching.sizeClasses),
    ...timeoutOf(request.parameters),
    wantsBinaryOutputs: wantsBinaryOutputs(request),
  };
}

/** Whether binary outputs are asked for, checking every flag (each must be a boolean). */
function wantsBinaryOutputs(request: z.infer<typeof requestSchema>): boolean {
  const flags = [booleanParameter(request.parameters, "binary_data_output", "parameters"), ...(request.outputs ?? []).map((o) => booleanParameter(o.parameters, "binary_data", `output '${o.name}'`))];
  return flags.includes(true);
}

/** A boolean parameter (false when absent); anything but true/false is a 400. */
function booleanParameter(parameters: Record<string, unknown> | undefined, name: string, where: string): boolean {
  const value = parameters?.[name];
  if (value === undefined) return false;
  if (typeof value !== "boolean") throw badRequest(`${where}: parameters.${name} must be true or false`);
  return value;
}

function checkShape(spec: TensorSpec, shape: number[], manifest: RequestSpec): number[] {
  const where = `input '${spec.name}'`;
  if (shape.length !== spec.shape.length) throw badRequest(`${where}: shape [${shape}] has ${shape.length} dims, expected ${spec.shape.length} ([${spec.shape}])`);
  shape.forEach((d, axis) => {
    if (!Number.isInteger(d) || d < 0) throw badRequest(`${where}: dimension ${axis} is ${d}; dims must be non-negative integers`);
    const fixed = spec.shape[axis]!;
    if (fixed !== -1 && d !== fixed) throw badRequest(`${where}: dimension ${axis} is ${d}, expected ${fixed}`);
    if (axis === spec.batchAxis) {
      if (d < 1) throw badRequest(`${where}: needs at least one row`);
      if (d > manifest.batching.maxRowsPerRequest) throw tooLarge(`${where}: ${d} rows, at most ${manifest.batching.maxRowsPerRequest} per request`);
    } else if (spec.maxShape && d > spec.maxShape[axis]!) {
      throw tooLarge(`${where}: dimension ${axis} is ${d}, at most ${spec.maxShape[axis]}`);
    } else if (d < 1 && fixed === -1) {
      throw badRequest(`${where}: dimension ${axis} must be at least 1`);
    }
    const multiple = spec.shapeMultipleOf?.[axis] ?? 1;
    if (d % multiple !== 0) throw badRequest(`${where}: dimension ${axis} is ${d}; it must be a multiple of ${multiple}`);
  });
  return shape;
}

type RequestInput = z.infer<typeof requestSchema>["inputs"][number];

function decodeData(spec: TensorSpec, shape: number[], input: RequestInput, reader: BinaryReader, isBinary: boolean): Tensor["data"] {
  const where = `input '${spec.name}'`;
  const count = elementCount(shape);
  const data = input.data;
  if (input.parameters?.binary_data_size !== undefined) {
    const binarySize = binaryDataSize(input);
    if (binarySize === undefined) throw badRequest(`${where}: parameters.binary_data_size must be a non-negative integer`);
    if (data !== undefined) throw badRequest(`${where} has both data and parameters.binary_data_size; give one`);
    if (!isBinary) throw badRequest(`${where}: parameters.binary_data_size needs the binary tensor extension (the Inference-Header-Content-Length header)`);
    return binaryChecked(() => reader.take(spec.datatype, count, binarySize));
  }
  if (!data) throw badRequest(`${where} has neither data nor parameters.binary_data_size`);
  const flat = data.some(Array.isArray) ? flattenNested(data, shape, where) : data;
  if (flat.length !== count) throw badRequest(`${where}: ${flat.length} values for shape [${shape}] (${count} expected)`);
  if (spec.datatype === "BYTES") {
    const contentType = input.parameters?.content_type;
    if (contentType !== undefined && contentType !== "base64" && contentType !== "str") throw badRequest(`${where}: parameters.content_type must be "base64" or "str"`);
    const bytes = bytesFromJson(flat, contentType === "base64");
    if (typeof bytes === "string") throw badRequest(`${where}: ${bytes}`);
    return bytes;
  }
  const out = allocateTensorData(spec.datatype, count);
  for (let i = 0; i < count; i++) {
    const problem = writeJsonValue(spec.datatype, out, i, flat[i]);
    if (problem) throw badRequest(`input '${spec.name}': value ${i}: ${problem} for ${spec.datatype}`);
  }
  return out;
}

/** Runs a binary read, turning format errors into 400s. */
function binaryChecked<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof BinaryFormatError) throw badRequest(`invalid binary tensor data: ${error.message}`);
    throw error;
  }
}

/**
 * Flattens nested row-major data that must follow the shape exactly: each level is an array as long
 * as its dimension, and only the innermost holds values (ragged or wrong-depth nesting is a 400).
 */
function flattenNested(data: unknown[], shape: number[], where: string): unknown[] {
  const flat: unknown[] = [];
  const visit = (level: unknown, depth: number, path: string): void => {
    if (depth === shape.length) {
      if (Array.isArray(level)) throw badRequest(`${where}: data${path} is nested deeper than the shape [${shape}]`);
      flat.push(level);
      return;
    }
    if (!Array.isArray(level)) throw badRequest(`${where}: data${path} is a value where the shape [${shape}] needs an array of ${shape[depth]}`);
    if (level.length !== shape[depth]) throw badRequest(`${where}: data${path} has ${level.length} entries, the shape [${shape}] needs ${shape[depth]}`);
    level.forEach((item, i) => visit(item, depth + 1, `${path}[${i}]`));
  };
  visit(data, 0, "");
  return flat;
}

function defaultInput(spec: TensorSpec, rows: number, model: string): Tensor {
  if (spec.default === undefined) throw badRequest(`model '${model}' needs input '${spec.name}'`);
  const shape = spec.shape.map((d, axis) => (axis === spec.batchAxis ? rows : d));
  if (shape.some((d) => d < 0)) throw badRequest(`input '${spec.name}' must be given (its shape is not fixed)`);
  const data = allocateTensorData(spec.datatype, elementCount(shape));
  if (spec.default !== 0) writeDefault(spec, data);
  return { name: spec.name, datatype: spec.datatype, shape, data };
}

function writeDefault(spec: TensorSpec, data: Tensor["data"]): void {
  for (let i = 0; i < data.length; i++) writeJsonValue(spec.datatype, data, i, spec.default);
}

/** The outputs a request names (session or derived ones), in manifest order; none named: the session's outputs. */
function selectOutputs(manifest: RequestSpec, requested: Array<{ name: string }> | undefined): string[] {
  if (!requested?.length) return manifest.outputs.map((o) => o.name);
  const known = outputSpecsOf(manifest).map((o) => o.name);
  const names = new Set<string>();
  for (const { name } of requested) {
    if (!known.includes(name)) throw badRequest(`unknown output '${name}' for model '${manifest.name}'`);
    if (names.has(name)) throw badRequest(`output '${name}' is requested twice`);
    names.add(name);
  }
  return known.filter((n) => names.has(n));
}

/** With manifest variants, the request must match one: fixed scalar values and shapes (-1: any). */
function checkVariant(manifest: RequestSpec, inputs: Tensor[]): void {
  if (!manifest.variants) return;
  const byName = new Map(inputs.map((t) => [t.name, t]));
  const matches = (variant: ModelVariant) =>
    Object.entries(variant.values).every(([name, value]) => Number(byName.get(name)!.data[0]) === value) &&
    Object.entries(variant.shapes).every(([name, shape]) => shape.every((d, axis) => d === -1 || byName.get(name)!.shape[axis] === d));
  if (manifest.variants.some(matches)) return;
  const described = manifest.variants.map((v) => [...Object.entries(v.values).map(([n, x]) => `${n} ${x}`), ...Object.entries(v.shapes).map(([n, sh]) => `${n} [${sh.map((d) => (d === -1 ? "n" : d))}]`)].join(" with "));
  throw badRequest(`model '${manifest.name}' takes ${described.join(", or ")}`);
}

/**
 * Shape of every non-batch dim, plus the values of shared (unbatched) inputs; on the size-class
 * axis, the request's class width instead of its own (requests of one class pad to it and meet).
 * An input sent in another datatype than its own (UINT8 pixels) says so: the two never concatenate.
 */
export function batchKeyOf(specs: TensorSpec[], inputs: Tensor[], sizeClasses?: SizeClasses): string {
  return specs
    .map((spec, i) => {
      const t = inputs[i]!;
      if (spec.batchAxis === null) return `${spec.name}=${Array.from(t.data as ArrayLike<number | bigint>, String).join(",")}`;
      const classAxis = sizeClasses?.input === spec.name ? sizeClasses.axis : -1;
      const dims = t.shape.map((d, axis) => (axis === spec.batchAxis ? "*" : axis === classAxis ? classWidthOf(sizeClasses!, d) : d)).join("x");
      return `${spec.name}:${dims}${t.datatype === spec.datatype ? "" : `:${t.datatype}`}`;
    })
    .join(";");
}

function timeoutOf(parameters: Record<string, unknown> | undefined): { timeoutMs?: number } {
  const value = parameters?.timeout_ms;
  if (value === undefined) return {};
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) throw badRequest("parameters.timeout_ms must be a positive number of milliseconds");
  return { timeoutMs: value };
}
