/**
 * A cheap HTTP POST for load generators: node:http with a keep-alive agent (undici's fetch costs the
 * generator a few ms of CPU per request, which on two shared cores is taken from the server).
 * Loopback only.
 */
import { Agent, request } from "node:http";

// Enough sockets that an open loop does not queue for one: at 3x a server's capacity, 1024 were all
// taken and requests waited in this pool, not at the server (ppocr-cls at 900/s: body sent p50 241 ms
// late with 1024, on time with 8192).
const agent = new Agent({ keepAlive: true, maxSockets: 4096 });

/** What a POST returned. */
export interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** POSTs `body` to a loopback `url`; rejects on a network error or after `timeoutMs`. */
export function post(url: string, body: string | Uint8Array, headers: Record<string, string>, timeoutMs = 30_000): Promise<Answer> {
  const target = new URL(url);
  if (target.hostname !== "127.0.0.1" && target.hostname !== "localhost") return Promise.reject(new Error("load targets must be on loopback"));
  return new Promise((resolve, reject) => {
    const req = request({ host: target.hostname, port: target.port, path: target.pathname + target.search, method: "POST", agent, headers: { ...headers, "content-length": String(Buffer.byteLength(body)) }, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.on("error", reject);
    req.end(body);
  });
}

/** A response header as one string. */
export function header(answer: Answer, name: string): string | undefined {
  const value = answer.headers[name.toLowerCase()];
  return Array.isArray(value) ? value.join(", ") : value;
}

/** A Server-Timing entry's duration in ms (NaN when absent). */
export function serverTimingMs(answer: Answer, name: string): number {
  return Number(new RegExp(`(?:^|[ ,])${name};dur=([\\d.]+)`).exec(header(answer, "server-timing") ?? "")?.[1] ?? NaN);
}
