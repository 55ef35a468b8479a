/**
 * HTTP transport against real servers on loopback, with raw sockets where a well-behaved client
 * cannot misbehave enough: a real gpu-origin process, and the edge Worker under `wrangler dev`.
 * The origin answers every transport fault itself, as `{"error": ...}`. At the edge, some faults
 * never reach the Worker: workerd's HTTP parser and wrangler dev's proxy answer them in plain text.
 * Those answers are the platform's, not the project's; they are pinned here (so a change is seen)
 * and listed in the README.
 */
import { rmSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, ROOT, startEdge, type Started } from "../../../src/cli/processes";
import { signHop } from "../../../src/origin/hop-signature";
import { startOrigin, stopOrigin, TEST_SECRET, waitReady, type OriginProcess } from "./origin-process";

/** What came back on a raw connection: status line, headers, body (all text), or nothing. */
interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends `head` (and then `body` chunks) on a fresh connection to 127.0.0.1:`port`, optionally
 * half-closing after the last chunk, and reads until the server closes or `waitMs` passes.
 */
function raw(port: number, head: string, body: Buffer[] = [], { halfClose = false, waitMs = 5_000 } = {}): Promise<RawAnswer | undefined> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let text = "";
    const done = () => {
      clearTimeout(timer);
      socket.destroy();
      const match = /^HTTP\/1\.1 (\d{3})[^\r]*\r\n([\s\S]*?)\r\n\r\n([\s\S]*)$/.exec(text);
      if (!match) return resolve(undefined);
      const headers = Object.fromEntries(match[2]!.split("\r\n").map((l) => [l.slice(0, l.indexOf(":")).toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
      resolve({ status: Number(match[1]), headers, body: match[3]! });
    };
    const timer = setTimeout(done, waitMs);
    socket.on("data", (d) => {
      text += d.toString("latin1");
      // One answer is all a test needs: stop once its declared body is complete.
      const split = text.indexOf("\r\n\r\n");
      const length = /content-length: (\d+)/i.exec(text.slice(0, split));
      const isChunkedDone = /transfer-encoding: chunked/i.test(text.slice(0, split)) && text.endsWith("0\r\n\r\n");
      if (split >= 0 && ((length && text.length - split - 4 >= Number(length[1])) || isChunkedDone)) done();
    });
    socket.on("close", done);
    socket.on("error", done);
    socket.write(head);
    for (const chunk of body) socket.write(chunk);
    if (halfClose) socket.end();
  });
}

/** Expects an `{"error"}` JSON answer with `status` matching `pattern`, with no internals in it. */
function expectJsonError(answer: RawAnswer | undefined, status: number, pattern: RegExp): void {
  expect(answer?.status).toBe(status);
  expect(answer!.headers["content-type"]).toMatch(/application\/json/);
  const body = JSON.parse(answer!.body) as { error: string };
  expect(Object.keys(body)).toEqual(["error"]);
  expect(body.error).toMatch(pattern);
  expect(answer!.body).not.toMatch(/node_modules|file:\/\/|\s+at |\/work\//);
}

const vadJson = (samples = 512) => JSON.stringify({ inputs: [{ name: "input", datatype: "FP32", shape: [1, samples], data: new Array(samples).fill(0.1) }] });

describe("gpu-origin transport", () => {
  let origin: OriginProcess | undefined;
  let port = 0;
  const path = "/v2/models/silero-vad/infer";

  beforeAll(async () => {
    origin = await startOrigin(["--models", "silero-vad", "--body-timeout-ms", "500"]);
    await waitReady(origin);
    port = Number(new URL(origin.url).port);
  }, 60_000);
  afterAll(() => stopOrigin(origin));

  /** Request head for `path` with a valid hop signature over `signedBody` (the body the origin reads). */
  async function signedHead(signedBody: Uint8Array, headers: Record<string, string>, method = "POST", target = path): Promise<string> {
    const hop = await signHop(TEST_SECRET, { method, host: "127.0.0.1", path: target, body: signedBody, inferenceHeaderLength: undefined }, Date.now());
    const all = { host: "127.0.0.1", ...hop, ...headers };
    return `${method} ${target} HTTP/1.1\r\n${Object.entries(all).map(([k, v]) => `${k}: ${v}`).join("\r\n")}\r\n\r\n`;
  }

  it("answers a body shorter than its Content-Length with 400, once the client stops sending", async () => {
    const body = Buffer.from(vadJson());
    const head = await signedHead(body, { "content-type": "application/json", "content-length": String(body.length + 100) });
    const answer = await raw(port, head, [body], { halfClose: true });
    // Node's parser sees the early end first; gpu-origin answers its parse errors as JSON too.
    expectJsonError(answer, 400, /malformed HTTP request|ended before it was complete/);
  });

  it("answers 408 when the body stalls (--body-timeout-ms 500 here)", async () => {
    const body = Buffer.from(vadJson());
    const head = await signedHead(body, { "content-type": "application/json", "content-length": String(body.length) });
    const startMs = Date.now();
    expectJsonError(await raw(port, head, [body.subarray(0, 100)]), 408, /not received within 500 ms/);
    expect(Date.now() - startMs).toBeGreaterThanOrEqual(500);
  });

  it("answers 413 to a Content-Length beyond the cap before reading the body", async () => {
    const head = `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 2147483648\r\n\r\n`;
    expectJsonError(await raw(port, head, [Buffer.from("{")]), 413, /larger than 536870912 bytes/);
  });

  it("answers its HTTP parser's errors as JSON: headers too large 431, a bad Content-Length 400", async () => {
    expectJsonError(await raw(port, `GET /v2/${"a".repeat(70_000)} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`), 431, /request headers too large/);
    expectJsonError(await raw(port, `POST ${path} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: abc\r\n\r\n{}`), 400, /malformed HTTP request/);
  });

  it("serves a gzipped request and refuses undecodable gzip with 400", async () => {
    const plain = new TextEncoder().encode(vadJson());
    const zipped = gzipSync(plain);
    // The hop signature covers the body as sent.
    const ok = await raw(port, await signedHead(zipped, { "content-type": "application/json", "content-encoding": "gzip", "content-length": String(zipped.length) }), [zipped]);
    expect(ok?.status).toBe(200);
    expect((JSON.parse(ok!.body) as { outputs: unknown[] }).outputs).toHaveLength(2);
    const junk = Buffer.from("definitely not gzip");
    expectJsonError(await raw(port, await signedHead(junk, { "content-encoding": "gzip", "content-length": String(junk.length) }), [junk]), 400, /not valid gzip data/);
  });

  it("answers 405 with Allow on a known path, and serves /v2/ as /v2", async () => {
    const wrong = await raw(port, await signedHead(new Uint8Array(0), {}, "PUT", "/v2/models/silero-vad"));
    expectJsonError(wrong, 405, /method PUT is not allowed here/);
    expect(wrong!.headers.allow).toBe("GET, HEAD");
    const slash = await raw(port, await signedHead(new Uint8Array(0), {}, "GET", "/v2/"));
    expect(JSON.parse(slash!.body)).toMatchObject({ name: "gpu-origin" });
  });

  it("is still healthy and serving after all that", async () => {
    const body = new TextEncoder().encode(vadJson(256).replace('"inputs":[', '"inputs":[{"name":"sr","datatype":"INT64","shape":[],"data":[8000]},'));
    const answer = await raw(port, await signedHead(body, { "content-type": "application/json", "content-length": String(body.length) }), [Buffer.from(body)]);
    expect(answer?.status).toBe(200);
    expect(await fetch(`${origin!.url}/v2/health/ready`).then((r) => r.status)).toBe(200);
  });
});

describe("edge transport under wrangler dev", () => {
  let edge: Started | undefined;
  let port = 0;

  beforeAll(async () => {
    port = await freePort();
    edge = await startEdge({ port, vars: { ORIGIN_URLS: "", CONTROL_MODE: "static", BODY_TIMEOUT_MS: "1000" } });
  }, 120_000);
  afterAll(async () => {
    await edge?.stop(5_000);
    rmSync(join(ROOT, ".wrangler", `state-${port}`), { recursive: true, force: true });
  });

  it("lets the platform gzip successful inference answers only: metadata and errors stay readable without decompression", async () => {
    const head = (method: string, target: string, extra = "") => `${method} ${target} HTTP/1.1\r\nhost: 127.0.0.1\r\naccept-encoding: gzip\r\n${extra}\r\n`;
    const metadata = await raw(port, head("GET", "/v2/models/silero-vad"));
    expect(metadata?.status).toBe(200);
    expect(metadata!.headers["content-encoding"]).toBe("identity");
    expect(JSON.parse(metadata!.body)).toMatchObject({ name: "silero-vad" });
    expectJsonError(await raw(port, head("GET", "/v2/models/nope")), 404, /unknown model/);
    const body = vadJson();
    const inferred = await raw(port, head("POST", "/v2/models/silero-vad/infer", `content-type: application/json\r\ncontent-length: ${body.length}\r\n`) + body);
    expect(inferred?.status).toBe(200);
    expect(inferred!.headers["content-encoding"]).toBe("gzip");
  });

  it("answers a stalled body with the Worker's 408 (BODY_TIMEOUT_MS 1000 here)", async () => {
    const body = vadJson();
    const head = `POST /v2/models/silero-vad/infer HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n`;
    expectJsonError(await raw(port, head, [Buffer.from(body.slice(0, 100))]), 408, /not received within 1000 ms/);
  });

  it("platform answers, in plain text, what never reaches the Worker (pinned, see README)", async () => {
    // workerd's HTTP parser: a URL past its limit, and a Content-Length that is not a number.
    const longUrl = await raw(port, `GET /v2/${"a".repeat(70_000)} HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n`);
    expect([longUrl?.status, longUrl?.headers["content-type"]]).toEqual([414, "text/plain"]);
    const badLength = await raw(port, `POST /v2/models/silero-vad/infer HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: abc\r\n\r\n{}`);
    expect([badLength?.status, badLength?.headers["content-type"]]).toEqual([400, "text/plain"]);
    // wrangler dev's entry worker (Miniflare): a client that half-closes before its Content-Length
    // is sent gets its plain-text 500 with a stack trace of Miniflare's own file; the Worker never sees it.
    const truncated = await raw(port, `POST /v2/models/silero-vad/infer HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 1000\r\n\r\n{"inputs":`, [], { halfClose: true });
    expect([truncated?.status, truncated?.headers["content-type"]]).toEqual([500, "text/plain;charset=UTF-8"]);
    expect(truncated!.body).toMatch(/Network connection lost[\s\S]*miniflare/);
    // The same for a Content-Length of 2 GiB: the Worker would refuse it with 413 before reading a
    // byte, but wrangler dev holds the request until the client goes away (Cloudflare's network
    // refuses bodies over the plan's limit itself, with 413).
    const huge = await raw(port, `POST /v2/models/silero-vad/infer HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: 2147483648\r\n\r\n{`, [], { halfClose: true });
    expect([huge?.status, huge?.headers["content-type"]]).toEqual([500, "text/plain;charset=UTF-8"]);
  });

  it("keeps serving after the faults", async () => {
    const response = await fetch(`http://127.0.0.1:${port}/v2/models/silero-vad/infer`, { method: "POST", body: vadJson(), headers: { "content-type": "application/json" } });
    expect(response.status).toBe(200);
    expect(await fetch(`http://127.0.0.1:${port}/v2/health/ready`).then((r) => r.status)).toBe(200);
  });
});
