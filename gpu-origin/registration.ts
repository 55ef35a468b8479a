/**
 * A replica's membership in the edge's origin pool: once ready, gpu-origin announces itself with a
 * signed heartbeat `POST ${edgeUrl}/v2/pool/heartbeat` `{"url": <its base URL>, "ttlMs": 3000}`
 * every second; on shutdown it stops heart-beating and sends `{"url": ..., "leaving": true}` once,
 * before it drains, so the edge stops sending it new batches. Requests carry the hop signature
 * (src/origin/hop-signature.ts) made with the replica's ORIGIN_SECRET over method POST, path
 * "/v2/pool/heartbeat" and the exact body bytes. Failures are logged (the first, then at most one
 * line per `failureLogEveryMs` with a count, and one when heartbeats get through again), never fatal.
 *
 * One heartbeat is in flight at a time. Clock, fetch and timers are injected for tests.
 */
import { HEARTBEAT_PATH, sendHeartbeat, type Heartbeat, type Leaving } from "../src/scaling/heartbeat";


/** How a replica registers. */
export interface RegistrationOptions {
  /** The edge's base URL (its path is ignored: the heartbeat goes to HEARTBEAT_PATH). */
  edgeUrl: string;
  /** This replica's base URL as the edge should dial it, e.g. http://10.0.0.5:8801. */
  advertiseUrl: string;
  /** ORIGIN_SECRET, the shared hop-signature secret. */
  secret: string;
  /** Time between heartbeats, in ms (default 1000). */
  intervalMs?: number;
  /** How long one heartbeat keeps the replica listed, in ms (default 3000). */
  ttlMs?: number;
  /** Longest wait for one request, in ms (default 2000). */
  timeoutMs?: number;
  /** Shortest time between two failure log lines, in ms (default 30000). */
  failureLogEveryMs?: number;
  fetch?: typeof fetch;
  /** Epoch ms. */
  now?: () => number;
  log?: (line: string) => void;
  setTimer?: (run: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

/** A running registration. */
export interface Registration {
  /** Stops heart-beating, waits for a heartbeat in flight, then sends the leaving message once; resolves when it was answered (or failed). */
  leave(): Promise<void>;
}

/** Starts heart-beating now (the first heartbeat is sent at once). */
export function startRegistration(options: RegistrationOptions): Registration {
  const { edgeUrl, advertiseUrl, secret, intervalMs = 1000, ttlMs = 3000, timeoutMs = 2000, failureLogEveryMs = 30_000 } = options;
  const doFetch = options.fetch ?? fetch;
  const now = options.now ?? Date.now;
  const log = options.log ?? ((line: string) => console.warn(line));
  const setTimer = options.setTimer ?? ((run: () => void, ms: number) => setTimeout(run, ms));
  const clearTimer = options.clearTimer ?? ((handle: unknown) => clearTimeout(handle as ReturnType<typeof setTimeout>));
  const target = new URL(HEARTBEAT_PATH, edgeUrl).href;
  const failures = new FailureLog(failureLogEveryMs);

  let timer: unknown;
  let inFlight: Promise<void> | undefined;
  let hasLeft = false;

  const send = async (body: Heartbeat | Leaving): Promise<void> => {
    try {
      await sendHeartbeat({ edgeUrl, secret, timeoutMs, fetch: doFetch, now }, body);
      const recovered = failures.succeeded();
      if (recovered) log(`gpu-origin: heartbeats to ${target} get through again (after ${recovered} failures)`);
    } catch (error) {
      const line = failures.failed(now(), (error as Error).message);
      if (line) log(`gpu-origin: ${"leaving" in body ? "leaving message" : "heartbeat"} to ${target} failed: ${line}`);
    }
  };

  const beat = (): void => {
    if (hasLeft) return;
    inFlight = send({ url: advertiseUrl, ttlMs }).finally(() => {
      inFlight = undefined;
      if (!hasLeft) timer = setTimer(beat, intervalMs);
    });
  };
  beat();

  return {
    async leave() {
      if (hasLeft) return;
      hasLeft = true;
      clearTimer(timer);
      // A heartbeat still on its way could reach the edge after the leaving message and list us again.
      await inFlight;
      await send({ url: advertiseUrl, leaving: true });
    },
  };
}

/** Decides which failures to log: the first of a run, then at most one per `everyMs`, with a count. Pure: time is passed in. */
export class FailureLog {
  private count = 0;
  private lastLoggedAtMs = -Infinity;
  private sinceLogged = 0;

  constructor(private readonly everyMs: number) {}

  /** Records a failure; returns the line to log now, or undefined to stay quiet. */
  failed(nowMs: number, message: string): string | undefined {
    this.count++;
    this.sinceLogged++;
    if (this.count > 1 && nowMs - this.lastLoggedAtMs < this.everyMs) return undefined;
    const line = this.count === 1 ? message : `${message} (${this.sinceLogged} failures since the last report)`;
    this.lastLoggedAtMs = nowMs;
    this.sinceLogged = 0;
    return line;
  }

  /** Records a success; returns how many failures it ended (0 when there were none). */
  succeeded(): number {
    const ended = this.count;
    this.count = 0;
    this.sinceLogged = 0;
    this.lastLoggedAtMs = -Infinity;
    return ended;
  }
}
