/**
 * V8 CPU profiles of the edge's isolate under `wrangler dev` (its inspector speaks the DevTools
 * protocol: Profiler.start / stop), and the time they attribute to named functions. A sample counts
 * for a set of functions when any frame of its stack is one of them (inclusive time, each sample
 * once), so a function called inside another in the set is not counted twice. A sample's weight is
 * the time since the previous one, capped at MAX_SAMPLE_US (the sample after an idle stretch would
 * carry the whole stretch). The profiler slows the isolate, so attributed times are upper bounds
 * of the unprofiled ones.
 */
import WebSocket from "ws";

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
  const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
  if (!targets[0]) throw new Error(`no inspector target on port ${inspectorPort}`);
  // The inspector takes connections from local pages only: it checks the Origin.
  const socket = new WebSocket(targets[0].webSocketDebuggerUrl, { headers: { Origin: "http://127.0.0.1" } });
  await new Promise<void>((resolve, reject) => socket.once("open", () => resolve()).once("error", reject));
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  socket.on("message", (data) => {
    const message = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: { message: string } };
    const waiter = message.id === undefined ? undefined : pending.get(message.id);
    if (!waiter) return;
    pending.delete(message.id!);
    if (message.error) waiter.reject(new Error(message.error.message));
    else waiter.resolve(message.result);
  });
  let nextId = 0;
  const call = (method: string, params: object = {}) =>
    new Promise<unknown>((resolve, reject) => {
      const id = ++nextId;
      pending.set(id, { resolve, reject });
      socket.send(JSON.stringify({ id, method, params }));
    });
  try {
    await call("Profiler.enable");
    await call("Profiler.setSamplingInterval", { interval: SAMPLING_US });
    await call("Profiler.start");
    await work();
    return ((await call("Profiler.stop")) as { profile: CpuProfile }).profile;
  } finally {
    socket.close();
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
