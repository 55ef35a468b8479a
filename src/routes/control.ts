/**
 * The control plane's HTTP surface:
 *   GET  /v2/models/{m}/plan        the live plan: version, plan, pins, predicted, measured, decisions
 *   PUT  /v2/models/{m}/plan/pins   pins plan fields (a value pins, null releases); Authorization: Bearer ADMIN_TOKEN
 *   GET  /v2/pool                   the origin pool: desired size, bounds, demand, members (signed, for the pool agent)
 *   POST /v2/pool/heartbeat         a replica's signed heartbeat {"url", "ttlMs"} or {"url", "leaving": true}
 * Signed routes use the edge-to-origin hop signature (src/origin/hop-signature.ts) with ORIGIN_SECRET.
 */
import { Hono, type Context } from "hono";
import { z } from "zod";
import { runtimeConfig } from "../config";
import { controllerOf, registryOf } from "../control/model-controller";
import { pinUpdateSchema } from "../control/plan";
import { heartbeatSchema } from "../control/replica-registry";
import { constantTimeEqual, verifyHop } from "../origin/hop-signature";
import { badRequest, InferenceError } from "../protocol/errors";
import { decodeContent, readBody, readRawBody } from "../protocol/read-body";
import { lookupModel } from "./lookup";

/** Largest control request body, bytes. */
const MAX_CONTROL_BODY_BYTES = 4096;


const encoder = new TextEncoder();

type Ctx = Context<{ Bindings: Env }>;

/** Verifies the hop signature of a request whose body is `body`; returns its nonce and timestamp. */
async function verifySigned(c: Ctx, body: Uint8Array): Promise<{ nonce: string; timestampMs: number }> {
  const { originSecret } = runtimeConfig(c.env);
  if (!originSecret) throw new InferenceError(403, "the origin pool is not configured (ORIGIN_SECRET)");
  const url = new URL(c.req.url);
  const verdict = await verifyHop(originSecret, { method: c.req.method, host: url.host, path: url.pathname + url.search, body }, (name) => c.req.header(name), Date.now());
  if (!verdict.ok) throw new InferenceError(401, `request signature refused: ${verdict.reason}`);
  return verdict;
}

/** Checks the operator's bearer token. */
function requireAdmin(c: Ctx): void {
  const { adminToken } = runtimeConfig(c.env);
  if (!adminToken) throw new InferenceError(403, "the operator API is disabled: set the ADMIN_TOKEN secret");
  const given = /^Bearer (.+)$/.exec(c.req.header("authorization") ?? "")?.[1] ?? "";
  if (!constantTimeEqual(encoder.encode(given), encoder.encode(adminToken))) throw new InferenceError(401, "missing or wrong bearer token");
}

function parseJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    throw badRequest("the body is not valid JSON");
  }
}

function describe(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`).join("; ");
}

/** Routes of the control plane. */
export const controlRoutes = new Hono<{ Bindings: Env }>()
  .get("/v2/models/:model/plan", async (c) => {
    const { manifest } = lookupModel(runtimeConfig(c.env), c.req.param("model"), undefined);
    return c.json(await controllerOf(c.env, manifest.name).view(manifest.name));
  })
  .put("/v2/models/:model/plan/pins", async (c) => {
    requireAdmin(c);
    const config = runtimeConfig(c.env);
    const { manifest } = lookupModel(config, c.req.param("model"), undefined);
    const update = pinUpdateSchema.safeParse(parseJson(await readBody(c.req.raw, { maxBytes: MAX_CONTROL_BODY_BYTES, timeoutMs: config.bodyLimits.timeoutMs })));
    if (!update.success) throw badRequest(`invalid pins: ${describe(update.error)}`);
    return c.json(await controllerOf(c.env, manifest.name).pin(manifest.name, update.data));
  })
  .get("/v2/pool", async (c) => {
    await verifySigned(c, new Uint8Array(0));
    return c.json(await registryOf(c.env).view());
  })
  .post("/v2/pool/heartbeat", async (c) => {
    // As at the origin, the signature covers the bytes as sent: checked before they are decoded.
    const raw = await readRawBody(c.req.raw, { maxBytes: MAX_CONTROL_BODY_BYTES, timeoutMs: runtimeConfig(c.env).bodyLimits.timeoutMs });
    const { nonce, timestampMs } = await verifySigned(c, raw);
    const body = decodeContent(raw, c.req.raw.headers, MAX_CONTROL_BODY_BYTES);
    const beat = heartbeatSchema.safeParse(parseJson(body));
    if (!beat.success) throw badRequest(`invalid heartbeat: ${describe(beat.error)}`);
    const url = beat.data.url.replace(/\/+$/, "");
    const isLeaving = "leaving" in beat.data;
    const isFresh = await registryOf(c.env).heartbeat(url, "ttlMs" in beat.data ? beat.data.ttlMs : 0, isLeaving, nonce, timestampMs);
    if (!isFresh) throw new InferenceError(401, "request signature refused: replayed");
    return c.body(null, 204);
  });
