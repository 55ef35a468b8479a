/**
 * A stand-in for the edge, for the dashboard's browser test: serves the built page and its files
 * from dist/edge-assets/dashboard/ (the install step's output) with the Worker's policy header, and
 * `GET /metrics` as JSON from a MetricsFixture, on 127.0.0.1.
 */
import { readFileSync } from "node:fs";
import { createServer, type ServerResponse } from "node:http";
import { join } from "node:path";
import { ROOT } from "../../../src/cli/processes";
import { DASHBOARD_CSP } from "../../../src/routes/dashboard";
import type { MetricsFixture } from "./metrics-fixture";

/** Where the install step puts the dashboard. */
export const DASHBOARD_ASSETS = join(ROOT, "dist", "edge-assets", "dashboard");

const TYPES: Record<string, string> = { "index.html": "text/html; charset=utf-8", "dashboard.js": "text/javascript", "dashboard.css": "text/css", "uPlot.min.css": "text/css" };

/** A listening stand-in and how to stop it. */
export interface FixtureServer {
  url: string;
  close(): Promise<void>;
}

function sendFile(response: ServerResponse, file: string): void {
  response.writeHead(200, { "Content-Type": TYPES[file]!, "Content-Security-Policy": DASHBOARD_CSP });
  response.end(readFileSync(join(DASHBOARD_ASSETS, file)));
}

/** Serves the dashboard and `fixture`'s metrics, each snapshot stamped with `nowMs()`. */
export async function serveFixture(fixture: MetricsFixture, nowMs: () => number): Promise<FixtureServer> {
  const server = createServer((request, response) => {
    const path = new URL(request.url ?? "/", "http://fixture").pathname;
    if (path === "/dashboard") return sendFile(response, "index.html");
    const file = path.startsWith("/dashboard/") ? path.slice("/dashboard/".length) : "";
    if (file !== "index.html" && TYPES[file]) return sendFile(response, file);
    if (path === "/metrics" && request.headers.accept?.includes("application/json")) {
      void fixture.body(nowMs()).then((body) => {
        response.writeHead(200, { "Content-Type": "application/json" });
        response.end(JSON.stringify(body));
      });
      return;
    }
    response.writeHead(404, { "Content-Type": "application/json" });
    response.end(JSON.stringify({ error: "not found" }));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
