import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openLoop } from "../../../bench/lib/open-loop";

// A loopback server that counts what reaches it and answers each request with its own number as X-Batch-Size.
let server: Server;
let url = "";
let received = 0;
beforeAll(async () => {
  server = createServer((request, response) => {
    request.resume();
    request.on("end", () => response.writeHead(200, { "x-batch-size": String(++received) }).end("{}"));
  });
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/infer`;
});
afterAll(() => new Promise<void>((done) => server.close(() => done())));

describe("openLoop", () => {
  it("sends at the given arrival times and reports each answered request's send time beside its latency", async () => {
    received = 0;
    const arrivalsMs = [0, 5, 10, 40, 41];
    const result = await openLoop({ url, body: "{}", ratePerS: 100, arrivalsMs, count: 10, maxDurationMs: 5_000 });
    expect([result.sent, result.ok, received]).toEqual([5, 5, 5]);
    expect(result.sentAtMs.length).toBe(5);
    expect([...result.sentAtMs].sort((a, b) => a - b)).toEqual(arrivalsMs);
    for (const latencyMs of result.latenciesMs) expect(latencyMs).toBeGreaterThanOrEqual(0);
  });

  it("goes on sending for tailMs after the measured requests without measuring them", async () => {
    received = 0;
    const result = await openLoop({ url, body: "{}", ratePerS: 400, count: 20, tailMs: 250, maxDurationMs: 5_000, seed: 3 });
    expect([result.sent, result.ok, result.latenciesMs.length, result.batchSizes.length]).toEqual([20, 20, 20, 20]);
    // About 100 more requests reached the server (Poisson at 400/s for 250 ms), none of them in the result.
    expect(received).toBeGreaterThan(40);
    expect(Math.max(...result.sentAtMs)).toBeLessThan(Math.min(...result.sentAtMs) + 1_000);
    received = 0;
    const withoutTail = await openLoop({ url, body: "{}", ratePerS: 400, count: 20, maxDurationMs: 5_000, seed: 3 });
    expect([withoutTail.sent, received]).toEqual([20, 20]);
  });
});
