/**
 * Resident memory and CPU time of local processes over time, from /proc (Linux): a sampler that
 * reads a changing set of labelled processes (discovered anew at every sample, so children that
 * start late and replicas that come and go are followed), and per-process growth figures.
 * Descendants are found through /proc/<pid>/task/<tid>/children, without spawning anything.
 */
import { readdirSync, readFileSync } from "node:fs";
import { loadavg } from "node:os";
import { cpuMs } from "../../src/cli/process-cpu";

/** `pid` and all its descendants, parents first (empty when it is gone). */
export function processAndDescendants(pid: number): number[] {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return [];
  }
  const children = tasks.flatMap((tid) => {
    try {
      return readFileSync(`/proc/${pid}/task/${tid}/children`, "utf8").trim().split(/\s+/).filter(Boolean).map(Number);
    } catch {
      return [];
    }
  });
  return [pid, ...children.flatMap(processAndDescendants)];
}

/** A process's command line, arguments joined by spaces ("" when it is gone). */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ").trim();
  } catch {
    return "";
  }
}

/** VmRSS of a process in KiB, or undefined when it is gone. */
export function vmRssKiB(pid: number): number | undefined {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return match ? Number(match[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** A process to sample: `key` identifies it across samples (label and pid). */
export interface SampledProcess {
  key: string;
  pid: number;
}

/**
 * One sample: seconds from the start, RSS (KiB) and CPU time so far (ms) per process key, and the
 * machine's 1-min load average. With a `beforeSample` hook (a forced garbage collection), also RSS
 * just before the hook ran and what the hook measured (JS heap in use, MiB) per process key.
 */
export interface RssSample {
  atS: number;
  rssKiB: Record<string, number>;
  cpuMs: Record<string, number>;
  load1: number;
  rssBeforeKiB?: Record<string, number>;
  heapUsedMiB?: Record<string, number>;
}

/** Runs before each reading of RSS (e.g. a full garbage collection); resolves with figures per pid (JS heap in use, MiB). */
export type BeforeSample = () => Promise<Map<number, number>>;

/** Samples `targets()` every `intervalMs` from `start()` until `stop()` (which takes a last sample). */
export class RssSampler {
  readonly samples: RssSample[] = [];
  private loop: Promise<void> | undefined;
  private isStopped = false;
  private stopping: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private startMs = 0;

  constructor(
    private readonly targets: () => SampledProcess[],
    private readonly intervalMs: number,
    private readonly beforeSample?: BeforeSample,
  ) {}

  start(): void {
    this.startMs = performance.now();
    this.loop = (async () => {
      for (let next = this.startMs; !this.isStopped; ) {
        await this.sample();
        next += this.intervalMs;
        if (this.isStopped) break;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.max(0, next - performance.now()));
          this.wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    })();
  }

  /** Stops sampling after one last sample; every call resolves once that sample is taken (at once if never started). */
  stop(): Promise<void> {
    if (this.loop === undefined) return Promise.resolve();
    this.stopping ??= (async () => {
      this.isStopped = true;
      this.wake?.();
      await this.loop;
      await this.sample();
    })();
    return this.stopping;
  }

  private async sample(): Promise<void> {
    const targets = this.targets();
    const read = () =>
      new Map(
        targets.flatMap(({ key, pid }) => {
          const kib = vmRssKiB(pid);
          return kib === undefined ? [] : [[key, kib] as const];
        }),
      );
    const before = this.beforeSample ? read() : undefined;
    const byPid = await this.beforeSample?.().catch((error: unknown) => {
      console.warn(`  before the RSS sample: ${error instanceof Error ? error.message : String(error)}`);
      return new Map<number, number>();
    });
    const rss = read();
    const cpu = Object.fromEntries([...rss.keys()].map((key) => [key, cpuMs(targets.find((t) => t.key === key)!.pid)]));
    const heap = byPid && Object.fromEntries(targets.flatMap(({ key, pid }) => (byPid.has(pid) ? [[key, byPid.get(pid)!]] : [])));
    this.samples.push({ atS: (performance.now() - this.startMs) / 1000, rssKiB: Object.fromEntries(rss), cpuMs: cpu, load1: loadavg()[0]!, ...(before && { rssBeforeKiB: Object.fromEntries(before), heapUsedMiB: heap }) });
  }
}

/** RSS of one process at the start, at the end of warm-up, at the end and its maximum (MiB), and its growth after warm-up. */
export interface RssGrowth {
  key: string;
  startMiB: number;
  warmMiB: number | null;
  endMiB: number | null;
  maxMiB: number;
  /** (end - warm) / warm, percent; null when the process was not running at both times. */
  growthPct: number | null;
  /** CPU time over the samples it was seen in, as a percentage of one core. */
  cpuPct: number;
}

/** Per-process figures from `field` (RSS, or RSS before the `beforeSample` hook): warm is the first sample at or after `warmUpS`, end the last sample. */
export function rssGrowth(samples: readonly RssSample[], warmUpS: number, field: "rssKiB" | "rssBeforeKiB" = "rssKiB"): RssGrowth[] {
  const of = (s: RssSample) => s[field] ?? {};
  const keys = [...new Set(samples.flatMap((s) => Object.keys(of(s))))];
  const warm = samples.find((s) => s.atS >= warmUpS);
  const last = samples.at(-1);
  const mib = (kib: number | undefined) => (kib === undefined ? null : kib / 1024);
  return keys.map((key) => {
    const seen = samples.filter((s) => of(s)[key] !== undefined);
    const values = seen.map((s) => of(s)[key]!);
    const first = seen[0]!;
    const lastSeen = seen.at(-1)!;
    const warmMiB = mib(warm && of(warm)[key]);
    const endMiB = mib(last && of(last)[key]);
    return {
      key,
      startMiB: values[0]! / 1024,
      warmMiB,
      endMiB,
      maxMiB: Math.max(...values) / 1024,
      growthPct: warmMiB !== null && endMiB !== null ? ((endMiB - warmMiB) / warmMiB) * 100 : null,
      cpuPct: lastSeen.atS > first.atS && lastSeen.cpuMs[key] !== undefined && first.cpuMs[key] !== undefined ? ((lastSeen.cpuMs[key] - first.cpuMs[key]) / ((lastSeen.atS - first.atS) * 1000)) * 100 : 0,
    };
  });
}
