/**
 * CPU time from /proc (src/cli/process-cpu.ts), on a real child process: a Node process that spins
 * its main thread until the process has used SPIN_MS of CPU (whatever else the machine runs), says
 * so, and waits for its stdin to close. Its busiest thread holds
 * that spin, and the threads together hold what the process as a whole has used.
 */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { describe, expect, it } from "vitest";
import { cpuMs, isDevProxy, treeCpuMs, treeThreadCpuMs } from "../../../src/cli/process-cpu";

/** How long the child spins, ms of its own CPU. */
const SPIN_MS = 400;
/** /proc counts CPU in ticks of 10 ms. */
const TICK_MS = 10;

describe("process CPU from /proc", () => {
  it("gives a process's CPU by thread, its busiest thread holding the main thread's spin", async () => {
    const child = spawn(process.execPath, ["-e", `while (process.cpuUsage().user + process.cpuUsage().system < ${SPIN_MS * 1000}); process.stdout.write("spun\\n"); process.stdin.resume();`], { stdio: ["pipe", "pipe", "inherit"] });
    try {
      const threadsOf = treeThreadCpuMs(child.pid!, /node/);
      await once(child.stdout!, "data");
      const threads = threadsOf();
      const [busiest, ...others] = [...threads.values()].sort((a, b) => b - a);
      // The process used SPIN_MS of CPU, most of it spinning on its main thread (the rest: start-up, the other threads' work).
      const total = [...threads.values()].reduce((a, b) => a + b, 0);
      expect(total).toBeGreaterThanOrEqual(SPIN_MS - TICK_MS * threads.size);
      expect(busiest).toBeGreaterThanOrEqual(SPIN_MS / 2);
      expect(others.every((ms) => ms < busiest!)).toBe(true);
      // Every key names the child and one of its threads, the main thread (tid = pid) among them.
      expect([...threads.keys()].every((key) => key.startsWith(`${child.pid}/`))).toBe(true);
      expect(threads.has(`${child.pid}/${child.pid}`)).toBe(true);
      // The threads' CPU adds up to the process's, up to a tick per thread (each is rounded down).
      const processMs = cpuMs(child.pid!);
      expect(Math.abs(processMs - total)).toBeLessThanOrEqual(TICK_MS * (threads.size + 1));
      expect(Math.abs(treeCpuMs(child.pid!, /node/)() - processMs)).toBeLessThanOrEqual(TICK_MS);
    } finally {
      child.stdin!.end();
      if (child.exitCode === null) await once(child, "exit");
    }
  });

  it("reads nothing for a process that is gone", async () => {
    const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
    const threadsOf = treeThreadCpuMs(child.pid!, /node/);
    await once(child, "exit");
    expect(threadsOf().size).toBe(0);
    expect(cpuMs(child.pid!)).toBe(0);
  });

  it("tells wrangler dev's proxy workerd (serving the edge's port) from the runtime workerd", () => {
    // As /proc cmdline reads them (NULs as spaces): the proxy serves the edge's port, the runtime a port of its own.
    const proxy = "/work/node_modules/@cloudflare/workerd-linux-64/bin/workerd serve --binary --experimental --socket-addr=entry=127.0.0.1:8787 --external-addr=loopback=127.0.0.1:40123 --control-fd=3 - ";
    const runtime = "/work/node_modules/@cloudflare/workerd-linux-64/bin/workerd serve --binary --experimental --socket-addr=entry=127.0.0.1:41017 --control-fd=3 - ";
    expect(isDevProxy(proxy, 8787)).toBe(true);
    expect(isDevProxy(proxy, "8787")).toBe(true);
    expect(isDevProxy(runtime, 8787)).toBe(false);
    // A port that is a prefix of another's is not it; the argument may end the command line.
    expect(isDevProxy(proxy, 878)).toBe(false);
    expect(isDevProxy("/bin/workerd serve --socket-addr=entry=127.0.0.1:8787", 8787)).toBe(true);
    expect(isDevProxy("node wrangler dev --port 8787 entry=127.0.0.1:8787", 8787)).toBe(false);
  });
});
