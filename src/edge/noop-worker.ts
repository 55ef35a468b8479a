/**
 * The soak's platform baseline: a Worker that reads each request's body and answers a small JSON,
 * run under `wrangler dev` beside the real edge and sent the same requests. What its workerd does
 * with memory is the platform's own, with none of the project's code on the request path. The
 * Durable Object classes are exported only because wrangler.toml binds them.
 */
export { BatchBuffer } from "../buffer/batch-buffer";
export { ModelController } from "../control/model-controller";
export { OriginRegistry } from "../control/origin-registry";

export default {
  async fetch(request: Request): Promise<Response> {
    const bytes = request.method === "POST" ? (await request.arrayBuffer()).byteLength : 0;
    return Response.json({ model_name: "noop", outputs: [{ name: "bytes", datatype: "INT64", shape: [1], data: [bytes] }] });
  },
};
