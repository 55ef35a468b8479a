/**
 * V8 CPU profiles of the edge's isolate under `wrangler dev` (its inspector speaks the DevTools
 * protocol: Profiler.start / stop), and the time they attribute to named functions. A sample counts
 * for a set of functions when any frame of its stack is one of them (inclusive time, each sample
 * once), so a function called inside another in the set is not counted twice. A sample's weight is
 * the time since the previous one, capped at MAX_SAMPLE_US (the sample after an idle stretch would
 * carry the whole stretch). The profiler slows the isolate, so attributed times are upper bounds
 * of the unprofiled ones.
 */
import { connectInspector } from "./inspector";

/** Sampling interval, µs. */
const SAMPLING_US = 100;
/** Most one sample weighs, µs. */
const MAX_SAMPLE_US = 1_000;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string };
  children?: number[];
}

/** A DevTools CPU profile (Profiler.stop's result). */
export interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

/** Profiles the isolate behind wrangler's inspector on `inspectorPort` while `work` runs. */
export async function profileIsolate(inspectorPort: number, work: () => Promise<void>): Promise<CpuProfile> {
  const { call, close } = await connectInspector(inspectorPort);
  try {
    await call("Profiler.enable");
    await call("Profiler.setSamplingInterval", { interval: SAMPLING_US });
    await call("Profiler.start");
    await work();
    return ((await call("Profiler.stop")) as { profile: CpuProfile }).profile;
  } finally {
    close();
  }
}

/**
 * Time, ms, of the samples whose stack holds one of `functions` (by name), or, without a set, of
 * every sample that is not idle (the isolate's busy time).
 */
export function attributedMs(profile: CpuProfile, functions?: ReadonlySet<string>): number {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) for (const child of node.children ?? []) parentOf.set(child, node.id);
  const memo = new Map<number, boolean>();
  const inSet = (id: number): boolean => {
    let hit = memo.get(id);
    if (hit === undefined) {
      const parent = parentOf.get(id);
      hit = functions!.has(byId.get(id)!.callFrame.functionName) || (parent !== undefined && inSet(parent));
      memo.set(id, hit);
    }
    return hit;
  };
  let us = 0;
  profile.samples.forEach((id, i) => {
    const name = byId.get(id)!.callFrame.functionName;
    if (name === "(idle)") return;
    if (!functions || inSet(id)) us += Math.min(profile.timeDeltas[i] ?? 0, MAX_SAMPLE_US);
  });
  return us / 1000;
}
