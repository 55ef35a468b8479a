/**
 * Hands the replica count to anything that speaks HTTP: POSTs `{"replicas": n, "reason": "...",
 * "atMs": <epoch ms>}` as JSON to a URL, signed with the hop signature (src/origin/hop-signature.ts:
 * method POST, the URL's path and query, the exact body bytes), so the receiver can check it came
 * from this pool. A non-2xx answer or no answer within `timeoutMs` is an error. fetch only: runs
 * in Node and in workerd.
 */
import { signHop } from "../origin/hop-signature";
import type { PoolScaler, WebhookScalerConfig } from "./pool-scaler";

/** What the webhook receives. */
export interface ScaleRequestBody {
  replicas: number;
  reason: string;
  /** When the request was made, epoch ms. */
  atMs: number;
}

/** A webhook that refused (status = HTTP status) or did not answer (status 0). */
export class WebhookError extends Error {
  override name = "WebhookError";

  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** Transport options. */
export interface WebhookScalerOptions {
  fetch?: typeof fetch;
  /** Longest wait for the receiver, in ms (default 5000). */
  timeoutMs?: number;
  /** Epoch ms. */
  now?: () => number;
}

/** POSTs each replica count to a webhook. `replicas()` is the last count the webhook accepted (0 before any). */
export class WebhookScaler implements PoolScaler {
  readonly kind = "webhook";
  private accepted = 0;

  constructor(
    private readonly config: WebhookScalerConfig,
    private readonly options: WebhookScalerOptions = {},
  ) {}

  async setReplicas(replicas: number, reason: string): Promise<void> {
    if (!Number.isInteger(replicas) || replicas < 0) throw new RangeError(`replicas must be a non-negative integer, got ${replicas}`);
    const atMs = (this.options.now ?? Date.now)();
    const body = JSON.stringify({ replicas, reason, atMs } satisfies ScaleRequestBody);
    const url = new URL(this.config.url);
    const headers = await signHop(this.config.secret, { method: "POST", host: url.host, path: url.pathname + url.search, body }, atMs);
    let response: Response;
    try {
      response = await (this.options.fetch ?? fetch)(url.href, {
        method: "POST",
        headers: { ...headers, "content-type": "application/json" },
        body,
        signal: AbortSignal.timeout(this.options.timeoutMs ?? 5_000),
      });
    } catch (error) {
      throw new WebhookError(`webhook ${url.origin}${url.pathname}: ${(error as Error).message}`, 0);
    }
    const text = await response.text().catch(() => "");
    if (!response.ok) throw new WebhookError(`webhook ${url.origin}${url.pathname}: HTTP ${response.status} ${text.slice(0, 200)}`.trim(), response.status);
    this.accepted = replicas;
  }

  async replicas(): Promise<number> {
    return this.accepted;
  }

  async close(): Promise<void> {}
}
