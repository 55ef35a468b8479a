/**
 * Test helper: starts a real gpu-origin process on 127.0.0.1 (a free port), waits for its readiness
 * with a bounded poll, and stops it. One node process per replica (node --import tsx, not the tsx
 * CLI, which would put a second process between the test and the server), so kill -9 hits the
 * server itself. Callers stop every process in afterAll.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { join } from "node:path";

/** The secret test origins share with the test's pool. */
export const TEST_SECRET = "test-secret-0123456789abcdef";

/** A running origin process. */
export interface OriginProcess {
  child: ChildProcess;
  url: string;
  /** Everything it printed so far. */
  output(): string;
  /** Resolves with its exit code (or signal name) once it exited. */
  exited: Promise<number | string>;
}

const root = join(import.meta.dirname, "..", "..", "..");

/** Starts an origin with `args` (e.g. ["--models", "silero-vad"]); resolves once it is live (not necessarily ready). */
export async function startOrigin(args: string[], env: Record<string, string> = { ORIGIN_SECRET: TEST_SECRET }, timeoutMs = 30_000): Promise<OriginProcess> {
  const child = spawn(process.execPath, ["--import", "tsx", "gpu-origin/main.ts", "--port", "0", "--threads", "1", ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let text = "";
  child.stdout!.on("data", (d: Buffer) => (text += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (text += d.toString()));
  const exited = once(child, "exit").then(([code, signal]) => (code ?? signal) as number | string);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = /live on (http:\/\/127\.0\.0\.1:\d+)/.exec(text);
    if (match) return { child, url: match[1]!, output: () => text, exited };
    if (child.exitCode !== null || Date.now() > deadline) {
      child.kill("SIGKILL");
      throw new Error(`origin did not start: ${text}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Polls GET /v2/health/ready until it answers 200 (bounded); throws with the process output otherwise. */
export async function waitReady(origin: OriginProcess, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const status = await fetch(`${origin.url}/v2/health/ready`).then((r) => r.status, () => 0);
    if (status === 200) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`origin ${origin.url} not ready after ${timeoutMs} ms: ${origin.output()}`);
}

/** Kills a process that is still running (SIGKILL) and waits for it to exit. */
export async function stopOrigin(origin: OriginProcess | undefined): Promise<void> {
  if (!origin || origin.child.exitCode !== null || origin.child.signalCode !== null) return;
  origin.child.kill("SIGKILL");
  await origin.exited;
}
