/**
 * Reads a request body as text, refusing more than `maxBytes`: a declared Content-Length over the
 * limit is refused before anything is read, and a body without one is cut off as soon as it passes
 * the limit, so an oversized request never gets buffered or parsed.
 */
import { tooLarge } from "../protocol/errors";

/** The body as UTF-8 text, or a 413 InferenceError when it is larger than `maxBytes`. */
export async function readBodyText(request: Request, maxBytes: number): Promise<string> {
  const declared = Number(request.headers.get("content-length") ?? NaN);
  const refuse = () => tooLarge(`request body larger than ${maxBytes} bytes`);
  if (declared > maxBytes) throw refuse();
  if (!request.body) return "";
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
  return new TextDecoder().decode(bytes);
}
