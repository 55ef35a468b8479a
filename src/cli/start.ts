/**
 * `npm start`: the main job, locally. Starts N origin replicas (gpu-origin, onnxruntime-node) on
 * 127.0.0.1:8801.., then the edge Worker under `wrangler dev` on http://127.0.0.1:8787 with the
 * pool in ORIGIN_URLS. The edge-to-origin secret is generated once into .dev.vars (never committed).
 *   npm start -- [--origins 2] [--port 8787] [--origin-port 8801]
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { availableParallelism } from "node:os";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { ROOT, startEdge, startOrigin, type Started } from "./processes";

const { values } = parseArgs({
  options: {
    origins: { type: "string", default: process.env.ORIGIN_REPLICAS ?? "2" },
    port: { type: "string", default: "8787" },
    "origin-port": { type: "string", default: "8801" },
  },
});
const replicas = Number(values.origins);
const port = Number(values.port);
const originPort = Number(values["origin-port"]);
if (!Number.isInteger(replicas) || replicas < 0 || replicas > 16) throw new Error("--origins must be an integer from 0 to 16");

/** Reads ORIGIN_SECRET from .dev.vars, creating a random one on first run. */
function originSecret(): string {
  const file = resolve(ROOT, ".dev.vars");
  const existing = existsSync(file) ? /^ORIGIN_SECRET=(.+)$/m.exec(readFileSync(file, "utf8"))?.[1] : undefined;
  if (existing) return existing.trim();
  const secret = randomBytes(32).toString("hex");
  writeFileSync(file, `${existsSync(file) ? readFileSync(file, "utf8") : ""}ORIGIN_SECRET=${secret}\n`, { mode: 0o600 });
  return secret;
}

const running: Started[] = [];
const stopAll = async () => {
  await Promise.all(running.map((p) => p.stop()));
  process.exit(0);
};
process.once("SIGINT", stopAll);
process.once("SIGTERM", stopAll);

const secret = originSecret();
// Replicas share this machine's cores; each gets its fair share of onnxruntime threads.
const threads = String(Math.max(1, Math.floor(availableParallelism() / Math.max(1, replicas))));
const origins = await Promise.all(Array.from({ length: replicas }, (_, i) => startOrigin({ port: originPort + i, secret, args: ["--threads", threads], stdio: "inherit" })));
running.push(...origins);
const edge = await startEdge({ port, vars: { ORIGIN_URLS: origins.map((o) => o.url).join(",") }, stdio: "inherit" });
running.push(edge);
console.log(`\nedge ready on ${edge.url} (origins: ${origins.map((o) => o.url).join(", ") || "none"})`);
console.log(`try: curl ${edge.url}/v2/models/silero-vad`);
await new Promise(() => undefined);
