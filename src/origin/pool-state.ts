/**
 * Bookkeeping of an origin pool, without I/O: which replicas are admitted, how many requests each has
 * outstanding, which failed repeatedly and are ejected until their backoff ends, and which are due a
 * readiness check. The fetch layer (OriginPoolRunner) asks it where to send a batch and tells it how
 * the attempt went. Pure: every method takes `nowMs`; nothing here reads a clock or sleeps.
 */

/** Tuning of a pool; defaults in DEFAULT_POOL_OPTIONS. */
export interface PoolOptions {
  /** Consecutive failures (network error, timeout, 5xx, 503) after which a replica is ejected. */
  ejectAfterFailures: number;
  /** First ejection's backoff, in ms; doubles on each ejection until a request succeeds. */
  baseBackoffMs: number;
  /** Longest backoff, in ms. */
  maxBackoffMs: number;
  /** How often an admitted replica's /v2/health/ready is checked while traffic flows, in ms. */
  healthIntervalMs: number;
  /** Longest time a replica that answered 503 is passed over (its Retry-After is capped to this), in ms. */
  maxBusyMs: number;
}

/** Defaults: eject after 2 failures, back off 1 s doubling to 30 s, check health every 5 s. */
export const DEFAULT_POOL_OPTIONS: PoolOptions = { ejectAfterFailures: 2, baseBackoffMs: 1000, maxBackoffMs: 30_000, healthIntervalMs: 5000, maxBusyMs: 1000 };

/** "admitted": takes traffic; "ejected": waits for its backoff to end; "probing": a readiness probe decides. */
export type ReplicaState = "admitted" | "ejected" | "probing";

/** How an attempt on a replica ended, as far as the pool's bookkeeping cares. */
export type AttemptOutcome = { kind: "ok"; durationMs: number } | { kind: "busy"; retryAfterMs: number } | { kind: "failed" };

/** One replica as the pool sees it. */
export interface ReplicaView {
  index: number;
  url: string;
  state: ReplicaState;
  outstanding: number;
  consecutiveFailures: number;
  ejections: number;
  /** When an ejected replica may be probed again (epoch ms). */
  ejectedUntilMs: number;
}

interface Replica extends ReplicaView {
  /** False once the replica left the pool's membership (it keeps its index; pick and checks skip it). */
  isMember: boolean;
  backoffMs: number;
  busyUntilMs: number;
  lastCheckAtMs: number;
  isChecking: boolean;
}

/** Replica states and the least-outstanding choice among admitted replicas. */
export class PoolState {
  private readonly replicas: Replica[] = [];
  private cursor = 0;

  constructor(
    urls: readonly string[],
    readonly options: PoolOptions = DEFAULT_POOL_OPTIONS,
  ) {
    // Replicas start admitted (optimistic): the first batch does not wait for a probe, and a dead
    // replica is found by its first failures, which are safe to retry.
    this.setMembers(urls);
  }

  /** Number of replicas ever configured (members or not; indices stay valid). */
  get size(): number {
    return this.replicas.length;
  }

  /**
   * Makes `urls` the pool's members: new ones join admitted, departed ones are no longer picked or
   * checked (a request in flight to one still finishes), and one that comes back joins afresh.
   */
  setMembers(urls: readonly string[]): void {
    const wanted = new Set(urls);
    for (const r of this.replicas) {
      const isMember = wanted.delete(r.url);
      if (isMember && !r.isMember) Object.assign(r, { state: "admitted", consecutiveFailures: 0, busyUntilMs: 0, backoffMs: this.options.baseBackoffMs, isChecking: false });
      r.isMember = isMember;
    }
    for (const url of wanted) {
      this.replicas.push({
        index: this.replicas.length, url, isMember: true, state: "admitted", outstanding: 0, consecutiveFailures: 0, ejections: 0, ejectedUntilMs: 0,
        backoffMs: this.options.baseBackoffMs, busyUntilMs: 0, lastCheckAtMs: -Infinity, isChecking: false,
      });
    }
  }

  /** The base URL of replica `index`. */
  urlOf(index: number): string {
    return this.replicas[index]!.url;
  }

  /** Whether any replica is admitted now. */
  hasAdmitted(): boolean {
    return this.replicas.some((r) => r.isMember && r.state === "admitted");
  }

  /**
   * The admitted replica with the fewest outstanding requests, not in `exclude`; replicas that
   * answered 503 recently are used only when no other is left. Ties rotate. Undefined if none.
   */
  pick(nowMs: number, exclude: ReadonlySet<number> = new Set()): number | undefined {
    const candidates = this.replicas.filter((r) => r.isMember && r.state === "admitted" && !exclude.has(r.index));
    if (!candidates.length) return undefined;
    const idle = candidates.filter((r) => r.busyUntilMs <= nowMs);
    const pool = idle.length ? idle : candidates;
    const n = this.replicas.length;
    let best: Replica | undefined;
    for (const r of pool) {
      if (!best || r.outstanding < best.outstanding || (r.outstanding === best.outstanding && rank(r.index, this.cursor, n) < rank(best.index, this.cursor, n))) best = r;
    }
    this.cursor = (best!.index + 1) % n;
    return best!.index;
  }

  /** Records that a request was sent to `index`. */
  started(index: number): void {
    this.replicas[index]!.outstanding++;
  }

  /** Records how a request to `index` ended; repeated failures eject the replica. */
  finished(index: number, outcome: AttemptOutcome, nowMs: number): void {
    const r = this.replicas[index]!;
    r.outstanding = Math.max(0, r.outstanding - 1);
    this.record(index, outcome, nowMs);
  }

  /** Records an outcome learnt after the request ended (e.g. a 200 whose body did not fit the model). */
  record(index: number, outcome: AttemptOutcome, nowMs: number): void {
    const r = this.replicas[index]!;
    if (outcome.kind === "ok") {
      r.consecutiveFailures = 0;
      r.backoffMs = this.options.baseBackoffMs;
      return;
    }
    if (outcome.kind === "busy") r.busyUntilMs = nowMs + Math.min(outcome.retryAfterMs, this.options.maxBusyMs);
    r.consecutiveFailures++;
    if (r.state === "admitted" && r.consecutiveFailures >= this.options.ejectAfterFailures) this.eject(r, nowMs);
  }

  /**
   * Replicas due a readiness check at `nowMs`: admitted ones whose last check is older than
   * healthIntervalMs, and ejected ones whose backoff ended (they turn "probing"). Each is marked as
   * being checked until `checked` is called, so it is returned once.
   */
  dueChecks(nowMs: number): number[] {
    const due: number[] = [];
    for (const r of this.replicas) {
      if (r.isChecking || !r.isMember) continue;
      const isDue = r.state === "admitted" ? nowMs - r.lastCheckAtMs >= this.options.healthIntervalMs : r.state === "ejected" && nowMs >= r.ejectedUntilMs;
      if (!isDue) continue;
      r.isChecking = true;
      if (r.state === "ejected") r.state = "probing";
      due.push(r.index);
    }
    return due;
  }

  /** Records a readiness check's result: ready admits (re-admits) the replica, anything else ejects it. */
  checked(index: number, isReady: boolean, nowMs: number): void {
    const r = this.replicas[index]!;
    r.isChecking = false;
    r.lastCheckAtMs = nowMs;
    if (isReady) {
      if (r.state !== "admitted") {
        r.state = "admitted";
        r.consecutiveFailures = 0;
        r.busyUntilMs = 0;
      }
      return;
    }
    this.eject(r, nowMs);
  }

  /** A copy of every member's state, for statistics and tests. */
  snapshot(): ReplicaView[] {
    return this.replicas.filter((r) => r.isMember).map(({ index, url, state, outstanding, consecutiveFailures, ejections, ejectedUntilMs }) => ({ index, url, state, outstanding, consecutiveFailures, ejections, ejectedUntilMs }));
  }

  private eject(r: Replica, nowMs: number): void {
    r.state = "ejected";
    r.ejections++;
    r.ejectedUntilMs = nowMs + r.backoffMs;
    r.backoffMs = Math.min(r.backoffMs * 2, this.options.maxBackoffMs);
  }
}

/** Distance of `index` after `cursor` on a ring of n, so ties rotate instead of favouring replica 0. */
function rank(index: number, cursor: number, n: number): number {
  return (index - cursor + n) % n;
}
