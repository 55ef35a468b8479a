/**
 * CPU time of local processes, from /proc (Linux): where a request's CPU goes between the load
 * generator, wrangler's dev proxy and the runtime that runs the Worker and its Durable Objects.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";

/** User + system CPU of a process so far, in ms (0 if it is gone). */
export function cpuMs(pid: number): number {
  return statCpuMs(`/proc/${pid}/stat`);
}

/** User + system CPU in ms of a /proc stat file (a process's or a thread's; 0 if it is gone). */
function statCpuMs(file: string): number {
  if (!existsSync(file)) return 0;
  const fields = readFileSync(file, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10; // clock ticks of 10 ms
}

/** User + system CPU so far, in ms, of each thread of the processes of `pid`'s tree (as it is now) whose command matches `command`, by "pid/tid". */
export function treeThreadCpuMs(pid: number, command: RegExp): () => Map<string, number> {
  const pids = treePids(pid, command);
  return () => {
    const byThread = new Map<string, number>();
    for (const p of pids) {
      let tids: string[] = [];
      try {
        tids = readdirSync(`/proc/${p}/task`);
      } catch {
        continue; // the process is gone
      }
      for (const tid of tids) byThread.set(`${p}/${tid}`, statCpuMs(`/proc/${p}/task/${tid}/stat`));
    }
    return byThread;
  };
}

/** Reads the CPU ms so far of the processes of `pid`'s tree (as it is now) whose command matches `command`. */
export function treeCpuMs(pid: number, command: RegExp): () => number {
  const pids = treePids(pid, command);
  return () => pids.reduce((sum, p) => sum + cpuMs(p), 0);
}

/** The pids of `pid`'s tree (as it is now) whose command matches `command`. */
function treePids(pid: number, command: RegExp): number[] {
  return processTree(pid)
    .filter((p) => command.test(p.command))
    .map((p) => p.pid);
}

/**
 * Whether a process of the edge's tree is wrangler dev's proxy workerd, the one serving the edge's
 * own port (`entry=127.0.0.1:<port>`), rather than the workerd that runs the Worker and its Durable
 * Objects (plain workerd runs only the latter).
 */
export function isDevProxy(command: string, edgePort: string | number): boolean {
  return command.includes("workerd") && new RegExp(`entry=127\\.0\\.0\\.1:${edgePort}(\\s|$)`).test(command);
}

/** Reads the CPU ms so far of the workerd that runs the edge's Worker and Durable Objects (not wrangler dev's proxy) in `pid`'s tree (as it is now). */
export function runtimeCpuReader(pid: number, edgePort: string | number): () => number {
  const runtime = processTree(pid).filter((p) => p.command.includes("workerd") && !isDevProxy(p.command, edgePort));
  return () => runtime.reduce((sum, p) => sum + cpuMs(p.pid), 0);
}

/** The process and all its descendants, with their command names. */
export function processTree(pid: number): Array<{ pid: number; command: string }> {
  const tree = [{ pid, command: commandOf(pid) }];
  let children: number[] = [];
  try {
    children = execFileSync("pgrep", ["-P", String(pid)]).toString().trim().split("\n").map(Number).filter(Boolean);
  } catch {
    // no children
  }
  return tree.concat(children.flatMap((child) => processTree(child)));
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").join(" ");
  } catch {
    return "";
  }
}
