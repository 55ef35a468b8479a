/**
 * The I/O side of an origin pool: signed fetches to one replica with the batch's deadline as the
 * timeout, readiness probes of the replicas PoolState says are due, and the classification of each
 * attempt's ending (ok, refused/reset, 503, timeout, other). Decisions stay in PoolState and
 * retry-policy; this layer only moves bytes. fetch + WebCrypto only, so it runs in workerd and Node.
 * Pools are kept per isolate (module scope), one per secret and header set; their members change
 * with the registry. Extra headers (a Cloudflare Access service token in front of servers that
 * cannot verify the hop's signature: docs/deploy.md) go on every request, probes included.
 */
import { signHop } from "./hop-signature";
import { INFERENCE_HEADER_LENGTH, unpackBinary } from "../protocol/oip-binary";
import { DEFAULT_POOL_OPTIONS, PoolState, type PoolOptions } from "./pool-state";
import type { AttemptFailure } from "./retry-policy";

/** Longest wait for a readiness probe, in ms. */
const PROBE_TIMEOUT_MS = 1000;

/** One infer request as it goes on the wire. */
export interface HopRequest {
  path: string;
  body: Uint8Array;
  contentType: string;
  /** Set when the body uses the binary tensor extension. */
  inferenceHeaderLength?: number;
  /** The batch's span (W3C Trace Context), sent as `traceparent`. */
  traceparent?: string;
}

/**
 * How one attempt ended: the answer's JSON (the whole body, or a binary-extension body's header with
 * the tensor bytes after it as `payload`), or why it failed.
 */
export type AttemptResult =
  | { ok: true; body: unknown; payload?: Uint8Array; durationMs: number; serverTiming: string | null }
  | { ok: false; failure: AttemptFailure; durationMs: number };

/** Options of a pool; tests pass their own clock and fetch. */
export interface OriginPoolOptions {
  options?: Partial<PoolOptions>;
  /** Headers added to every request to a replica (ORIGIN_ACCESS_CLIENT_ID / _SECRET as Cloudflare Access's service-token headers). */
  headers?: Readonly<Record<string, string>>;
  fetch?: typeof fetch;
  /** Epoch ms clock; Date.now by default. */
  now?: () => number;
}

const decoder = new TextDecoder();

/** A pool of OIP origin replicas shared by every model runner that forwards to it. */
export class OriginPool {
  readonly state: PoolState;
  readonly now: () => number;
  private readonly fetcher: typeof fetch;
  private readonly headers: Readonly<Record<string, string>>;
  private probing?: Promise<void>;

  constructor(
    urls: readonly string[],
    private readonly secret: string,
    { options, fetch: fetcher, now, headers = {} }: OriginPoolOptions = {},
  ) {
    this.headers = headers;
    this.state = new PoolState(urls, { ...DEFAULT_POOL_OPTIONS, ...options });
    this.fetcher = fetcher ?? ((input, init) => fetch(input, init));
    this.now = now ?? (() => Date.now());
  }

  /**
   * Probes the replicas that are due a readiness check (GET /v2/health/ready, unsigned: any OIP
   * server answers it) and records the results. Resolves when those probes ended; concurrent callers
   * share one round.
   */
  refreshHealth(): Promise<void> {
    const due = this.state.dueChecks(this.now());
    if (!due.length) return this.probing ?? Promise.resolve();
    const round = Promise.all(due.map((index) => this.probe(index))).then(() => undefined);
    this.probing = round.finally(() => {
      if (this.probing === round) this.probing = undefined;
    });
    return round;
  }

  /** Sends one signed POST to replica `index`; aborts at `deadlineAtMs`. Never rejects. */
  async attempt(index: number, request: HopRequest, deadlineAtMs: number): Promise<AttemptResult> {
    const startMs = this.now();
    const { path, body, contentType, inferenceHeaderLength, traceparent } = request;
    const signal = AbortSignal.timeout(Math.max(1, Math.ceil(deadlineAtMs - startMs)));
    this.state.started(index);
    let result: AttemptResult;
    try {
      const url = this.state.urlOf(index) + path;
      const headers: Record<string, string> = { ...this.headers, "content-type": contentType, ...(await signHop(this.secret, { method: "POST", host: new URL(url).host, path, body, inferenceHeaderLength }, startMs)) };
      if (inferenceHeaderLength !== undefined) headers[INFERENCE_HEADER_LENGTH] = String(inferenceHeaderLength);
      if (traceparent) headers.traceparent = traceparent;
      const response = await this.fetcher(url, { method: "POST", headers, body: body as Uint8Array<ArrayBuffer>, signal });
      const bytes = new Uint8Array(await response.arrayBuffer());
      const durationMs = this.now() - startMs;
      if (response.status === 200) {
        result = parseAnswer(bytes, response.headers.get(INFERENCE_HEADER_LENGTH), durationMs, response.headers.get("server-timing"));
      } else if (response.status === 503 || response.status === 429) {
        result = { ok: false, failure: { kind: "unavailable", status: response.status, retryAfterMs: retryAfterMs(response.headers.get("retry-after")) }, durationMs };
      } else {
        result = { ok: false, failure: { kind: "server-error", status: response.status }, durationMs };
      }
    } catch {
      // fetch or the body read rejected: our deadline abort, or the connection was refused/reset.
      result = { ok: false, failure: signal.aborted ? { kind: "timeout" } : { kind: "network" }, durationMs: this.now() - startMs };
    }
    const nowMs = this.now();
    if (result.ok) this.state.finished(index, { kind: "ok", durationMs: result.durationMs }, nowMs);
    else if (result.failure.kind === "unavailable") this.state.finished(index, { kind: "busy", retryAfterMs: result.failure.retryAfterMs }, nowMs);
    else this.state.finished(index, { kind: "failed" }, nowMs);
    return result;
  }

  private async probe(index: number): Promise<void> {
    let isReady = false;
    try {
      const response = await this.fetcher(`${this.state.urlOf(index)}/v2/health/ready`, { headers: this.headers, signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) });
      await response.arrayBuffer();
      isReady = response.status === 200;
    } catch {
      isReady = false;
    }
    this.state.checked(index, isReady, this.now());
  }
}

function parseAnswer(bytes: Uint8Array, headerLength: string | null, durationMs: number, serverTiming: string | null): AttemptResult {
  try {
    if (headerLength !== null) {
      const { header, payload } = unpackBinary(bytes, headerLength);
      return { ok: true, body: header, payload, durationMs, serverTiming };
    }
    return { ok: true, body: JSON.parse(decoder.decode(bytes)), durationMs, serverTiming };
  } catch {
    return { ok: false, failure: { kind: "server-error", status: 200 }, durationMs };
  }
}

function retryAfterMs(header: string | null): number {
  const seconds = Number(header);
  return header !== null && Number.isFinite(seconds) && seconds >= 0 ? seconds * 1000 : 1000;
}

const pools = new Map<string, OriginPool>();

/**
 * The isolate's pool for this secret, created on first use with `initialUrls` as its members; every
 * model runner and buffer shard in the isolate shares it, and the buffers keep its members in step
 * with the registry (PoolState.setMembers).
 */
export function originPoolFor(secret: string, initialUrls: readonly string[], headers: Readonly<Record<string, string>> = {}): OriginPool {
  const key = `${secret}\n${JSON.stringify(headers)}`;
  let pool = pools.get(key);
  if (!pool) {
    pool = new OriginPool(initialUrls, secret, { headers });
    pools.set(key, pool);
  }
  return pool;
}
