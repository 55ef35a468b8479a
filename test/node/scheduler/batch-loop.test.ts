import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InferenceError } from "../../../src/protocol/errors";
import { adaptiveWindowPolicy } from "../../../src/scheduler/adaptive-window";
import { BatchLoop, type LoopHost, type Outcome } from "../../../src/scheduler/batch-loop";
import { type FlushPolicy, windowPolicy } from "../../../src/scheduler/flush-policy";
import { Scheduler, type SchedulerLimits } from "../../../src/scheduler/scheduler";
import { ServiceEstimate, type ServiceLine } from "../../../src/scheduler/service-estimate";
import { FakeClock } from "./fake-clock";

/** A loop on a fake clock whose server takes exactly line(k) ms for a batch of k rows and echoes its inputs. */
function fakeLoop(limits: SchedulerLimits, line: ServiceLine, policy: FlushPolicy = windowPolicy, fail?: (inputs: string[]) => boolean, actual: ServiceLine = line, host: Pick<LoopHost<string, string>, "afterRun"> = {}) {
  const clock = new FakeClock();
  const batches: string[][] = [];
  const loop = new BatchLoop<string, string>(new Scheduler(limits, policy, new ServiceEstimate(line)), {
    label: "m",
    now: clock.now,
    ...clock.hostTimers,
    execute: (inputs, batch) => {
      batches.push(inputs);
      const done = clock.after(actual.baseMs + actual.perRowMs * batch.rows, { results: inputs });
      return fail?.(inputs) ? done.then(() => Promise.reject(new InferenceError(503, "server said no"))) : done;
    },
    ...host,
  });
  /** Submits at the current fake time; records when and how it settled. */
  const submit = (id: string, rows = 1, deadlineInMs = 1_000) => {
    const submittedAtMs = clock.nowMs;
    const settled: { outcome?: Outcome<string>; atMs?: number; count: number } = { count: 0 };
    void loop.submit({ id, rows, batchKey: "k", deadlineAtMs: clock.nowMs + deadlineInMs, input: id }).then((outcome) => {
      settled.count++;
      settled.outcome = outcome;
      settled.atMs = clock.nowMs;
    });
    return Object.assign(settled, { id, rows, submittedAtMs, deadlineAtMs: submittedAtMs + deadlineInMs });
  };
  return { clock, loop, batches, submit };
}

const status = (o: Outcome<string> | undefined) => (o === undefined ? "pending" : o.ok ? 200 : (o.error as InferenceError).status);

describe("BatchLoop", () => {
  it("reruns each request of a batch the model failed on alone, so only the bad one fails", async () => {
    const clock = new FakeClock();
    const runs: string[][] = [];
    const loop = new BatchLoop<string, string>(new Scheduler({ maxBatch: 4, windowMs: 5, maxQueueRows: 8 }, windowPolicy, new ServiceEstimate({ baseMs: 1, perRowMs: 1 })), {
      label: "m",
      now: clock.now,
      ...clock.hostTimers,
      execute: async (inputs) => {
        runs.push(inputs);
        await clock.after(2, undefined);
        if (inputs.includes("bad")) throw new Error("kernel failed on input 'bad'");
        return { results: inputs.map((i) => i.toUpperCase()) };
      },
    });
    const outcomes = ["a", "bad", "c"].map((id) => loop.submit({ id, rows: 1, batchKey: "k", deadlineAtMs: 1_000, input: id }));
    await clock.advanceTo(50);
    const settled = await Promise.all(outcomes);
    expect(settled.map((o) => (o.ok ? o.value : (o.error as Error).message))).toEqual(["A", "kernel failed on input 'bad'", "C"]);
    expect(runs).toEqual([["a", "bad", "c"], ["a"], ["bad"], ["c"]]);
    expect(loop.stats.snapshot().failedBatches).toBe(1);
    // A protocol error fails the whole batch: nothing is rerun.
    const { clock: clock2, batches, submit } = fakeLoop({ maxBatch: 2, windowMs: 0, maxQueueRows: 8 }, { baseMs: 1, perRowMs: 0 }, windowPolicy, () => true);
    const [x, y] = [submit("x"), submit("y")];
    await clock2.advanceTo(20);
    expect([status(x.outcome), status(y.outcome), batches.length]).toEqual([503, 503, 1]);
  });

  it("answers a request 503 at its own deadline while its batch runs on for the others", async () => {
    // Batches are expected to take 10 ms but take 40.
    const { clock, submit } = fakeLoop({ maxBatch: 2, windowMs: 0, maxQueueRows: 8 }, { baseMs: 10, perRowMs: 0 }, windowPolicy, undefined, { baseMs: 40, perRowMs: 0 });
    const short = submit("short", 1, 30);
    const long = submit("long", 1, 100);
    await clock.advanceTo(29);
    expect(short.count).toBe(0);
    await clock.advanceTo(35);
    expect(status(short.outcome)).toBe(503);
    expect(short.atMs).toBe(30);
    expect((short.outcome as { error: Error }).error.message).toMatch(/deadline exceeded while its batch ran/);
    expect(long.count).toBe(0);
    await clock.advanceTo(100);
    expect(long.outcome).toMatchObject({ ok: true, value: "long", batchRows: 2 });
    expect(long.atMs).toBe(40);
    expect([short.count, long.count]).toEqual([1, 1]);
  });

  it("refuses at admission, at once, what cannot finish by its deadline, with Retry-After from the drain time", async () => {
    const { clock, submit } = fakeLoop({ maxBatch: 4, windowMs: 0, maxQueueRows: 64 }, { baseMs: 400, perRowMs: 100 });
    const admitted = [0, 1, 2, 3].map((i) => submit(`a${i}`, 1, 2_000));
    await clock.advanceTo(0);
    const late = submit("late", 4, 500);
    await clock.advanceTo(0);
    expect(status(late.outcome)).toBe(503);
    expect(late.atMs).toBe(0);
    const error = (late.outcome as { error: InferenceError }).error;
    expect(error.message).toMatch(/overloaded: it would finish in about 1600 ms/);
    expect(error.retryAfterS).toBe(1); // the running batch drains in 800 ms
    await clock.advanceTo(2_000);
    expect(admitted.map((r) => status(r.outcome))).toEqual([200, 200, 200, 200]);
  });

  it("serves a burst that capacity can serve in time, coalesced into full batches", async () => {
    const { clock, batches, submit } = fakeLoop({ maxBatch: 16, windowMs: 10, maxQueueRows: 256 }, { baseMs: 1, perRowMs: 3.5 }, adaptiveWindowPolicy());
    const burst = Array.from({ length: 64 }, (_, i) => submit(`r${i}`, 1, 1_000));
    await clock.advanceTo(1_000);
    expect(burst.every((r) => status(r.outcome) === 200)).toBe(true);
    expect(batches.map((b) => b.length)).toEqual([16, 16, 16, 16]);
  });

  it("lets a burst arriving one by one form batches under the adaptive window", async () => {
    const { clock, batches, submit } = fakeLoop({ maxBatch: 16, windowMs: 20, maxQueueRows: 256 }, { baseMs: 1, perRowMs: 0.5 }, adaptiveWindowPolicy());
    const burst: ReturnType<typeof submit>[] = [];
    for (let i = 0; i < 64; i++) {
      await clock.advanceTo(i * 2); // one request every 2 ms
      burst.push(submit(`r${i}`));
    }
    await clock.advanceTo(1_000);
    expect(burst.every((r) => status(r.outcome) === 200)).toBe(true);
    expect(batches[0]).toHaveLength(1); // nothing was known about the rate yet
    expect(Math.max(...batches.map((b) => b.length))).toBeGreaterThanOrEqual(8);
    expect(batches.flat().sort()).toEqual(burst.map((r) => r.id).sort());
  });

  it("with afterRun, the requests a run held back join one batch (workerd reads them only after the run)", async () => {
    // A shared thread, as in workerd: requests that arrive while a batch runs are read one by one
    // when it ends (here: timers due at the run's end, after its completion). Window 0, maxBatch 8.
    const batchesWith = async (gather: boolean) => {
      let afterRun: (() => Promise<void>) | undefined;
      const { clock, batches, submit } = fakeLoop({ maxBatch: 8, windowMs: 0, maxQueueRows: 64 }, { baseMs: 10, perRowMs: 0 }, windowPolicy, undefined, undefined, gather ? { afterRun: () => afterRun!() } : {});
      afterRun = () => clock.after(0, undefined);
      const requests = [submit("a")];
      await clock.advanceTo(0); // a's batch starts at once
      for (const id of ["b", "c", "d"]) clock.at(10, () => void requests.push(submit(id)));
      await clock.advanceTo(100);
      expect(requests.map((r) => status(r.outcome))).toEqual([200, 200, 200, 200]);
      return batches;
    };
    // Without it, the first request read after the run starts a batch alone, and the rest wait for it.
    expect(await batchesWith(false)).toEqual([["a"], ["b"], ["c", "d"]]);
    expect(await batchesWith(true)).toEqual([["a"], ["b", "c", "d"]]);
  });

  it("fails every request of a failed batch once, and goes on with the next", async () => {
    const { clock, submit } = fakeLoop({ maxBatch: 2, windowMs: 0, maxQueueRows: 8 }, { baseMs: 5, perRowMs: 0 }, windowPolicy, (inputs) => inputs.includes("bad"));
    const bad = [submit("bad"), submit("x")];
    await clock.advanceTo(1);
    const good = submit("good");
    await clock.advanceTo(100);
    expect(bad.map((r) => [status(r.outcome), r.count])).toEqual([[503, 1], [503, 1]]);
    expect(status(good.outcome)).toBe(200);
  });

  it("cancels a queued request, never a running one", async () => {
    const { clock, loop, submit } = fakeLoop({ maxBatch: 1, windowMs: 0, maxQueueRows: 8 }, { baseMs: 10, perRowMs: 0 });
    const running = submit("running");
    const queued = submit("queued");
    await clock.advanceTo(1);
    expect(loop.cancel("running")).toBe(false);
    expect(loop.cancel("queued")).toBe(true);
    await clock.advanceTo(50);
    expect([status(running.outcome), status(queued.outcome)]).toEqual([200, 503]);
    expect(loop.stats.snapshot()).toMatchObject({ cancelled: 1, cancelledRows: 1, batches: 1 });
  });

  it("with service times as measured, never lets an admitted request miss its deadline, and answers each request once", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ gapMs: fc.double({ min: 0, max: 20, noNaN: true }), rows: fc.integer({ min: 1, max: 3 }), deadlineMs: fc.integer({ min: 7, max: 300 }) }), { minLength: 1, maxLength: 120 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 0, max: 40 }),
        fc.boolean(),
        async (arrivals, maxBatch, windowMs, isAdaptive) => {
          const limits = { maxBatch: Math.max(maxBatch, 3), windowMs, maxQueueRows: 24 };
          const { clock, loop, submit } = fakeLoop(limits, { baseMs: 2, perRowMs: 1.5 }, isAdaptive ? adaptiveWindowPolicy() : windowPolicy);
          const requests: ReturnType<typeof submit>[] = [];
          let t = 0;
          for (const [i, a] of arrivals.entries()) {
            await clock.advanceTo((t += a.gapMs));
            requests.push(submit(`r${i}`, a.rows, a.deadlineMs));
          }
          await clock.advanceTo(t + 1_000);
          for (const r of requests) {
            expect(r.count).toBe(1);
            if (r.outcome!.ok) expect(r.atMs!).toBeLessThanOrEqual(r.deadlineAtMs);
            else expect(r.atMs).toBe(r.submittedAtMs); // refused at admission, never late
          }
          const stats = loop.stats.snapshot();
          expect(stats.expired + stats.expiredRunning).toBe(0);
          expect(stats.admitted + stats.rejectedFull + stats.rejectedLate).toBe(requests.length);
        },
      ),
      { numRuns: 150, seed: 7 },
    );
  });

  it("keeps goodput near capacity at 3x overload, refusing the excess at admission", async () => {
    const line = { baseMs: 1, perRowMs: 3.5 };
    const limits = { maxBatch: 16, windowMs: 4, maxQueueRows: 256 };
    const capacityPerS = (1000 * limits.maxBatch) / (line.baseMs + line.perRowMs * limits.maxBatch);
    const { clock, submit } = fakeLoop(limits, line, adaptiveWindowPolicy());
    const gapMs = 1000 / (3 * capacityPerS);
    const requests: ReturnType<typeof submit>[] = [];
    const durationMs = 5_000;
    for (let t = 0; t < durationMs; t += gapMs) {
      await clock.advanceTo(t);
      requests.push(submit(`r${requests.length}`, 1, 1_000));
    }
    await clock.advanceTo(durationMs + 2_000);
    const served = requests.filter((r) => r.outcome!.ok);
    const goodputPerS = served.filter((r) => r.atMs! <= durationMs).length / (durationMs / 1000);
    expect(goodputPerS / capacityPerS).toBeGreaterThan(0.9);
    expect(served.every((r) => r.atMs! <= r.deadlineAtMs)).toBe(true);
    expect(requests.filter((r) => !r.outcome!.ok).every((r) => r.atMs === r.submittedAtMs)).toBe(true);
  });
});
