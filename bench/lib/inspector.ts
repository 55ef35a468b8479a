/**
 * A DevTools protocol session with a workerd isolate over its V8 inspector (wrangler dev's, or plain
 * workerd's `--inspector-addr`), and a full garbage collection through it.
 */
import WebSocket from "ws";

/** An open session: `call` sends one method and resolves with its result. */
export interface InspectorSession {
  call(method: string, params?: object): Promise<unknown>;
  close(): void;
}

/** Opens a session with the first target of the inspector on `inspectorPort` (a workerd serving one Worker has one). */
export async function connectInspector(inspectorPort: number): Promise<InspectorSession> {
  const targets = (await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
  if (!targets[0]) throw new Error(`no inspector target on port ${inspectorPort}`);
  // The inspector takes connections from local pages only: it checks the Origin.
  const socket = new WebSocket(targets[0].webSocketDebuggerUrl, { headers: { Origin: "http://127.0.0.1" } });
  await new Promise<void>((resolve, reject) => socket.once("open", () => resolve()).once("error", reject));
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>();
  const failAll = (error: Error) => {
    for (const waiter of pending.values()) waiter.reject(error);
    pending.clear();
  };
  socket.on("message", (data) => {
    const message = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: { message: string } };
    const waiter = message.id === undefined ? undefined : pending.get(message.id);
    if (!waiter) return;
    pending.delete(message.id!);
    if (message.error) waiter.reject(new Error(message.error.message));
    else waiter.resolve(message.result);
  });
  socket.on("close", () => failAll(new Error("the inspector closed the session")));
  let nextId = 0;
  return {
    call: (method, params = {}) =>
      new Promise<unknown>((resolve, reject) => {
        const id = ++nextId;
        pending.set(id, { resolve, reject });
        socket.send(JSON.stringify({ id, method, params }));
      }),
    close: () => socket.close(),
  };
}

/**
 * A full garbage collection of the isolate, then its JS heap in use (bytes). workerd runs the
 * inspector's collection as a task on the isolate's next turn, so an idle isolate would collect (and
 * answer) only when a request arrives: `poke` sends one (any cheap request to the Worker). Rejects
 * after `timeoutMs` without an answer.
 */
export async function collectGarbage(session: InspectorSession, poke: () => Promise<unknown>, timeoutMs = 10_000): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer to HeapProfiler.collectGarbage in ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    const collected = session.call("HeapProfiler.collectGarbage");
    await Promise.race([Promise.all([collected, poke()]), timeout]);
    const usage = (await Promise.race([session.call("Runtime.getHeapUsage"), timeout])) as { usedSize: number };
    return usage.usedSize;
  } finally {
    clearTimeout(timer);
  }
}
