/**
 * Turns an infer request's raw body into a validated InferRequest, on the edge and the origin:
 * the binary tensor extension when Inference-Header-Content-Length is given, JSON otherwise.
 */
import type { ModelManifest } from "../models/manifest";
import { badRequest } from "./errors";
import { parseInferRequest, type InferRequest } from "./infer-request";
import { BinaryFormatError, unpackBinary } from "./oip-binary";

const decoder = new TextDecoder();

/** Parses `body` for `manifest`; `headerLength` is the Inference-Header-Content-Length header. Throws InferenceError. */
export function decodeInferBody(body: Uint8Array, headerLength: string | undefined, manifest: ModelManifest): InferRequest {
  if (headerLength !== undefined) {
    let unpacked: ReturnType<typeof unpackBinary>;
    try {
      unpacked = unpackBinary(body, headerLength);
    } catch (error) {
      if (error instanceof BinaryFormatError) throw badRequest(`invalid binary request: ${error.message}`);
      throw error;
    }
    return parseInferRequest(unpacked.header, manifest, unpacked.payload);
  }
  let json: unknown;
  try {
    json = JSON.parse(decoder.decode(body));
  } catch {
    throw badRequest("request body is not valid JSON");
  }
  return parseInferRequest(json, manifest);
}
