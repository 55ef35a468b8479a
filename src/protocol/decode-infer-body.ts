/**
 * Turns an infer request's raw body into a validated InferRequest, on the edge and the origin alike:
 * the binary tensor extension when Inference-Header-Content-Length is given, JSON otherwise. Checks
 * here what only the text shows (JSON.parse reads `512.0` as 512): shape dims must be integer
 * literals. Everything else is parseInferRequest's.
 */
import type { RequestSpec } from "../models/manifest";
import { badRequest } from "./errors";
import { parseInferRequest, type InferRequest } from "./infer-request";
import { BinaryFormatError, INFERENCE_HEADER_LENGTH, unpackBinary } from "./oip-binary";

const decoder = new TextDecoder();

/** A `"shape": [...]` array in JSON text (a `"shape"` inside a string is escaped, so it does not match). */
const SHAPE_ARRAY = /"shape"\s*:\s*\[([^\]]*)\]/g;
const INTEGER_LITERAL = /^\s*-?\d+\s*$/;

/** Parses `body` for `manifest`, reading Inference-Header-Content-Length and Content-Type from `headers`. Throws InferenceError. */
export function decodeInferBody(body: Uint8Array, headers: Pick<Headers, "get">, manifest: RequestSpec): InferRequest {
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

/**
 * Refuses shape dims written as non-integers (`512.0`, `5e2`), naming the input. A cheap scan of
 * the text clears almost every request: no `"shape"` array holds anything but integer literals, and
 * no key is written with escapes. Otherwise a scan of the JSON's tokens (iterative, so any depth is
 * fine) looks at the number literals of exactly `inputs[i].shape`.
 */
function checkShapeLiterals(text: string, request: unknown): void {
  const isSuspect = text.includes("\\u") || [...text.matchAll(SHAPE_ARRAY)].some((m) => m[1]!.split(",").some((dim) => dim.trim() !== "" && !INTEGER_LITERAL.test(dim)));
  if (!isSuspect) return;
  const bad = nonIntegerShapeLiteral(text);
  if (!bad) return;
  const name = (request as { inputs?: Array<{ name?: unknown } | null> })?.inputs?.[bad.input]?.name;
  const where = typeof name === "string" ? `input '${name.slice(0, 64)}'` : `input ${bad.input}`;
  throw badRequest(`${where}: dimension ${JSON.stringify(bad.literal.slice(0, 32))} must be written as an integer`);
}

const NUMBER_TOKEN = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/** The first number in some `inputs[i].shape` of (already valid) JSON text not written as an integer. */
function nonIntegerShapeLiteral(text: string): { input: number; literal: string } | undefined {
  type Role = "root" | "inputs" | "input" | "shape" | "other";
  const stack: Array<{ isObject: boolean; role: Role; key?: string; index: number; input: number }> = [];
  let isKeyNext = false;
  for (let i = 0; i < text.length; ) {
    const c = text[i]!;
    if (c === "{" || c === "[") {
      const isObject = c === "{";
      const parent = stack.at(-1);
      let role: Role = "other";
      let input = -1;
      if (!parent) role = isObject ? "root" : "other";
      else if (parent.role === "root" && parent.key === "inputs" && !isObject) role = "inputs";
      else if (parent.role === "inputs" && isObject) [role, input] = ["input", parent.index];
      else if (parent.role === "input" && parent.key === "shape" && !isObject) [role, input] = ["shape", parent.input];
      stack.push({ isObject, role, index: 0, input });
      isKeyNext = isObject;
      i++;
    } else if (c === "}" || c === "]") {
      stack.pop();
      isKeyNext = false;
      i++;
    } else if (c === ",") {
      const top = stack.at(-1);
      if (top) [top.index, isKeyNext] = [top.index + 1, top.isObject];
      i++;
    } else if (c === '"') {
      let end = i + 1;
      while (text[end] !== '"') end += text[end] === "\\" ? 2 : 1;
      if (isKeyNext) stack.at(-1)!.key = JSON.parse(text.slice(i, end + 1)) as string;
      isKeyNext = false;
      i = end + 1;
    } else if (c === "-" || (c >= "0" && c <= "9")) {
      NUMBER_TOKEN.lastIndex = i;
      const literal = NUMBER_TOKEN.exec(text)![0];
      const top = stack.at(-1);
      if (top?.role === "shape" && !INTEGER_LITERAL.test(literal)) return { input: top.input, literal };
      i += literal.length;
    } else {
      i++;
    }
  }
  return undefined;
}
