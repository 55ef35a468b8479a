/**
 * Reads a request body, refusing more than `maxBytes`: a declared Content-Length over the
 * limit is refused before anything is read, and a body without one is cut off as soon as it passes
 * the limit, so an oversized request never gets buffered or parsed.
 */
import { tooLarge } from "../protocol/errors";

/** The body's bytes, or a 413 InferenceError when it is larger than `maxBytes`. */
export async function readBody(request: Request, maxBytes: number): Promise<Uint8Array> {
  const declared = Number(request.headers.get("content-length") ?? NaN);
  const refuse = () => tooLarge(`request body larger than ${maxBytes} bytes`);
  if (declared > maxBytes) throw refuse();
  if (!request.body) return new Uint8Array(0);
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw refuse();
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return bytes;
}
