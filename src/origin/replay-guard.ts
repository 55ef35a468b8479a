/**
 * Refuses a signed request seen before. The origin remembers each accepted nonce until its
 * signature would be refused as stale anyway (timestamp + max age), so memory stays bounded by the
 * request rate times the age window, capped at `maxEntries`. Pure: time is passed in.
 */
import { MAX_SIGNATURE_AGE_MS } from "./hop-signature";

/** Remembers nonces of accepted requests for as long as their signatures are fresh. */
export class ReplayGuard {
  private readonly expiresAtMs = new Map<string, number>();

  constructor(
    private readonly maxAgeMs = MAX_SIGNATURE_AGE_MS,
    private readonly maxEntries = 1_000_000,
  ) {}

  /** Nonces remembered now. */
  get size(): number {
    return this.expiresAtMs.size;
  }

  /** True the first time a nonce is offered while fresh; false for a replay (or when memory is full). */
  accept(nonce: string, timestampMs: number, nowMs: number): boolean {
    this.prune(nowMs);
    if (this.expiresAtMs.has(nonce) || this.expiresAtMs.size >= this.maxEntries) return false;
    this.expiresAtMs.set(nonce, timestampMs + this.maxAgeMs);
    return true;
  }

  /** Forgets nonces whose signatures are stale by now (insertion order is close to expiry order). */
  private prune(nowMs: number): void {
    for (const [nonce, expiresAtMs] of this.expiresAtMs) {
      if (expiresAtMs >= nowMs) break;
      this.expiresAtMs.delete(nonce);
    }
  }
}
