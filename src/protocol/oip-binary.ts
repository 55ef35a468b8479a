/**
 * The Open Inference Protocol binary tensor data extension (as Triton and KServe implement it): a
 * body is a JSON header followed by raw little-endian row-major tensor bytes, and the
 * `Inference-Header-Content-Length` header gives the JSON header's length. A tensor carried this
 * way has `parameters.binary_data_size` instead of `data`; a request asks for binary outputs with
 * `parameters.binary_data_output: true`. JSON costs ~20 bytes and ~50 ns per FP32 value each way;
 * this costs 4 bytes and a copy. Pure: no I/O.
 */
import { allocateTensorData, unpackBytes, type Datatype, type TensorData } from "./datatypes";
import type { Tensor } from "./tensor";

/** HTTP header giving the JSON header's length in bytes. */
export const INFERENCE_HEADER_LENGTH = "inference-header-content-length";

/** Content type of a binary-extension body. */
export const BINARY_CONTENT_TYPE = "application/octet-stream";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const isLittleEndian = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

/** A header tensor entry that points at binary data. */
export interface BinaryTensorEntry {
  name: string;
  datatype: Datatype;
  shape: number[];
  parameters: { binary_data_size: number };
}

/** Header entries (binary_data_size set) for `tensors`, in order. */
export function binaryEntries(tensors: Tensor[]): BinaryTensorEntry[] {
  return tensors.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape, parameters: { binary_data_size: t.data.byteLength } }));
}

/** JSON header + tensor bytes in one body; `headerLength` goes in Inference-Header-Content-Length. */
export function packBinary(header: object, tensors: Tensor[]): { body: Uint8Array<ArrayBuffer>; headerLength: number } {
  checkEndianness();
  const json = encoder.encode(JSON.stringify(header));
  const body = new Uint8Array(json.length + tensors.reduce((n, t) => n + t.data.byteLength, 0));
  body.set(json, 0);
  let offset = json.length;
  for (const t of tensors) {
    body.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), offset);
    offset += t.data.byteLength;
  }
  return { body, headerLength: json.length };
}

/** The body of a binary infer request for a batch, asking for binary outputs. */
export function encodeBinaryInferRequest(inputs: Tensor[], id: string, timeoutMs: number, outputs?: readonly string[]): { body: Uint8Array<ArrayBuffer>; headerLength: number } {
  return packBinary({ id, parameters: { timeout_ms: Math.max(1, Math.floor(timeoutMs)), binary_data_output: true }, inputs: binaryEntries(inputs), ...(outputs && { outputs: outputs.map((name) => ({ name })) }) }, inputs);
}

/** A body that does not follow the extension. */
export class BinaryFormatError extends Error {
  override name = "BinaryFormatError";
}

/** Splits a body into its parsed JSON header (and its text) and the bytes after it. Throws BinaryFormatError. */
export function unpackBinary(body: Uint8Array, headerLengthValue: string | null | undefined): { header: unknown; headerText: string; payload: Uint8Array } {
  const headerLength = /^\d{1,15}$/.test(headerLengthValue ?? "") ? Number(headerLengthValue) : NaN;
  if (!(headerLength >= 2 && headerLength <= body.length)) throw new BinaryFormatError(`Inference-Header-Content-Length must be decimal digits giving a length from 2 to the body's ${body.length} bytes`);
  const headerText = decoder.decode(body.subarray(0, headerLength));
  try {
    return { header: JSON.parse(headerText), headerText, payload: body.subarray(headerLength) };
  } catch {
    throw new BinaryFormatError("the inference header is not valid JSON");
  }
}

/** Reads binary tensors in header order from `payload`: a cursor that hands out typed arrays. */
export class BinaryReader {
  private offset = 0;

  constructor(private readonly payload: Uint8Array) {}

  /** The next `byteLength` bytes as a typed array of `datatype` holding `count` elements (copied, so it is aligned). */
  take(datatype: Datatype, count: number, byteLength: number): TensorData {
    checkEndianness();
    if (datatype === "BYTES") {
      if (this.offset + byteLength > this.payload.length) throw new BinaryFormatError("binary data is shorter than its binary_data_size entries");
      const data = this.payload.slice(this.offset, this.offset + byteLength);
      const elements = unpackBytes(data, false);
      if (elements?.length !== count) throw new BinaryFormatError(`binary_data_size ${byteLength} does not hold ${count} BYTES elements (each a 4-byte little-endian length, then its bytes)`);
      this.offset += byteLength;
      return data;
    }
    const data = allocateTensorData(datatype, count);
    if (data.byteLength !== byteLength) throw new BinaryFormatError(`binary_data_size ${byteLength} does not match ${count} ${datatype} values (${data.byteLength} bytes)`);
    if (this.offset + byteLength > this.payload.length) throw new BinaryFormatError("binary data is shorter than its binary_data_size entries");
    new Uint8Array(data.buffer).set(this.payload.subarray(this.offset, this.offset + byteLength));
    this.offset += byteLength;
    return data;
  }

  /** Skips `byteLength` bytes (a tensor the reader does not want). */
  skip(byteLength: number): void {
    if (this.offset + byteLength > this.payload.length) throw new BinaryFormatError("binary data is shorter than its binary_data_size entries");
    this.offset += byteLength;
  }

  /** Throws unless every byte was consumed. */
  finish(): void {
    if (this.offset !== this.payload.length) throw new BinaryFormatError(`${this.payload.length - this.offset} bytes of binary data are not described by the header`);
  }
}

/** The binary_data_size of a header tensor entry, if it has one. */
export function binaryDataSize(entry: { parameters?: unknown }): number | undefined {
  const size = (entry.parameters as { binary_data_size?: unknown } | undefined)?.binary_data_size;
  return typeof size === "number" && Number.isInteger(size) && size >= 0 ? size : undefined;
}

function checkEndianness(): void {
  if (!isLittleEndian) throw new Error("the binary tensor extension needs a little-endian host");
}
