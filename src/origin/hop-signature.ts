/**
 * Signatures of the edge-to-origin hop: HMAC-SHA256 with a shared secret over the method, the host
 * the request is addressed to, the path (with query), a timestamp, a nonce and the SHA-256 of the
 * body. The host binds a signature to one server: a request captured on its way to one replica (or
 * to the edge) cannot be replayed against another that shares the secret. The edge signs every request it
 * sends; the origin verifies before it reads anything else. WebCrypto only (crypto.subtle), so the
 * same module runs in workerd and in Node. Time is passed in; nothing here reads a clock.
 *
 * Wire format (request headers):
 *   X-Hop-Timestamp: epoch milliseconds at signing
 *   X-Hop-Nonce:     random hex, unique per request (the origin remembers it to refuse replays)
 *   X-Hop-Signature: hex HMAC-SHA256 of the canonical string below
 * Canonical string: "hop-v2\n" + METHOD + "\n" + host + "\n" + path?query + "\n" + timestamp + "\n" +
 * nonce + "\n" + hex(sha256(body)) + "\n" + Inference-Header-Content-Length (empty when absent: it
 * says where a binary-extension body's JSON ends, so it is signed too). `host` is the URL's host
 * (lower case, with the port when the URL has one): the signer takes it from the URL it sends to,
 * the verifier from the URL it was reached at (its Host header), so a proxy in between must keep
 * the Host header.
 */

/** Header names carrying the signature. */
export const HOP_HEADERS = { timestamp: "x-hop-timestamp", nonce: "x-hop-nonce", signature: "x-hop-signature" } as const;

/** Largest accepted difference between the signing time and the verifier's clock, in ms (both directions). */
export const MAX_SIGNATURE_AGE_MS = 30_000;

/** Shortest accepted shared secret, in characters. */
export const MIN_SECRET_LENGTH = 16;

const encoder = new TextEncoder();
const keys = new Map<string, Promise<CryptoKey>>();

/** What a signature covers. `body` is the exact bytes sent (empty for GET). */
export interface SignedParts {
  method: string;
  /** The host the request is addressed to, as in its URL (`new URL(url).host`), e.g. "10.0.0.7:8801". */
  host: string;
  /** Path and query as sent, e.g. "/v2/models/ppocr-det/infer". */
  path: string;
  body: Uint8Array | string;
  /** The Inference-Header-Content-Length header, when the body uses the binary tensor extension. */
  inferenceHeaderLength?: string | number | null;
}

/** Headers to add to a request so the origin accepts it. */
export async function signHop(secret: string, parts: SignedParts, nowMs: number, nonce = randomNonce()): Promise<Record<string, string>> {
  const timestamp = String(Math.floor(nowMs));
  const mac = await hmac(secret, await canonical(parts, timestamp, nonce));
  return { [HOP_HEADERS.timestamp]: timestamp, [HOP_HEADERS.nonce]: nonce, [HOP_HEADERS.signature]: toHex(mac) };
}

/** Why a request was refused, or that it is authentic (with the nonce, for replay checks). */
export type HopVerdict =
  | { ok: true; nonce: string; timestampMs: number }
  | { ok: false; reason: "unsigned" | "malformed" | "stale" | "bad-signature" };

/** SHA-256 of a body; WebCrypto's by default, a platform's faster one may be passed in (Node: node:crypto, ~3x). */
export type Sha256 = (bytes: Uint8Array) => Uint8Array | Promise<Uint8Array>;

/** Checks a request's signature headers against `parts` and the verifier's clock `nowMs`. */
export async function verifyHop(
  secret: string,
  parts: SignedParts,
  header: (name: string) => string | null | undefined,
  nowMs: number,
  { maxAgeMs = MAX_SIGNATURE_AGE_MS, sha256 = webCryptoSha256 }: { maxAgeMs?: number; sha256?: Sha256 } = {},
): Promise<HopVerdict> {
  const timestamp = header(HOP_HEADERS.timestamp);
  const nonce = header(HOP_HEADERS.nonce);
  const signature = header(HOP_HEADERS.signature);
  if (!timestamp && !nonce && !signature) return { ok: false, reason: "unsigned" };
  if (!timestamp || !nonce || !signature || !/^\d{1,16}$/.test(timestamp) || !/^[0-9a-f]{16,64}$/.test(nonce) || !/^[0-9a-f]{64}$/.test(signature)) {
    return { ok: false, reason: "malformed" };
  }
  const timestampMs = Number(timestamp);
  if (Math.abs(nowMs - timestampMs) > maxAgeMs) return { ok: false, reason: "stale" };
  const expected = await hmac(secret, await canonical(parts, timestamp, nonce, sha256));
  if (!constantTimeEqual(expected, fromHex(signature))) return { ok: false, reason: "bad-signature" };
  return { ok: true, nonce, timestampMs };
}

/** Compares two byte strings in time that depends only on their lengths. */
export function constantTimeEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

async function canonical(parts: SignedParts, timestamp: string, nonce: string, sha256: Sha256 = webCryptoSha256): Promise<Uint8Array> {
  const body = typeof parts.body === "string" ? encoder.encode(parts.body) : parts.body;
  const bodyHash = toHex(await sha256(body));
  return encoder.encode(`hop-v2\n${parts.method.toUpperCase()}\n${parts.host.toLowerCase()}\n${parts.path}\n${timestamp}\n${nonce}\n${bodyHash}\n${parts.inferenceHeaderLength ?? ""}`);
}

async function hmac(secret: string, data: Uint8Array): Promise<Uint8Array> {
  let key = keys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    keys.set(secret, key);
  }
  return new Uint8Array(await crypto.subtle.sign("HMAC", await key, data as Uint8Array<ArrayBuffer>));
}

async function webCryptoSha256(bytes: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
}

function randomNonce(): string {
  return toHex(crypto.getRandomValues(new Uint8Array(16)));
}

/** Bytes as lower-case hex. */
export function toHex(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) out += b.toString(16).padStart(2, "0");
  return out;
}

/** Lower-case hex as bytes. */
export function fromHex(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return out;
}
