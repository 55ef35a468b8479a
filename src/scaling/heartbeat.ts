/**
 * The signed heartbeat that puts a replica in the edge's origin pool (POST /v2/pool/heartbeat):
 * sent by a gpu-origin replica for itself (gpu-origin/registration.ts) and by the pool agent for
 * replicas only an orchestrator knows (src/scaling/pool-agent.ts). fetch + WebCrypto only.
 */
import { signHop } from "../origin/hop-signature";

/** The edge's heartbeat endpoint. */
export const HEARTBEAT_PATH = "/v2/pool/heartbeat";

/** Body of a heartbeat: the replica's base URL and how long the edge may count it without another, in ms. */
export interface Heartbeat {
  url: string;
  ttlMs: number;
}

/** Body of the one message a leaving replica sends. */
export interface Leaving {
  url: string;
  leaving: true;
}

/** How to reach the edge. */
export interface HeartbeatTarget {
  /** The edge's base URL (its path is ignored). */
  edgeUrl: string;
  /** The hop-signature secret the edge shares with the pool (ORIGIN_SECRET). */
  secret: string;
  /** Longest wait for the answer, ms. */
  timeoutMs: number;
  fetch?: typeof fetch;
  /** Epoch ms. */
  now?: () => number;
}

/** Sends one signed heartbeat (or leaving message); resolves when the edge accepted it, rejects otherwise. */
export async function sendHeartbeat({ edgeUrl, secret, timeoutMs, fetch: doFetch = fetch, now = Date.now }: HeartbeatTarget, body: Heartbeat | Leaving): Promise<void> {
  const text = JSON.stringify(body);
  const url = new URL(HEARTBEAT_PATH, edgeUrl);
  const headers = await signHop(secret, { method: "POST", host: url.host, path: HEARTBEAT_PATH, body: text }, now());
  const response = await doFetch(url.href, { method: "POST", headers: { ...headers, "content-type": "application/json" }, body: text, signal: AbortSignal.timeout(timeoutMs) });
  await response.body?.cancel();
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
}
