/**
 * What the dashboard page publishes about itself on `window.dashboardState`: how many polls it
 * made and how they went, and per model what it counted and how many points each chart drew. The
 * browser test waits on it instead of sleeping; an operator can read it from the console.
 */

/** The charts of a model's section. */
export type ChartName = "requests" | "latency" | "batch" | "queue" | "rejections" | "plan";

/** One model as the page sees it. */
export interface ModelState {
  /** Requests counted between the first and the last snapshot the page keeps. */
  requestsInHistory: number;
  placement: string | null;
  /** Points drawn by each chart at the last update. */
  points: Record<ChartName, number>;
}

/** The page's state after its last poll. */
export interface DashboardState {
  /** Polls answered with a usable snapshot. */
  polls: number;
  /** Polls that failed (network, status, or a body that is not a snapshot). */
  failures: number;
  lastError: string | null;
  /** Snapshots kept. */
  snapshots: number;
  models: Record<string, ModelState>;
}

declare global {
  interface Window {
    dashboardState?: DashboardState;
  }
}
