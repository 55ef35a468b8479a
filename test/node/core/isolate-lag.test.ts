import { describe, expect, it } from "vitest";
import { IsolateLag, MAX_LAG_SHARE_OF_BUDGET, STALE_SAMPLE_MS } from "../../../src/edge/isolate-lag";

/** An IsolateLag on a clock the test moves, whose zero-delay timers fire when the test says. */
function lagOnFakeLoop() {
  const clock = { nowMs: 0 };
  const due: Array<() => void> = [];
  const lag = new IsolateLag(
    () => clock.nowMs,
    (callback) => due.push(callback),
  );
  /** The loop pauses: every timer set so far fires now. */
  const idle = () => due.splice(0).forEach((fire) => fire());
  return { clock, lag, idle, due };
}

describe("IsolateLag", () => {
  it("is the delay of the last zero-delay timer: how long the loop ran without a pause", async () => {
    const { clock, lag, idle } = lagOnFakeLoop();
    expect(lag.lagMs()).toBe(0);
    const sample = lag.sample()!;
    clock.nowMs = 7;
    idle();
    await sample;
    expect(lag.lagMs()).toBe(7);
    // A new sample taken at once replaces it.
    lag.sample();
    clock.nowMs = 9;
    idle();
    expect(lag.lagMs()).toBe(2);
  });

  it("keeps one sample in flight, and counts its age as the lag while the loop has not paused", () => {
    const { clock, lag, due } = lagOnFakeLoop();
    expect(lag.sample()).toBeDefined();
    clock.nowMs = 300;
    expect(lag.sample()).toBeUndefined();
    expect(due).toHaveLength(1);
    expect(lag.lagMs()).toBe(300);
  });

  it("refuses past half the deadline budget, and not at it", () => {
    const { clock, lag } = lagOnFakeLoop();
    lag.sample();
    const budgetMs = 1000;
    clock.nowMs = MAX_LAG_SHARE_OF_BUDGET * budgetMs;
    expect(lag.isOverloadedFor(budgetMs)).toBe(false);
    clock.nowMs += 1;
    expect(lag.isOverloadedFor(budgetMs)).toBe(true);
    expect(lag.isOverloadedFor(4 * budgetMs)).toBe(false);
  });

  it("drops a sample whose timer never fired after STALE_SAMPLE_MS (its request's timer cancelled), and ignores its late callback", () => {
    const { clock, lag, due } = lagOnFakeLoop();
    lag.sample();
    const lost = due.pop()!; // cancelled: never fired by the loop
    clock.nowMs = STALE_SAMPLE_MS;
    expect(lag.sample()).toBeDefined();
    expect(lag.lagMs()).toBe(0);
    clock.nowMs += 4;
    lost(); // a late callback of the dropped sample changes nothing
    expect(lag.lagMs()).toBe(4); // the new sample's age
    due.pop()!();
    expect(lag.lagMs()).toBe(4);
  });
});
