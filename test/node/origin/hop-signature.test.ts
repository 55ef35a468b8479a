import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { constantTimeEqual, HOP_HEADERS, signHop, verifyHop } from "../../../src/origin/hop-signature";

const SECRET = "unit-test-secret-0123456789";
const parts = { method: "POST", host: "origin-a.example:8801", path: "/v2/models/m/infer", body: '{"inputs":[]}' };
const T0 = 1_700_000_000_000;

async function verify(headers: Record<string, string>, overrides: Partial<typeof parts> = {}, nowMs = T0, secret = SECRET) {
  return verifyHop(secret, { ...parts, ...overrides }, (name) => headers[name], nowMs);
}

describe("hop signature", () => {
  it("accepts a request signed with the shared secret and returns its nonce", async () => {
    const headers = await signHop(SECRET, parts, T0, "00112233445566778899aabbccddeeff");
    expect(await verify(headers, {}, T0 + 29_999)).toEqual({ ok: true, nonce: "00112233445566778899aabbccddeeff", timestampMs: T0 });
  });

  it("verifies with an injected SHA-256 (node:crypto) what WebCrypto signed", async () => {
    const headers = await signHop(SECRET, parts, T0, "00112233445566778899aabbccddeeff");
    const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest();
    expect(await verifyHop(SECRET, parts, (name) => headers[name], T0, { sha256 })).toMatchObject({ ok: true });
    expect(await verifyHop(SECRET, { ...parts, body: "{}" }, (name) => headers[name], T0, { sha256 })).toEqual({ ok: false, reason: "bad-signature" });
  });

  it("signs the same parts identically (deterministic for a fixed nonce and time)", async () => {
    const a = await signHop(SECRET, parts, T0, "00112233445566778899aabbccddeeff");
    const b = await signHop(SECRET, { ...parts, body: new TextEncoder().encode(parts.body) }, T0, "00112233445566778899aabbccddeeff");
    expect(a).toEqual(b);
  });

  it("refuses a changed body, host, path, method or secret", async () => {
    const headers = await signHop(SECRET, parts, T0);
    // Bound to the server it was sent to: another replica sharing the secret refuses it.
    expect(await verify(headers, { host: "origin-b.example:8801" })).toEqual({ ok: false, reason: "bad-signature" });
    expect(await verify(headers, { host: "origin-a.example:8802" })).toEqual({ ok: false, reason: "bad-signature" });
    expect(await verify(headers, { host: "ORIGIN-A.example:8801" })).toMatchObject({ ok: true }); // host names are case-insensitive
    expect(await verify(headers, { body: '{"inputs":[1]}' })).toEqual({ ok: false, reason: "bad-signature" });
    expect(await verify(headers, { path: "/v2/models/other/infer" })).toEqual({ ok: false, reason: "bad-signature" });
    expect(await verify(headers, { method: "GET" })).toEqual({ ok: false, reason: "bad-signature" });
    expect(await verify(headers, {}, T0, "another-secret-0123456789")).toEqual({ ok: false, reason: "bad-signature" });
  });

  it("refuses a changed timestamp or nonce", async () => {
    const headers = await signHop(SECRET, parts, T0);
    expect(await verify({ ...headers, [HOP_HEADERS.timestamp]: String(T0 + 1) })).toEqual({ ok: false, reason: "bad-signature" });
    expect(await verify({ ...headers, [HOP_HEADERS.nonce]: "ffffffffffffffffffffffffffffffff" })).toEqual({ ok: false, reason: "bad-signature" });
  });

  it("refuses signatures older or newer than 30 s", async () => {
    const headers = await signHop(SECRET, parts, T0);
    expect(await verify(headers, {}, T0 + 30_001)).toEqual({ ok: false, reason: "stale" });
    expect(await verify(headers, {}, T0 - 30_001)).toEqual({ ok: false, reason: "stale" });
  });

  it("tells unsigned requests from malformed ones", async () => {
    expect(await verify({})).toEqual({ ok: false, reason: "unsigned" });
    const headers = await signHop(SECRET, parts, T0);
    expect(await verify({ ...headers, [HOP_HEADERS.signature]: "zz" })).toEqual({ ok: false, reason: "malformed" });
    expect(await verify({ [HOP_HEADERS.signature]: headers[HOP_HEADERS.signature]! })).toEqual({ ok: false, reason: "malformed" });
  });

  it("compares byte strings by content and length", () => {
    expect(constantTimeEqual(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 3))).toBe(true);
    expect(constantTimeEqual(Uint8Array.of(1, 2, 3), Uint8Array.of(1, 2, 4))).toBe(false);
    expect(constantTimeEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2, 3))).toBe(false);
  });
});
