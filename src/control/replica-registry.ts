/**
 * The origin pool's membership and size, as pure bookkeeping (the OriginRegistry Durable Object is
 * its glue). Replicas register by signed heartbeat and drop out when their heartbeats stop (after
 * their `ttlMs`) or when they say they are leaving; static replicas (ORIGIN_URLS: Triton, KServe or
 * any server that does not heartbeat) are always members. Each model's controller states how many
 * replicas it needs; the pool's desired size is their sum, clamped to [minReplicas, maxReplicas],
 * and the pool agent (src/scaling/pool-agent.ts) makes the scaler follow it.
 */
import { z } from "zod";

/** Longest time-to-live a heartbeat may ask for, ms. */
export const MAX_HEARTBEAT_TTL_MS = 60_000;

/** A replica's heartbeat body (POST /v2/pool/heartbeat): joining or staying for `ttlMs`, or leaving. */
export const heartbeatSchema = z.union([
  z.strictObject({ url: z.url({ protocol: /^https?$/ }), ttlMs: z.int().min(100).max(MAX_HEARTBEAT_TTL_MS) }),
  z.strictObject({ url: z.url({ protocol: /^https?$/ }), leaving: z.literal(true) }),
]);

/** What GET /v2/pool answers. */
export interface PoolView {
  desiredReplicas: number;
  minReplicas: number;
  maxReplicas: number;
  /** Replicas needed per origin-placed model (the controllers' poolSize). */
  demand: Record<string, number>;
  /** Current members: registered ones with when they expire, static ones with expiresAtMs null. */
  members: Array<{ url: string; expiresAtMs: number | null }>;
}

/** Membership and demand of the origin pool. */
export class ReplicaRegistry {
  private readonly live = new Map<string, number>();

  constructor(
    private readonly staticUrls: readonly string[],
    readonly limits: { minReplicas: number; maxReplicas: number },
    private demand: Record<string, number> = {},
  ) {}

  /** A heartbeat from `url`: a member until nowMs + ttlMs, or gone at once when it is leaving. */
  heartbeat(url: string, ttlMs: number, isLeaving: boolean, nowMs: number): void {
    if (isLeaving) this.live.delete(url);
    else this.live.set(url, nowMs + Math.min(ttlMs, MAX_HEARTBEAT_TTL_MS));
  }

  /** Records how many replicas `model` needs (0 releases its share). */
  setDemand(model: string, replicas: number): void {
    if (replicas > 0) this.demand = { ...this.demand, [model]: replicas };
    else {
      const { [model]: _released, ...rest } = this.demand;
      this.demand = rest;
    }
  }

  /** The demand to persist. */
  get demands(): Record<string, number> {
    return this.demand;
  }

  /** Member base URLs at `nowMs` (static first). */
  members(nowMs: number): string[] {
    this.expire(nowMs);
    return [...new Set([...this.staticUrls, ...this.live.keys()])];
  }

  /** The pool's view at `nowMs`. */
  view(nowMs: number): PoolView {
    this.expire(nowMs);
    const { minReplicas, maxReplicas } = this.limits;
    const needed = Object.values(this.demand).reduce((s, n) => s + n, 0);
    return {
      desiredReplicas: Math.min(maxReplicas, Math.max(minReplicas, needed)),
      minReplicas,
      maxReplicas,
      demand: this.demand,
      members: [...this.staticUrls.map((url) => ({ url, expiresAtMs: null })), ...[...this.live].filter(([url]) => !this.staticUrls.includes(url)).map(([url, expiresAtMs]) => ({ url, expiresAtMs }))],
    };
  }

  private expire(nowMs: number): void {
    for (const [url, expiresAtMs] of this.live) if (expiresAtMs <= nowMs) this.live.delete(url);
  }
}
