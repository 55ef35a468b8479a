/**
 * API documentation served by the Worker in workerd: /openapi.json documents every route the app
 * registers (method and path, read from the app itself), and /docs is the Swagger UI page whose
 * files come from the Worker's static assets.
 */
import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { app } from "../../src/app";

const get = (path: string) => SELF.fetch(`http://edge.test${path}`);

describe("API documentation", () => {
  it("documents every route the app serves, with its method", async () => {
    const response = await get("/openapi.json");
    expect(response.status).toBe(200);
    const doc = (await response.json()) as { paths: Record<string, Record<string, unknown>> };
    const routes = app.routes.filter((r) => r.method !== "ALL" && !r.path.includes("*"));
    expect(routes.length).toBeGreaterThan(15);
    const undocumented = routes
      .map((r) => ({ method: r.method.toLowerCase(), path: r.path.replace(":model", "{MODEL_NAME}").replace(":version", "{MODEL_VERSION}").replace(/^\/v2\/$/, "/v2") }))
      .filter((r) => !r.path.startsWith("/docs/") && !doc.paths[r.path]?.[r.method]);
    expect(undocumented).toEqual([]);
  });

  it("serves the rendered page and its renderer's files from the assets, and nothing else from there", async () => {
    const page = await get("/docs");
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toMatch(/text\/html/);
    const html = await page.text();
    expect(html).toContain('url: "/openapi.json"');
    for (const file of [...html.matchAll(/(?:href|src)="(\/docs\/[^"]+)"/g)].map((m) => m[1]!)) {
      const asset = await get(file);
      expect([file, asset.status]).toEqual([file, 200]);
      expect((await asset.arrayBuffer()).byteLength).toBeGreaterThan(10_000);
    }
    const other = await get("/docs/LICENSE");
    expect(other.status).toBe(404);
    expect(await other.json()).toEqual({ error: "no such file: /docs/LICENSE" });
  });
});
