/**
 * Optional API keys at the edge. Off unless the API_KEYS secret is set; then every model route
 * (`/v2/models/...`: inference, metadata, readiness, statistics, plan) needs a key, given as
 * `Authorization: Bearer <key>` or `X-API-Key: <key>`. Health, server metadata, the docs and the
 * signed pool routes stay open; plan pins keep their own ADMIN_TOKEN.
 *
 * - Keys are stored hashed: API_KEYS holds `[{"name", "sha256", "models"}]`, the SHA-256 (hex) of
 *   each key; `npm run keys -- new <name>` makes a key and its entry. A presented key is hashed and
 *   compared with every entry in constant time (no early exit, so timing says nothing of which).
 *   A key that matched is remembered by its text for the isolate's life (under the configuration
 *   it matched in: a changed API_KEYS starts afresh), so its next requests skip the hash: a lookup
 *   in a Map, which compares a presented text with a remembered one only when their full string
 *   hashes match, so its timing tells a guesser nothing. At most one text per entry is remembered.
 * - 401 without a key or with an unknown one; 403 when the key's `models` (names, or "*") do not
 *   include the model.
 * - Rate limits per key with Cloudflare's rate-limiting binding (KEY_RATE_LIMITER in wrangler.toml,
 *   simulated by `wrangler dev` and the tests): over it, 429 with Retry-After (the binding's period).
 *   Every request counts with the binding once, but a key under its limit does not wait for the
 *   answer: the check runs beside the request (waitUntil), and a "no" marks the key in this isolate,
 *   whose next requests wait for the binding's answer (429 while it says no; back to the fast path
 *   at its first yes). So a key over its limit gets 429 from the request after the one that crossed
 *   it (the binding itself counts per location and is eventually consistent: Cloudflare documents
 *   it as permissive, not an exact account), and admitted traffic pays no limiter round trip (a
 *   Durable Object call and a SQL query under `wrangler dev`, ~2 ms: bench/reports/observability.md).
 */
import { z } from "zod";
import { constantTimeEqual, fromHex, toHex } from "../origin/hop-signature";
import { InferenceError } from "../protocol/errors";

/** One API key's entry in API_KEYS. */
export const apiKeySchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, "letters, digits, '.', '_' and '-' only (at most 64)"),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, "the key's SHA-256 as 64 lower-case hex digits"),
  models: z.array(z.string().min(1)).min(1),
});

/** An API key's entry: who it is, its hash, the models it may use. */
export type ApiKey = z.infer<typeof apiKeySchema>;

/** Rate-limit window of KEY_RATE_LIMITER, s (wrangler.toml `period`): what Retry-After says. */
export const RATE_LIMIT_PERIOD_S = 60;

const encoder = new TextEncoder();

/** The SHA-256 of a key. */
async function keyDigest(key: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", encoder.encode(key)));
}

/** The SHA-256 of a key, lower-case hex (what API_KEYS stores). */
export async function keyHash(key: string): Promise<string> {
  return toHex(await keyDigest(key));
}

/** The key a request presents: `Authorization: Bearer <key>` or `X-API-Key`. */
export function presentedKey(header: (name: string) => string | undefined): string | undefined {
  return /^Bearer (.+)$/.exec(header("authorization") ?? "")?.[1] ?? header("x-api-key") ?? undefined;
}

/** Per configuration (cached per isolate): its entries' hashes as bytes, decoded once, and the keys that matched, by their text. */
const known = new WeakMap<readonly ApiKey[], { digests: Uint8Array[]; matched: Map<string, ApiKey> }>();

/** The entry whose hash matches `key`: a key that matched before by its text, else comparing its hash with every entry in constant time. */
export async function findKey(keys: readonly ApiKey[], key: string): Promise<ApiKey | undefined> {
  let config = known.get(keys);
  if (!config) known.set(keys, (config = { digests: keys.map((entry) => fromHex(entry.sha256)), matched: new Map() }));
  const matched = config.matched.get(key);
  if (matched) return matched;
  const digest = await keyDigest(key);
  let found: ApiKey | undefined;
  keys.forEach((entry, i) => {
    if (constantTimeEqual(digest, config.digests[i]!)) found ??= entry;
  });
  if (found) config.matched.set(key, found);
  return found;
}

/** A rate limiter as Cloudflare's binding offers it. */
export interface KeyRateLimiter {
  limit(options: { key: string }): Promise<{ success: boolean }>;
}

/** Keys the binding last said are over their limit, in this isolate: their requests wait for its answer. */
const overLimit = new Set<string>();

/**
 * Admits a request for `model` presenting `key` (undefined: none), or throws 401, 403 or 429.
 * Returns the key's name (for logs). `waitUntil` keeps a background limit check alive.
 */
export async function admitKey(keys: readonly ApiKey[], key: string | undefined, model: string, limiter: KeyRateLimiter | undefined, waitUntil: (task: Promise<unknown>) => void): Promise<string> {
  const entry = key === undefined ? undefined : await findKey(keys, key);
  if (!entry) throw new InferenceError(401, key === undefined ? "an API key is required (Authorization: Bearer <key>, or X-API-Key)" : "unknown API key");
  if (!entry.models.includes("*") && !entry.models.includes(model)) throw new InferenceError(403, `API key '${entry.name}' has no access to model '${model.slice(0, 64)}'`);
  if (!limiter) return entry.name;
  const check = limiter.limit({ key: entry.name }).then(({ success }) => {
    if (success) overLimit.delete(entry.name);
    else overLimit.add(entry.name);
    return success;
  });
  if (!overLimit.has(entry.name)) {
    waitUntil(check.catch((error) => console.warn(`rate limit check of '${entry.name}' failed: ${(error as Error).message}`)));
    return entry.name;
  }
  // A failed check admits (as the background check does): the limiter is a guard, not the service.
  if (!(await check.catch(() => true))) throw new InferenceError(429, `rate limit of API key '${entry.name}' exceeded`, RATE_LIMIT_PERIOD_S);
  return entry.name;
}
