/**
 * The live dashboard: `GET /dashboard` is a page that polls `GET /metrics` and draws each model's
 * traffic, latency against its SLO, batching, queue, rejections and plan (src/dashboard/). Its
 * files are static assets the install step builds into dist/edge-assets/dashboard/; only the page
 * and its three files are served from there. A Content-Security-Policy keeps the page to this
 * origin's own scripts, styles and `/metrics`: nothing inline, nothing from elsewhere.
 */
import { Hono } from "hono";

/** The page's policy: its script and styles from here, fetches to here only. */
export const DASHBOARD_CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/** The files the page loads. */
const DASHBOARD_FILES = new Set(["dashboard.js", "dashboard.css", "uPlot.min.css"]);

type AssetsBinding = { ASSETS: { fetch(url: URL): Promise<Response> } };

/** `path` from the static assets, with the page's policy (a fetched response's headers are immutable, hence the copy). */
async function asset(assets: AssetsBinding["ASSETS"], path: string): Promise<Response> {
  const fetched = await assets.fetch(new URL(path, "https://assets.invalid"));
  const response = new Response(fetched.body, fetched);
  response.headers.set("Content-Security-Policy", DASHBOARD_CSP);
  response.headers.set("X-Content-Type-Options", "nosniff");
  return response;
}

/** Routes of the dashboard. */
export const dashboardRoutes = new Hono<{ Bindings: AssetsBinding }>()
  // The assets serve a folder's index.html at the folder's path (their default html_handling).
  .get("/dashboard", (c) => asset(c.env.ASSETS, "/dashboard/"))
  // A wildcard rather than "/dashboard/:file": the API description lists the page, not its files.
  .get("/dashboard/*", async (c) => {
    const file = c.req.path.slice("/dashboard/".length);
    if (!DASHBOARD_FILES.has(file)) return c.json({ error: `no such file: /dashboard/${file.slice(0, 64)}` }, 404);
    return asset(c.env.ASSETS, `/dashboard/${file}`);
  });
