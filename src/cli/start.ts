/**
 * `npm start`: the main job, locally. Starts the edge Worker under `wrangler dev` on
 * http://127.0.0.1:8787, then an origin pool of gpu-origin replicas (onnxruntime-node) on
 * 127.0.0.1:8801.. that register with it, and the pool agent: the controllers re-plan from live
 * traffic and the pool grows and shrinks between --origins and --max-origins replicas. The
 * edge-to-origin secret is generated once into .dev.vars (never committed).
 *   npm start -- [--origins 2] [--max-origins 4] [--port 8787] [--origin-port 8801]
 */
import { parseArgs } from "node:util";
import { startStack } from "./stack";

const { values } = parseArgs({
  options: {
    origins: { type: "string", default: process.env.ORIGIN_REPLICAS ?? "2" },
    "max-origins": { type: "string", default: "4" },
    port: { type: "string", default: "8787" },
    "origin-port": { type: "string", default: "8801" },
  },
});
const replicas = Number(values.origins);
if (!Number.isInteger(replicas) || replicas < 0 || replicas > 16) throw new Error("--origins must be an integer from 0 to 16");
const maxReplicas = Number(values["max-origins"]);
if (!Number.isInteger(maxReplicas) || maxReplicas < replicas || maxReplicas > 16) throw new Error("--max-origins must be an integer from --origins to 16");

const stack = await startStack({ replicas, maxReplicas, port: Number(values.port), originPort: Number(values["origin-port"]), stdio: "inherit" });
const stopAll = async () => {
  await stack.stop();
  process.exit(0);
};
process.once("SIGINT", stopAll);
process.once("SIGTERM", stopAll);
console.log(`\nedge ready on ${stack.edge.url} (origins: ${stack.origins().map((o) => o.url).join(", ") || "none"}; up to ${maxReplicas})`);
console.log(`try: curl ${stack.edge.url}/v2/models/silero-vad   and its live plan: curl ${stack.edge.url}/v2/models/silero-vad/plan`);
await new Promise(() => undefined);
