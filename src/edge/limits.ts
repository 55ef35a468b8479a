/**
 * Request limits derived from the platform's, so that a request the platform would break on gets
 * 413 at the Worker, before any Durable Object call, naming the limit and the rows that would fit:
 * - the Durable Object RPC payload (32 MiB each way): a buffered request's inputs travel to its
 *   buffer in one call and its outputs come back in one;
 * - the isolate's memory (128 MB): the isolate that runs a model (a buffer, or the Worker itself
 *   under "direct") holds the session and one batch's rows.
 * Output bytes and memory per row come from the model's footprint measured in workerd
 * (profile.json `memory`, `npm run bench -- memory`), scaled by the row's input elements. The same
 * memory bound caps the rows of a batch at the request's shape (`maxBatchRows`), so concurrent
 * requests that each fit never form a batch that does not. A binary-extension request is checked
 * from its JSON header alone (`inputSizesOfHeader`), before its tensor bytes are read. Pure: no
 * platform imports.
 */
import type { Placement, ModelManifest } from "../models/manifest";
import { isBuffered, runtimeOf } from "../models/manifest";
import type { ModelFootprint } from "../models/profile";
import { classWidthOf } from "../batching/size-classes";
import { tooLarge } from "../protocol/errors";
import { binaryDataSize } from "../protocol/oip-binary";
import type { BodyPeek } from "../protocol/read-body";

/** Largest Durable Object RPC message (Cloudflare's limit), bytes. */
export const RPC_PAYLOAD_LIMIT_BYTES = 32 * 1024 * 1024;
/** Memory of one isolate (Cloudflare's limit: 128 MB), bytes. */
export const ISOLATE_MEMORY_LIMIT_BYTES = 128 * 1000 * 1000;
/** Share of the isolate's memory one model's session and batch may take (the rest: the runtime's own heap, request bodies in flight). */
export const MODEL_MEMORY_SHARE = 0.8;
/** Room left in an RPC message for what travels beside the tensors (job fields, shapes, names), bytes. */
const RPC_ENVELOPE_BYTES = 64 * 1024;

/** What one request needs of the platform, bytes. */
export interface RequestNeeds {
  /** Its inputs, as they travel to a buffer. */
  inputBytes: number;
  /** Its outputs, as they travel back (estimated from the footprint). */
  outputBytes: number;
  /** The isolate's memory for the session and this request alone as a batch. */
  memoryBytes: number;
  /** Input elements of one row (batched inputs only). */
  rowElements: number;
}

/** What the limits need of an input: its name, shape and bytes (a decoded tensor, or a binary request's header entry). */
export interface InputSize {
  name: string;
  shape: number[];
  byteLength: number;
}

/** Sizes of decoded tensors. */
export function inputSizesOf(inputs: ReadonlyArray<{ name: string; shape: number[]; data: ArrayBufferView }>): InputSize[] {
  return inputs.map((t) => ({ name: t.name, shape: t.shape, byteLength: t.data.byteLength }));
}

/**
 * Sizes and rows of a binary-extension request from its JSON header alone (every input carrying
 * `binary_data_size`), or undefined when the header is not one the limits can judge: then the full
 * decode, which validates everything, decides.
 */
export function inputSizesOfHeader(headerBytes: Uint8Array, manifest: Pick<ModelManifest, "inputs">): { inputs: InputSize[]; rows: number } | undefined {
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder().decode(headerBytes));
  } catch {
    return undefined;
  }
  if (typeof header !== "object" || header === null) return undefined;
  const entries = (header as { inputs?: unknown }).inputs;
  if (!Array.isArray(entries)) return undefined;
  const inputs: InputSize[] = [];
  let rows: number | undefined;
  for (const entry of entries as unknown[]) {
    if (typeof entry !== "object" || entry === null) return undefined;
    const byteLength = binaryDataSize(entry);
    const { name, shape } = entry as { name?: unknown; shape?: unknown };
    if (typeof name !== "string" || byteLength === undefined || !Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) return undefined;
    const axis = manifest.inputs.find((s) => s.name === name)?.batchAxis;
    if (axis !== undefined && axis !== null) rows ??= shape[axis] as number;
    inputs.push({ name, shape: shape as number[], byteLength });
  }
  return rows === undefined ? undefined : { inputs, rows };
}

/** A look at a binary request's JSON header (its length in `headerLengthValue`) that refuses it with 413 before its tensor bytes are read; undefined when there is nothing to check. */
export function headerLimitsPeek(footprint: ModelFootprint | undefined, placement: Placement, manifest: LimitsManifest, headerLengthValue: string | undefined): BodyPeek | undefined {
  if (!footprint || !/^\d{1,15}$/.test(headerLengthValue ?? "")) return undefined;
  return {
    bytes: Number(headerLengthValue),
    check(prefix) {
      const sizes = inputSizesOfHeader(prefix, manifest);
      if (sizes) checkPlatformLimits(footprint, placement, manifest, sizes.inputs, sizes.rows);
    },
  };
}

/** What the limits read of a manifest: its name, inputs and, when it has them, its size classes. */
type LimitsManifest = Pick<ModelManifest, "name" | "inputs"> & { batching?: Pick<ModelManifest["batching"], "sizeClasses"> };

/**
 * Input elements of one row of `inputs`: the batched inputs' elements divided by their rows; the
 * size-class input counts at its class width (its batch is padded to it).
 */
export function rowElementsOf(manifest: Omit<LimitsManifest, "name">, inputs: InputSize[], rows: number): number {
  const sizeClasses = manifest.batching?.sizeClasses;
  let elements = 0;
  for (const t of inputs) {
    const spec = manifest.inputs.find((s) => s.name === t.name);
    if (spec?.batchAxis === null || spec === undefined) continue;
    const classAxis = sizeClasses?.input === t.name ? sizeClasses.axis : -1;
    elements += t.shape.reduce((a, b, axis) => a * (axis === classAxis ? classWidthOf(sizeClasses!, b) : b), 1) / Math.max(1, rows);
  }
  return elements;
}

/** Output bytes of one row of `rowElements` input elements: in proportion to the reference row's (never less). */
function outputBytesPerRow(footprint: ModelFootprint, rowElements: number): number {
  return footprint.referenceRowElements > 0 ? footprint.outputBytesPerRow * Math.max(1, rowElements / footprint.referenceRowElements) : footprint.outputBytesPerRow;
}

/** Memory of one batch row of `rowElements` input elements: the reference row's, plus its growth per element beyond it. */
function memoryBytesPerRow(footprint: ModelFootprint, rowElements: number): number {
  return footprint.bytesPerRow + footprint.bytesPerRowPerElement * Math.max(0, rowElements - footprint.referenceRowElements);
}

/** What `rows` rows of `rowElements` input elements each need. */
export function needsOf(footprint: ModelFootprint, rows: number, rowElements: number, inputBytes: number): RequestNeeds {
  return { inputBytes, outputBytes: rows * outputBytesPerRow(footprint, rowElements), memoryBytes: footprint.sessionBytes + rows * memoryBytesPerRow(footprint, rowElements), rowElements };
}

/** Most rows of `rowElements` input elements one batch may hold in an isolate's memory (0 when not even the session fits). */
export function batchRowsThatFit(footprint: ModelFootprint, rowElements: number): number {
  const perRow = memoryBytesPerRow(footprint, rowElements);
  const room = MODEL_MEMORY_SHARE * ISOLATE_MEMORY_LIMIT_BYTES - footprint.sessionBytes;
  return perRow > 0 ? Math.max(0, Math.floor(room / perRow)) : Infinity;
}

/**
 * Checks a request against the platform's limits where `placement` runs it; throws 413 naming the
 * limit and the rows that fit at the request's shape. Returns the most rows a batch at this shape
 * may hold (memory), or undefined when there is no bound (no footprint, or the origin runs it).
 */
export function checkPlatformLimits(footprint: ModelFootprint | undefined, placement: Placement, manifest: LimitsManifest, inputs: InputSize[], rows: number): number | undefined {
  if (!footprint) return undefined;
  let inputBytes = 0;
  for (const t of inputs) inputBytes += t.byteLength;
  const needs = needsOf(footprint, rows, rowElementsOf(manifest, inputs, rows), inputBytes);
  const perRow = (bytes: number) => bytes / Math.max(1, rows);
  const fitting = (budget: number, bytesPerRow: number) => Math.max(0, Math.floor(budget / bytesPerRow));
  const where = `model '${manifest.name}'`;
  if (isBuffered(placement)) {
    const budget = RPC_PAYLOAD_LIMIT_BYTES - RPC_ENVELOPE_BYTES;
    for (const [what, bytes] of [["inputs", needs.inputBytes], ["outputs", needs.outputBytes]] as const) {
      if (bytes > budget) throw tooLarge(`${where}: this request's ${what} (${mib(bytes)} MiB) exceed the 32 MiB Durable Object RPC limit; at this shape at most ${fitting(budget, perRow(bytes))} rows per request fit`);
    }
  }
  if (runtimeOf(placement) !== "edge") return undefined;
  const maxRows = batchRowsThatFit(footprint, needs.rowElements);
  if (rows > maxRows) {
    throw tooLarge(`${where}: ${rows} rows at this shape need about ${mib(needs.memoryBytes)} MiB in the edge isolate, over the ${mib(MODEL_MEMORY_SHARE * ISOLATE_MEMORY_LIMIT_BYTES)} MiB a model may use of its 128 MB; at most ${maxRows} rows per request fit`);
  }
  return maxRows;
}

function mib(bytes: number): string {
  return (bytes / 1024 / 1024).toFixed(1);
}
