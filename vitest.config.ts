import { cloudflareTest } from "@cloudflare/vitest-pool-workers";
import { defineConfig } from "vitest/config";
export default defineConfig({
  test: {
    projects: [
      { plugins: [cloudflareTest({ wrangler: { configPath: "./wrangler.toml" } })], test: { name: "workers", include: ["test/edge/**/*.test.ts"] } },
      { test: { name: "node", environment: "node", include: ["test/node/**/*.test.ts"] } },
    ],
  },
});
