/**
 * Worker entry: the Hono app, and the Durable Object classes the runtime instantiates. The
 * configuration (every var and MODEL_OVERRIDES) is validated when the Worker starts, so a bad value
 * stops `wrangler dev` and fails a deploy with a message naming the field, instead of answering
 * every request with 500.
 */
import { env } from "cloudflare:workers";
import { app } from "./app";
import { runtimeConfig } from "./config";

export { BatchBuffer } from "./buffer/batch-buffer";
export { ModelController } from "./control/model-controller";
export { OriginRegistry } from "./control/origin-registry";
export { StreamBuffer } from "./stream/stream-buffer";

runtimeConfig(env as Env);

export default app;
