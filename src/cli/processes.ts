/**
 * Starting and stopping the local processes: the edge Worker under `wrangler dev` and origin
 * replicas under tsx, all on 127.0.0.1. Used by `npm start`, the benchmarks and the end-to-end tests.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { resolve } from "node:path";

/** Repository root. */
export const ROOT = resolve(import.meta.dirname, "..", "..");

/** A started process with its base URL. */
export interface Started {
  url: string;
  process: ChildProcess;
  /** Sends SIGTERM and resolves when the process has exited (SIGKILL after `graceMs`). */
  stop(graceMs?: number): Promise<void>;
}

const bin = (name: string) => resolve(ROOT, "node_modules", ".bin", name);

/** Polls `url` until it answers 200, for at most `timeoutMs`; rejects if the process exits first. */
export async function waitForReady(url: string, child: ChildProcess, timeoutMs = 120_000): Promise<void> {
  const endMs = Date.now() + timeoutMs;
  while (Date.now() < endMs) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`process for ${url} exited with ${child.exitCode !== null ? `code ${child.exitCode}` : child.signalCode}`);
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(2_000) });
      if (response.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms`);
}

function started(url: string, child: ChildProcess): Started {
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  return {
    url,
    process: child,
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Resolves once `child` answers 200 on `readyPath` at 127.0.0.1:`port`; stops it if it never does. */
export async function startedWhenReady(port: number, readyPath: string, child: ChildProcess, readyTimeoutMs?: number): Promise<Started> {
  const server = started(`http://127.0.0.1:${port}`, child);
  try {
    await waitForReady(`${server.url}${readyPath}`, child, readyTimeoutMs);
  } catch (error) {
    await server.stop(1_000);
    throw error;
  }
  return server;
}

/** Options for the edge Worker. */
export interface EdgeOptions {
  port: number;
  /** Worker vars (MODEL_OVERRIDES, ORIGIN_URLS, ...). Secrets come from .dev.vars. */
  vars?: Record<string, string>;
  /** Worker entry to run instead of wrangler.toml's main (bench workers). */
  script?: string;
  /** Where the child's output goes. */
  stdio?: "inherit" | "ignore" | "pipe";
  /** The checkout whose Worker runs (default this one; a benchmark's baseline runs another), with this checkout's wrangler. */
  root?: string;
  /** What "started" waits for: "ready" (default: /v2/health/ready, which warms the planned sessions) or "live" (serving, nothing warmed). */
  waitFor?: "ready" | "live";
  /** Folder of the local Durable Object state (default .wrangler/state-<port> in the checkout). */
  persistTo?: string;
  /** Wrangler configuration to use instead of the checkout's wrangler.toml (a benchmark's variant). */
  config?: string;
  /** Port of wrangler's inspector (V8 DevTools protocol: a benchmark's CPU profile); default 0, any free one. */
  inspectorPort?: number;
}

/**
 * The environment of every wrangler the project starts: no metrics sent, no colour, and wrangler's
 * local trace collector (X_LOCAL_OBSERVABILITY, on by default in wrangler 4) off unless the
 * environment sets it. The collector streams every invocation's tail events to a collector service
 * in the same workerd; the runtime has its own metrics and request log, and the collector made
 * workerd's memory grow about half as much again with every request (a no-op Worker, 4,800
 * requests: +151 MiB with it, +98 MiB without).
 */
export function wranglerEnv(): NodeJS.ProcessEnv {
  return { ...process.env, WRANGLER_SEND_METRICS: "false", NO_COLOR: "1", X_LOCAL_OBSERVABILITY: process.env.X_LOCAL_OBSERVABILITY ?? "false" };
}

/** Starts the edge Worker with `wrangler dev` and resolves once it is ready (the planned sessions warm). */
export async function startEdge({ port, vars = {}, script, stdio = "ignore", root = ROOT, waitFor, persistTo, config, inspectorPort = 0 }: EdgeOptions): Promise<Started> {
  const args = ["dev", ...(script ? [script] : []), "--config", config ?? resolve(root, "wrangler.toml"), "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspectorPort), "--show-interactive-dev-session=false", "--log-level", "warn", "--persist-to", persistTo ?? resolve(root, ".wrangler", `state-${port}`)];
  for (const [key, value] of Object.entries(vars)) args.push("--var", `${key}:${value}`);
  const child = spawn(bin("wrangler"), args, { cwd: root, stdio: ["ignore", stdio, stdio], env: wranglerEnv() });
  return startedWhenReady(port, edgeReadyPath({ script, waitFor }), child);
}

/** What an edge start waits for: the edge is ready once its planned sessions are warm; bench workers answer liveness only. */
export function edgeReadyPath({ script, waitFor = "ready" }: Pick<EdgeOptions, "script" | "waitFor">): string {
  return script || waitFor === "live" ? "/v2/health/live" : "/v2/health/ready";
}

/** Options for one origin replica. */
export interface OriginOptions {
  port: number;
  /** Shared edge-to-origin HMAC secret. */
  secret: string;
  /** Extra command-line flags for gpu-origin. */
  args?: string[];
  stdio?: "inherit" | "ignore" | "pipe";
  /** Aborting it while the replica starts sends it SIGTERM; the returned promise then rejects. */
  signal?: AbortSignal;
  /** Longest wait for readiness, in ms (default 120000). */
  readyTimeoutMs?: number;
}

/** Starts a gpu-origin replica on 127.0.0.1 and resolves once it is ready. */
export async function startOrigin({ port, secret, args = [], stdio = "ignore", signal, readyTimeoutMs }: OriginOptions): Promise<Started> {
  // `node --import tsx` rather than the tsx CLI: no wrapper process, so signals reach the server itself.
  const child = spawn(process.execPath, ["--import", "tsx", resolve(ROOT, "gpu-origin", "main.ts"), "--port", String(port), "--host", "127.0.0.1", ...args], {
    cwd: ROOT,
    stdio: ["ignore", stdio, stdio],
    env: { ...process.env, ORIGIN_SECRET: secret },
  });
  const abort = () => child.kill("SIGTERM");
  signal?.addEventListener("abort", abort, { once: true });
  if (signal?.aborted) abort();
  try {
    return await startedWhenReady(port, "/v2/health/ready", child, readyTimeoutMs);
  } finally {
    signal?.removeEventListener("abort", abort);
  }
}

/** Reads ORIGIN_SECRET from .dev.vars, creating a random one on first run (never committed). */
export function originSecret(): string {
  const file = resolve(ROOT, ".dev.vars");
  const existing = existsSync(file) ? /^ORIGIN_SECRET=(.+)$/m.exec(readFileSync(file, "utf8"))?.[1] : undefined;
  if (existing) return existing.trim();
  const secret = randomBytes(32).toString("hex");
  writeFileSync(file, `${existsSync(file) ? readFileSync(file, "utf8") : ""}ORIGIN_SECRET=${secret}\n`, { mode: 0o600 });
  return secret;
}

/** A port on 127.0.0.1 that nothing listens on now (the OS picks it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
