/**
 * The benchmarks' platform baseline: a Worker that reads each request's body and answers a small
 * JSON, run under `wrangler dev` beside the real edge and sent the same requests. What its workerd
 * does with CPU and memory is the platform's own, with none of the project's code on the request
 * path (the soak's memory baseline; the edge benchmark's platform ceiling).
 *
 * `?rpc=empty|tensor|buffer` adds one Durable Object RPC per request, to price the buffer hop
 * alone: an empty call, the request's tensor as the buffers receive it (nested objects around a
 * Float32Array), or the body as one ArrayBuffer. Its BatchBuffer is a probe that takes the payload
 * and returns at once (wrangler.toml binds the class by name); the other classes are exported only
 * because wrangler.toml binds them.
 *
 * `?refuse=1` answers 503 with a small JSON error at once, its body not read: the least a refusal
 * costs on the platform (the scheduler benchmark's floor for shedding load).
 */
import { DurableObject } from "cloudflare:workers";

export { ModelController } from "../control/model-controller";
export { OriginRegistry } from "../control/origin-registry";
export { StreamBuffer } from "../stream/stream-buffer";

/** Takes an RPC's payload and returns at once. */
export class BatchBuffer extends DurableObject<Env> {
  take(payload: unknown): number {
    return payload === undefined ? 0 : 1;
  }
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const { searchParams } = new URL(request.url);
    if (searchParams.has("refuse")) return Response.json({ error: "refused" }, { status: 503, headers: { "Retry-After": "1" } });
    const body = request.method === "POST" ? await request.arrayBuffer() : new ArrayBuffer(0);
    const rpc = searchParams.get("rpc");
    if (rpc) {
      const probe = (env.BATCH_BUFFER as unknown as DurableObjectNamespace<BatchBuffer>).getByName("probe");
      const floats = new Float32Array(body, 0, Math.floor(body.byteLength / 4));
      const payload = rpc === "tensor" ? { id: "probe", rows: 1, inputs: [{ name: "x", datatype: "FP32", shape: [1, floats.length], data: floats }], outputs: ["y"], deadlineAtMs: Date.now() + 1000 } : rpc === "buffer" ? body : undefined;
      await probe.take(payload);
    }
    return Response.json({ model_name: "noop", outputs: [{ name: "bytes", datatype: "INT64", shape: [1], data: [body.byteLength] }] });
  },
};
