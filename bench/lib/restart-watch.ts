/**
 * Notices when a process tree replaces one of its processes: `wrangler dev` rebuilds and restarts
 * the Worker's workerd whenever a source file changes (others editing the checkout), which drops or
 * stalls the requests in flight. A benchmark that watches for it can say which failures a restart
 * explains. Polls /proc every `intervalMs` (no processes spawned).
 */
import { commandLine, processAndDescendants } from "./rss-sampler";

/** A process that appeared in the tree after the watch began, s from the start. */
export interface Restart {
  atS: number;
  pid: number;
}

/** Watches the descendants of `rootPid` whose command line matches `pattern`. */
export class RestartWatch {
  readonly restarts: Restart[] = [];
  private readonly known = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private startMs = 0;

  constructor(
    private readonly rootPid: number,
    private readonly pattern: RegExp,
    private readonly intervalMs = 1_000,
  ) {}

  start(): void {
    this.startMs = performance.now();
    for (const pid of this.matching()) this.known.add(pid);
    this.timer = setInterval(() => this.poll(), this.intervalMs);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  /** Whether a restart was seen within [fromS, toS] (s from the start). */
  isRestartWithin(fromS: number, toS: number): boolean {
    return this.restarts.some((r) => r.atS >= fromS && r.atS <= toS);
  }

  private matching(): number[] {
    return processAndDescendants(this.rootPid).filter((pid) => this.pattern.test(commandLine(pid)));
  }

  private poll(): void {
    for (const pid of this.matching()) {
      if (this.known.has(pid)) continue;
      this.known.add(pid);
      this.restarts.push({ atS: (performance.now() - this.startMs) / 1000, pid });
    }
  }
}
