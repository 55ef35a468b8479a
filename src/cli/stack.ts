/**
 * The whole local stack, as `npm start` runs it: the edge Worker under `wrangler dev`, an origin
 * pool of gpu-origin processes run by the local scaler (src/scaling/local-scaler.ts), and the pool
 * agent that makes the scaler follow the size the edge's controllers ask for (GET /v2/pool).
 * Replicas join the edge's registry by signed heartbeats (--edge), so nothing is configured by list.
 * All on 127.0.0.1. Also used by the benchmarks and the end-to-end tests.
 */
import { signHop } from "../origin/hop-signature";
import { LocalScaler, type LocalReplica } from "../scaling/local-scaler";
import { POOL_PATH, startPoolAgent, type PoolAgent } from "../scaling/pool-agent";
import { type EdgeOptions, originSecret, startEdge, type Started } from "./processes";

/** Options for the stack. */
export interface StackOptions {
  /** Origin replicas at start, and the pool's floor (0-16). */
  replicas: number;
  /** Most origin replicas the controllers may ask for; default max(replicas, 4). */
  maxReplicas?: number;
  port: number;
  /** First port of the origin replicas (the scaler takes free ports from here up). */
  originPort: number;
  /** Extra Worker vars (MODEL_OVERRIDES, CONTROL_MODE, ...). */
  vars?: Record<string, string>;
  /** Extra gpu-origin flags for every replica (e.g. ["--models", "silero-vad"]). */
  originArgs?: string[];
  stdio?: "inherit" | "ignore";
  /** Starts the edge Worker (default `wrangler dev`: startEdge; the soak can run it on plain workerd). */
  edgeStarter?: (options: EdgeOptions) => Promise<Started>;
}

/** The started stack; `stop` stops the agent, the replicas and the edge. */
export interface Stack {
  edge: Started;
  scaler: LocalScaler;
  agent: PoolAgent;
  /** The origin replicas running now. */
  origins(): LocalReplica[];
  stop(): Promise<void>;
}

/** Longest wait for the first replicas to register with the edge, ms. */
const REGISTRATION_TIMEOUT_MS = 30_000;

/** Starts the edge, then the pool (registering with it), then the agent; resolves when the first replicas are registered. */
export async function startStack({ replicas, maxReplicas = Math.max(replicas, 4), port, originPort, vars = {}, originArgs, stdio = "ignore", edgeStarter = startEdge }: StackOptions): Promise<Stack> {
  const secret = originSecret();
  const edge = await edgeStarter({
    port,
    // On one machine every buffer shard shares workerd's one thread: more shards add no capacity.
    // wrangler runs at log level warn, which would not show the request log lines: they are not
    // written (under wrangler dev each costs the request 2 ms or more: bench/reports/observability.md).
    vars: { CONTROL_MAX_SHARDS: "1", LOG_REQUESTS: "false", ...vars, ORIGIN_URLS: "", POOL_MIN_REPLICAS: String(replicas), POOL_MAX_REPLICAS: String(maxReplicas) },
    stdio,
  });
  const scaler = new LocalScaler({ kind: "local", minReplicas: replicas, maxReplicas, basePort: originPort, secret, edgeUrl: edge.url, ...(originArgs && { originArgs }) }, { stdio, log: stdio === "inherit" ? undefined : () => undefined });
  const agent = startPoolAgent({ edgeUrl: edge.url, secret, scaler, ...(stdio === "ignore" && { log: () => undefined }) });
  const stop = async () => {
    await agent.stop();
    await scaler.close();
    await edge.stop();
  };
  try {
    await scaler.settled();
    await registered(edge.url, secret, replicas);
  } catch (error) {
    await stop();
    throw error;
  }
  return { edge, scaler, agent, origins: () => scaler.members(), stop };
}

/** Resolves once the edge's registry lists at least `count` members (polled, bounded). */
async function registered(edgeUrl: string, secret: string, count: number): Promise<void> {
  const endMs = Date.now() + REGISTRATION_TIMEOUT_MS;
  while (count > 0) {
    const headers = await signHop(secret, { method: "GET", host: new URL(edgeUrl).host, path: POOL_PATH, body: new Uint8Array(0) }, Date.now());
    const response = await fetch(edgeUrl + POOL_PATH, { headers });
    const view = (await response.json()) as { members?: unknown[] };
    if (response.ok && (view.members?.length ?? 0) >= count) return;
    if (Date.now() > endMs) throw new Error(`origin replicas did not register with ${edgeUrl} within ${REGISTRATION_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
