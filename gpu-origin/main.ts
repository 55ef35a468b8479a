/**
 * gpu-origin entry point: validates its configuration, checks the execution provider, listens
 * (127.0.0.1 unless --host says otherwise), then loads the models; the server is live while they
 * load and ready once all did. On SIGTERM or SIGINT it turns not-ready, answers new work 503,
 * finishes queued batches (at their normal release) and running ones within --drain-timeout-ms, and exits (0 when drained in time).
 * With --edge (EDGE_URL) it joins that edge's pool once ready (signed heartbeats, gpu-origin/registration.ts)
 * and, on SIGTERM or SIGINT, sends its leaving message before it drains.
 *
 * `--port 0` picks a free port; the "live on" line names it.
 *
 *   ORIGIN_SECRET=... npx tsx gpu-origin/main.ts --port 8801 [--host 127.0.0.1] [--provider cpu] [--models ppocr-det,...]
 */
import type { Duplex } from "node:stream";
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { ConfigError } from "../src/models/manifest";
import { loadBackend, ProviderUnavailableError } from "./execution-backend";
import { ModelHost } from "./model-host";
import { createOriginApp } from "./origin-app";
import { parseOriginConfig } from "./origin-config";
import { startRegistration, type Registration } from "./registration";

async function main(): Promise<void> {
  const config = parseOriginConfig(process.argv.slice(2), process.env);
  const host = new ModelHost(config);
  const backend = await loadBackend(config.provider, config.threads);
  if (config.isInsecure) console.warn("gpu-origin: --insecure: requests are NOT authenticated; use only for local experiments");

  let isDraining = false;
  const app = createOriginApp({ host, secret: config.isInsecure ? undefined : config.secret, provider: config.provider, maxBatch: config.maxBatch, bodyLimits: { maxBytes: config.maxBodyBytes, timeoutMs: config.bodyTimeoutMs }, isDraining: () => isDraining });
  const server = serve({ fetch: app.fetch, port: config.port, hostname: config.host });
  server.on("clientError", answerClientError);
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  const { port } = server.address() as AddressInfo;
  console.log(`gpu-origin: live on http://${config.host}:${port} (provider ${config.provider}); loading ${[...host.models.keys()].join(", ")}`);

  const advertiseUrl = config.advertiseUrl ?? `http://${config.host.includes(":") ? `[${config.host.replace(/^\[|\]$/g, "")}]` : config.host}:${port}`;
  let registration: Registration | undefined;
  let isStopping = false;

  const drain = async (signal: string) => {
    if (isStopping) return;
    isStopping = true;
    // Leave the edge's pool first, so it stops sending new batches before they would get 503.
    if (registration) {
      console.log(`gpu-origin: ${signal}: leaving the pool of ${config.edgeUrl}`);
      await registration.leave();
    }
    isDraining = true;
    console.log(`gpu-origin: ${signal}: draining (new work gets 503)`);
    const batchers = host.batchers();
    let timer: NodeJS.Timeout | undefined;
    const isDrained = await Promise.race([
      Promise.all(batchers.map((b) => b.whenIdle())).then(() => true),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), config.drainTimeoutMs))),
    ]);
    clearTimeout(timer);
    // Let the handlers of the last batch write their responses, then stop listening.
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise<void>((resolve) => {
      const force = setTimeout(resolve, 1000);
      server.close(() => {
        clearTimeout(force);
        resolve();
      });
    });
    console.log(`gpu-origin: ${isDrained ? "drained" : `drain timed out after ${config.drainTimeoutMs} ms`}; exiting`);
    process.exit(isDrained ? 0 : 1);
  };
  process.on("SIGTERM", () => void drain("SIGTERM"));
  process.on("SIGINT", () => void drain("SIGINT"));

  await host.load(backend);
  const failed = [...host.models.values()].filter((m) => m.status.state === "failed").map((m) => m.manifest.name);
  console.log(failed.length ? `gpu-origin: not ready: ${failed.join(", ")} failed to load` : "gpu-origin: ready");
  if (config.edgeUrl && config.secret && !failed.length && !isStopping) {
    registration = startRegistration({ edgeUrl: config.edgeUrl, advertiseUrl, secret: config.secret });
    console.log(`gpu-origin: joining the pool of ${config.edgeUrl} as ${advertiseUrl}`);
  }
}

/**
 * Node's HTTP parser answers requests it cannot parse (a body cut short by a half-closed socket, a
 * bad Content-Length, headers past the limit) with a bare status line; answer them as the protocol
 * does instead, as `{"error": ...}`, and close the connection.
 */
function answerClientError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === "ECONNRESET" || !socket.writable) {
    socket.destroy();
    return;
  }
  const [status, reason, message] =
    error.code === "HPE_HEADER_OVERFLOW" ? [431, "Request Header Fields Too Large", "request headers too large"]
    : error.code === "ERR_HTTP_REQUEST_TIMEOUT" ? [408, "Request Timeout", "request not received in time"]
    : [400, "Bad Request", "malformed HTTP request (cut short, or a bad header)"];
  const body = JSON.stringify({ error: message });
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`);
}

main().catch((error: unknown) => {
  if (error instanceof ConfigError || error instanceof ProviderUnavailableError) console.error(error.message);
  else console.error("gpu-origin: failed to start:", error);
  process.exit(error instanceof ConfigError ? 2 : 1);
});
