/**
 * The pool agent: `reconcile` with plain objects, and one run of `startPoolAgent` against an edge
 * stand-in in the test that answers GET /v2/pool (checking its signature) with a recording scaler.
 */
import { afterEach, describe, expect, it } from "vitest";
import { reconcile, startPoolAgent, type PoolAgent, type PoolAnswer } from "../../../src/scaling/pool-agent";
import type { PoolScaler } from "../../../src/scaling/pool-scaler";
import { SignedReceiver } from "./signed-receiver";

const SECRET = "edge-pool-secret-0123456789";
const NOW_MS = 1_000_000;

const answer = (desiredReplicas: number, expiresAtMs: number[] = []): PoolAnswer => ({
  desiredReplicas,
  members: expiresAtMs.map((ms, i) => ({ url: `http://10.0.0.${i + 1}:8801`, expiresAtMs: ms })),
});

describe("reconcile", () => {
  it("asks for the desired count when nothing was asked yet", () => {
    expect(reconcile(undefined, answer(2), NOW_MS)).toEqual({ action: "scale", replicas: 2, reason: "edge wants 2 replicas (first ask; 0 registered)" });
  });

  it("holds when the desired count is what it last asked", () => {
    expect(reconcile(3, answer(3, [NOW_MS + 1]), NOW_MS)).toEqual({ action: "hold" });
  });

  it("asks again when the desired count changes, counting only members whose registration has not expired", () => {
    expect(reconcile(3, answer(1, [NOW_MS + 500, NOW_MS, NOW_MS - 1]), NOW_MS)).toEqual({ action: "scale", replicas: 1, reason: "edge wants 1 replicas (was 3; 1 registered)" });
  });

  it("asks for zero", () => {
    expect(reconcile(1, answer(0), NOW_MS)).toMatchObject({ action: "scale", replicas: 0 });
  });
});

/** A scaler that records what it is asked. */
class RecordingScaler implements PoolScaler {
  readonly kind = "webhook";
  readonly asked: number[] = [];
  async setReplicas(replicas: number): Promise<void> {
    this.asked.push(replicas);
  }
  async replicas(): Promise<number> {
    return this.asked.at(-1) ?? 0;
  }
  async close(): Promise<void> {}
}

describe("startPoolAgent", () => {
  let edge: SignedReceiver | undefined;
  let agent: PoolAgent | undefined;

  afterEach(async () => {
    await agent?.stop();
    await edge?.close();
  });

  it("polls GET /v2/pool signed and calls setReplicas once per change of the desired count, not on every poll", async () => {
    // The edge's wish over successive polls; extra fields are ignored. Poll 3 answers 503, poll 4 garbage.
    const script: ({ desiredReplicas: number } | "503" | "garbage")[] = [{ desiredReplicas: 2 }, { desiredReplicas: 2 }, "503", "garbage", { desiredReplicas: 2 }, { desiredReplicas: 3 }, { desiredReplicas: 3 }, { desiredReplicas: 1 }, { desiredReplicas: 1 }];
    let polls = 0;
    edge = await SignedReceiver.start(SECRET, () => {
      const step = script[Math.min(polls++, script.length - 1)]!;
      if (step === "503") return { status: 503, json: { error: "busy" } };
      if (step === "garbage") return { status: 200, json: { desired: "many" } };
      return { status: 200, json: { ...step, members: [{ url: "http://127.0.0.1:8801", expiresAtMs: Date.now() + 3000 }], policy: { targetUtilisation: 0.7 } } };
    });
    const scaler = new RecordingScaler();
    const logs: string[] = [];
    agent = startPoolAgent({ edgeUrl: edge.url, secret: SECRET, scaler, intervalMs: 5, log: (line) => logs.push(line) });

    await edge.waitFor(() => edge!.received.length >= script.length + 2);
    await agent.stop();

    expect(scaler.asked).toEqual([2, 3, 1]);
    expect(edge.received.every((r) => r.method === "GET" && r.path === "/v2/pool" && r.body === "" && r.verdict.ok)).toBe(true);
    expect(logs).toEqual([expect.stringMatching(/GET http:\/\/127\.0\.0\.1:\d+\/v2\/pool: HTTP 503$/), expect.stringMatching(/unexpected answer: desiredReplicas: .*; members: /)]);
  });

  it("registers the replicas the orchestrator lists with signed heartbeats on every poll", async () => {
    edge = await SignedReceiver.start(SECRET, (request) => (request.method === "GET" ? { status: 200, json: { desiredReplicas: 2, members: [] } } : { status: 204 }));
    const discovered = ["http://10.0.0.7:8801", "http://10.0.0.8:8801"];
    agent = startPoolAgent({ edgeUrl: edge.url, secret: SECRET, scaler: new RecordingScaler(), intervalMs: 5, discover: async () => discovered, log: () => {} });
    await edge.waitFor(() => edge!.received.filter((r) => r.method === "POST").length >= 6);
    await agent.stop();
    const beats = edge.received.filter((r) => r.method === "POST");
    expect(beats.every((r) => r.path === "/v2/pool/heartbeat" && r.verdict.ok)).toBe(true);
    expect(new Set(beats.map((r) => JSON.parse(r.body).url))).toEqual(new Set(discovered));
    expect(beats.every((r) => JSON.parse(r.body).ttlMs === 100)).toBe(true);
  });

  it("asks again after the scaler refused, and logs each kind of failure once", async () => {
    edge = await SignedReceiver.start(SECRET, () => ({ status: 200, json: { desiredReplicas: 2, members: [] } }));
    let refusals = 3;
    const asked: number[] = [];
    const scaler: PoolScaler = {
      kind: "kubernetes",
      setReplicas: async (n) => {
        asked.push(n);
        if (refusals-- > 0) throw new Error("403 Forbidden");
      },
      replicas: async () => 0,
      close: async () => {},
    };
    const logs: string[] = [];
    agent = startPoolAgent({ edgeUrl: edge.url, secret: SECRET, scaler, intervalMs: 5, log: (line) => logs.push(line) });

    await edge.waitFor(() => edge!.received.length >= 7);
    await agent.stop();

    expect(asked).toEqual([2, 2, 2, 2]);
    expect(logs).toEqual(["pool agent: kubernetes scaler refused 2 replicas: 403 Forbidden"]);
  });
});
