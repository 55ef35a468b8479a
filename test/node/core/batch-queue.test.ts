import { describe, expect, it } from "vitest";
import { BatchQueue, type QueuedRequest } from "../../../src/batching/batch-queue";

const limits = { maxBatch: 4, windowMs: 10, maxQueueRows: 8 };

/** A request entering at `atMs` (the fake clock), with `rows` rows and a deadline 1 s later. */
function request(id: string, atMs: number, rows = 1, batchKey = "k", deadlineAtMs = atMs + 1000): QueuedRequest<string> {
  return { id, rows, batchKey, enqueuedAtMs: atMs, deadlineAtMs, payload: id };
}

describe("BatchQueue", () => {
  it("holds requests until the oldest has waited windowMs", () => {
    const queue = new BatchQueue<string>(limits);
    queue.add(request("a", 0));
    queue.add(request("b", 5));
    expect(queue.takeReady(9.9)).toBeUndefined();
    expect(queue.nextDueAtMs(5)).toBe(10);
    const batch = queue.takeReady(10)!;
    expect(batch).toMatchObject({ reason: "window", rows: 2, windowEndsAtMs: 10 });
    expect(batch.requests.map((r) => r.id)).toEqual(["a", "b"]);
    expect(queue.queuedRows).toBe(0);
    expect(queue.nextDueAtMs(10)).toBeUndefined();
  });

  it("releases at maxBatch rows at once, counting multi-row requests, FIFO", () => {
    const queue = new BatchQueue<string>(limits);
    queue.add(request("a", 0, 3));
    expect(queue.takeReady(0)).toBeUndefined();
    queue.add(request("b", 1, 2));
    const batch = queue.takeReady(1)!;
    // a + b is 5 rows > 4: a leaves alone, b waits for its own window.
    expect(batch).toMatchObject({ reason: "size", rows: 3 });
    expect(batch.requests.map((r) => r.id)).toEqual(["a"]);
    expect(queue.queuedRows).toBe(2);
    expect(queue.takeReady(10.9)).toBeUndefined();
    expect(queue.takeReady(11)!.requests.map((r) => r.id)).toEqual(["b"]);
  });

  it("never mixes batch keys, and serves the group with the oldest request first", () => {
    const queue = new BatchQueue<string>(limits);
    queue.add(request("w320", 2, 1, "w=320"));
    queue.add(request("w160", 0, 1, "w=160"));
    queue.add(request("w320b", 3, 1, "w=320"));
    expect(queue.takeReady(20)!.requests.map((r) => r.id)).toEqual(["w160"]);
    expect(queue.takeReady(20)!.requests.map((r) => r.id)).toEqual(["w320", "w320b"]);
  });

  it("refuses requests beyond maxQueueRows and keeps nothing of them", () => {
    const queue = new BatchQueue<string>(limits);
    expect(queue.add(request("a", 0, 3, "x"))).toBe(true);
    expect(queue.add(request("b", 0, 3, "y"))).toBe(true);
    expect(queue.add(request("c", 0, 3, "z"))).toBe(false);
    expect(queue.queuedRows).toBe(6);
    expect(queue.add(request("d", 0, 2, "z"))).toBe(true);
  });

  it("expires requests at their deadline, and never releases them", () => {
    const queue = new BatchQueue<string>({ ...limits, windowMs: 100 });
    queue.add(request("a", 0, 1, "k", 50));
    queue.add(request("b", 1, 1, "k", 500));
    expect(queue.nextDueAtMs(1)).toBe(50);
    expect(queue.expire(49)).toEqual([]);
    expect(queue.expire(50).map((r) => r.id)).toEqual(["a"]);
    expect(queue.nextDueAtMs(50)).toBe(101);
    expect(queue.takeReady(101)!.requests.map((r) => r.id)).toEqual(["b"]);
  });

  it("removes a cancelled request from anywhere in its group", () => {
    const queue = new BatchQueue<string>(limits);
    for (const id of ["a", "b", "c"]) queue.add(request(id, 0));
    expect(queue.remove("b")?.id).toBe("b");
    expect(queue.remove("b")).toBeUndefined();
    expect(queue.takeReady(10)!.requests.map((r) => r.id)).toEqual(["a", "c"]);
  });

  it("still releases a request larger than a shrunken maxBatch, alone", () => {
    const queue = new BatchQueue<string>(limits);
    queue.add(request("a", 0, 4));
    queue.limits = { ...limits, maxBatch: 2 };
    expect(queue.takeReady(0)).toMatchObject({ rows: 4, reason: "size" });
  });

  it("with an adaptive window, releases at once when no company is expected, and waits under load", () => {
    const queue = new BatchQueue<string>({ ...limits, windowMs: 10, adaptiveWindow: true });
    queue.add(request("lone", 0));
    expect(queue.nextDueAtMs(0)).toBe(0);
    expect(queue.takeReady(0)).toMatchObject({ reason: "idle", rows: 1 });
    // 19 more arrivals within the last second, each released by its window.
    for (let i = 1; i <= 19; i++) {
      queue.add(request(`r${i}`, i * 50));
      expect(queue.takeReady(i * 50 + 10)).toMatchObject({ reason: "window" });
    }
    // 21 arrivals in the last second predict 0.21 within a 10 ms window: worth waiting for.
    queue.add(request("busy", 960));
    expect(queue.expectedArrivalsInWindow(960)).toBeCloseTo(0.21);
    expect(queue.takeReady(960)).toBeUndefined();
    expect(queue.takeReady(970)).toMatchObject({ reason: "window" });
  });
});
