import { afterEach, describe, expect, it, vi } from "vitest";
import { pacer } from "../../../src/cli/stream-overhead";

describe("pacer", () => {
  afterEach(() => void vi.useRealTimers());

  it("calls each client once an interval at its own phase, spread evenly, until the end", () => {
    vi.useFakeTimers({ toFake: ["setInterval", "clearInterval", "performance"] });
    const startMs = performance.now();
    const calls: Array<{ client: number; atMs: number }> = [];
    pacer(4, 32, startMs + 320, (client) => calls.push({ client, atMs: Math.floor(performance.now()) }));
    vi.advanceTimersByTime(400);
    // Ten intervals in 320 ms, each client at one phase of the interval, the four 8 ms apart (the
    // first slot, before the timer's first tick, is served on that tick: 1 ms late).
    const phases = [0, 1, 2, 3].map((client) => {
      const mine = calls.filter((c) => c.client === client);
      expect(mine).toHaveLength(10);
      const onTime = mine.slice(1).map((c) => c.atMs % 32);
      expect(new Set(onTime).size).toBe(1);
      return onTime[0]!;
    });
    expect(phases.map((p) => (p - phases[0]! + 32) % 32)).toEqual([0, 8, 16, 24]);
    // Nothing after the end.
    expect(Math.max(...calls.map((c) => c.atMs))).toBeLessThan(startMs + 320);
  });
});
