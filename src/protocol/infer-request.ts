/**
 * Parses an Open Inference Protocol infer request body against a model manifest: checks every name,
 * datatype, shape and data length, fills optional inputs from their defaults, and computes the
 * number of rows and the batch key (requests with equal keys can be concatenated into one batch).
 * Tensor data comes as JSON `data`, or, with the binary tensor extension, as bytes after the JSON
 * header (`parameters.binary_data_size`); both may mix in one request. Pure: no I/O. Every failure
 * is a 400/413 InferenceError naming the offending tensor.
 */
import { z } from "zod";
import type { ModelManifest, TensorSpec } from "../models/manifest";
import { BinaryFormatError, BinaryReader, binaryDataSize } from "./oip-binary";
import { allocateTensorData, writeJsonValue } from "./datatypes";
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
  /** Requests with the same key have the same non-batch dims and shared values, so they concatenate. */
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
export function parseInferRequest(body: unknown, manifest: ModelManifest, payload: Uint8Array = new Uint8Array(0)): InferRequest {
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
  const reader = new BinaryReader(payload);
  let rows: number | undefined;
  // Binary data is read in the order the request lists its inputs.
  for (const input of request.inputs) {
    const spec = manifest.inputs.find((s) => s.name === input.name)!;
    if (input.datatype !== spec.datatype) throw badRequest(`input '${spec.name}': datatype ${input.datatype} given, ${spec.datatype} expected`);
    const shape = checkShape(spec, input.shape, manifest);
    if (spec.batchAxis !== null) {
      const r = shape[spec.batchAxis]!;
      if (rows !== undefined && r !== rows) throw badRequest(`input '${spec.name}': ${r} rows, but other inputs have ${rows}`);
      rows = r;
    }
    decoded.set(spec.name, { name: spec.name, datatype: spec.datatype, shape, data: decodeData(spec, shape, input, reader) });
  }
  binaryChecked(() => reader.finish());
  if (rows === undefined) throw badRequest(`model '${manifest.name}' needs input '${manifest.inputs.find((s) => s.batchAxis !== null)!.name}'`);

  const inputs = manifest.inputs.map((spec) => decoded.get(spec.name) ?? defaultInput(spec, rows!, manifest.name));
  return {
    ...(request.id !== undefined && { id: request.id }),
    inputs,
    outputs: selectOutputs(manifest, request.outputs),
    rows,
    batchKey: batchKeyOf(manifest.inputs, inputs),
    ...timeoutOf(request.parameters),
    wantsBinaryOutputs: request.parameters?.binary_data_output === true || (request.outputs ?? []).some((o) => o.parameters?.binary_data === true),
  };
}

function checkShape(spec: TensorSpec, shape: number[], manifest: ModelManifest): number[] {
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
  });
  return shape;
}

type RequestInput = z.infer<typeof requestSchema>["inputs"][number];

function decodeData(spec: TensorSpec, shape: number[], input: RequestInput, reader: BinaryReader): Tensor["data"] {
  const count = elementCount(shape);
  const binarySize = binaryDataSize(input);
  if (binarySize !== undefined) return binaryChecked(() => reader.take(spec.datatype, count, binarySize));
  const data = input.data;
  if (!data) throw badRequest(`input '${spec.name}' has neither data nor parameters.binary_data_size`);
  const flat = data.some(Array.isArray) ? flatten(data, shape.length) : data;
  if (flat.length !== count) throw badRequest(`input '${spec.name}': ${flat.length} values for shape [${shape}] (${count} expected)`);
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

/** Flattens nested row-major data, refusing nesting deeper than the tensor's rank. */
function flatten(data: unknown[], rank: number): unknown[] {
  const flat = data.flat(rank) as unknown[];
  if (flat.some(Array.isArray)) throw badRequest("tensor data is nested deeper than its shape");
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

function selectOutputs(manifest: ModelManifest, requested: Array<{ name: string }> | undefined): string[] {
  if (!requested?.length) return manifest.outputs.map((o) => o.name);
  const names = new Set<string>();
  for (const { name } of requested) {
    if (!manifest.outputs.some((o) => o.name === name)) throw badRequest(`unknown output '${name}' for model '${manifest.name}'`);
    names.add(name);
  }
  return manifest.outputs.map((o) => o.name).filter((n) => names.has(n));
}

/** Shape of every non-batch dim, plus the values of shared (unbatched) inputs. */
function batchKeyOf(specs: TensorSpec[], inputs: Tensor[]): string {
  return specs
    .map((spec, i) => {
      const t = inputs[i]!;
      if (spec.batchAxis === null) return `${spec.name}=${Array.from(t.data as ArrayLike<number | bigint>, String).join(",")}`;
      return `${spec.name}:${t.shape.map((d, axis) => (axis === spec.batchAxis ? "*" : d)).join("x")}`;
    })
    .join(";");
}

function timeoutOf(parameters: Record<string, unknown> | undefined): { timeoutMs?: number } {
  const value = parameters?.timeout_ms;
  if (value === undefined) return {};
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) throw badRequest("parameters.timeout_ms must be a positive number of milliseconds");
  return { timeoutMs: value };
}
