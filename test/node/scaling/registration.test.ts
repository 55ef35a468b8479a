/**
 * gpu-origin's pool registration without a network or real timers: heartbeats through an injected
 * fetch and a manual timer queue, the leaving message's ordering, failure logging, and the
 * --edge / --advertise-url configuration. (The real processes' heartbeats are checked in
 * local-scaler.test.ts.)
 */
import { describe, expect, it } from "vitest";
import { parseOriginConfig } from "../../../gpu-origin/origin-config";
import { FailureLog, startRegistration } from "../../../gpu-origin/registration";
import { verifyHop } from "../../../src/origin/hop-signature";

const SECRET = "origin-secret-0123456789";
const NOW_MS = 1_700_000_000_000;

/** Records fetches; each answers when the test says (status 0: a network error). */
function recordingFetch() {
  const calls: { url: string; body: string; headers: Record<string, string>; answer: (status: number) => void }[] = [];
  let waiters: { count: number; resolve: () => void }[] = [];
  const fetch = ((url: string, init: RequestInit) =>
    new Promise<Response>((resolve, reject) => {
      calls.push({
        url,
        body: String(init.body),
        headers: init.headers as Record<string, string>,
        answer: (status) => (status === 0 ? reject(new Error("connect ECONNREFUSED")) : resolve(new Response(null, { status }))),
      });
      waiters = waiters.filter((w) => (calls.length >= w.count ? (w.resolve(), false) : true));
    })) as typeof globalThis.fetch;
  /** Resolves once `count` requests were made in all (signing is asynchronous). */
  const made = (count: number) => (calls.length >= count ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ count, resolve })));
  return { calls, fetch, made };
}

/** Timers the test fires by hand. */
function manualTimers() {
  const pending: { run: () => void; ms: number; isCleared: boolean }[] = [];
  return {
    pending,
    setTimer: (run: () => void, ms: number) => {
      const timer = { run, ms, isCleared: false };
      pending.push(timer);
      return timer;
    },
    clearTimer: (handle: unknown) => void ((handle as { isCleared: boolean } | undefined) && ((handle as { isCleared: boolean }).isCleared = true)),
    fireNext: () => {
      const timer = pending.shift()!;
      if (!timer.isCleared) timer.run();
    },
  };
}

/** Lets promise callbacks run (no time passes). */
const flush = () => new Promise((resolve) => setImmediate(resolve));

describe("startRegistration", () => {
  it("sends a signed heartbeat at once and the next one an interval after each answer", async () => {
    const { calls, fetch, made } = recordingFetch();
    const timers = manualTimers();
    startRegistration({ edgeUrl: "http://edge.test:8787/ignored", advertiseUrl: "http://10.0.0.5:8801", secret: SECRET, fetch, now: () => NOW_MS, ...timers, log: () => {} });
    await made(1);
    expect(calls[0]!.url).toBe("http://edge.test:8787/v2/pool/heartbeat");
    expect(JSON.parse(calls[0]!.body)).toEqual({ url: "http://10.0.0.5:8801", ttlMs: 3000 });
    const verdict = await verifyHop(SECRET, { method: "POST", host: "edge.test:8787", path: "/v2/pool/heartbeat", body: calls[0]!.body }, (name) => calls[0]!.headers[name], NOW_MS);
    expect(verdict.ok).toBe(true);
    expect(timers.pending).toHaveLength(0); // nothing scheduled while a heartbeat is in flight

    calls[0]!.answer(204);
    await flush();
    expect(timers.pending.map((t) => t.ms)).toEqual([1000]);
    timers.fireNext();
    await made(2);
    expect(JSON.parse(calls[1]!.body)).toEqual({ url: "http://10.0.0.5:8801", ttlMs: 3000 });
  });

  it("leaves after the heartbeat in flight, sends the leaving message once, and beats no more", async () => {
    const { calls, fetch, made } = recordingFetch();
    const timers = manualTimers();
    const registration = startRegistration({ edgeUrl: "http://edge.test:8787", advertiseUrl: "http://10.0.0.5:8801", secret: SECRET, fetch, now: () => NOW_MS, ...timers, log: () => {} });
    await made(1);
    const leaving = registration.leave();
    await flush();
    expect(calls).toHaveLength(1); // the leaving message waits for the heartbeat's answer
    calls[0]!.answer(204);
    await made(2);
    expect(JSON.parse(calls[1]!.body)).toEqual({ url: "http://10.0.0.5:8801", leaving: true });
    calls[1]!.answer(204);
    await leaving;
    await registration.leave();
    expect(timers.pending.every((t) => t.isCleared)).toBe(true);
    expect(calls).toHaveLength(2);
  });

  it("logs the first failure, stays quiet on the next, and says when heartbeats get through again", async () => {
    const { calls, fetch, made } = recordingFetch();
    const timers = manualTimers();
    const logs: string[] = [];
    startRegistration({ edgeUrl: "http://edge.test:8787", advertiseUrl: "http://10.0.0.5:8801", secret: SECRET, fetch, now: () => NOW_MS, ...timers, log: (line) => logs.push(line) });
    for (const [i, status] of [0, 503, 204].entries()) {
      await made(i + 1);
      calls[i]!.answer(status);
      await flush();
      timers.fireNext();
    }
    expect(logs).toEqual(["gpu-origin: heartbeat to http://edge.test:8787/v2/pool/heartbeat failed: connect ECONNREFUSED", "gpu-origin: heartbeats to http://edge.test:8787/v2/pool/heartbeat get through again (after 2 failures)"]);
  });
});

describe("FailureLog", () => {
  it("reports the first failure, then at most one per period with the count since the last report", () => {
    const log = new FailureLog(30_000);
    expect(log.failed(0, "HTTP 503")).toBe("HTTP 503");
    expect(log.failed(1_000, "HTTP 503")).toBeUndefined();
    expect(log.failed(29_999, "HTTP 503")).toBeUndefined();
    expect(log.failed(30_000, "HTTP 503")).toBe("HTTP 503 (3 failures since the last report)");
    expect(log.succeeded()).toBe(4);
    expect(log.succeeded()).toBe(0);
    expect(log.failed(31_000, "timeout")).toBe("timeout");
  });
});

describe("parseOriginConfig (pool registration)", () => {
  const env = { ORIGIN_SECRET: SECRET };

  it("takes --edge and --advertise-url, over EDGE_URL and ADVERTISE_URL, without trailing slashes", () => {
    const config = parseOriginConfig(["--port", "8801", "--edge", "http://edge.test:8787/", "--advertise-url", "http://10.0.0.5:8801"], { ...env, EDGE_URL: "http://other:1", ADVERTISE_URL: "http://other:2" });
    expect(config).toMatchObject({ edgeUrl: "http://edge.test:8787", advertiseUrl: "http://10.0.0.5:8801" });
    const fromEnv = parseOriginConfig(["--port", "8801"], { ...env, EDGE_URL: "https://edge.test" });
    expect(fromEnv.edgeUrl).toBe("https://edge.test");
    expect(fromEnv.advertiseUrl).toBeUndefined();
    expect(parseOriginConfig(["--port", "8801"], env).edgeUrl).toBeUndefined();
  });

  it("refuses an edge URL that is not http(s), and --edge without a secret to sign with", () => {
    expect(() => parseOriginConfig(["--port", "8801", "--edge", "ftp://edge"], env)).toThrow("gpu-origin: --edge (EDGE_URL): must be an http:// or https:// URL");
    expect(() => parseOriginConfig(["--port", "8801", "--insecure", "--edge", "http://edge.test"], {})).toThrow("gpu-origin: --edge (EDGE_URL): needs ORIGIN_SECRET to sign its heartbeats");
  });

  it("needs --advertise-url with --edge when the origin binds every interface", () => {
    expect(() => parseOriginConfig(["--port", "8801", "--host", "0.0.0.0", "--edge", "http://edge.test"], env)).toThrow("gpu-origin: --advertise-url (ADVERTISE_URL): is required with --edge when --host is 0.0.0.0 (the edge cannot dial it)");
    expect(parseOriginConfig(["--port", "8801", "--host", "0.0.0.0", "--edge", "http://edge.test", "--advertise-url", "http://pod-ip:8801"], env).advertiseUrl).toBe("http://pod-ip:8801");
  });
});
