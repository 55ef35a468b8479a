import { describe, expect, it } from "vitest";
import { MAX_BURST_MS, Pie, UPDATE_MS } from "../../../src/scheduler/pie";

/**
 * Drives `pie` for `steps` update intervals from `fromMs`: in each, one request is sent and comes
 * back after `roundTripMs(step)` of which the buffer held it `heldMs`. Returns the time reached.
 */
function drive(pie: Pie, fromMs: number, steps: number, roundTripMs: (step: number) => number, heldMs = 5): number {
  let nowMs = fromMs;
  for (let step = 0; step < steps; step++) {
    pie.admits(nowMs);
    pie.sent();
    pie.replied(roundTripMs(step), heldMs, nowMs + 1);
    nowMs += UPDATE_MS;
  }
  pie.admits(nowMs);
  return nowMs;
}

/** Drives `pie` over a quiet way (2 ms there and back, its base delay) for 20 updates from 0; returns the time reached. */
const quiet = (pie: Pie) => drive(pie, 0, 20, () => 2 + 5);

/** Share of `n` arrivals at `nowMs` that `pie` admits (its random source decides). */
function admittedShare(pie: Pie, nowMs: number, n = 1000): number {
  let admitted = 0;
  for (let i = 0; i < n; i++) if (pie.admits(nowMs)) admitted++;
  return admitted / n;
}

describe("PIE on the way to a buffer", () => {
  it("refuses nothing while the way is at its base delay, however long that is (a far buffer)", () => {
    const pie = new Pie(100);
    const nowMs = drive(pie, 0, 400, () => 300 + 5); // 300 ms there and back, every time
    expect(pie.queueDelayMs).toBe(0);
    expect(pie.probability).toBe(0);
    expect(admittedShare(pie, nowMs)).toBe(1);
  });

  it("forgets a base delay older than a minute: a buffer that moved further away is not congestion", () => {
    const pie = new Pie(100);
    let nowMs = quiet(pie);
    nowMs = drive(pie, nowMs + 120_000, 40, () => 300 + 5); // two minutes later: 300 ms, every time
    expect(pie.queueDelayMs).toBe(0);
    expect(pie.probability).toBe(0);
  });

  it("raises the refusal probability while the queueing delay stays above the target, and refuses that share", () => {
    let draws = 0;
    const pie = new Pie(100, () => (draws++ % 100) / 100); // uniform over [0, 1) in steps of 0.01
    let nowMs = quiet(pie);
    let previous = pie.probability;
    expect(previous).toBe(0);
    // 600 ms of queueing on top of the base: p grows every update (by the 2 % step past 250 ms at
    // least) until it is 1, which takes at most 50 updates.
    for (let i = 0; i < 50 && previous < 1; i++) {
      nowMs = drive(pie, nowMs, 1, () => 602 + 5);
      expect(pie.probability).toBeGreaterThan(previous);
      previous = pie.probability;
    }
    expect(pie.queueDelayMs).toBe(600);
    expect(pie.probability).toBe(1);
    nowMs = drive(pie, nowMs, 1, () => 2 + 5 + 300);
    expect(pie.queueDelayMs).toBe(300);
    expect(pie.probability).toBeLessThan(1); // the delay fell: beta (300 - 600) outweighs alpha (300 - 100)
    // Past the burst allowance, a request is refused with probability p.
    expect(admittedShare(pie, nowMs, 100)).toBeCloseTo(1 - pie.probability, 1);
  });

  it("lets a burst through: no refusal within the burst allowance after an idle way", () => {
    const pie = new Pie(100, () => 0); // would refuse whenever p > 0 and the allowance is spent
    let nowMs = quiet(pie);
    const burstStartMs = nowMs;
    let refused = 0;
    while (nowMs < burstStartMs + MAX_BURST_MS - UPDATE_MS) {
      nowMs = drive(pie, nowMs, 1, () => 2000); // the way is badly congested
      if (!pie.admits(nowMs)) refused++;
    }
    expect(pie.probability).toBeGreaterThan(0);
    expect(refused).toBe(0);
    // Once the allowance is spent, the congestion is refused.
    nowMs = drive(pie, nowMs, 2, () => 2000);
    expect(pie.admits(nowMs)).toBe(false);
  });

  it("admits again once the delay falls: p decays to 0 and the burst allowance comes back", () => {
    const pie = new Pie(100, () => 0);
    let nowMs = quiet(pie);
    nowMs = drive(pie, nowMs, 100, () => 1007);
    expect(pie.probability).toBeGreaterThan(0.9);
    // Nothing is on the way (everything was refused): the way is empty and p falls.
    let steps = 0;
    while (pie.probability > 0 && steps < 10_000) {
      nowMs += UPDATE_MS;
      pie.admits(nowMs);
      steps++;
    }
    expect(pie.probability).toBe(0);
    // With no delay, each update multiplies p by 0.98 at least and takes alpha x target / 2048 off it
    // (6.1e-6): from 1, p is 0 within ln(6.1e-6) / ln(0.98) = 595 updates, plus the two that see the delay fall.
    expect(steps).toBeLessThanOrEqual(Math.ceil(Math.log((0.125 * 0.1) / 2048) / Math.log(0.98)) + 2);
    nowMs = drive(pie, nowMs, 3, () => 7);
    expect(admittedShare(pie, nowMs)).toBe(1);
  });

  it("admits everything again as soon as the latest delay is under half the target while p is small", () => {
    const pie = new Pie(100, () => 0); // refuses whenever it draws at all
    let nowMs = quiet(pie);
    // 120 ms of queueing, a little over the target: p climbs slowly (at most 0.0025 an update at full gain).
    for (let i = 0; i < 2000 && pie.probability < 0.15; i++) nowMs = drive(pie, nowMs, 1, () => 7 + 120);
    expect(pie.probability).toBeGreaterThanOrEqual(0.15);
    expect(pie.probability).toBeLessThan(0.2);
    expect(pie.admits(nowMs)).toBe(false);
    nowMs = drive(pie, nowMs, 1, () => 7 + 40); // the last update saw 40 ms, under half the target
    expect(pie.queueDelayMs).toBe(40);
    expect(pie.probability).toBeGreaterThan(0); // p fell (by 0.1075) but is not 0: the admission is the rule's, not p's
    expect(pie.admits(nowMs)).toBe(true);
  });

  it("keeps its estimate while requests are on the way and none has come back", () => {
    const pie = new Pie(100, () => 0);
    let nowMs = quiet(pie);
    nowMs = drive(pie, nowMs, 30, () => 157);
    expect(pie.queueDelayMs).toBe(150);
    const probability = pie.probability;
    pie.sent(); // on the way, no reply yet
    nowMs += 10 * UPDATE_MS;
    pie.admits(nowMs);
    expect(pie.queueDelayMs).toBe(150);
    expect(pie.probability).toBeGreaterThan(probability);
  });

  it("ignores a call that failed without a reply (no held time to subtract)", () => {
    const pie = new Pie(100);
    const nowMs = drive(pie, 0, 30, () => 7);
    pie.sent();
    pie.replied(5000, undefined, nowMs);
    pie.admits(nowMs + UPDATE_MS);
    expect(pie.queueDelayMs).toBe(0);
  });
});
