/**
 * `npm start`: the main job, locally. Starts N origin replicas (gpu-origin, onnxruntime-node) on
 * 127.0.0.1:8801.., then the edge Worker under `wrangler dev` on http://127.0.0.1:8787 with the
 * pool in ORIGIN_URLS. The edge-to-origin secret is generated once into .dev.vars (never committed).
 *   npm start -- [--origins 2] [--port 8787] [--origin-port 8801]
 */
import { parseArgs } from "node:util";
import { startStack } from "./processes";

const { values } = parseArgs({
  options: {
    origins: { type: "string", default: process.env.ORIGIN_REPLICAS ?? "2" },
    port: { type: "string", default: "8787" },
    "origin-port": { type: "string", default: "8801" },
  },
});
const replicas = Number(values.origins);
if (!Number.isInteger(replicas) || replicas < 0 || replicas > 16) throw new Error("--origins must be an integer from 0 to 16");

const stack = await startStack({ replicas, port: Number(values.port), originPort: Number(values["origin-port"]), stdio: "inherit" });
const stopAll = async () => {
  await stack.stop();
  process.exit(0);
};
process.once("SIGINT", stopAll);
process.once("SIGTERM", stopAll);
console.log(`\nedge ready on ${stack.edge.url} (origins: ${stack.origins.map((o) => o.url).join(", ") || "none"})`);
console.log(`try: curl ${stack.edge.url}/v2/models/silero-vad`);
await new Promise(() => undefined);
