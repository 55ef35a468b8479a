/**
 * The live dashboard at `GET /dashboard`: polls the edge's `GET /metrics` (JSON) every 2 s, keeps
 * the last 15 minutes of snapshots, and redraws one section of charts per model (the models the
 * metrics report). Query parameters, for tests and curious operators: `every` (poll period, ms),
 * `window` (quantile and batch-size window, s, default 60), `history` (kept, minutes). A failed poll
 * is shown in the status line and retried at the next tick; a failure to draw is logged to the
 * console and polling goes on.
 * Bundled by the install step (src/cli/link-models.mjs) to dist/edge-assets/dashboard/dashboard.js.
 */
import type { DashboardState } from "./dashboard-state";
import { appendSnapshot, DEFAULT_HISTORY_MS } from "./history";
import { modelsOf, parseSnapshot, pipelinesOf, type Snapshot } from "./metrics-snapshot";
import { modelSection, type ModelSection } from "./model-section";
import { modelSeries } from "./model-series";

/** The page's settings, from its query string. */
interface Settings {
  everyMs: number;
  windowMs: number;
  historyMs: number;
}

/** A positive number from the query, within [min, max], or `fallback`. */
function queryNumber(params: URLSearchParams, name: string, fallback: number, min: number, max: number): number {
  const value = Number(params.get(name) ?? NaN);
  return Number.isFinite(value) && value > 0 ? Math.min(max, Math.max(min, value)) : fallback;
}

function settingsOf(search: string): Settings {
  const params = new URLSearchParams(search);
  return {
    everyMs: queryNumber(params, "every", 2_000, 100, 60_000),
    windowMs: queryNumber(params, "window", 60, 1, 3_600) * 1000,
    historyMs: queryNumber(params, "history", DEFAULT_HISTORY_MS / 60_000, 1, 24 * 60) * 60_000,
  };
}

/** The next snapshot from /metrics, or why there is none. */
async function fetchSnapshot(): Promise<Snapshot | string> {
  try {
    const response = await fetch("/metrics", { headers: { Accept: "application/json" }, cache: "no-store" });
    if (!response.ok) return `GET /metrics answered ${response.status}`;
    return parseSnapshot(await response.json());
  } catch (error) {
    return `GET /metrics failed: ${error instanceof Error ? error.message : String(error)}`;
  }
}

/** Runs the page: polls, keeps the history, draws. */
function start(settings: Settings): void {
  const status = document.getElementById("status")!;
  const container = document.getElementById("models")!;
  const sections = new Map<string, ModelSection>();
  const state: DashboardState = { polls: 0, failures: 0, lastError: null, snapshots: 0, models: {} };
  let history: Snapshot[] = [];
  window.dashboardState = state;

  const draw = (snapshot: Snapshot) => {
    history = appendSnapshot(history, snapshot, settings.historyMs);
    const models: DashboardState["models"] = {};
    // Pipelines first: their end-to-end SLO is what a client of one sees.
    const shown = [...pipelinesOf(snapshot).map((name) => [name, "pipeline"] as const), ...modelsOf(snapshot).map((name) => [name, "model"] as const)];
    for (const [model, kind] of shown) {
      if (!sections.has(model)) sections.set(model, modelSection(container, model, settings.windowMs / 1000, kind));
      const series = modelSeries(history, model, settings.windowMs);
      const section = sections.get(model)!;
      section.update(series);
      models[model] = { requestsInHistory: series.requestsInHistory, placement: series.placement[series.placement.length - 1] ?? null, points: section.points() };
    }
    Object.assign(state, { polls: state.polls + 1, lastError: null, snapshots: history.length, models });
    status.textContent = `updated ${new Date(snapshot.atMs).toLocaleTimeString()} · every ${settings.everyMs / 1000} s · ${sections.size} model(s)`;
    status.dataset.state = "ok";
  };

  const poll = async () => {
    const snapshot = await fetchSnapshot();
    if (typeof snapshot === "string") {
      Object.assign(state, { failures: state.failures + 1, lastError: snapshot });
      status.textContent = `${snapshot}; retrying`;
      status.dataset.state = "error";
    } else {
      try {
        draw(snapshot);
      } catch (error) {
        // A bug, not the metrics' fault: logged for whoever looks, and the page keeps polling.
        Object.assign(state, { failures: state.failures + 1, lastError: `drawing failed: ${String(error)}` });
        console.error("dashboard: drawing failed", error);
      }
    }
    setTimeout(() => void poll(), settings.everyMs);
  };

  window.addEventListener("resize", () => sections.forEach((section) => section.resize()));
  void poll();
}

start(settingsOf(location.search));
