/**
 * The webhook scaler against a receiver in the test that checks the hop signature and the JSON.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parsePoolScalerConfig, type WebhookScalerConfig } from "../../../src/scaling/pool-scaler";
import { WebhookError, WebhookScaler } from "../../../src/scaling/webhook-scaler";
import { SignedReceiver } from "./signed-receiver";

const SECRET = "webhook-secret-0123456789";
/** The scaler's clock, fixed for the run (the receiver checks freshness against the real one). */
const AT_MS = Date.now();

let receiver: SignedReceiver;

beforeAll(async () => {
  receiver = await SignedReceiver.start(SECRET, (request) => (request.path === "/hooks/refuse" ? { status: 503, json: { error: "autoscaler paused" } } : { status: 202 }));
});

afterAll(async () => {
  await receiver?.close();
});

const scaler = (path: string, secret = SECRET) =>
  new WebhookScaler(parsePoolScalerConfig({ kind: "webhook", url: receiver.url + path, secret }) as WebhookScalerConfig, { now: () => AT_MS });

describe("WebhookScaler", () => {
  it("POSTs the count, reason and time as signed JSON and remembers the accepted count", async () => {
    const hook = scaler("/hooks/scale?pool=det");
    expect(await hook.replicas()).toBe(0);
    await hook.setReplicas(4, "edge wants 4 replicas");
    const request = receiver.received.at(-1)!;
    expect(request).toMatchObject({ method: "POST", path: "/hooks/scale?pool=det", contentType: "application/json" });
    expect(request.verdict).toMatchObject({ ok: true, timestampMs: AT_MS });
    expect(request.json).toEqual({ replicas: 4, reason: "edge wants 4 replicas", atMs: AT_MS });
    expect(await hook.replicas()).toBe(4);
  });

  it("fails with the status when the receiver refuses, keeping the last accepted count", async () => {
    const hook = scaler("/hooks/refuse");
    const error = await hook.setReplicas(2, "test").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WebhookError);
    expect((error as WebhookError).status).toBe(503);
    expect((error as Error).message).toContain("HTTP 503");
    expect(await hook.replicas()).toBe(0);
  });

  it("is refused (401) when signed with another secret", async () => {
    const error = await scaler("/hooks/scale", "another-secret-0123456789").setReplicas(1, "test").catch((e: unknown) => e);
    expect((error as WebhookError).status).toBe(401);
    expect(receiver.received.at(-1)!.verdict).toEqual({ ok: false, reason: "bad-signature" });
  });

  it("fails with status 0 when nothing answers", async () => {
    const hook = new WebhookScaler({ kind: "webhook", url: "http://127.0.0.1:1/hooks", secret: SECRET }, { timeoutMs: 2_000 });
    const error = await hook.setReplicas(1, "test").catch((e: unknown) => e);
    expect((error as WebhookError).status).toBe(0);
  });
});
