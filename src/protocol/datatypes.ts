/**
 * Open Inference Protocol tensor datatypes and the typed arrays that hold them. FP16 is not
 * supported by the runtimes we ship, so it is not listed.
 *
 * BYTES elements are byte strings of any length. A BYTES tensor's data is one Uint8Array in the
 * binary tensor extension's own layout (Triton's): each element as a 4-byte little-endian length and
 * then its bytes. So a BYTES tensor crosses the binary extension and RPC as it is, like any other.
 * In JSON an element is a string: its UTF-8 bytes, or, with the tensor parameter
 * `content_type: "base64"` (MLServer's convention for binary content such as images), the bytes it
 * encodes. Answers give elements as UTF-8 strings.
 */

/** Datatypes this runtime accepts, by their protocol names. */
export const DATATYPES = ["BOOL", "UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "INT64", "UINT64", "FP32", "FP64", "BYTES"] as const;

/** An Open Inference Protocol datatype name. */
export type Datatype = (typeof DATATYPES)[number];

/** Any typed array that can hold tensor data. */
export type TensorData =
  | Uint8Array | Int8Array | Uint16Array | Int16Array | Uint32Array | Int32Array
  | BigInt64Array | BigUint64Array | Float32Array | Float64Array;

/** Largest finite float32 ((2 - 2^-23) x 2^127). */
const FP32_MAX = 3.4028234663852886e38;

interface DatatypeInfo {
  /** Creates a zero-filled array of n elements (BYTES: n empty elements). */
  allocate(n: number): TensorData;
  /** onnxruntime's name for the type. */
  ortType: string;
  /** Whether JSON values are integers (so 1.5 is rejected) and their bounds. */
  integer?: { min: number | bigint; max: number | bigint };
  /** Largest finite magnitude of a float type (a JSON value beyond it would silently become infinity). */
  maxMagnitude?: number;
  isBigInt?: boolean;
  isBool?: boolean;
  /** Length-prefixed byte strings (written by packBytes, not writeJsonValue). */
  isBytes?: boolean;
}

const INFO: Record<Datatype, DatatypeInfo> = {
  BOOL: { allocate: (n) => new Uint8Array(n), ortType: "bool", isBool: true },
  UINT8: { allocate: (n) => new Uint8Array(n), ortType: "uint8", integer: { min: 0, max: 255 } },
  INT8: { allocate: (n) => new Int8Array(n), ortType: "int8", integer: { min: -128, max: 127 } },
  UINT16: { allocate: (n) => new Uint16Array(n), ortType: "uint16", integer: { min: 0, max: 65535 } },
  INT16: { allocate: (n) => new Int16Array(n), ortType: "int16", integer: { min: -32768, max: 32767 } },
  UINT32: { allocate: (n) => new Uint32Array(n), ortType: "uint32", integer: { min: 0, max: 4294967295 } },
  INT32: { allocate: (n) => new Int32Array(n), ortType: "int32", integer: { min: -2147483648, max: 2147483647 } },
  INT64: { allocate: (n) => new BigInt64Array(n), ortType: "int64", integer: { min: -(2n ** 63n), max: 2n ** 63n - 1n }, isBigInt: true },
  UINT64: { allocate: (n) => new BigUint64Array(n), ortType: "uint64", integer: { min: 0n, max: 2n ** 64n - 1n }, isBigInt: true },
  FP32: { allocate: (n) => new Float32Array(n), ortType: "float32", maxMagnitude: FP32_MAX },
  FP64: { allocate: (n) => new Float64Array(n), ortType: "float64", maxMagnitude: Number.MAX_VALUE },
  BYTES: { allocate: (n) => new Uint8Array(4 * n), ortType: "string", isBytes: true },
};

/** Allocates a zero-filled typed array for n elements of a datatype. */
export function allocateTensorData(datatype: Datatype, n: number): TensorData {
  return INFO[datatype].allocate(n);
}

/** onnxruntime's type name ("float32", "int64", ...) for a protocol datatype. */
export function ortTypeOf(datatype: Datatype): string {
  return INFO[datatype].ortType;
}

/** The protocol datatype for an onnxruntime type name, or undefined if unsupported. */
export function datatypeOfOrtType(ortType: string): Datatype | undefined {
  return DATATYPES.find((d) => INFO[d].ortType === ortType);
}

/**
 * Writes one JSON value into `out[i]`, or returns why it cannot be: integers must be whole and in
 * range, BOOL takes true/false, floats take finite numbers the type can hold (1e39 is not an FP32).
 */
export function writeJsonValue(datatype: Datatype, out: TensorData, i: number, value: unknown): string | undefined {
  const info = INFO[datatype];
  if (info.isBytes) return "BYTES values are strings (bytesFromJson)";
  if (info.isBool) {
    if (typeof value !== "boolean") return "expected true or false";
    out[i] = value ? 1 : 0;
    return undefined;
  }
  if (typeof value !== "number" || !Number.isFinite(value)) return "expected a finite number";
  if (info.integer) {
    if (!Number.isInteger(value)) return "expected an integer";
    if (info.isBigInt) {
      if (!Number.isSafeInteger(value)) return "integer outside the safe JSON range";
      const big = BigInt(value);
      if (big < (info.integer.min as bigint) || big > (info.integer.max as bigint)) return "integer out of range";
      out[i] = big;
      return undefined;
    }
    if (value < (info.integer.min as number) || value > (info.integer.max as number)) return "integer out of range";
  } else if (Math.abs(value) > info.maxMagnitude!) {
    return `magnitude above the largest finite ${datatype} (${info.maxMagnitude})`;
  }
  out[i] = value;
  return undefined;
}

/** Converts tensor data to plain JSON values (int64 as numbers; BOOL as booleans; BYTES as UTF-8 strings). */
export function toJsonValues(datatype: Datatype, data: TensorData): Array<number | boolean | string> {
  if (INFO[datatype].isBytes) return unpackBytes(data as Uint8Array).map((e) => utf8.decode(e));
  if (INFO[datatype].isBool) return Array.from(data as Uint8Array, (v) => v !== 0);
  if (INFO[datatype].isBigInt) return Array.from(data as BigInt64Array, (v) => Number(v));
  return Array.from(data as Float32Array);
}

const utf8 = new TextDecoder();
const utf8Encoder = new TextEncoder();

/** BYTES elements in their tensor layout: each one's 4-byte little-endian length, then its bytes. */
export function packBytes(elements: readonly Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(elements.reduce((n, e) => n + 4 + e.length, 0));
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const e of elements) {
    view.setUint32(offset, e.length, true);
    out.set(e, offset + 4);
    offset += 4 + e.length;
  }
  return out;
}

/** A BYTES tensor's elements (views into `data`); undefined when the lengths do not tile it exactly. */
export function unpackBytes(data: Uint8Array): Uint8Array[];
export function unpackBytes(data: Uint8Array, strict: false): Uint8Array[] | undefined;
export function unpackBytes(data: Uint8Array, strict = true): Uint8Array[] | undefined {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const elements: Uint8Array[] = [];
  for (let offset = 0; offset < data.length; ) {
    const length = offset + 4 <= data.length ? view.getUint32(offset, true) : -1;
    if (length < 0 || offset + 4 + length > data.length) {
      if (strict) throw new RangeError("BYTES data is not a sequence of length-prefixed elements");
      return undefined;
    }
    elements.push(data.subarray(offset + 4, offset + 4 + length));
    offset += 4 + length;
  }
  return elements;
}

/** JSON BYTES values (strings; base64 when `isBase64`) as tensor data, or why they cannot be. */
export function bytesFromJson(values: readonly unknown[], isBase64: boolean): Uint8Array | string {
  const elements: Uint8Array[] = [];
  for (const [i, value] of values.entries()) {
    if (typeof value !== "string") return `value ${i}: expected a string for BYTES`;
    if (!isBase64) elements.push(utf8Encoder.encode(value));
    else if (!BASE64.test(value)) return `value ${i}: not valid base64`;
    else elements.push(fromBinaryString(atob(value)));
  }
  return packBytes(elements);
}

function fromBinaryString(text: string): Uint8Array {
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
