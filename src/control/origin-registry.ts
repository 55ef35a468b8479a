/**
 * OriginRegistry: the Durable Object that holds the origin pool's membership and desired size (one
 * per edge deployment). Thin glue around ReplicaRegistry: replicas' signed heartbeats and the
 * controllers' demand come in; buffers read the members (one pool view for every shard of every
 * model) and the pool agent reads the desired size. Demand is persisted; heartbeats are not (a
 * replica that is alive heartbeats again within a second).
 */
import { DurableObject } from "cloudflare:workers";
import { runtimeConfig } from "../config";
import { ReplayGuard } from "../origin/replay-guard";
import { type PoolView, ReplicaRegistry } from "./replica-registry";

const DEMAND_KEY = "demand";

/** The origin pool's registry. */
export class OriginRegistry extends DurableObject<Env> {
  private registry?: ReplicaRegistry;
  private fingerprint = "";
  /** Heartbeat nonces seen within the signature's lifetime (a replayed heartbeat is ignored). */
  private readonly replays = new ReplayGuard();
  /** The clock (epoch ms); tests replace it. */
  now: () => number = () => Date.now();

  /** Records a verified heartbeat signed at `timestampMs`; false when its nonce was seen before (a replay). */
  async heartbeat(url: string, ttlMs: number, isLeaving: boolean, nonce: string, timestampMs: number): Promise<boolean> {
    const nowMs = this.now();
    if (!this.replays.accept(nonce, timestampMs, nowMs)) return false;
    (await this.load()).heartbeat(url, ttlMs, isLeaving, nowMs);
    return true;
  }

  /** Records how many replicas `model` needs. */
  async setDemand(model: string, replicas: number): Promise<void> {
    const registry = await this.load();
    registry.setDemand(model, replicas);
    await this.ctx.storage.put(DEMAND_KEY, { fingerprint: this.fingerprint, demand: registry.demands });
  }

  /** Current member base URLs. */
  async members(): Promise<string[]> {
    return (await this.load()).members(this.now());
  }

  /** The pool's view (GET /v2/pool). */
  async view(): Promise<PoolView> {
    return (await this.load()).view(this.now());
  }

  private async load(): Promise<ReplicaRegistry> {
    if (this.registry) return this.registry;
    const { originUrls, control } = runtimeConfig(this.env);
    // Stored demand is kept only under the configuration it was stated for.
    this.fingerprint = JSON.stringify([this.env.MODEL_OVERRIDES, originUrls, control]);
    const stored = await this.ctx.storage.get<{ fingerprint: string; demand: Record<string, number> }>(DEMAND_KEY);
    this.registry ??= new ReplicaRegistry(originUrls, { minReplicas: control.minReplicas, maxReplicas: control.maxReplicas }, stored?.fingerprint === this.fingerprint ? stored.demand : {});
    return this.registry;
  }
}
