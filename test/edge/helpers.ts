/** Small helpers shared by the workers tests: calling the edge and reaching buffer shards. */
import { env, SELF } from "cloudflare:test";
import type { BatchBuffer } from "../../src/buffer/batch-buffer";

/** POSTs a JSON body (or raw string or bytes) to a model's infer endpoint. */
export function infer(model: string, body: unknown, init: RequestInit = {}): Promise<Response> {
  return SELF.fetch(`http://edge.test/v2/models/${model}/infer`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" || body instanceof Uint8Array ? body : JSON.stringify(body),
    ...init,
  });
}

/** The stub of a model's buffer shard. */
export function bufferStub(model: string, shard = 0): DurableObjectStub<BatchBuffer> {
  const namespace = env.BATCH_BUFFER as DurableObjectNamespace<BatchBuffer>;
  return namespace.get(namespace.idFromName(`${model}#${shard}`));
}

/** Polls `check` until it returns true, at most `attempts` times (each poll is one DO round trip). */
export async function eventually(check: () => Promise<boolean>, attempts = 2_000): Promise<void> {
  for (let i = 0; i < attempts; i++) if (await check()) return;
  throw new Error("condition not reached");
}

/** Largest absolute difference between two equal-length arrays. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

/** The shape of an infer response body. */
export interface InferBody {
  model_name: string;
  model_version?: string;
  id?: string;
  outputs: Array<{ name: string; datatype: string; shape: number[]; data: number[] }>;
}
