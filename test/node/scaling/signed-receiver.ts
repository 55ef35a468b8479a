/**
 * Test helper: a node:http server on 127.0.0.1 that records every request, checks its hop
 * signature with verifyHop (src/origin/hop-signature.ts) over the method, path and exact body
 * bytes, and answers what the test's `respond` says. It stands in for the edge (heartbeats,
 * GET /v2/pool) and for a scaling webhook. `waitFor` resolves when a matching request has arrived,
 * so tests wait for events, not for time.
 */
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { verifyHop, type HopVerdict } from "../../../src/origin/hop-signature";

/** A request as the receiver saw it. */
export interface ReceivedRequest {
  method: string;
  /** Path and query. */
  path: string;
  contentType: string | undefined;
  body: string;
  /** The body parsed as JSON, or undefined. */
  json: unknown;
  /** The hop-signature verdict for the receiver's secret. */
  verdict: HopVerdict;
}

/** What to answer. */
export interface Reply {
  status: number;
  json?: unknown;
}

/** A recording, signature-checking HTTP server. */
export class SignedReceiver {
  readonly received: ReceivedRequest[] = [];
  private waiters: { match: (r: ReceivedRequest) => boolean; resolve: (r: ReceivedRequest) => void }[] = [];

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  /** Starts on a free port; `respond` answers each request (default 204). */
  static async start(secret: string, respond: (request: ReceivedRequest) => Reply = () => ({ status: 204 })): Promise<SignedReceiver> {
    let receiver: SignedReceiver | undefined;
    const server = createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const bytes = new Uint8Array(Buffer.concat(chunks));
      const body = Buffer.from(bytes).toString("utf8");
      const method = req.method ?? "";
      const path = req.url ?? "/";
      const verdict = await verifyHop(secret, { method, host: req.headers.host ?? "", path, body: bytes }, (name) => req.headers[name] as string | undefined, Date.now());
      let json: unknown;
      try {
        json = body ? JSON.parse(body) : undefined;
      } catch {
        json = undefined;
      }
      const request: ReceivedRequest = { method, path, contentType: req.headers["content-type"], body, json, verdict };
      const reply = verdict.ok ? respond(request) : { status: 401, json: { error: `request refused: ${verdict.reason} hop signature` } };
      receiver!.record(request);
      res.writeHead(reply.status, reply.json === undefined ? {} : { "content-type": "application/json" }).end(reply.json === undefined ? undefined : JSON.stringify(reply.json));
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    receiver = new SignedReceiver(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
    return receiver;
  }

  /** Resolves with the first request (already received or still to come) that `match` accepts. */
  waitFor(match: (request: ReceivedRequest) => boolean): Promise<ReceivedRequest> {
    const seen = this.received.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.waiters.push({ match, resolve }));
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private record(request: ReceivedRequest): void {
    this.received.push(request);
    this.waiters = this.waiters.filter((w) => {
      if (!w.match(request)) return true;
      w.resolve(request);
      return false;
    });
  }
}
