/**
 * Progress bars for long runs (`npm run profile`, the benchmark suites), with cli-progress: one bar
 * at a time, drawn on stderr only where someone watches (stdout and stderr are terminals and CI is
 * not set), so logs, pipes and CI output stay as they were. While a bar is drawn, console output
 * goes above it (cli-progress's MultiBar.log) instead of through it.
 */
import { format } from "node:util";
import { MultiBar, Presets } from "cli-progress";

/** A run's progress: `step` names the step now running, `tick` counts steps done (several at once when a part is skipped), `stop` ends the bar (when the run ends or fails). */
export interface Progress {
  step(name: string): void;
  tick(steps?: number): void;
  stop(): void;
}

const NO_PROGRESS: Progress = { step() {}, tick() {}, stop() {} };

/** Whether bars are drawn: stdout and stderr are terminals, and CI is not set (CI=true, as CI runners set it). */
export function progressEnabled(stdout: { isTTY?: boolean } = process.stdout, stderr: { isTTY?: boolean } = process.stderr, env: NodeJS.ProcessEnv = process.env): boolean {
  const ci = env.CI ?? "";
  return stdout.isTTY === true && stderr.isTTY === true && (ci === "" || ci === "false" || ci === "0");
}

/** The console methods routed above the bar while it is drawn. */
const CONSOLE_METHODS = ["log", "info", "warn", "error"] as const;

/** Whether a bar is drawn now (a nested run gets none). */
let drawing = false;

/**
 * Starts a bar of `total` steps named `label`; a no-op where bars are not drawn or another one is.
 * `stream` is where it is drawn (stderr; tests pass their own).
 */
export function startProgress(label: string, total: number, stream: NodeJS.WriteStream = process.stderr): Progress {
  if (drawing || total <= 0 || !progressEnabled(process.stdout, stream)) return NO_PROGRESS;
  drawing = true;
  // linewrap true: the bar is cut to the terminal's width, and the terminal's settings are left alone (nothing to restore if the run is killed).
  const bars = new MultiBar({ stream, format: `${label} {bar} {value}/{total} | {duration_formatted}, eta {eta_formatted} | {step}`, barsize: 30, clearOnComplete: true, linewrap: true, etaBuffer: 20 }, Presets.shades_classic);
  const bar = bars.create(total, 0, { step: "" });
  // MultiBar redraws on a timer: redraw at once after a log line, and after an update unless it just did (a synchronous loop never lets the timer run).
  let drawnAt = Date.now();
  const redraw = () => {
    drawnAt = Date.now();
    bars.update();
  };
  const saved = CONSOLE_METHODS.map((method) => console[method]);
  for (const method of CONSOLE_METHODS) {
    console[method] = (...args: unknown[]) => {
      bars.log(`${format(...args)}\n`);
      redraw();
    };
  }
  let stopped = false;
  const update = (change: () => void) => {
    if (stopped) return;
    change();
    if (Date.now() - drawnAt >= 100) redraw();
  };
  return {
    step: (name) => update(() => bar.update({ step: name })),
    tick: (steps = 1) => update(() => bar.increment(steps)),
    stop() {
      if (stopped) return;
      stopped = true;
      CONSOLE_METHODS.forEach((method, i) => (console[method] = saved[i]!));
      redraw(); // writes what was logged since the last redraw
      bars.stop();
      drawing = false;
    },
  };
}
