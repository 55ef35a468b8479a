/**
 * Parses an infer request in the binary tensor extension (JSON header + raw tensor bytes) against a
 * manifest, with the same rules and messages as the JSON parser (src/protocol/infer-request.ts):
 * known names, declared datatypes, shapes within the manifest's bounds, equal rows, defaults for
 * omitted optional inputs. Inputs may mix binary data (`parameters.binary_data_size`) and JSON
 * `data`. Pure: no I/O. Failures are 400/413 InferenceErrors.
 *
 * The JSON parser decodes `data` arrays only, so the checks are repeated here; if
 * parseInferRequest learns to take pre-decoded tensors, this file shrinks to the byte slicing.
 */
import { z } from "zod";
import type { ModelManifest, TensorSpec } from "../src/models/manifest";
import { BinaryFormatError, BinaryReader, binaryDataSize } from "../src/origin/oip-binary";
import { allocateTensorData, writeJsonValue } from "../src/protocol/datatypes";
import { badRequest, tooLarge } from "../src/protocol/errors";
import type { InferRequest } from "../src/protocol/infer-request";
import { elementCount, type Tensor } from "../src/protocol/tensor";

const parameters = z.record(z.string(), z.unknown()).optional();
const headerSchema = z.object({
  id: z.string().max(256).optional(),
  parameters,
  inputs: z.array(z.object({ name: z.string().max(256), shape: z.array(z.number()).max(16), datatype: z.string().max(16), parameters, data: z.array(z.unknown()).optional() })).min(1).max(64),
  outputs: z.array(z.object({ name: z.string().max(256), parameters })).max(64).optional(),
});

/** A parsed binary request, and whether the client asked for binary outputs. */
export interface BinaryInferRequest extends InferRequest {
  wantsBinaryOutputs: boolean;
}

/** Parses a binary-extension request's `header` (parsed JSON) and `payload` bytes for `manifest`. */
export function parseBinaryInferRequest(header: unknown, payload: Uint8Array, manifest: ModelManifest): BinaryInferRequest {
  const parsed = headerSchema.safeParse(header);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw badRequest(`invalid inference request: ${issue.path.join(".") || "body"}: ${issue.message}`);
  }
  const request = parsed.data;
  const reader = new BinaryReader(payload);
  const decoded = new Map<string, Tensor>();
  let rows: number | undefined;
  try {
    for (const input of request.inputs) {
      const spec = manifest.inputs.find((s) => s.name === input.name);
      if (!spec) throw badRequest(`unexpected input '${input.name}' for model '${manifest.name}'`);
      if (decoded.has(spec.name)) throw badRequest(`input '${input.name}' is given twice`);
      if (input.datatype !== spec.datatype) throw badRequest(`input '${spec.name}': datatype ${input.datatype} given, ${spec.datatype} expected`);
      const shape = checkShape(spec, input.shape, manifest);
      if (spec.batchAxis !== null) {
        const r = shape[spec.batchAxis]!;
        if (rows !== undefined && r !== rows) throw badRequest(`input '${spec.name}': ${r} rows, but other inputs have ${rows}`);
        rows = r;
      }
      const size = binaryDataSize(input);
      const count = elementCount(shape);
      const data = size !== undefined ? reader.take(spec.datatype, count, size) : jsonData(spec, count, input.data);
      decoded.set(spec.name, { name: spec.name, datatype: spec.datatype, shape, data });
    }
    reader.finish();
  } catch (error) {
    if (error instanceof BinaryFormatError) throw badRequest(`invalid binary tensor data: ${error.message}`);
    throw error;
  }
  if (rows === undefined) throw badRequest(`model '${manifest.name}' needs input '${manifest.inputs.find((s) => s.batchAxis !== null)!.name}'`);
  const inputs = manifest.inputs.map((spec) => decoded.get(spec.name) ?? defaultInput(spec, rows!, manifest.name));
  const outputs = selectOutputs(manifest, request.outputs);
  const timeout = request.parameters?.timeout_ms;
  if (timeout !== undefined && (typeof timeout !== "number" || !Number.isFinite(timeout) || timeout <= 0)) throw badRequest("parameters.timeout_ms must be a positive number of milliseconds");
  return {
    ...(request.id !== undefined && { id: request.id }),
    inputs,
    outputs,
    rows,
    batchKey: manifest.inputs
      .map((spec, i) => (spec.batchAxis === null ? `${spec.name}=${Array.from(inputs[i]!.data as ArrayLike<number | bigint>, String).join(",")}` : `${spec.name}:${inputs[i]!.shape.map((d, axis) => (axis === spec.batchAxis ? "*" : d)).join("x")}`))
      .join(";"),
    ...(timeout !== undefined && { timeoutMs: timeout as number }),
    wantsBinaryOutputs: request.parameters?.binary_data_output === true || (request.outputs ?? []).some((o) => (o.parameters as { binary_data?: unknown } | undefined)?.binary_data === true),
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

function jsonData(spec: TensorSpec, count: number, data: unknown[] | undefined): Tensor["data"] {
  if (!data) throw badRequest(`input '${spec.name}': needs data or parameters.binary_data_size`);
  const flat = data.some(Array.isArray) ? (data.flat(16) as unknown[]) : data;
  if (flat.length !== count) throw badRequest(`input '${spec.name}': ${flat.length} values for ${count} elements`);
  const out = allocateTensorData(spec.datatype, count);
  for (let i = 0; i < count; i++) {
    const problem = writeJsonValue(spec.datatype, out, i, flat[i]);
    if (problem) throw badRequest(`input '${spec.name}': value ${i}: ${problem} for ${spec.datatype}`);
  }
  return out;
}

function defaultInput(spec: TensorSpec, rows: number, model: string): Tensor {
  if (spec.default === undefined) throw badRequest(`model '${model}' needs input '${spec.name}'`);
  const shape = spec.shape.map((d, axis) => (axis === spec.batchAxis ? rows : d));
  if (shape.some((d) => d < 0)) throw badRequest(`input '${spec.name}' must be given (its shape is not fixed)`);
  const data = allocateTensorData(spec.datatype, elementCount(shape));
  for (let i = 0; i < data.length && spec.default !== 0; i++) writeJsonValue(spec.datatype, data, i, spec.default);
  return { name: spec.name, datatype: spec.datatype, shape, data };
}

function selectOutputs(manifest: ModelManifest, requested: Array<{ name: string }> | undefined): string[] {
  if (!requested?.length) return manifest.outputs.map((o) => o.name);
  for (const { name } of requested) if (!manifest.outputs.some((o) => o.name === name)) throw badRequest(`unknown output '${name}' for model '${manifest.name}'`);
  return manifest.outputs.map((o) => o.name).filter((n) => requested.some((r) => r.name === n));
}
