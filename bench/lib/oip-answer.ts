/**
 * Reads an Open Inference Protocol infer answer as a client does: the echoed `id` and FP32 outputs,
 * from a JSON body or from the binary tensor extension (Inference-Header-Content-Length), and
 * whether an error answer carries the protocol's `{"error": "..."}` body. Pure.
 */
import type { OutputTensor } from "./soak-models";

/** A decoded infer answer, or why it could not be read. */
export type DecodedAnswer = { isReadable: true; id: unknown; outputs: Map<string, OutputTensor> } | { isReadable: false; reason: string };

interface OutputEntry {
  name: string;
  datatype: string;
  shape: number[];
  data?: number[];
  parameters?: { binary_data_size?: number };
}

/** Decodes a 200 answer's body; `headerLength` is its Inference-Header-Content-Length, if any. */
export function decodeAnswer(body: Buffer, headerLength: string | undefined): DecodedAnswer {
  try {
    const jsonLength = headerLength === undefined ? body.length : Number(headerLength);
    if (!Number.isInteger(jsonLength) || jsonLength < 2 || jsonLength > body.length) return { isReadable: false, reason: `bad Inference-Header-Content-Length ${headerLength}` };
    const header = JSON.parse(body.subarray(0, jsonLength).toString("utf8")) as { id?: unknown; outputs?: OutputEntry[] };
    if (!Array.isArray(header.outputs)) return { isReadable: false, reason: "no outputs array" };
    const outputs = new Map<string, OutputTensor>();
    let offset = jsonLength;
    for (const o of header.outputs) {
      if (o.datatype !== "FP32") return { isReadable: false, reason: `output ${o.name}: datatype ${o.datatype}` };
      const size = o.parameters?.binary_data_size;
      if (size === undefined) {
        outputs.set(o.name, { shape: o.shape, data: o.data ?? [] });
        continue;
      }
      if (offset + size > body.length) return { isReadable: false, reason: `output ${o.name}: binary data past the body's end` };
      const data = new Float32Array(size / 4);
      new Uint8Array(data.buffer).set(body.subarray(offset, offset + size));
      offset += size;
      outputs.set(o.name, { shape: o.shape, data });
    }
    if (offset !== body.length) return { isReadable: false, reason: `${body.length - offset} bytes after the outputs` };
    return { isReadable: true, id: header.id, outputs };
  } catch (error) {
    return { isReadable: false, reason: `unparsable: ${(error as Error).message}` };
  }
}

/** The `error` message of an error answer's JSON body, or undefined when it has none. */
export function errorMessage(body: Buffer): string | undefined {
  try {
    const json = JSON.parse(body.toString("utf8")) as { error?: unknown };
    return typeof json.error === "string" ? json.error : undefined;
  } catch {
    return undefined;
  }
}
