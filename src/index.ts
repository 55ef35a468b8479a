/** Worker entry: the Hono app, and the Durable Object classes the runtime instantiates. */
import { app } from "./app";

export { BatchBuffer } from "./buffer/batch-buffer";
export { ModelController } from "./control/model-controller";
export { OriginRegistry } from "./control/origin-registry";
export default app;
