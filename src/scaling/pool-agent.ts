/**
 * The loop that closes the scaling loop: the edge decides how many origin replicas it wants and
 * publishes it at `GET /v2/pool`; this agent polls it (signed with the hop signature: method GET,
 * path "/v2/pool", empty body) every `intervalMs` and, when `desiredReplicas` differs from what it
 * last asked for, asks its PoolScaler for that count. It asks again only on a change, and again
 * after a failed ask (the last asked count is what the scaler accepted).
 *
 * `reconcile` is the decision, pure (time and data passed in); `startPoolAgent` is the thin I/O
 * around it: one request in flight at a time (the next poll is scheduled when one ends), every
 * error caught and logged once per kind until a poll succeeds again; the loop never stops by itself.
 * fetch, clock and timers are injectable; it runs in Node and in workerd.
 */
import { z } from "zod";
import { signHop } from "../origin/hop-signature";
import { sendHeartbeat } from "./heartbeat";
import type { PoolScaler } from "./pool-scaler";

/** The edge's pool endpoint. */
export const POOL_PATH = "/v2/pool";

/** The part of the edge's `GET /v2/pool` answer the agent reads (other fields are ignored). */
export const poolAnswerSchema = z.object({
  desiredReplicas: z.number().int().min(0),
  /** expiresAtMs null: a static member (ORIGIN_URLS), which does not heartbeat. */
  members: z.array(z.object({ url: z.string(), expiresAtMs: z.number().nullable() })),
});

/** A validated `GET /v2/pool` answer. */
export type PoolAnswer = z.infer<typeof poolAnswerSchema>;

/** What one reconcile step decides. */
export type AgentDecision = { action: "hold" } | { action: "scale"; replicas: number; reason: string };

/**
 * Decides whether to ask the scaler for a new count: "scale" to `desiredReplicas` when it differs
 * from `lastAskedReplicas` (undefined: nothing asked yet), else "hold". `nowMs` (epoch ms) counts
 * the live members for the reason.
 */
export function reconcile(lastAskedReplicas: number | undefined, answer: PoolAnswer, nowMs: number): AgentDecision {
  if (answer.desiredReplicas === lastAskedReplicas) return { action: "hold" };
  const live = answer.members.filter((m) => m.expiresAtMs === null || m.expiresAtMs > nowMs).length;
  const was = lastAskedReplicas === undefined ? "first ask" : `was ${lastAskedReplicas}`;
  return { action: "scale", replicas: answer.desiredReplicas, reason: `edge wants ${answer.desiredReplicas} replicas (${was}; ${live} registered)` };
}

/** What the agent needs. */
export interface PoolAgentOptions {
  /** The edge's base URL (its path is ignored: the agent GETs POOL_PATH). */
  edgeUrl: string;
  /** The hop-signature secret the edge shares with the pool (ORIGIN_SECRET). */
  secret: string;
  scaler: PoolScaler;
  /** Time from the end of one poll to the start of the next, in ms (default 1000). */
  intervalMs?: number;
  /** Longest wait for the edge, in ms (default 5000). */
  timeoutMs?: number;
  fetch?: typeof fetch;
  /** Epoch ms. */
  now?: () => number;
  log?: (line: string) => void;
  setTimer?: (run: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
  /**
   * Replicas the orchestrator knows (e.g. `discoverEndpoints` over a Kubernetes Service's
   * EndpointSlices): each poll registers every one with the edge by a signed heartbeat that lives
   * three polls, so replicas that do not heartbeat themselves join and leave the pool with the
   * orchestrator's view.
   */
  discover?: () => Promise<string[]>;
}

/** A running agent. */
export interface PoolAgent {
  /** Stops polling; resolves once a poll in flight has ended. */
  stop(): Promise<void>;
}

/** Kinds of failure, each logged once until a poll succeeds again. */
type FailureKind = "network" | `http-${number}` | "invalid-answer" | "scaler" | "discovery" | "heartbeat";

/** Starts polling now (the first poll runs at once). */
export function startPoolAgent(options: PoolAgentOptions): PoolAgent {
  const { secret, scaler, intervalMs = 1000, timeoutMs = 5000 } = options;
  const doFetch = options.fetch ?? fetch;
  const now = options.now ?? Date.now;
  const log = options.log ?? ((line: string) => console.warn(line));
  const setTimer = options.setTimer ?? ((run: () => void, ms: number) => setTimeout(run, ms));
  const clearTimer = options.clearTimer ?? ((handle: unknown) => clearTimeout(handle as ReturnType<typeof setTimeout>));
  const url = new URL(POOL_PATH, options.edgeUrl).href;
  const logged = new Set<FailureKind>();
  let lastAsked: number | undefined;

  const fail = (kind: FailureKind, message: string): void => {
    if (logged.has(kind)) return;
    logged.add(kind);
    log(`pool agent: ${message}`);
  };

  const poll = async (): Promise<void> => {
    let body: unknown;
    try {
      const headers = await signHop(secret, { method: "GET", host: new URL(url).host, path: POOL_PATH, body: "" }, now());
      const response = await doFetch(url, { headers, signal: AbortSignal.timeout(timeoutMs) });
      if (!response.ok) {
        await response.body?.cancel();
        return fail(`http-${response.status}`, `GET ${url}: HTTP ${response.status}`);
      }
      body = await response.json().catch(() => undefined);
    } catch (error) {
      return fail("network", `GET ${url}: ${(error as Error).message}`);
    }
    const answer = poolAnswerSchema.safeParse(body);
    if (!answer.success) return fail("invalid-answer", `GET ${url}: unexpected answer: ${answer.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ")}`);
    if (options.discover) await registerDiscovered(options.discover);
    const decision = reconcile(lastAsked, answer.data, now());
    if (decision.action === "scale") {
      try {
        await scaler.setReplicas(decision.replicas, decision.reason);
        lastAsked = decision.replicas;
      } catch (error) {
        return fail("scaler", `${scaler.kind} scaler refused ${decision.replicas} replicas: ${(error as Error).message}`);
      }
    }
    logged.clear();
  };

  /** Heartbeats on behalf of the replicas the orchestrator lists. */
  const registerDiscovered = async (discover: () => Promise<string[]>): Promise<void> => {
    let urls: string[];
    try {
      urls = await discover();
    } catch (error) {
      return fail("discovery", `discovery failed: ${(error as Error).message}`);
    }
    await Promise.all(
      urls.map((replicaUrl) =>
        sendHeartbeat({ edgeUrl: options.edgeUrl, secret, timeoutMs, fetch: doFetch, now }, { url: replicaUrl, ttlMs: Math.max(100, 3 * intervalMs) }).catch((error: unknown) =>
          fail("heartbeat", `heartbeat for ${replicaUrl}: ${(error as Error).message}`),
        ),
      ),
    );
  };

  let isStopped = false;
  let timer: unknown;
  let inFlight: Promise<void> = Promise.resolve();
  const loop = (): void => {
    inFlight = poll()
      .catch((error: unknown) => log(`pool agent: unexpected: ${(error as Error).message}`))
      .then(() => {
        if (!isStopped) timer = setTimer(loop, intervalMs);
      });
  };
  loop();

  return {
    async stop() {
      isStopped = true;
      clearTimer(timer);
      await inFlight;
    },
  };
}
