/** Worker entry: the Hono app, and the Durable Object class the runtime instantiates. */
import { app } from "./app";

export { BatchBuffer } from "./buffer/batch-buffer";
export default app;
