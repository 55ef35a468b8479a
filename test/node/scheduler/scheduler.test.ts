import { describe, expect, it } from "vitest";
import { adaptiveWindowPolicy } from "../../../src/scheduler/adaptive-window";
import { windowPolicy } from "../../../src/scheduler/flush-policy";
import { type Job, Scheduler } from "../../../src/scheduler/scheduler";
import { ServiceEstimate } from "../../../src/scheduler/service-estimate";

const limits = { maxBatch: 4, windowMs: 10, maxQueueRows: 12 };

function job(id: string, rows = 1, batchKey = "k", deadlineAtMs = 1e9): Job<string> {
  return { id, rows, batchKey, deadlineAtMs, payload: id };
}

const ids = (batch: { jobs: { id: string }[] } | undefined) => batch?.jobs.map((j) => j.id);

describe("Scheduler: lazy formation", () => {
  it("holds a partial group until its oldest request has waited windowMs", () => {
    const s = new Scheduler<string>(limits, windowPolicy);
    s.admit(job("a"), 0);
    s.admit(job("b"), 5);
    expect(s.start(9.9)).toBeUndefined();
    expect(s.nextWakeAtMs(5)).toBe(10);
    const batch = s.start(10)!;
    expect(batch).toMatchObject({ reason: "window", rows: 2, windowEndsAtMs: 10, startedAtMs: 10 });
    expect(ids(batch)).toEqual(["a", "b"]);
  });

  it("lets the queue grow while the server is busy, then starts min(maxBatch, queued) rows at once", () => {
    const s = new Scheduler<string>(limits, windowPolicy);
    for (const id of ["a", "b", "c", "d"]) s.admit(job(id), 0);
    const first = s.start(0)!;
    expect(first).toMatchObject({ reason: "size", rows: 4 });
    // Busy: nothing starts, even what is due, and nothing is sealed early.
    for (const id of ["e", "f", "g", "h", "i", "j"]) s.admit(job(id), 1);
    expect(s.start(50)).toBeUndefined();
    expect(s.nextWakeAtMs(50)).toBe(1e9); // only deadlines wake a busy server's queue
    s.finish(first, 50);
    expect(ids(s.start(50))).toEqual(["e", "f", "g", "h"]);
    s.finish({ id: 2 } as never, 3);
    // Two rows left, their window (1 + 10) has passed: they start at once with what is queued.
    expect(s.start(50)).toMatchObject({ rows: 2, reason: "window" });
  });

  it("counts rows: a request that does not fit closes the group, one larger than maxBatch runs alone", () => {
    const s = new Scheduler<string>(limits, windowPolicy);
    s.admit(job("a", 3), 0);
    expect(s.start(0)).toBeUndefined();
    s.admit(job("b", 2), 1);
    const batch = s.start(1)!;
    expect(batch).toMatchObject({ reason: "size", rows: 3 });
    s.finish(batch);
    expect(s.queuedRows).toBe(2);
    s.configure({ ...limits, maxBatch: 1 });
    expect(s.start(1)).toMatchObject({ rows: 2, reason: "size" });
  });

  it("caps a group's batches at its requests' maxBatchRows (memory at their shape), and starts them once that many rows wait", () => {
    const s = new Scheduler<string>(limits, windowPolicy);
    const capped = (id: string) => ({ ...job(id, 1, "wide"), maxBatchRows: 2 });
    s.admit(capped("a"), 0);
    expect(s.start(0)).toBeUndefined(); // one row of two: waits for its window as usual
    s.admit(capped("b"), 1);
    s.admit(capped("c"), 1);
    const first = s.start(1)!;
    expect(first).toMatchObject({ reason: "size", rows: 2 });
    expect(ids(first)).toEqual(["a", "b"]);
    s.finish(first);
    // The uncapped key of the same scheduler still batches up to maxBatch.
    for (const id of ["d", "e", "f", "g"]) s.admit(job(id, 1, "narrow"), 2);
    expect(s.start(11)).toMatchObject({ rows: 1 }); // "c" (oldest, its window passed) alone
    expect(s.start(11)).toBeUndefined(); // one server
  });

  it("never mixes batch keys and serves the group with the oldest request first", () => {
    const s = new Scheduler<string>({ ...limits, servers: 2 }, windowPolicy);
    s.admit(job("w320", 1, "w=320"), 2);
    s.admit(job("w160", 1, "w=160"), 0);
    s.admit(job("w320b", 1, "w=320"), 3);
    expect(ids(s.start(20))).toEqual(["w160"]);
    expect(ids(s.start(20))).toEqual(["w320", "w320b"]);
    expect(s.busyServers).toBe(2);
  });

  it("expires queued requests at their own deadline and removes cancelled ones", () => {
    const s = new Scheduler<string>({ ...limits, windowMs: 100 }, windowPolicy);
    s.admit(job("busy", 4), 0);
    const running = s.start(0)!;
    s.admit(job("a", 1, "k", 50), 0);
    s.admit(job("b", 1, "k", 500), 1);
    s.admit(job("c", 1, "k", 500), 1);
    expect(s.nextWakeAtMs(1)).toBe(50);
    expect(s.expire(49)).toEqual([]);
    expect(ids({ jobs: s.expire(50) })).toEqual(["a"]);
    expect(s.remove("c")?.id).toBe("c");
    expect(s.remove("c")).toBeUndefined();
    s.finish(running);
    expect(s.nextWakeAtMs(50)).toBe(101);
    expect(ids(s.start(101))).toEqual(["b"]);
  });

  it("starts a group early when a request must start now to meet its own deadline", () => {
    const s = new Scheduler<string>({ ...limits, windowMs: 5_000 }, windowPolicy, new ServiceEstimate({ baseMs: 2, perRowMs: 1 }));
    s.admit(job("patient"), 0);
    expect(s.admit(job("hurried", 1, "k", 30), 0)).toEqual({ ok: true });
    // Two rows take 4 ms: the hurried request must start by 26.
    expect(s.nextWakeAtMs(0)).toBe(26);
    expect(s.start(25.9)).toBeUndefined();
    expect(s.start(26)).toMatchObject({ reason: "deadline", rows: 2 });
  });

  it("with the adaptive window, a lone request starts at once, while a burst waits for company", () => {
    const s = new Scheduler<string>({ ...limits, windowMs: 50 }, adaptiveWindowPolicy());
    s.admit(job("lone"), 0);
    expect(s.start(0)).toMatchObject({ reason: "idle", rows: 1 });
    s.finish({ id: 1 } as never);
    // A second arrival within the second: 2 rows/s x 50 ms = 0.1 expected, worth waiting for.
    s.admit(job("b"), 10);
    expect(s.start(10)).toBeUndefined();
    s.admit(job("c"), 11);
    expect(s.start(59.9)).toBeUndefined();
    expect(s.start(60)).toMatchObject({ reason: "window", rows: 2 });
  });
});

describe("Scheduler: admission", () => {
  const line = { baseMs: 2, perRowMs: 1 };
  const s = (k: number) => line.baseMs + line.perRowMs * k;

  it("refuses at once when the rows would exceed maxQueueRows, with the predicted drain time", () => {
    const sched = new Scheduler<string>({ ...limits, windowMs: 0 }, windowPolicy, new ServiceEstimate(line));
    for (let i = 0; i < 3; i++) expect(sched.admit(job(`r${i}`, 4), 0)).toEqual({ ok: true });
    const refused = sched.admit(job("x", 1), 0);
    // Three full batches back to back on one free server.
    expect(refused).toEqual({ ok: false, reason: "full", retryAfterMs: 3 * s(4), busyUntilMs: 0 });
  });

  it("predicts completion from queued rows and service per batch size, and refuses what would be late", () => {
    const sched = new Scheduler<string>({ ...limits, windowMs: 0, maxQueueRows: 100 }, windowPolicy, new ServiceEstimate(line));
    for (let i = 0; i < 6; i++) sched.admit(job(`r${i}`), 0);
    const running = sched.start(0)!; // 4 rows, ends at s(4) = 6
    expect(running.rows).toBe(4);
    // Queued: 2 rows; a new one-row request joins them: a batch of 3 when the server frees at 6.
    // Not due before the server frees, so it may fill to maxBatch: completion 6 + s(4) = 12
    // (the drain time is the same: the two queued rows may be joined by others).
    expect(sched.predictCompletionAtMs(1, 1)).toBe(s(4) + s(4));
    expect(sched.admit(job("late", 1, "k", 11.9), 1)).toMatchObject({ ok: false, reason: "late", predictedCompletionAtMs: 12, busyUntilMs: 12 + s(4), retryAfterMs: 11 });
    expect(sched.admit(job("ok", 1, "k", 12), 1)).toEqual({ ok: true });
  });

  it("refuses a request that would make another of its batch late, but not for one that is late anyway", () => {
    const sched = new Scheduler<string>({ ...limits, windowMs: 100, maxQueueRows: 100 }, windowPolicy, new ServiceEstimate(line));
    // "tight" must start by 20 - s(1) = 17 alone; with a second row, by 20 - s(2) = 16.
    expect(sched.admit(job("tight", 1, "k", 20), 0)).toEqual({ ok: true });
    // At 16.5 a second row would end the batch at 16.5 + s(2) = 20.5, after 20; alone it would end at 19.5.
    expect(sched.admit(job("pushes", 1, "k", 1e9), 16.5)).toMatchObject({ ok: false, reason: "late" });
    // "doomed" is admitted at 15 to a batch that must start by 15 to end by 21 as a full one; at 19,
    // not yet started, it cannot meet its deadline whatever joins it (it ends at 19 + s(2) = 23) ...
    const other = new Scheduler<string>({ ...limits, windowMs: 100, maxQueueRows: 100 }, windowPolicy, new ServiceEstimate(line));
    expect(other.admit(job("first", 1, "k", 1e9), 0)).toEqual({ ok: true });
    expect(other.admit(job("doomed", 1, "k", 21), 15)).toEqual({ ok: true });
    // ... so a patient request joining them is admitted, not failed for its neighbour's deadline.
    expect(other.admit(job("patient", 1, "k", 1e9), 19)).toEqual({ ok: true });
  });

  it("on a free server, a due lone request is predicted to take exactly s(rows)", () => {
    const sched = new Scheduler<string>({ ...limits, windowMs: 0 }, windowPolicy, new ServiceEstimate(line));
    expect(sched.predictCompletionAtMs(3, 100)).toBe(100 + s(3));
  });
});

describe("ServiceEstimate", () => {
  it("takes a stall of the host in one batch's time as at most 4x the mean, and follows a kernel that really slows", () => {
    const e = new ServiceEstimate();
    for (let i = 0; i < 10; i++) e.observe(1, 2);
    e.observe(1, 170);
    // 2 + 0.2 x (4 x 2 - 2), not 2 + 0.2 x 168.
    expect(e.ms(1)).toBeCloseTo(3.2, 12);
    // Under the clock's 1 ms tick a mean moves up to 4 ms a sample.
    const fast = new ServiceEstimate();
    fast.observe(1, 0);
    fast.observe(1, 100);
    expect(fast.ms(1)).toBeCloseTo(0.8, 12);
    // Ten times slower for good: within 1 % after 25 batches.
    for (let i = 0; i < 25; i++) e.observe(1, 20);
    expect(e.ms(1)).toBeGreaterThan(19.8);
  });

  it("fits baseMs + perRowMs k through the sizes seen, and keeps the prior's shape through one size", () => {
    const e = new ServiceEstimate({ baseMs: 1, perRowMs: 1 });
    expect(e.ms(4)).toBe(5);
    e.observe(2, 6); // twice the prior at 2 rows
    expect(e.ms(2)).toBe(6);
    expect(e.ms(4)).toBeCloseTo(10);
    e.observe(8, 18);
    const fit = e.fit()!;
    expect(fit.perRowMs).toBeCloseTo(2);
    expect(fit.baseMs).toBeCloseTo(2);
  });
});
