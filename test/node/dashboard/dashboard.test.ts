/**
 * The dashboard page in headless Chromium (Debian's /usr/bin/chromium, driven by playwright-core):
 * first against a synthetic /metrics, to see counter restarts, missing series and hostile label
 * values handled; then against the real edge Worker under `wrangler dev` after real traffic, to see
 * every chart of the model that got it drawn, the page's count match the requests sent, and a
 * screenshot that is not blank (test-artifacts/dashboard.png). Neither part may log a console error
 * or throw in the page; waits poll the page's own state (window.dashboardState), never sleep.
 */
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, ROOT, startEdge, type Started } from "../../../src/cli/processes";
import type { ChartName, DashboardState } from "../../../src/dashboard/dashboard-state";
import { DASHBOARD_CSP } from "../../../src/routes/dashboard";
import { serveFixture, type FixtureServer } from "./fixture-server";
import { MetricsFixture } from "./metrics-fixture";
import { summarisePng } from "./png-pixels";

const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];
const CHARTS: ChartName[] = ["requests", "latency", "batch", "queue", "rejections", "plan"];
const WAIT_MS = 30_000;
const ARTIFACTS = join(ROOT, "test-artifacts");

/** A page of `browser` whose console errors and uncaught errors are collected. */
async function watchedPage(browser: Browser): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const problems: string[] = [];
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console: ${message.text()}`);
  });
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  return { page, problems };
}

/** The page's state (window.dashboardState). */
const stateOf = (page: Page) => page.evaluate(() => window.dashboardState ?? null) as Promise<DashboardState | null>;

/** Waits until the page has seen `requests` requests of `model` and every one of its charts drew a point. */
async function waitForModel(page: Page, model: string, requests: number): Promise<void> {
  await page.waitForFunction(
    ([name, count, charts]) => {
      const seen = window.dashboardState?.models[name];
      return seen !== undefined && seen.requestsInHistory === count && charts.every((chart) => seen.points[chart] > 0);
    },
    [model, requests, CHARTS] as const,
    { timeout: WAIT_MS, polling: 100 },
  );
}

describe("dashboard page", () => {
  let browser: Browser | undefined;

  beforeAll(async () => {
    browser = await chromium.launch({ executablePath: "/usr/bin/chromium", args: CHROMIUM_ARGS, timeout: 30_000 });
  }, 40_000);

  afterAll(async () => {
    await browser?.close();
  });

  describe("against a synthetic /metrics", () => {
    const fixture = new MetricsFixture();
    const hostile = `<img src=x onerror="window.pwned=1">`;
    let server: FixtureServer | undefined;
    let nowMs = 1_700_000_000_000;

    beforeAll(async () => {
      fixture.configure("alpha", { version: 1, shards: 1, maxBatchRows: 16, windowS: 0.004, poolReplicas: 0, placement: "edge" }, { percentile: "95", seconds: 0.1 });
      // A model with its plan only (no SLO, no traffic) and a name that is markup.
      fixture.configure(hostile, { version: 1, shards: 1, maxBatchRows: 8, windowS: 0.002, poolReplicas: 0, placement: "direct" });
      // Each answer is one simulated second later, so rates do not depend on how fast the page polls.
      server = await serveFixture(fixture, () => (nowMs += 1000));
    });

    afterAll(async () => {
      await server?.close();
    });

    it("counts across a counter restart, tolerates missing series and shows label values as text", async () => {
      const { page, problems } = await watchedPage(browser!);
      expect((await page.goto(`${server!.url}/dashboard?every=100`))?.status()).toBe(200);
      await page.waitForFunction(() => (window.dashboardState?.polls ?? 0) >= 1, null, { timeout: WAIT_MS });
      for (let i = 0; i < 30; i++) fixture.request("alpha", i % 10 === 0 ? 503 : 200, 0.004 + i / 1000, 1 + (i % 8));
      fixture.reject("alpha", "queue_full");
      fixture.queue("alpha", 3);
      await waitForModel(page, "alpha", 30);
      fixture.restart();
      for (let i = 0; i < 5; i++) fixture.request("alpha", 200, 0.02, 2);
      await waitForModel(page, "alpha", 35);

      const state = (await stateOf(page))!;
      expect(Object.keys(state.models).sort()).toEqual([hostile, "alpha"].sort());
      expect(state.failures).toBe(0);
      expect(state.models.alpha!.placement).toBe("edge");
      expect(state.models[hostile]!.requestsInHistory).toBe(0);
      const headings = await page.locator("section.model h2").allTextContents();
      expect(headings).toContain(hostile);
      expect(await page.locator("img").count()).toBe(0);
      expect(await page.evaluate(() => "pwned" in window)).toBe(false);
      expect(problems).toEqual([]);
      await page.close();
    });
  });

  describe("against the real edge Worker", () => {
    const REQUESTS = 60;
    const MALFORMED = 4;
    let edge: Started | undefined;
    let port: number | undefined;

    beforeAll(async () => {
      port = await freePort();
      edge = await startEdge({ port, vars: { ORIGIN_URLS: "", CONTROL_MODE: "static", LOG_REQUESTS: "false" } });
    }, 150_000);

    afterAll(async () => {
      await edge?.stop(5_000);
      // startEdge persists Durable Object state per port; this run's is of no further use.
      if (port !== undefined) rmSync(join(ROOT, ".wrangler", `state-${port}`), { recursive: true, force: true });
    });

    it("serves the page and its three files under the policy, and nothing else from its folder", async () => {
      const page = await fetch(`${edge!.url}/dashboard`);
      expect(page.status).toBe(200);
      expect(page.headers.get("content-type")).toMatch(/text\/html/);
      expect(page.headers.get("content-security-policy")).toBe(DASHBOARD_CSP);
      const html = await page.text();
      const files = [...html.matchAll(/(?:href|src)="(\/dashboard\/[^"]+)"/g)].map((m) => m[1]!);
      expect(files.sort()).toEqual(["/dashboard/dashboard.css", "/dashboard/dashboard.js", "/dashboard/uPlot.min.css"]);
      for (const file of files) {
        const asset = await fetch(`${edge!.url}${file}`);
        expect([file, asset.status]).toEqual([file, 200]);
        expect((await asset.arrayBuffer()).byteLength).toBeGreaterThan(500);
      }
      const other = await fetch(`${edge!.url}/dashboard/index.html`);
      expect(other.status).toBe(404);
      expect(await other.json()).toEqual({ error: "no such file: /dashboard/index.html" });
    });

    it("draws every chart of the model that got traffic, counts exactly the requests sent, and renders a non-blank page", async () => {
      const { page, problems } = await watchedPage(browser!);
      expect((await page.goto(`${edge!.url}/dashboard?every=500`))?.status()).toBe(200);
      await page.waitForFunction(() => (window.dashboardState?.polls ?? 0) >= 1, null, { timeout: WAIT_MS });

      const body = JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 3, 48, 192], data: new Array(3 * 48 * 192).fill(0) }] });
      const statuses: number[] = [];
      for (let batch = 0; batch < REQUESTS / 6; batch++) {
        const answers = await Promise.all(Array.from({ length: 6 }, () => fetch(`${edge!.url}/v2/models/ppocr-cls/infer`, { method: "POST", body })));
        statuses.push(...answers.map((a) => a.status));
        await Promise.all(answers.map((a) => a.arrayBuffer()));
      }
      const malformed = [
        JSON.stringify({ inputs: [{ name: "y", datatype: "FP32", shape: [1, 3, 48, 192], data: [] }] }),
        JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 3, 48, 192], data: [1, 2, 3] }] }),
        "{ not json",
        JSON.stringify({ outputs: [] }),
      ];
      for (const bad of malformed) {
        const answer = await fetch(`${edge!.url}/v2/models/ppocr-cls/infer`, { method: "POST", body: bad });
        statuses.push(answer.status);
        await answer.arrayBuffer();
      }
      expect(statuses.slice(0, REQUESTS).every((s) => s === 200)).toBe(true);
      expect(statuses.slice(REQUESTS).every((s) => s >= 400 && s < 500)).toBe(true);
      expect(MALFORMED).toBe(malformed.length);

      await waitForModel(page, "ppocr-cls", REQUESTS + MALFORMED);
      const state = (await stateOf(page))!;
      const points = state.models["ppocr-cls"]!.points;
      expect(CHARTS.filter((chart) => !(points[chart] > 0))).toEqual([]);
      expect(state.failures).toBe(0);
      expect(await page.locator('section[data-model="ppocr-cls"] figure.chart[data-points="0"]').count()).toBe(0);

      // The OCR pipeline has a section of its own: its requests (two images refused here) and their latency against its SLO.
      for (let i = 0; i < 2; i++) expect((await fetch(`${edge!.url}/v1/ocr`, { method: "POST", body: new Uint8Array(0) })).status).toBe(400);
      await page.waitForFunction(() => {
        const seen = window.dashboardState?.models.ppocr;
        return seen !== undefined && seen.requestsInHistory === 2 && seen.points.requests > 0 && seen.points.latency > 0;
      }, null, { timeout: WAIT_MS, polling: 100 });
      const pipeline = page.locator('section[data-model="ppocr"][data-kind="pipeline"]');
      expect(await pipeline.locator("figure.chart").count()).toBe(2);
      expect(await pipeline.locator("p.meta").textContent()).toMatch(/SLO p95 3000 ms · 2 requests seen/);

      mkdirSync(ARTIFACTS, { recursive: true });
      const file = join(ARTIFACTS, "dashboard.png");
      await page.screenshot({ path: file, fullPage: true });
      const png = summarisePng(readFileSync(file));
      expect(png.width).toBe(1400);
      expect(png.height).toBeGreaterThanOrEqual(900);
      // Text, axes and several coloured lines: far more than a blank or single-colour page.
      expect(png.distinctColours).toBeGreaterThan(50);
      expect(problems).toEqual([]);
      await page.close();
    }, 90_000);
  });
});
