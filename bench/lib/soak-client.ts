/**
 * Misbehaving HTTP clients for the soak benchmark, on loopback only: a request that may be aborted
 * after a delay (as a client that gives up does) and is bounded by a total time limit, and a raw
 * node:net client that sends the headers and part of a body, then closes the socket. Outcomes are
 * data (a discriminated union), never exceptions. With `mirrorTo`, every request also goes, the
 * same, to a baseline server.
 */
import { Agent, request } from "node:http";
import { connect } from "node:net";

const agent = new Agent({ keepAlive: true, maxSockets: 512 });

/** What became of one request. */
export type Outcome =
  | { kind: "answer"; status: number; headers: Record<string, string | string[] | undefined>; body: Buffer; latencyMs: number }
  /** We aborted it before the whole answer came. */
  | { kind: "aborted"; latencyMs: number }
  /** No whole answer within the time limit. */
  | { kind: "timeout"; latencyMs: number }
  /** The connection failed (reset, refused, closed early). */
  | { kind: "error"; code: string; latencyMs: number };

/** One request to send. */
export interface RequestSpec {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Uint8Array;
}

/** Limits of one request: the whole exchange within `timeoutMs`; aborted after `abortAfterMs` when given. */
export interface SendLimits {
  timeoutMs: number;
  abortAfterMs?: number;
}

function assertLoopback(baseUrl: string): URL {
  const url = new URL(baseUrl);
  if (url.hostname !== "127.0.0.1") throw new Error("soak targets must be on 127.0.0.1");
  return url;
}

/** A second server that gets a copy of every request sent (the soak's platform baseline), if any. */
let mirrorUrl: string | undefined;

/** Sends a copy of every later request (same bytes, same aborts and partial bodies) to `baseUrl` too; its outcomes are ignored. */
export function mirrorTo(baseUrl: string | undefined): void {
  mirrorUrl = baseUrl === undefined ? undefined : assertLoopback(baseUrl).origin;
}

/** Sends `spec` to `baseUrl` (http://127.0.0.1:port) and resolves with its outcome; never rejects. */
export function send(baseUrl: string, spec: RequestSpec, limits: SendLimits): Promise<Outcome> {
  if (mirrorUrl !== undefined) void exchange(mirrorUrl, spec, limits);
  return exchange(baseUrl, spec, limits);
}

function exchange(baseUrl: string, spec: RequestSpec, { timeoutMs, abortAfterMs }: SendLimits): Promise<Outcome> {
  const url = assertLoopback(baseUrl);
  const startMs = performance.now();
  const elapsed = () => performance.now() - startMs;
  return new Promise((resolve) => {
    let reason: "aborted" | "timeout" | undefined;
    let isDone = false;
    const finish = (outcome: Outcome) => {
      if (isDone) return;
      isDone = true;
      clearTimeout(timeoutTimer);
      clearTimeout(abortTimer);
      resolve(outcome);
    };
    const headers: Record<string, string> = { ...spec.headers };
    if (spec.body !== undefined) headers["content-length"] = String(Buffer.byteLength(spec.body));
    const req = request({ host: url.hostname, port: url.port, path: spec.path, method: spec.method, agent, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => finish({ kind: "answer", status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), latencyMs: elapsed() }));
      res.on("error", (error: NodeJS.ErrnoException) => finish(failure(reason, error, elapsed())));
    });
    req.on("error", (error: NodeJS.ErrnoException) => finish(failure(reason, error, elapsed())));
    const stop = (why: "aborted" | "timeout") => {
      reason = why;
      req.destroy(new Error(why));
      finish(why === "aborted" ? { kind: "aborted", latencyMs: elapsed() } : { kind: "timeout", latencyMs: elapsed() });
    };
    const timeoutTimer = setTimeout(() => stop("timeout"), timeoutMs);
    const abortTimer = abortAfterMs === undefined ? undefined : setTimeout(() => stop("aborted"), abortAfterMs);
    req.end(spec.body);
  });
}

function failure(reason: "aborted" | "timeout" | undefined, error: NodeJS.ErrnoException, latencyMs: number): Outcome {
  if (reason) return { kind: reason, latencyMs };
  return { kind: "error", code: error.code ?? error.message, latencyMs };
}

/** What a raw client saw before it closed its socket. */
export interface PartialOutcome {
  /** Bytes of a response that arrived before the close (a server may answer early, e.g. 413 or 503). */
  responseBytes: number;
  /** The status line, when a response started. */
  statusLine?: string;
  error?: string;
}

/**
 * Opens a socket to `baseUrl`, writes `spec`'s request line and headers (Content-Length of the whole
 * body) and the first `sentBytes` of the body, and destroys the socket after `closeAfterMs`.
 */
export function sendPartial(baseUrl: string, spec: RequestSpec & { body: Uint8Array }, sentBytes: number, closeAfterMs: number): Promise<PartialOutcome> {
  if (mirrorUrl !== undefined) void partial(mirrorUrl, spec, sentBytes, closeAfterMs);
  return partial(baseUrl, spec, sentBytes, closeAfterMs);
}

function partial(baseUrl: string, spec: RequestSpec & { body: Uint8Array }, sentBytes: number, closeAfterMs: number): Promise<PartialOutcome> {
  const url = assertLoopback(baseUrl);
  return new Promise((resolve) => {
    const outcome: PartialOutcome = { responseBytes: 0 };
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    const head = [`${spec.method} ${spec.path} HTTP/1.1`, `host: ${url.host}`, ...Object.entries(spec.headers).map(([k, v]) => `${k}: ${v}`), `content-length: ${spec.body.length}`, "", ""].join("\r\n");
    socket.on("connect", () => {
      socket.write(head);
      socket.write(spec.body.subarray(0, Math.min(sentBytes, spec.body.length - 1)));
    });
    socket.on("data", (chunk: Buffer) => {
      if (outcome.responseBytes === 0) outcome.statusLine = chunk.toString("latin1").split("\r\n")[0];
      outcome.responseBytes += chunk.length;
    });
    socket.on("error", (error: NodeJS.ErrnoException) => (outcome.error = error.code ?? error.message));
    setTimeout(() => {
      socket.destroy();
      resolve(outcome);
    }, closeAfterMs);
  });
}
