/**
 * `npm run bench -- memory [--quick] [--models ppocr-cls,silero-vad]`: workerd's memory per model
 * and batch size, so the edge can derive per-model request limits from the platform's (128 MB per
 * isolate, 32 MiB per Durable Object RPC payload).
 *
 * For each model (and, for ppocr-rec, each row width) a FRESH workerd runs the memory Worker
 * (bench/memory/worker.ts under `wrangler dev --config bench/memory/wrangler.toml`, one model's
 * weights bundled as a Data module, onnxruntime-web set up by src/edge/ort-web.ts as the edge does).
 * The Worker's own workerd process (not wrangler's Node process nor its proxy workerd) is read from
 * /proc/<pid>/status: VmRSS and VmHWM (peak RSS) before the session exists, after the session is
 * created and warmed up at batch 1 (until RSS stops growing: V8 tiers the kernel up in the
 * background; VmHWM is then reset through /proc/<pid>/clear_refs, so the compiler's transient peak
 * is not taken for the rows'), then after each batch size b in increasing order, each run `iters`
 * times, one run per call with a full GC of the isolate after each (over wrangler's inspector), so
 * that garbage of earlier runs is not taken for what b rows need. onnxruntime's WebAssembly memory
 * only grows, and VmHWM is a peak, so the sample after b is the most b rows have needed so far.
 * peak(b) = intercept + bytesPerRow * b is fitted by least squares; sessionBytes = intercept -
 * baseline (what the session costs with no rows).
 *
 * Beside the process view it records the isolate's view, closer to what the platform's 128 MB
 * counts: the V8 heap and ArrayBuffer backing stores after the GC (Runtime.getHeapUsage), plus the
 * byte length of onnxruntime's WebAssembly memory (reported by the Worker), plus the tensors of the
 * batch that ran (held in JS while it runs); fitted the same way (profile.json `memory.isolate`).
 *
 * Writes a `memory` field into models/<name>/profile.json (nothing else there changes) and
 * bench/reports/memory.{json,md}. Every loop is bounded, each workerd is stopped by its process
 * group (also on error or Ctrl-C), and the whole run takes a few minutes.
 */
import { spawn, execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { resolve } from "node:path";
import { isDevProxy } from "../src/cli/process-cpu";
import { ROOT, freePort, waitForReady, wranglerEnv } from "../src/cli/processes";
import { startProgress } from "../src/cli/progress";
import { commandLine, processAndDescendants } from "./lib/rss-sampler";

/** Platform limits the report derives request limits from. */
const ISOLATE_LIMIT_BYTES = 128_000_000; // "128 MB" per isolate, read as 10^6 (the smaller reading)
const RPC_LIMIT_BYTES = 32 * 1024 * 1024; // Durable Object RPC payload
const SAFETY = 0.8;
const MB = 1_000_000;
const MIB = 1024 * 1024;

/** One fresh workerd: a model at one row shape, its batch sizes in increasing order. */
interface RunPlan {
  model: string;
  /** The Worker's dynamic dims (rec: width; det: height, width). */
  dims: number[];
  batchSizes: number[];
  quickBatchSizes: number[];
  /** Whether this run is the model's reference (its figures go into profile.json) or a scaling check. */
  role: "reference" | "scaling";
}

const PLANS: RunPlan[] = [
  { model: "ppocr-cls", dims: [], batchSizes: [1, 2, 4, 8, 16, 32], quickBatchSizes: [1, 2, 4, 8, 16], role: "reference" },
  { model: "ppocr-rec", dims: [320], batchSizes: [1, 2, 4, 8, 16], quickBatchSizes: [1, 2, 4, 8], role: "reference" },
  { model: "ppocr-rec", dims: [1280], batchSizes: [1, 2, 4, 8], quickBatchSizes: [1, 2, 4], role: "scaling" },
  // Beyond 64 too: a VAD row is a few KB, lost in RSS noise at 64 rows.
  { model: "silero-vad", dims: [], batchSizes: [1, 2, 4, 8, 16, 32, 64, 256, 1024], quickBatchSizes: [1, 2, 4, 8, 16, 32, 64, 256, 1024], role: "reference" },
  { model: "ppocr-det", dims: [640, 640], batchSizes: [1, 2, 4], quickBatchSizes: [1, 2], role: "reference" },
];

/** Longest wait for wrangler dev to answer, for one Worker call, and for a whole run (one model at one shape). */
const READY_TIMEOUT_MS = 90_000;
const CALL_TIMEOUT_MS = 120_000;
const RUN_BUDGET_MS = 150_000;
/** Warm-up at batch 1 goes on until a call grows RSS by less than this, twice in a row. */
const STABLE_RSS_BYTES = 1 * MIB;

interface TensorInfo {
  name: string;
  dims: number[];
  bytes: number;
}

interface WorkerAnswer {
  inputs: TensorInfo[];
  outputs: TensorInfo[];
  wasmBytes: number;
  ms: number;
  warmRuns?: number;
  isolate?: string;
  error?: string;
}

/** Memory of the Worker's workerd at one moment. */
interface MemoryPoint {
  /** VmHWM: the process's peak resident set so far. */
  peakBytes: number;
  /** VmRSS now. */
  rssBytes: number;
  /** onnxruntime's WebAssembly memory (byte length; it only grows); 0 before the session. */
  wasmBytes: number;
  /** V8 heap in use and ArrayBuffer backing stores (Runtime.getHeapUsage); null when the inspector did not answer. */
  heapUsedBytes: number | null;
  backingStoreBytes: number | null;
}

interface BatchSample extends MemoryPoint {
  batchSize: number;
  /** The isolate's view: heap + backing stores + WebAssembly memory, the most seen so far. */
  isolatePeakBytes: number | null;
  msPerRun: number;
}

interface Fit {
  interceptBytes: number;
  bytesPerRow: number;
  r2: number;
}

interface RunResult {
  model: string;
  dims: number[];
  role: RunPlan["role"];
  workerd: string;
  pid: number;
  weightsBytes: number;
  iters: number;
  baseline: MemoryPoint;
  afterSession: MemoryPoint & { warmRuns: number };
  /** Whether VmHWM was reset after the warm-up (/proc/<pid>/clear_refs), so the samples' peaks start there. */
  peakReset: boolean;
  samples: BatchSample[];
  /** The batch size that failed (and why), if one did; the samples before it stand. */
  failed?: { batchSize: number; error: string };
  /** Tensors of the largest batch that ran, at this run's row shape. */
  largest?: { batchSize: number; inputs: TensorInfo[]; outputs: TensorInfo[] };
  fit?: Fit;
  isolateFit?: Fit;
  durationS: number;
}

// ---------------------------------------------------------------------------------------------
// Processes

/** A wrangler dev in its own process group, with the Worker's workerd pid. */
interface DevServer {
  url: string;
  child: ChildProcess;
  pgid: number;
  inspectorPort: number;
  workerdPid: number;
  /** The last few KB wrangler wrote to stderr. */
  stderr(): string;
}

/** Process groups started here and not yet stopped (stopped on exit, error or signal). */
const liveGroups = new Set<number>();

function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const fields = readFileSync(`/proc/${entry}/stat`, "utf8").split(") ")[1]!.split(" ");
      if (Number(fields[2]) === pgid && fields[0] !== "Z") members.push(Number(entry));
    } catch {
      // gone
    }
  }
  return members;
}

/** SIGTERM to the group, SIGKILL after `graceMs` if any member is left; resolves once none is (bounded). */
async function stopGroup(pgid: number, graceMs = 8_000): Promise<void> {
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(-pgid, name);
    } catch {
      // no such group any more
    }
  };
  signal("SIGTERM");
  const deadline = Date.now() + graceMs;
  while (groupMembers(pgid).length && Date.now() < deadline) await sleep(100);
  if (groupMembers(pgid).length) {
    signal("SIGKILL");
    const killDeadline = Date.now() + 3_000;
    while (groupMembers(pgid).length && Date.now() < killDeadline) await sleep(100);
  }
  liveGroups.delete(pgid);
}

function stopAllNow(): void {
  for (const pgid of liveGroups) {
    try {
      process.kill(-pgid, "SIGKILL");
    } catch {
      // gone
    }
  }
  liveGroups.clear();
}

async function startDev(model: string): Promise<DevServer> {
  const [port, inspectorPort] = [await freePort(), await freePort()];
  const args = [
    "dev", resolve(ROOT, "bench", "memory", "entries", `${model}.ts`),
    "--config", resolve(ROOT, "bench", "memory", "wrangler.toml"),
    "--ip", "127.0.0.1", "--port", String(port), "--inspector-port", String(inspectorPort),
    "--show-interactive-dev-session=false", "--log-level", "warn",
    "--persist-to", resolve(ROOT, ".wrangler", "state-memory-bench"),
  ];
  // detached: its own process group (wrangler, its Node, esbuild, both workerd), stopped as one.
  const child = spawn(resolve(ROOT, "node_modules", ".bin", "wrangler"), args, { cwd: ROOT, detached: true, stdio: ["ignore", "ignore", "pipe"], env: wranglerEnv() });
  const pgid = child.pid!;
  liveGroups.add(pgid);
  let stderr = "";
  child.stderr!.on("data", (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4_000)));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitForReady(`${url}/live`, child, READY_TIMEOUT_MS);
    return { url, child, pgid, inspectorPort, workerdPid: findWorkerd(pgid, port), stderr: () => stderr };
  } catch (error) {
    await stopGroup(pgid, 2_000);
    throw new Error(`wrangler dev for ${model} did not start: ${(error as Error).message}\n${stderr}`);
  }
}

/** The workerd that runs the Worker: wrangler dev also runs a proxy workerd, the one serving `entry=127.0.0.1:<port>`. */
function findWorkerd(pgid: number, port: number): number {
  const workerds = processAndDescendants(pgid)
    .map((pid) => ({ pid, command: commandLine(pid) }))
    .filter(({ command }) => /\/workerd serve /.test(command));
  const runtimes = workerds.filter(({ command }) => !isDevProxy(command, port));
  if (runtimes.length !== 1) throw new Error(`expected one Worker workerd under wrangler (pgid ${pgid}), found: ${workerds.map((w) => `${w.pid} ${w.command.slice(0, 160)}`).join(" | ") || "none"}`);
  return runtimes[0]!.pid;
}

/** Resets the process's VmHWM to its current RSS (Linux: `5` into /proc/<pid>/clear_refs); false where refused. */
function resetPeak(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, "5");
    const { peakBytes, rssBytes } = procStatus(pid);
    return peakBytes - rssBytes < 1 * MIB;
  } catch {
    return false;
  }
}

function workerdVersion(pid: number): string {
  try {
    return execFileSync(readlinkSync(`/proc/${pid}/exe`), ["--version"]).toString().trim();
  } catch {
    return "workerd (version unknown)";
  }
}

function procStatus(pid: number): { peakBytes: number; rssBytes: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    if (!match) throw new Error(`/proc/${pid}/status has no ${field}`);
    return Number(match[1]) * 1024;
  };
  return { peakBytes: kib("VmHWM"), rssBytes: kib("VmRSS") };
}

// ---------------------------------------------------------------------------------------------
// The isolate's heap, over wrangler's inspector proxy (Chrome DevTools protocol)

class Inspector {
  private nextId = 0;
  private readonly pending = new Map<number, (result: unknown) => void>();

  private constructor(private readonly socket: WebSocket) {
    socket.addEventListener("message", (event) => {
      const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown };
      if (message.id !== undefined) this.pending.get(message.id)?.(message.result ?? null);
      if (message.id !== undefined) this.pending.delete(message.id);
    });
  }

  /** Connects, or resolves undefined (the heap figures are then left out). */
  static async connect(port: number): Promise<Inspector | undefined> {
    try {
      // wrangler's inspector proxy wants an Origin it knows (Node's WebSocket takes headers in its init).
      const init = { headers: { Origin: "http://localhost" } } as unknown as string[];
      const socket = new WebSocket(`ws://127.0.0.1:${port}/ws`, init);
      await withTimeout(new Promise<void>((done, fail) => {
        socket.addEventListener("open", () => done(), { once: true });
        socket.addEventListener("error", () => fail(new Error("inspector connection failed")), { once: true });
      }), 5_000);
      return new Inspector(socket);
    } catch (error) {
      console.warn(`memory: no inspector on ${port} (${(error as Error).message}); heap figures left out`);
      return undefined;
    }
  }

  /** Sends a DevTools command; its result, or undefined when none came within `timeoutMs`. */
  private async send(method: string, timeoutMs: number): Promise<unknown> {
    const id = ++this.nextId;
    const answer = new Promise<unknown>((done) => this.pending.set(id, done));
    this.socket.send(JSON.stringify({ id, method, params: {} }));
    try {
      return await withTimeout(answer, timeoutMs);
    } catch {
      this.pending.delete(id);
      return undefined;
    }
  }

  /**
   * A full GC of the isolate. workerd hands the command to V8 only when the isolate next runs, so
   * `nudge` (a request to the Worker) follows it. False when it was not confirmed.
   */
  async collectGarbage(nudge: () => Promise<unknown>): Promise<boolean> {
    const done = this.send("HeapProfiler.collectGarbage", 5_000);
    await sleep(20);
    await nudge();
    return (await done) !== undefined;
  }

  /** V8 heap in use and ArrayBuffer backing stores of the Worker's isolate, or nulls. */
  async heapUsage(): Promise<{ heapUsedBytes: number | null; backingStoreBytes: number | null }> {
    const result = (await this.send("Runtime.getHeapUsage", 3_000)) as { usedSize?: number; backingStorageSize?: number } | null | undefined;
    return { heapUsedBytes: result?.usedSize ?? null, backingStoreBytes: result?.backingStorageSize ?? null };
  }

  close(): void {
    try {
      this.socket.close();
    } catch {
      // closed
    }
  }
}

// ---------------------------------------------------------------------------------------------
// One run

/** The Worker or workerd was replaced during a run: its figures are void (the run is tried again). */
class IsolateReplaced extends Error {}

/** A Worker call that failed, with the isolate that answered (if one did). */
interface CallError extends Error {
  isolate?: string;
}

async function call(server: DevServer, path: string): Promise<WorkerAnswer> {
  const response = await fetch(`${server.url}${path}`, { signal: AbortSignal.timeout(CALL_TIMEOUT_MS) });
  const body = (await response.json().catch(() => ({ error: `HTTP ${response.status}, not JSON` }))) as WorkerAnswer;
  if (!response.ok) throw Object.assign(new Error(body.error ?? `HTTP ${response.status}`), { isolate: body.isolate }) as CallError;
  return body;
}

const tail = (stderr: string) => (stderr.trim() ? ` (wrangler's stderr ends: ${stderr.trim().slice(-600)})` : "");

async function measureRun(plan: RunPlan, quick: boolean): Promise<RunResult> {
  const startedMs = Date.now();
  const iters = quick ? 2 : 3;
  const batchSizes = quick ? plan.quickBatchSizes : plan.batchSizes;
  const server = await startDev(plan.model);
  const inspector = await Inspector.connect(server.inspectorPort);
  try {
    const pid = server.workerdPid;
    let isolate: string | undefined;
    /** Throws IsolateReplaced when the Worker's workerd or its isolate is not the one measured so far. */
    const sameIsolate = (answer?: WorkerAnswer) => {
      if (findWorkerd(server.pgid, Number(new URL(server.url).port)) !== pid) throw new IsolateReplaced("wrangler restarted the Worker's workerd");
      if (answer?.isolate !== undefined && isolate !== undefined && answer.isolate !== isolate) throw new IsolateReplaced(`the Worker's isolate was replaced (wrangler reloaded it?)${tail(server.stderr())}`);
    };
    const nudge = () => fetch(`${server.url}/live`).then((r) => r.arrayBuffer());
    // A GC after every batch, so that garbage of earlier runs (V8 frees ArrayBuffers lazily) is not taken for what b rows need.
    const collect = async () => (inspector ? inspector.collectGarbage(nudge) : false);
    /** Memory after a GC: the isolate's retained heap and backing stores, the process's RSS now and its peak. */
    const point = async (wasmBytes: number): Promise<MemoryPoint> => {
      const collected = await collect();
      const heap = inspector && collected ? await inspector.heapUsage() : { heapUsedBytes: null, backingStoreBytes: null };
      return { ...procStatus(pid), wasmBytes, ...heap };
    };
    const live = (await (await fetch(`${server.url}/live`)).json()) as { weightsBytes: number; isolate: string };
    isolate = live.isolate;
    await sleep(500); // let start-up settle
    const baseline = await point(0);
    const dims = plan.dims.join(",");
    const warm = await call(server, `/session?dims=${dims}&warmRuns=${quick ? 10 : 20}&warmMs=${quick ? 500 : 1_000}`);
    sameIsolate(warm);
    // V8 runs WebAssembly from its baseline tier first and compiles hot functions again with TurboFan
    // in the background, which costs the process tens of MB (compiler memory its allocator keeps,
    // code): keep running batch 1 until RSS stops growing, so that this lands in the session's cost
    // rather than in the first batch sizes' (bounded in calls and time).
    let warmRuns = warm.warmRuns ?? 0;
    const warmIters = Math.max(1, Math.min(50, Math.round(300 / Math.max(1, warm.ms))));
    const warmDeadline = Date.now() + (quick ? 6_000 : 15_000);
    let rss = procStatus(pid).rssBytes;
    for (let calls = 0, quiet = 0; calls < 30 && quiet < 2 && Date.now() < warmDeadline; calls++) {
      sameIsolate(await call(server, `/run?batch=1&dims=${dims}&iters=${warmIters}`));
      await sleep(200); // background compilation
      warmRuns += warmIters;
      const now = procStatus(pid).rssBytes;
      quiet = now - rss < STABLE_RSS_BYTES ? quiet + 1 : 0;
      rss = now;
    }
    sameIsolate();
    const afterSession = { ...(await point(warm.wasmBytes)), warmRuns };
    // The compiler's transient peak during warm-up is not the rows': peak RSS restarts from here.
    const peakReset = resetPeak(pid);
    const result: RunResult = { model: plan.model, dims: plan.dims, role: plan.role, workerd: workerdVersion(pid), pid, weightsBytes: live.weightsBytes, iters, baseline, afterSession, peakReset, samples: [], durationS: 0 };
    const warmTensors = [...warm.inputs, ...warm.outputs].reduce((sum, t) => sum + t.bytes, 0);
    let isolatePeak = isolateBytes(afterSession) === null ? null : isolateBytes(afterSession)! + warmTensors;
    for (const batchSize of batchSizes) {
      if (Date.now() - startedMs > RUN_BUDGET_MS) {
        result.failed = { batchSize, error: `run budget of ${RUN_BUDGET_MS / 1000} s spent` };
        break;
      }
      let answer: WorkerAnswer | undefined;
      const ms: number[] = [];
      try {
        // One run per call with a GC after each: the peak is what one batch of b rows needs.
        for (let i = 0; i < iters; i++) {
          answer = await call(server, `/run?batch=${batchSize}&dims=${dims}&iters=1`).catch((error: Error) => {
            // A 409 "no session" from a different isolate is a reload, not this batch size failing.
            sameIsolate({ isolate: (error as CallError).isolate } as WorkerAnswer);
            throw error;
          });
          sameIsolate(answer);
          ms.push(answer.ms);
          if (i < iters - 1) await collect();
        }
      } catch (error) {
        if (error instanceof IsolateReplaced) throw error;
        result.failed = { batchSize, error: `${(error as Error).message}${tail(server.stderr())}` };
        break;
      }
      const at = await point(answer!.wasmBytes);
      // While a batch runs, the isolate holds its retained heap, the WebAssembly memory and the request's tensors in JS.
      const tensorBytes = [...answer!.inputs, ...answer!.outputs].reduce((sum, t) => sum + t.bytes, 0);
      const isolate = isolateBytes(at);
      isolatePeak = isolate === null || isolatePeak === null ? null : Math.max(isolatePeak, isolate + tensorBytes);
      result.samples.push({ batchSize, ...at, isolatePeakBytes: isolatePeak, msPerRun: round(Math.min(...ms), 1) });
      result.largest = { batchSize, inputs: answer!.inputs, outputs: answer!.outputs };
      console.log(`  b=${String(batchSize).padStart(2)}  peak RSS ${mb(at.peakBytes)} MB  RSS ${mb(at.rssBytes)} MB  wasm ${mb(at.wasmBytes)} MB  heap ${at.heapUsedBytes === null ? "?" : mb(at.heapUsedBytes)} MB  backing ${at.backingStoreBytes === null ? "?" : mb(at.backingStoreBytes)} MB  isolate peak ${isolatePeak === null ? "?" : mb(isolatePeak)} MB  (${round(Math.min(...ms), 0)} ms/run)`);
    }
    if (result.samples.length >= 2) {
      result.fit = fitLine(result.samples.map((s) => [s.batchSize, s.peakBytes]));
      if (result.samples.every((s) => s.isolatePeakBytes !== null)) result.isolateFit = fitLine(result.samples.map((s) => [s.batchSize, s.isolatePeakBytes!]));
    }
    result.durationS = round((Date.now() - startedMs) / 1000, 1);
    return result;
  } finally {
    inspector?.close();
    await stopGroup(server.pgid);
  }
}

const isolateBytes = (p: MemoryPoint) => (p.heapUsedBytes === null || p.backingStoreBytes === null ? null : p.heapUsedBytes + p.backingStoreBytes + p.wasmBytes);

// ---------------------------------------------------------------------------------------------
// Figures

/** Least squares y = a + b x. */
function fitLine(points: Array<[number, number]>): Fit {
  const n = points.length;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  const sxy = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const slope = sxx > 0 ? sxy / sxx : 0;
  const intercept = my - slope * mx;
  const ssTot = points.reduce((s, [, y]) => s + (y - my) ** 2, 0);
  const ssRes = points.reduce((s, [x, y]) => s + (y - intercept - slope * x) ** 2, 0);
  return { interceptBytes: Math.round(intercept), bytesPerRow: Math.round(slope), r2: ssTot > 0 ? round(1 - ssRes / ssTot, 4) : 1 };
}

interface ManifestTensor {
  name: string;
  batchAxis?: number | null;
}

function manifestOf(model: string): { inputs: ManifestTensor[]; outputs: ManifestTensor[] } {
  return JSON.parse(readFileSync(resolve(ROOT, "models", model, "manifest.json"), "utf8"));
}

const batchAxisOf = (specs: ManifestTensor[], name: string) => {
  const spec = specs.find((s) => s.name === name);
  return spec === undefined ? 0 : spec.batchAxis === undefined ? 0 : spec.batchAxis;
};

/** Bytes per row of the batched tensors (those with a batch axis in the manifest), and each one's row shape. */
function perRow(tensors: TensorInfo[], specs: ManifestTensor[], batchSize: number): { bytesPerRow: number; rowShapes: Record<string, number[]> } {
  let bytes = 0;
  const rowShapes: Record<string, number[]> = {};
  for (const tensor of tensors) {
    const axis = batchAxisOf(specs, tensor.name);
    if (axis === null) continue;
    bytes += tensor.bytes;
    rowShapes[tensor.name] = tensor.dims.filter((_, i) => i !== axis);
  }
  return { bytesPerRow: Math.round(bytes / batchSize), rowShapes };
}

interface ModelFigures {
  model: string;
  reference: RunResult;
  scaling?: RunResult;
  referenceRowShapes: Record<string, number[]>;
  outputRowShapes: Record<string, number[]>;
  inputBytesPerRow: number;
  outputBytesPerRow: number;
  /** 2 × (input + output bytes per row): the least a row can cost; rows-that-fit use max(fit, this). */
  floorBytesPerRow: number;
  sessionBytes: number;
  bytesPerRow: number;
  isolateSessionBytes: number | null;
  isolateBytesPerRow: number | null;
  rowsInIsolate: number;
  rowsInIsolateSafe: number;
  isolateRowsInIsolate: number | null;
  isolateRowsInIsolateSafe: number | null;
  rowsPerRpc: number;
}

function figuresOf(reference: RunResult, scaling: RunResult | undefined): ModelFigures | undefined {
  if (!reference.fit || !reference.largest) return undefined;
  const manifest = manifestOf(reference.model);
  const inputs = perRow(reference.largest.inputs, manifest.inputs, reference.largest.batchSize);
  const outputs = perRow(reference.largest.outputs, manifest.outputs, reference.largest.batchSize);
  const sessionBytes = reference.fit.interceptBytes - reference.baseline.peakBytes;
  const bytesPerRow = reference.fit.bytesPerRow;
  const baseIsolate = isolateBytes(reference.baseline);
  const isolateSessionBytes = reference.isolateFit && baseIsolate !== null ? reference.isolateFit.interceptBytes - baseIsolate : null;
  const isolateBytesPerRow = reference.isolateFit?.bytesPerRow ?? null;
  // A row's tensors exist at least twice (JS and onnxruntime's copies in WebAssembly memory): the
  // per-row figure that limits are derived from is never below that, whatever the fit's noise.
  const floorBytesPerRow = 2 * (inputs.bytesPerRow + outputs.bytesPerRow);
  const rows = (budget: number, session: number, row: number) => Math.max(0, Math.floor((budget - session) / Math.max(row, floorBytesPerRow)));
  return {
    model: reference.model,
    reference,
    scaling,
    referenceRowShapes: inputs.rowShapes,
    outputRowShapes: outputs.rowShapes,
    inputBytesPerRow: inputs.bytesPerRow,
    outputBytesPerRow: outputs.bytesPerRow,
    floorBytesPerRow,
    sessionBytes,
    bytesPerRow,
    isolateSessionBytes,
    isolateBytesPerRow,
    rowsInIsolate: rows(ISOLATE_LIMIT_BYTES, sessionBytes, bytesPerRow),
    rowsInIsolateSafe: rows(SAFETY * ISOLATE_LIMIT_BYTES, sessionBytes, bytesPerRow),
    isolateRowsInIsolate: isolateSessionBytes === null || isolateBytesPerRow === null ? null : rows(ISOLATE_LIMIT_BYTES, isolateSessionBytes, isolateBytesPerRow),
    isolateRowsInIsolateSafe: isolateSessionBytes === null || isolateBytesPerRow === null ? null : rows(SAFETY * ISOLATE_LIMIT_BYTES, isolateSessionBytes, isolateBytesPerRow),
    rowsPerRpc: Math.floor(RPC_LIMIT_BYTES / Math.max(inputs.bytesPerRow, outputs.bytesPerRow)),
  };
}

/** The `memory` field of models/<name>/profile.json. */
function profileMemory(f: ModelFigures, measuredAt: string) {
  const r = f.reference;
  const scalingRows = f.scaling?.fit && f.scaling.largest ? perRow(f.scaling.largest.inputs, manifestOf(f.model).inputs, f.scaling.largest.batchSize) : undefined;
  return {
    generatedBy: "npm run bench -- memory (bench/memory.ts)",
    measuredAt,
    runtime: `${r.workerd} (onnxruntime-web 1.30 WASM, 1 thread)`,
    referenceRowShapes: f.referenceRowShapes,
    inputBytesPerRow: f.inputBytesPerRow,
    outputBytesPerRow: f.outputBytesPerRow,
    baselineBytes: r.baseline.peakBytes,
    sessionBytes: f.sessionBytes,
    bytesPerRow: f.bytesPerRow,
    samples: r.samples.map((s) => ({ batchSize: s.batchSize, peakBytes: s.peakBytes })),
    // The isolate's view (V8 heap + ArrayBuffer backing stores + onnxruntime's WebAssembly memory),
    // closer to what the 128 MB per isolate counts than the process's RSS (which holds workerd and
    // the compiled kernel); bench/reports/memory.md compares them.
    ...(f.isolateSessionBytes !== null && f.isolateBytesPerRow !== null && { isolate: { baselineBytes: isolateBytes(r.baseline), sessionBytes: f.isolateSessionBytes, bytesPerRow: f.isolateBytesPerRow } }),
    ...(scalingRows && { scaling: { rowShape: scalingRows.rowShapes, bytesPerRow: f.scaling!.fit!.bytesPerRow, ...(f.scaling!.isolateFit && { isolateBytesPerRow: f.scaling!.isolateFit.bytesPerRow }) } }),
  };
}

/**
 * Sets `memory` in a profile.json and leaves every other byte as it was: the file is rewritten
 * through JSON only when that reproduces it exactly; otherwise the field is spliced in as text.
 */
function writeProfileMemory(model: string, memory: object): void {
  const path = resolve(ROOT, "models", model, "profile.json");
  if (!existsSync(path)) {
    console.warn(`memory: ${path} is missing; its memory field is not written`);
    return;
  }
  const text = readFileSync(path, "utf8");
  const profile = JSON.parse(text) as Record<string, unknown>;
  const { memory: _previous, ...rest } = profile;
  if (JSON.stringify(profile, null, 2) + "\n" === text) {
    writeFileSync(path, JSON.stringify({ ...rest, memory }, null, 2) + "\n");
  } else if (!("memory" in profile) && /\n}\n?$/.test(text)) {
    const field = JSON.stringify(memory, null, 2).replace(/\n/g, "\n  ");
    writeFileSync(path, text.replace(/\n}\n?$/, `,\n  "memory": ${field}\n}\n`));
  } else {
    console.warn(`memory: ${path} is not in JSON.stringify's layout and already has a memory field; not rewritten`);
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function markdown(figures: ModelFigures[], runs: RunResult[], meta: { measuredAt: string; quick: boolean; workerd: string; durationS: number }): string {
  const lines: string[] = [
    "# workerd memory per model and batch size",
    "",
    `\`npm run bench -- memory${meta.quick ? " --quick" : ""}\` (bench/memory.ts), ${meta.measuredAt}, ${meta.workerd}, onnxruntime-web 1.30 WASM (1 thread), ${cpus().length} shared cores (${cpus()[0]?.model ?? "?"}); ${meta.durationS} s.`,
    "",
    "Each model (and ppocr-rec at each width) runs in a fresh workerd under `wrangler dev` (bench/memory/worker.ts, only that model's weights bundled). The Worker's workerd process (not wrangler's Node nor its proxy workerd) is read from /proc: peak RSS (VmHWM) before the session, after the session is created and warmed up at batch 1 (until RSS stops growing: V8 tiers the kernel up in the background, and that memory belongs to the session; its transient peak is then cleared from VmHWM through /proc/<pid>/clear_refs), and after each batch size, in increasing order, each run " +
      `${runs[0]?.iters ?? "?"} times, one run per call with a full GC of the isolate after each (HeapProfiler.collectGarbage over wrangler's inspector), so that the peak is what one batch of b rows needs and not the garbage of earlier runs. \`peak(b) = intercept + bytesPerRow × b\` by least squares; **session** = intercept − RSS before the session.`,
    "",
    `Limits: isolate ${ISOLATE_LIMIT_BYTES / MB} MB (taken as 10^6 bytes), Durable Object RPC payload ${RPC_LIMIT_BYTES / MIB} MiB. Rows that fit = ⌊(128 MB − session) / bytesPerRow⌋; with the safety factor ⌊(${SAFETY} × 128 MB − session) / bytesPerRow⌋. Rows per RPC = ⌊32 MiB / max(input, output bytes per row)⌋ (tensor bytes only: the request carries the inputs, the answer the outputs). † the fitted slope is below 2 × (input + output bytes per row), the least a row costs (its tensors in JS and in WebAssembly memory); rows that fit use that floor instead.`,
    "",
    "## Per model (process view: peak RSS of the Worker's workerd)",
    "",
    "The process view holds workerd itself and the compiled onnxruntime kernel (the RSS before any session is already above 128 MB), so its rows-that-fit are not what the platform allows: they are kept as the upper bound of what a model costs a machine. Derive limits from the isolate view below.",
    "",
    "| model | row shape | session MB | MB per row | r² | rows in 128 MB | rows at 0.8 × 128 MB | input B/row | output B/row | rows per 32 MiB RPC |",
    "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const f of figures) {
    const shape = Object.entries(f.referenceRowShapes).map(([name, dims]) => `${name} [${dims.join(",")}]`).join(", ");
    const floored = (row: number | null) => (row !== null && row < f.floorBytesPerRow ? " †" : "");
    lines.push(`| ${f.model} | ${shape} | ${mb(f.sessionBytes)} | ${mb(f.bytesPerRow, 3)}${floored(f.bytesPerRow)} | ${f.reference.fit!.r2} | ${f.rowsInIsolate} | ${f.rowsInIsolateSafe} | ${f.inputBytesPerRow} | ${f.outputBytesPerRow} | ${f.rowsPerRpc} |`);
  }
  lines.push(
    "",
    "## Per model (isolate view: V8 heap + ArrayBuffer backing stores + onnxruntime's WebAssembly memory)",
    "",
    "Closer to what the platform's per-isolate limit counts (JS heap and WebAssembly memory, not compiled code nor workerd itself). WebAssembly memory is its byte length (reserved by onnxruntime's allocator, touched or not); heap and backing stores are read over wrangler's inspector (Runtime.getHeapUsage) after a forced GC, and the tensors of the batch that ran (in JS while it runs) are added to them: isolate peak(b) = retained heap + backing stores + WebAssembly memory + b rows' input and output bytes, the most so far. Isolate session = fitted intercept − isolate bytes before the session (the bundled weights, as a backing store, are in that baseline).",
    "",
    "| model | isolate before session MB | isolate session MB | isolate MB per row | r² | rows in 128 MB | rows at 0.8 × 128 MB |",
    "|---|---:|---:|---:|---:|---:|---:|",
  );
  for (const f of figures) {
    const before = isolateBytes(f.reference.baseline);
    const floored = f.isolateBytesPerRow !== null && f.isolateBytesPerRow < f.floorBytesPerRow ? " †" : "";
    lines.push(`| ${f.model} | ${before === null ? "–" : mb(before)} | ${f.isolateSessionBytes === null ? "–" : mb(f.isolateSessionBytes)} | ${f.isolateBytesPerRow === null ? "–" : mb(f.isolateBytesPerRow, 3)}${floored} | ${f.reference.isolateFit?.r2 ?? "–"} | ${f.isolateRowsInIsolate ?? "–"} | ${f.isolateRowsInIsolateSafe ?? "–"} |`);
  }
  const rec = figures.find((f) => f.model === "ppocr-rec");
  if (rec?.scaling?.fit && rec.scaling.largest) {
    const scaling = rec.scaling;
    const wideRows = perRow(scaling.largest!.inputs, manifestOf("ppocr-rec").inputs, scaling.largest!.batchSize);
    const wideOut = perRow(scaling.largest!.outputs, manifestOf("ppocr-rec").outputs, scaling.largest!.batchSize);
    const ratio = scaling.fit!.bytesPerRow / rec.bytesPerRow;
    const elementRatio = wideRows.bytesPerRow / rec.inputBytesPerRow;
    const wideSession = scaling.fit!.interceptBytes - scaling.baseline.peakBytes;
    const wideIsolateBase = isolateBytes(scaling.baseline);
    const wideIsolateSession = scaling.isolateFit && wideIsolateBase !== null ? scaling.isolateFit.interceptBytes - wideIsolateBase : null;
    const wideIsolateRows = (budget: number) => (wideIsolateSession === null || !scaling.isolateFit ? "–" : String(Math.max(0, Math.floor((budget - wideIsolateSession) / Math.max(scaling.isolateFit.bytesPerRow, 2 * (wideRows.bytesPerRow + wideOut.bytesPerRow))))));
    const isolateRatio = scaling.isolateFit && rec.isolateBytesPerRow ? scaling.isolateFit.bytesPerRow / rec.isolateBytesPerRow : null;
    // The isolate view is the steadier (RSS moves with what the allocator reuses), so the verdict follows it where there is one.
    const judged = isolateRatio ?? ratio;
    const verdict =
      judged < 0.75 * elementRatio
        ? "Per-row memory grows less than in proportion to the row's elements: part of it is fixed per row or taken from memory the session already holds."
        : judged > 1.25 * elementRatio
          ? "Per-row memory grows faster than the row's elements."
          : "Per-row memory grows about in proportion to the row's elements (the fitted slopes differ by WebAssembly memory's growth steps, which fall at other b for each width).";
    // Batches of the two widths with the same input elements (b × width).
    const widthRatio = scaling.dims[0]! / rec.reference.dims[0]!;
    const pairs = scaling.samples
      .map((wide) => ({ wide, narrow: rec.reference.samples.find((n) => n.batchSize === wide.batchSize * widthRatio) }))
      .filter((p): p is { wide: BatchSample; narrow: BatchSample } => p.narrow !== undefined && p.wide.isolatePeakBytes !== null && p.narrow.isolatePeakBytes !== null);
    lines.push(
      "",
      "## ppocr-rec: per-row memory against row width",
      "",
      `| width | session MB (RSS) | MB per row (RSS) | r² | isolate session MB | isolate MB per row | r² | isolate rows in 128 MB | at 0.8 × 128 MB | input B/row | output B/row | rows per 32 MiB RPC |`,
      "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
      `| ${rec.reference.dims[0]} | ${mb(rec.sessionBytes)} | ${mb(rec.bytesPerRow, 3)} | ${rec.reference.fit!.r2} | ${rec.isolateSessionBytes === null ? "–" : mb(rec.isolateSessionBytes)} | ${rec.isolateBytesPerRow === null ? "–" : mb(rec.isolateBytesPerRow, 3)} | ${rec.reference.isolateFit?.r2 ?? "–"} | ${rec.isolateRowsInIsolate ?? "–"} | ${rec.isolateRowsInIsolateSafe ?? "–"} | ${rec.inputBytesPerRow} | ${rec.outputBytesPerRow} | ${rec.rowsPerRpc} |`,
      `| ${scaling.dims[0]} | ${mb(wideSession)} | ${mb(scaling.fit!.bytesPerRow, 3)} | ${scaling.fit!.r2} | ${wideIsolateSession === null ? "–" : mb(wideIsolateSession)} | ${scaling.isolateFit ? mb(scaling.isolateFit.bytesPerRow, 3) : "–"} | ${scaling.isolateFit?.r2 ?? "–"} | ${wideIsolateRows(ISOLATE_LIMIT_BYTES)} | ${wideIsolateRows(SAFETY * ISOLATE_LIMIT_BYTES)} | ${wideRows.bytesPerRow} | ${wideOut.bytesPerRow} | ${Math.floor(RPC_LIMIT_BYTES / Math.max(wideRows.bytesPerRow, wideOut.bytesPerRow))} |`,
      "",
      `bytesPerRow at width ${scaling.dims[0]} / at ${rec.reference.dims[0]}: process view **${round(ratio, 2)}**${isolateRatio === null ? "" : `, isolate view **${round(isolateRatio, 2)}**`}, against an input-element ratio of ${round(elementRatio, 2)}. ${verdict}`,
      ...(pairs.length
        ? [
            "",
            `Same input elements per batch (b × width), both widths, isolate peak and WebAssembly memory: ${pairs.map((p) => `${p.wide.batchSize}×${scaling.dims[0]} ${mb(p.wide.isolatePeakBytes!)} MB (wasm ${mb(p.wide.wasmBytes)}) vs ${p.narrow.batchSize}×${rec.reference.dims[0]} ${mb(p.narrow.isolatePeakBytes!)} MB (wasm ${mb(p.narrow.wasmBytes)})`).join("; ")}. The isolate's memory follows the batch's input elements, whatever their split into rows and width: a request limit can be set in input elements (rows × width).`,
          ]
        : []),
    );
  }
  lines.push("", "## Samples", "");
  for (const run of runs) {
    lines.push(
      `### ${run.model}${run.dims.length ? ` (${run.dims.join("×")})` : ""}${run.role === "scaling" ? ", scaling check" : ""}`,
      "",
      `workerd pid ${run.pid}; weights ${mb(run.weightsBytes)} MB (bundled); ${run.durationS} s. Before the session: peak RSS ${mb(run.baseline.peakBytes)} MB; after the session and ${run.afterSession.warmRuns} warm-up runs at batch 1: ${mb(run.afterSession.peakBytes)} MB (RSS ${mb(run.afterSession.rssBytes)} MB, WebAssembly memory ${mb(run.afterSession.wasmBytes)} MB)${run.peakReset ? ", then the peak was reset" : ", **the peak could not be reset (the samples' peaks include the warm-up's)**"}.${run.fit ? ` Fit: ${mb(run.fit.interceptBytes)} MB + ${mb(run.fit.bytesPerRow, 3)} MB × b (r² ${run.fit.r2}).` : ""}${run.failed ? ` **Stopped at b=${run.failed.batchSize}: ${run.failed.error}**` : ""}`,
      "",
      "| b | peak RSS MB | RSS MB | wasm memory MB | V8 heap MB | backing stores MB | isolate peak MB | ms per run |",
      "|---:|---:|---:|---:|---:|---:|---:|---:|",
      ...run.samples.map((s) => `| ${s.batchSize} | ${mb(s.peakBytes)} | ${mb(s.rssBytes)} | ${mb(s.wasmBytes)} | ${s.heapUsedBytes === null ? "–" : mb(s.heapUsedBytes)} | ${s.backingStoreBytes === null ? "–" : mb(s.backingStoreBytes)} | ${s.isolatePeakBytes === null ? "–" : mb(s.isolatePeakBytes)} | ${s.msPerRun} |`),
      "",
    );
  }
  lines.push(
    "## Caveats",
    "",
    "- **RSS is the process, not the isolate.** The Worker's workerd also holds workerd itself, the compiled onnxruntime kernel (Liftoff and, as code warms up, TurboFan code, counted in the session) and the bundled weights (counted in the baseline). The platform's 128 MB counts the isolate (JS heap and WebAssembly memory), so limits from the process view are conservative; the isolate view is the closer estimate, and with the safety factor the one to derive limits from where they differ.",
    "- **WebAssembly memory only grows**, in steps: Emscripten grows the linear memory by at least about 20 % per step (in 64 KiB pages; see the wasm memory column) and onnxruntime's CPU memory arena extends in growing chunks, so the byte length jumps and then stays, and RSS counts only the pages touched. Per-row figures are slopes through these steps; a batch size between two measured ones may need a step more.",
    "- **Garbage is left out.** The figures are what one batch needs, with a GC forced between runs. Served back to back, V8 frees the ArrayBuffers of earlier requests only at its next GC (external memory triggers one after tens of MB), so without the forced GC (seen while building this benchmark) the same runs showed up to 2-3 batches' tensors more (ppocr-rec at width 320, b=16, 3 runs: 87 MB of backing stores instead of ~30 MB). The safety factor is there for this, among others.",
    "- Inputs and outputs are counted once in JS (the request's tensors, the returned tensors) plus onnxruntime's copies in WebAssembly memory, as the edge's runner has them; a Durable Object buffer that also holds the request bodies and a response being serialised holds more per row.",
    "- The machine is shared (2 cores, another engineer's tests); memory figures do not depend on CPU load, but V8's code tier-up timing does, which moves a few MB between the session and the first batch sizes.",
    "- **The last batch's outputs stay referenced** until the next onnxruntime call: src/edge/ort-web.ts chains calls with `lastCall = result.catch(() => undefined)`, which resolves with (and so holds) the previous run's results. It shows as backing stores that survive a GC and grow with the last b by one row's output bytes (ppocr-rec: about 1.06 MB per row at width 320; ppocr-det: 1.6 MB). The isolate peaks here include it, as the edge runs today; `result.then(() => undefined, () => undefined)` would free one batch's outputs.",
    "- One isolate may hold several models' sessions (the Worker's direct path, Durable Objects sharing an isolate): the 128 MB is shared by all of them, so a model's rows that fit are an upper bound when it is not alone.",
    "- `npm run profile` rewrites profile.json from scratch: run this benchmark again after it to restore the `memory` field.",
  );
  return lines.join("\n") + "\n";
}

// ---------------------------------------------------------------------------------------------

/** Runs the memory benchmark; options from `npm run bench -- memory` (bench/index.ts): `models` limits it to those models. */
export async function main(options: { quick: boolean; models?: string[] }): Promise<void> {
  const quick = options.quick;
  const only = options.models;
  const plans = PLANS.filter((p) => !only || only.includes(p.model));
  if (only) for (const name of only) if (!PLANS.some((p) => p.model === name)) throw new Error(`unknown model ${name}; known: ${[...new Set(PLANS.map((p) => p.model))].join(", ")}`);
  const onSignal = (signal: NodeJS.Signals) => {
    stopAllNow();
    process.kill(process.pid, signal);
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  process.once("exit", stopAllNow);
  const startedMs = Date.now();
  const measuredAt = new Date().toISOString();
  const runs: RunResult[] = [];
  const errors: string[] = [];
  const progress = startProgress("memory", plans.length);
  try {
    for (const plan of plans) {
      const label = `${plan.model}${plan.dims.length ? ` ${plan.dims.join("x")}` : ""}`;
      progress.step(label);
      if (!existsSync(resolve(ROOT, "models", plan.model, "model.onnx"))) {
        errors.push(`${label}: models/${plan.model}/model.onnx is missing (npm install links it)`);
        progress.tick();
        continue;
      }
      console.log(`memory: ${label} (fresh workerd, load ${loadavg()[0]!.toFixed(1)})`);
      try {
        let run: RunResult;
        try {
          run = await measureRun(plan, quick);
        } catch (error) {
          if (!(error instanceof IsolateReplaced)) throw error;
          console.warn(`  ${label}: ${error.message}; measuring it again in a fresh workerd`);
          run = await measureRun(plan, quick);
        }
        runs.push(run);
        console.log(`  ${label}: baseline ${mb(run.baseline.peakBytes)} MB, after session ${mb(run.afterSession.peakBytes)} MB${run.fit ? `, fit ${mb(run.fit.interceptBytes)} + ${mb(run.fit.bytesPerRow, 3)} MB × b (r² ${run.fit.r2})` : ""}${run.failed ? `; stopped at b=${run.failed.batchSize}: ${run.failed.error}` : ""}`);
      } catch (error) {
        errors.push(`${label}: ${(error as Error).message}`);
        console.error(`  ${label} failed: ${(error as Error).message}`);
      }
      progress.tick();
    }
  } finally {
    progress.stop();
    for (const pgid of [...liveGroups]) await stopGroup(pgid);
    process.removeListener("SIGINT", onSignal);
    process.removeListener("SIGTERM", onSignal);
    process.removeListener("exit", stopAllNow);
  }

  const figures: ModelFigures[] = [];
  for (const model of [...new Set(plans.map((p) => p.model))]) {
    const reference = runs.find((r) => r.model === model && r.role === "reference");
    const scaling = runs.find((r) => r.model === model && r.role === "scaling");
    const f = reference && figuresOf(reference, scaling);
    if (!f) {
      errors.push(`${model}: too few samples for a fit; profile.json left as it was`);
      continue;
    }
    figures.push(f);
    writeProfileMemory(model, profileMemory(f, measuredAt));
  }
  const durationS = round((Date.now() - startedMs) / 1000, 1);
  const workerd = runs[0]?.workerd ?? "workerd";
  const report = {
    generatedBy: "npm run bench -- memory (bench/memory.ts)",
    measuredAt,
    quick,
    durationS,
    runtime: `${workerd} (onnxruntime-web 1.30 WASM, 1 thread) under wrangler dev`,
    machine: { cpu: cpus()[0]?.model ?? "unknown", cores: cpus().length, node: process.version },
    limits: { isolateBytes: ISOLATE_LIMIT_BYTES, rpcPayloadBytes: RPC_LIMIT_BYTES, safetyFactor: SAFETY },
    models: figures.map(({ reference, scaling, ...f }) => ({ ...f, fit: reference.fit, isolateFit: reference.isolateFit, ...(scaling && { scalingFit: scaling.fit, scalingIsolateFit: scaling.isolateFit }) })),
    runs,
    errors,
  };
  const dir = resolve(ROOT, "bench", "reports");
  writeFileSync(resolve(dir, "memory.json"), JSON.stringify(report, null, 2) + "\n");
  writeFileSync(resolve(dir, "memory.md"), markdown(figures, runs, { measuredAt, quick, workerd, durationS }));
  console.log(`memory: wrote bench/reports/memory.{json,md} and the memory field of ${figures.map((f) => `models/${f.model}/profile.json`).join(", ")} (${durationS} s)`);
  for (const error of errors) console.error(`memory: ${error}`);
  if (errors.length) process.exitCode = 1;
}

function mb(bytes: number, digits = 1): string {
  return (bytes / MB).toFixed(digits);
}

function round(value: number, digits = 2): number {
  return Number(value.toFixed(digits));
}

function sleep(ms: number): Promise<void> {
  return new Promise((done) => setTimeout(done, ms));
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([promise, new Promise<never>((_, fail) => (timer = setTimeout(() => fail(new Error(`timed out after ${ms} ms`)), ms)))]);
  } finally {
    clearTimeout(timer);
  }
}
