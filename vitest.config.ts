/**
 * Test projects: "workers" and "workers-buffer" run Worker and Durable Object code inside real
 * workerd (vitest-pool-workers), each with its own model overrides; "node" runs pure modules, the
 * origin server and the planner in Node.
 */
import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig, type TestProjectInlineConfiguration } from "vitest/config";

/** A workers project whose Worker runs with `overrides` as MODEL_OVERRIDES. */
function workersProject(name: string, include: string[], exclude: string[], overrides: object): TestProjectInlineConfiguration {
  return {
    plugins: [
      cloudflareTest({
        wrangler: { configPath: "./wrangler.toml" },
        // Plans stay as the manifests say unless a test pins them (CONTROL_MODE static).
        miniflare: { bindings: { MODEL_OVERRIDES: JSON.stringify(overrides), MAX_BODY_BYTES: String(4 * 1024 * 1024), BODY_TIMEOUT_MS: "2000", ORIGIN_URLS: "", CONTROL_MODE: "static", ADMIN_TOKEN: "test-admin-token-0123456789", LOG_REQUESTS: "false" } },
      }),
    ],
    test: { name, include, exclude, globalSetup: ["test/setup/references.ts"], testTimeout: 30_000 },
  };
}

export default defineConfig({
  test: {
    projects: [
      workersProject("workers", ["test/edge/**/*.test.ts"], ["test/edge/buffer/**"], {
        // A window long enough to observe, short enough to wait for.
        "ppocr-cls": { slo: { ms: 30_000 }, batching: { maxBatch: 4, windowMs: 40, maxQueueRows: 256, shards: 1, maxRowsPerRequest: 4, adaptiveWindow: false } },
      }),
      workersProject("workers-buffer", ["test/edge/buffer/**/*.test.ts"], [], {
        // A long window: batches leave only by size, so size release, deadlines, queue bounds and aborts are deterministic.
        "silero-vad": { slo: { ms: 10_000 }, batching: { maxBatch: 8, windowMs: 5_000, maxQueueRows: 16, shards: 1, maxRowsPerRequest: 8, adaptiveWindow: false } },
        // Size classes (test/edge/buffer/size-classes.test.ts): three rendered lines of class 384 leave together by size.
        "ppocr-rec": { slo: { ms: 10_000 }, batching: { maxBatch: 3, windowMs: 300, maxQueueRows: 16, shards: 1, maxRowsPerRequest: 3, adaptiveWindow: false, sizeClasses: { widths: [128, 256, 384, 1280] } } },
      }),
      { test: { name: "node", environment: "node", include: ["test/node/**/*.test.ts"], testTimeout: 60_000 } },
    ],
  },
});
