/**
 * Reads a request body, on the edge and the origin alike, within limits a client cannot stretch:
 * - size: with a Content-Length the cap is checked up front and the body read in one piece, which
 *   keeps @hono/node-server on its direct path (touching `request.body` would convert the Node
 *   stream to a web stream: measured ~3x slower for a 1.2 MB tensor); chunked bodies are streamed
 *   and cut off at the cap. Oversize: 413.
 * - time: the whole body must arrive within `timeoutMs` of the call (a client that trickles or stops
 *   sending gets 408, and its connection is not held beyond that).
 * - truncation: a body that ends before its Content-Length (the client went away) is a 400.
 * - encoding: `Content-Encoding: gzip` or `deflate` (zlib) bodies are decoded, with the same cap on
 *   the decoded size (a decompression bomb gets 413, found after decoding at most ~16 MiB past the
 *   cap); undecodable ones get 400, other encodings 415.
 */
import { Gunzip, Unzlib } from "fflate";
import { badRequest, InferenceError, tooLarge } from "./errors";

/** How long a client may take to send its whole body, by default, in ms. */
export const DEFAULT_BODY_TIMEOUT_MS = 30_000;

/** Limits on a request body. */
export interface BodyLimits {
  /** Largest body, in bytes, before and after decoding. */
  maxBytes: number;
  /** Longest time to receive the whole body, in ms. */
  timeoutMs: number;
}

/** Content-Encoding values and the fflate stream that decodes them (null: none). */
const DECODERS: Record<string, (typeof Gunzip | typeof Unzlib) | null> = { identity: null, gzip: Gunzip, "x-gzip": Gunzip, deflate: Unzlib };

/** Bodies up to this size are read whole, without a peek. */
const MIN_PEEKED_BYTES = 256 * 1024;

/** Compressed bytes fed to the decoder at a time: deflate expands at most ~1032x, so one step yields at most ~16 MiB. */
const DECODE_STEP_BYTES = 16 * 1024;

/**
 * A look at the body's first `bytes` bytes as soon as they have arrived (a binary-extension
 * request's JSON header), before the rest is read: `check` may throw to refuse the request there,
 * which stops the read. Only for bodies sent as is (no Content-Encoding) with a Content-Length of
 * more than MIN_PEEKED_BYTES; a smaller body is read whole, unchecked (refusing it early would save
 * less than the look costs: the caller checks what it parses anyway).
 */
export interface BodyPeek {
  bytes: number;
  check(prefix: Uint8Array): void;
}

/** The body's decoded bytes, or an InferenceError: 413 too large, 408 too slow, 400 truncated or undecodable, 415 unknown encoding. */
export async function readBody(request: Request, limits: BodyLimits, peek?: BodyPeek): Promise<Uint8Array> {
  const { Decoder, encoding } = decoderFor(request.headers); // an unknown encoding is refused before the body is read
  const raw = await readRawBody(request, limits, Decoder === null ? peek : undefined);
  return Decoder === null ? raw : decode(raw, Decoder, encoding, limits.maxBytes);
}

/** The body's bytes as sent (still encoded), within the size and time limits. */
export function readRawBody(request: Request, limits: BodyLimits, peek?: BodyPeek): Promise<Uint8Array> {
  return withTimeout(readRaw(request, limits.maxBytes, peek), limits.timeoutMs, () => {
    try {
      void request.body?.cancel().catch(() => undefined);
    } catch {
      // the body is already gone
    }
  });
}

/**
 * Reads and drops a body that no handler read, within `limits`, before an answer that refuses the
 * request (shed at admission, unknown model, bad key): workerd resets a connection whose request body
 * was not read to its end, and a client still sending sees the reset instead of the answer (110 KB
 * bodies refused unread at 800/s: 8-12 % got ECONNRESET; drained: none, at no more CPU). A body over
 * the size limit is left unread: its 413 may close the connection, as other servers' do.
 */
export async function drainBody(request: Request, limits: BodyLimits): Promise<void> {
  if (!request.body || request.bodyUsed) return;
  await readRawBody(request, limits).catch(() => undefined);
}

/** Decodes bytes as sent by their Content-Encoding (identity, gzip or deflate), at most `maxBytes` of output. */
export function decodeContent(raw: Uint8Array, headers: Pick<Headers, "get">, maxBytes: number): Uint8Array {
  const { Decoder, encoding } = decoderFor(headers);
  return Decoder === null ? raw : decode(raw, Decoder, encoding, maxBytes);
}

function decoderFor(headers: Pick<Headers, "get">): { Decoder: (typeof Gunzip | typeof Unzlib) | null; encoding: string } {
  const encoding = (headers.get("content-encoding") ?? "identity").trim().toLowerCase();
  const Decoder = DECODERS[encoding];
  if (Decoder === undefined) throw new InferenceError(415, `Content-Encoding ${JSON.stringify(encoding.slice(0, 32))} is not supported; send identity, gzip or deflate`);
  return { Decoder, encoding };
}

/**
 * Decodes a gzip or zlib body with fflate (pure JS: workerd's DecompressionStream reports spurious
 * unhandled rejections on bad input), stopping as soon as the output passes `maxBytes`.
 */
function decode(raw: Uint8Array, Decoder: typeof Gunzip | typeof Unzlib, encoding: string, maxBytes: number): Uint8Array {
  const chunks: Uint8Array[] = [];
  let size = 0;
  let isComplete = false;
  const decoder = new Decoder((chunk, isFinal) => {
    size += chunk.length;
    if (size <= maxBytes) chunks.push(chunk);
    if (isFinal) isComplete = true;
  });
  try {
    for (let offset = 0; offset < raw.length && size <= maxBytes; offset += DECODE_STEP_BYTES) {
      decoder.push(raw.subarray(offset, offset + DECODE_STEP_BYTES), offset + DECODE_STEP_BYTES >= raw.length);
    }
  } catch {
    throw badRequest(`request body is not valid ${encoding} data`);
  }
  if (size > maxBytes) throw tooLarge(`decoded request body larger than ${maxBytes} bytes`);
  if (!isComplete) throw badRequest(`request body is not valid ${encoding} data (it ends early)`);
  return concat(chunks, size);
}

async function readRaw(request: Request, maxBytes: number, peek?: BodyPeek): Promise<Uint8Array> {
  const length = request.headers.get("content-length");
  if (length !== null && !request.headers.has("transfer-encoding")) {
    if (!/^\d+$/.test(length) || Number(length) > maxBytes) throw tooLarge(`request body larger than ${maxBytes} bytes`);
    if (peek && request.body && peek.bytes > 0 && peek.bytes < Number(length) && Number(length) > MIN_PEEKED_BYTES) return readPeeking(request.body, Number(length), peek);
    let bytes: ArrayBuffer;
    try {
      bytes = await request.arrayBuffer();
    } catch {
      throw truncated();
    }
    if (bytes.byteLength !== Number(length)) throw truncated();
    return new Uint8Array(bytes);
  }
  if (!request.body) return new Uint8Array(0);
  try {
    return await collect(request.body, maxBytes, `request body larger than ${maxBytes} bytes`);
  } catch (error) {
    if (error instanceof InferenceError) throw error;
    throw truncated();
  }
}

/**
 * Reads a body of `length` bytes into one buffer, calling `peek.check` once its first `peek.bytes`
 * have arrived. When the check refuses the request, the rest is still read (then dropped): a
 * connection closed under a client still sending is reset, and the client would never read the
 * answer (workerd resets it even when the rest is read after the answer, in waitUntil).
 * The bytes are read straight into the body's buffer (a BYOB reader; workerd's `readAtLeast` fills
 * the prefix, then the rest, in a few reads instead of one per network chunk).
 */
async function readPeeking(stream: ReadableStream<Uint8Array>, length: number, peek: BodyPeek): Promise<Uint8Array> {
  const reader = stream.getReader({ mode: "byob" }) as ByobReader;
  reader.closed.catch(() => undefined);
  const read = async (view: Uint8Array, atLeast: number): Promise<Uint8Array | undefined> => {
    try {
      const { done, value } = await (reader.readAtLeast ? reader.readAtLeast(atLeast, view) : reader.read(view));
      return done || !value ? undefined : value;
    } catch {
      throw refusal ?? truncated();
    }
  };
  let buffer = new ArrayBuffer(length);
  let refusal: unknown;
  let size = 0;
  // Up to the prefix, then the rest (a refused body's too, read to its end before the refusal).
  for (const until of [peek.bytes, length]) {
    while (size < until) {
      const value = await read(new Uint8Array(buffer, size, length - size), until - size);
      if (!value) break;
      buffer = value.buffer as ArrayBuffer; // the read transferred the buffer
      size += value.byteLength;
      if (refusal === undefined && until === peek.bytes && size >= peek.bytes) {
        try {
          peek.check(new Uint8Array(buffer, 0, peek.bytes));
        } catch (error) {
          refusal = error;
        }
      }
    }
  }
  // The body must end at its Content-Length: anything more is not a body to trust.
  if (size === length && (await read(new Uint8Array(1), 1))) {
    await reader.cancel().catch(() => undefined);
    throw refusal ?? truncated();
  }
  if (refusal !== undefined) throw refusal;
  if (size !== length) throw truncated();
  return new Uint8Array(buffer);
}

/** A BYOB reader, with workerd's `readAtLeast` where the platform has it. */
type ByobReader = ReadableStreamBYOBReader & { readAtLeast?: (minBytes: number, view: Uint8Array) => Promise<ReadableStreamReadResult<Uint8Array>> };

const truncated = () => badRequest("request body ended before it was complete (shorter than its Content-Length, or the connection closed)");

/** Reads a stream to its end, cancelling it and throwing 413 `message` once it passes `maxBytes`. */
async function collect(stream: ReadableStream<Uint8Array>, maxBytes: number, message: string): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const reader = stream.getReader();
  reader.closed.catch(() => undefined); // a failed stream rejects this too; the read below reports it
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge(message);
    }
    chunks.push(value);
  }
  return concat(chunks, size);
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.length;
  }
  return body;
}

/** `work`, or a 408 once `timeoutMs` passed (then `onTimeout` lets go of the body). */
async function withTimeout<T>(work: Promise<T>, timeoutMs: number, onTimeout: () => void): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new InferenceError(408, `request body not received within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    return await Promise.race([work, timeout]);
  } finally {
    if (timer !== undefined) clearTimeout(timer);
    work.catch(() => undefined);
  }
}
