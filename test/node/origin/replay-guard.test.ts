import { describe, expect, it } from "vitest";
import { ReplayGuard } from "../../../src/origin/replay-guard";

describe("ReplayGuard", () => {
  it("accepts a nonce once and refuses it again while its signature is fresh", () => {
    const guard = new ReplayGuard(30_000);
    expect(guard.accept("a", 0, 0)).toBe(true);
    expect(guard.accept("a", 0, 29_000)).toBe(false);
    expect(guard.accept("b", 0, 29_000)).toBe(true);
  });

  it("forgets nonces once their signatures are stale, keeping memory bounded", () => {
    const guard = new ReplayGuard(30_000);
    for (let i = 0; i < 100; i++) guard.accept(`n${i}`, i, i);
    expect(guard.size).toBe(100);
    guard.accept("late", 40_000, 40_000);
    expect(guard.size).toBe(1);
  });

  it("refuses new nonces when full rather than growing without bound", () => {
    const guard = new ReplayGuard(30_000, 2);
    expect([guard.accept("a", 0, 0), guard.accept("b", 0, 0), guard.accept("c", 0, 0)]).toEqual([true, true, false]);
  });
});
