/**
 * The Durable Object classes wrangler.toml binds besides BatchBuffer. Every Worker that runs under
 * that file (the edge, src/index.ts; the benchmarks' no-op and profiling Workers) must export each
 * bound class or `wrangler dev` refuses to start, so they all re-export this one list; each exports
 * its own BatchBuffer (the no-op Worker's is a probe).
 */
export { ModelController } from "../control/model-controller";
export { OriginRegistry } from "../control/origin-registry";
export { StreamBuffer } from "../stream/stream-buffer";
