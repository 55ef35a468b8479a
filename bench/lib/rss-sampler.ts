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

/** One sample: seconds from the start, RSS (KiB) and CPU time so far (ms) per process key, and the machine's 1-min load average. */
export interface RssSample {
  atS: number;
  rssKiB: Record<string, number>;
  cpuMs: Record<string, number>;
  load1: number;
}

/** Samples `targets()` every `intervalMs` from `start()` until `stop()` (which takes a last sample). */
export class RssSampler {
  readonly samples: RssSample[] = [];
  private timer: NodeJS.Timeout | undefined;
  private startMs = 0;

  constructor(
    private readonly targets: () => SampledProcess[],
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.startMs = performance.now();
    this.sample();
    this.timer = setInterval(() => this.sample(), this.intervalMs);
  }

  /** Stops sampling after one last sample; later calls do nothing. */
  stop(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.sample();
  }

  private sample(): void {
    const rssKiB: Record<string, number> = {};
    const cpu: Record<string, number> = {};
    for (const { key, pid } of this.targets()) {
      const kib = vmRssKiB(pid);
      if (kib === undefined) continue;
      rssKiB[key] = kib;
      cpu[key] = cpuMs(pid);
    }
    this.samples.push({ atS: (performance.now() - this.startMs) / 1000, rssKiB, cpuMs: cpu, load1: loadavg()[0]! });
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

/** Per-process figures: warm is the first sample at or after `warmUpS`, end the last sample. */
export function rssGrowth(samples: readonly RssSample[], warmUpS: number): RssGrowth[] {
  const keys = [...new Set(samples.flatMap((s) => Object.keys(s.rssKiB)))];
  const warm = samples.find((s) => s.atS >= warmUpS);
  const last = samples.at(-1);
  const mib = (kib: number | undefined) => (kib === undefined ? null : kib / 1024);
  return keys.map((key) => {
    const seen = samples.filter((s) => s.rssKiB[key] !== undefined);
    const values = seen.map((s) => s.rssKiB[key]!);
    const first = seen[0]!;
    const lastSeen = seen.at(-1)!;
    const warmMiB = mib(warm?.rssKiB[key]);
    const endMiB = mib(last?.rssKiB[key]);
    return {
      key,
      startMiB: values[0]! / 1024,
      warmMiB,
      endMiB,
      maxMiB: Math.max(...values) / 1024,
      growthPct: warmMiB !== null && endMiB !== null ? ((endMiB - warmMiB) / warmMiB) * 100 : null,
      cpuPct: lastSeen.atS > first.atS ? ((lastSeen.cpuMs[key]! - first.cpuMs[key]!) / ((lastSeen.atS - first.atS) * 1000)) * 100 : 0,
    };
  });
}
