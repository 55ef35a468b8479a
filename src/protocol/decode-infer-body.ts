/**
 * Turns an infer request's raw body into a validated InferRequest, on the edge and the origin alike:
 * the binary tensor extension when Inference-Header-Content-Length is given, JSON otherwise. Checks
 * here what only the text shows (JSON.parse reads `512.0` as 512): shape dims must be integer
 * literals. Everything else is parseInferRequest's.
 */
import type { ModelManifest } from "../models/manifest";
import { badRequest } from "./errors";
import { parseInferRequest, type InferRequest } from "./infer-request";
import { BinaryFormatError, INFERENCE_HEADER_LENGTH, unpackBinary } from "./oip-binary";

const decoder = new TextDecoder();

/** A `"shape": [...]` array in JSON text (a `"shape"` inside a string is escaped, so it does not match). */
const SHAPE_ARRAY = /"shape"\s*:\s*\[([^\]]*)\]/g;
const INTEGER_LITERAL = /^\s*-?\d+\s*$/;

/** Parses `body` for `manifest`, reading Inference-Header-Content-Length and Content-Type from `headers`. Throws InferenceError. */
export function decodeInferBody(body: Uint8Array, headers: Pick<Headers, "get">, manifest: ModelManifest): InferRequest {
  const headerLength = headers.get(INFERENCE_HEADER_LENGTH);
  if (headerLength !== null) {
    if (/^application\/json\b/i.test(headers.get("content-type") ?? "")) {
      throw badRequest("Inference-Header-Content-Length is given with Content-Type application/json; send the binary tensor extension as application/octet-stream (or omit the header)");
    }
    let unpacked: ReturnType<typeof unpackBinary>;
    try {
      unpacked = unpackBinary(body, headerLength);
    } catch (error) {
      if (error instanceof BinaryFormatError) throw badRequest(`invalid binary request: ${error.message}`);
      throw error;
    }
    checkShapeLiterals(unpacked.headerText, unpacked.header);
    return parseInferRequest(unpacked.header, manifest, unpacked.payload);
  }
  const text = decoder.decode(body);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw badRequest("request body is not valid JSON");
  }
  checkShapeLiterals(text, json);
  return parseInferRequest(json, manifest);
}

/** Refuses shape dims written as non-integers (`512.0`, `5e2`), naming the input where it can. */
function checkShapeLiterals(text: string, request: unknown): void {
  let index = 0;
  for (const match of text.matchAll(SHAPE_ARRAY)) {
    const bad = match[1]!.split(",").find((dim) => dim.trim() !== "" && !INTEGER_LITERAL.test(dim));
    if (bad !== undefined) {
      const name = (request as { inputs?: Array<{ name?: unknown }> })?.inputs?.[index]?.name;
      const where = typeof name === "string" ? `input '${name.slice(0, 64)}'` : "a shape";
      throw badRequest(`${where}: dimension ${JSON.stringify(bad.trim().slice(0, 32))} must be written as an integer`);
    }
    index++;
  }
}
