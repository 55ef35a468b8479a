/**
 * `npm run bench -- <suite> [options]`: runs one benchmark suite (edge, origin, scheduler, fidelity, closed-loop, deploy, observability, memory, soak, size-classes, streams, ocr, planner) or all of them.
 * Each writes its report to bench/reports/<suite>.{json,md}. `npm run bench -- --help` lists the
 * suites and `npm run bench -- <suite> --help` a suite's options with their defaults; a usage error
 * (unknown suite or option, bad value) exits with code 2 (src/cli/command.ts). A suite's module is
 * loaded only when it runs.
 */
import { execFileSync } from "node:child_process";
import { resolve } from "node:path";
import { type Command, cliProgram, InvalidArgumentError, integerIn, listOf, numberWhere, Option, uniformErrors } from "../src/cli/command";
import type { ClosedLoopOptions, Policy, Workload } from "./closed-loop";
import type { SoakOptions } from "./soak";
import type { StreamsOptions } from "./streams";
import type { Platform } from "./lib/plain-workerd";

const program = cliProgram("bench", "Runs a benchmark suite and writes its report to bench/reports/; without a suite, all of them in turn, each with its defaults.")
  .usage("<suite> [options]")
  .addHelpText("after", "\n`npm run bench -- <suite> --help` lists a suite's options.");

/** How each suite runs, by name, in the order `all` runs them. */
const runs = new Map<string, (options: any) => Promise<unknown>>();

/** Adds a suite: its name, what it measures (for --help), and how it runs with its parsed options. */
function suite<O>(name: string, description: string, run: (options: O) => Promise<unknown>): Command {
  runs.set(name, run);
  return uniformErrors(program.command(name).description(description), `npm run bench -- ${name}`).action((options: O) => runSuite(name, options));
}

async function runSuite(name: string, options: unknown): Promise<void> {
  console.log(`== bench ${name}`);
  await runs.get(name)!(options);
}

/** An option value parser: a revision of this repository (`git rev-parse`). */
function gitRevision(value: string): string {
  try {
    execFileSync("git", ["rev-parse", "--verify", "--quiet", `${value}^{commit}`], { cwd: resolve(import.meta.dirname, ".."), stdio: "ignore" });
  } catch {
    throw new InvalidArgumentError("not a revision of this repository.");
  }
  return value;
}

/** The models the memory benchmark measures (bench/memory.ts PLANS). */
const MEMORY_MODELS = ["ppocr-cls", "ppocr-rec", "silero-vad", "ppocr-det"];
const POLICIES = ["static-mean", "static-peak", "reactive", "closed-loop"] satisfies Policy[];
const WORKLOADS = ["trace", "step"] satisfies Workload[];
/** The streams benchmark's pacings (bench/streams.ts PACINGS). */
const STREAM_PACINGS = ["closed", "paced"];
const PLATFORMS = ["wrangler-dev", "workerd"] satisfies Platform[];
/** --platform of a suite whose reports are `name`.* (wrangler dev) or `name`-workerd.* (plain workerd). */
const platformOption = (name: string, what = "the edge Worker runs") =>
  new Option("--platform <platform>", `where ${what}: wrangler dev (npm start's) or the deploy bundle on plain workerd (no dev proxy in front); reports go to ${name}.* or ${name}-workerd.*`).choices(PLATFORMS).default("wrangler-dev");
const seconds = (max: number) => numberWhere(`a number of seconds in (0, ${max}]`, (s) => s > 0 && s <= max);

suite("edge", "the edge hot path for ppocr-cls and silero-vad, side by side: kernel limit, platform ceiling, platform + kernel, three policies over rising rates, light-load overhead, CPU per request, batch window precision (about 35 minutes)", async (options: { baseline?: string; quick: boolean; platform: Platform }) =>
  (await import("./edge")).main(options),
)
  .option("--baseline <rev>", "also measure the buffered path's CPU per request at another git revision, in a worktree of it (default: none; wrangler dev only)", gitRevision)
  .option("--quick", "every other load step only", false)
  .addOption(platformOption("edge", "the Workers run").conflicts("baseline"));

suite("origin", "gpu-origin: overhead per batch, the edge-to-origin hop, ppocr-det throughput by batch size, tensor codecs, failover", async () => (await import("./origin")).main());

suite("scheduler", "the scheduler against `npm start`'s stack: bursts of 64 concurrent requests, closed-loop capacity, open-loop load at 3x capacity", async (options: { platform: Platform }) => (await import("./scheduler")).main(options))
  .addOption(platformOption("scheduler"));

suite("fidelity", "the planner's latency prediction against the running stack: Poisson and Azure MMPP(2) replays at three loads", async (options: { platform: Platform }) => (await import("./fidelity")).main(options))
  .addOption(platformOption("fidelity"));

suite("closed-loop", "the closed control loop against static pools and Ray Serve's rule, on an Azure trace slice and a 1x/3x/0.5x step (ppocr-det on the origin's replicas, stand-in accelerators by default; ppocr-cls at the edge) (about 30 minutes)", async (options: ClosedLoopOptions) => (await import("./closed-loop")).main(options))
  .option("--quick", "short phases, a smoke run (--phase-s 20, --trace-s 60)", false)
  .option("--policies <list>", `comma-separated policies (${POLICIES.join(", ")}) (default: all)`, listOf("policy", POLICIES))
  .option("--workloads <list>", `comma-separated workloads (${WORKLOADS.join(", ")}) (default: both)`, listOf("workload", WORKLOADS))
  .option("--phase-s <s>", "length of each phase of the step workload (default: 60, 20 with --quick)", seconds(3600))
  .option("--trace-s <s>", "length of the trace workload (default: 180, 60 with --quick)", seconds(3600))
  .addOption(new Option("--origin-provider <provider>", "the replicas' execution provider: timed (a stand-in accelerator: the profiled time on a timer, so replicas do not share this host's cores) or cpu (onnxruntime on the host's cores)").choices(["timed", "cpu"]).default("timed"));

suite("deploy", "the deploy path: `wrangler deploy --dry-run` upload size, first request after start against warm ones, over-limit requests refused with 413", async (options: { trials: number }) => (await import("./deploy")).main(options))
  .option("--trials <n>", "fresh starts of the edge, each as `npm start` starts it and without its warm-up", integerIn(1, 10), 3);

suite("observability", "what metrics and API keys add to a request at light load: edges side by side (bare, metrics, keys, both, and the simulated bindings one at a time), in fresh processes each round, pooled p50 difference with its interval, CPU per request, and a CPU profile of the isolate (about 25 minutes)", async (options: { requests: number }) => (await import("./observability")).main(options))
  .option("--requests <n>", "requests per process, model and round", integerIn(50, 5000), 500);

suite("memory", "workerd's memory per model and batch size (writes the `memory` field of models/<name>/profile.json)", async (options: { quick: boolean; models?: string[] }) => (await import("./memory")).main(options))
  .option("--quick", "fewer batch sizes, 2 runs each instead of 3", false)
  .option("--models <list>", `comma-separated models (${MEMORY_MODELS.join(", ")}) (default: all)`, listOf("model", MEMORY_MODELS));

suite("soak", "mixed valid and invalid traffic against `npm start`'s stack for ten minutes by default: lost, duplicated or wrong answers, and the memory of every process", async (options: SoakOptions) => (await import("./soak")).main(options))
  .option("--duration-s <s>", "seconds of traffic", seconds(3600), 600)
  .option("--rate <n>", "requests per second", numberWhere("a rate in (0, 200]", (n) => n > 0 && n <= 200), 40)
  .option("--warm-up-s <s>", "seconds of traffic before memory growth is measured (default: a fifth of the duration, at most 120)", numberWhere("a number of seconds >= 0", (s) => s >= 0))
  .option("--origins <n>", "gpu-origin replicas at the start", integerIn(1, 4), 1)
  .option("--max-origins <n>", "most gpu-origin replicas the pool may grow to (at least --origins)", integerIn(1, 4), 2)
  .option("--seed <n>", "seed of the traffic's random choices", integerIn(0, 2 ** 32 - 1), 1)
  .option("--quiet", "hide the stack's own output", false)
  .addOption(platformOption("soak", "the edge Worker and the no-op baseline run"))
  .hook("preAction", (command) => {
    const options = command.opts<SoakOptions>();
    if (options.warmUpS !== undefined && options.warmUpS >= options.durationS) command.error("error: --warm-up-s must be less than --duration-s");
    if (options.maxOrigins < options.origins) command.error("error: --max-origins must be at least --origins");
  });

suite("size-classes", "size classes for ppocr-rec (MBS) on a width mix of rendered text lines: padding waste, changed readings, and the highest rate at SLO for exact-width buffers, one pad-to-max buffer and planned classes, real on the edge and simulated under an assumed GPU profile (about 12 minutes)", async (options: { quick: boolean; reuseReal: boolean }) => (await import("./size-classes")).main(options))
  .option("--quick", "fewer lines, widths and rates, short steps (a smoke run)", false)
  .option("--reuse-real", "take the real edge measurements and sweeps from the last bench/reports/size-classes.json; recompute the rest", false);

suite("ocr", "the OCR pipeline (ppocr): character error rate against a peer running the same models on rendered lines and pages, the stage models calibrated on the running stack, the planner's split of the end-to-end SLO (against InferLine's even split), and measured against predicted p95 at 0.5-1.25x the rate the plan keeps on its own stack (about 35 minutes with --repeats 2)", async (options: { quick: boolean; reuseAccuracy: boolean; pagesPerStep: number; repeats: number }) => (await import("./ocr")).main(options))
  .option("--quick", "fewer test images and load requests", false)
  .option("--pages-per-step <n>", "pages sent per load step and repetition", integerIn(8, 1000), 96)
  .option("--repeats <n>", "repetitions of each load step, each with arrivals of its own (p95 over all of them, and each one's)", integerIn(1, 10), 1)
  .option("--reuse-accuracy", "take the accuracy and the pages' shapes from the last bench/reports/ocr-accuracy.json; plan and load again", false);
suite("streams", "streaming VAD over WebSockets (cellular batching) against stateless calls carrying state: concurrent streams closed-loop and paced at real time; chunks/s, chunk latency p50/p99, step sizes, CPU per chunk, the planner's step model (about 2 x 20 s per stream count and pacing)", async (options: StreamsOptions) => (await import("./streams")).main(options))
  .option("--streams <list>", "comma-separated concurrent stream counts", (value: string) => value.split(",").map((n) => integerIn(1, 5000)(n.trim())), [100, 1000])
  .option("--duration-s <s>", "seconds of each run (streams, then stateless)", seconds(600), 20)
  .option("--pacings <list>", `comma-separated pacings (${STREAM_PACINGS.join(", ")}) (default: both)`, listOf("pacing", STREAM_PACINGS), [...STREAM_PACINGS])
  .addOption(platformOption("streams"))
  .option("--render", "rewrite the platform's report (.md) from its .json instead of running", false);

suite("planner", "the planner's latency model against a simulator (planner-accuracy) and the optimizer's search time (planner-speed)", async (options: { quick: boolean; render: boolean }) => {
  const [accuracy, speed] = await Promise.all([import("./planner-accuracy"), import("./planner-speed")]);
  accuracy.main(options);
  speed.main();
})
  .option("--quick", "a smaller accuracy grid with shorter simulations (well under a minute)", false)
  .option("--render", "rewrite planner-accuracy.md from its .json instead of running the accuracy grid", false);

uniformErrors(program.command("all").description("every suite above in turn, each with its defaults"), "npm run bench -- all").action(async () => {
  for (const command of program.commands.filter((c) => runs.has(c.name()))) await runSuite(command.name(), command.opts());
});

const argv = process.argv.slice(2);
// An unknown suite: say which there are (commander would only say "unknown command").
const requested = argv.find((arg) => !arg.startsWith("-"));
if (requested !== undefined && requested !== "help" && !program.commands.some((c) => c.name() === requested)) {
  program.error(`error: unknown suite "${requested}"; choose one of: ${program.commands.map((c) => c.name()).join(", ")}`);
}
await program.parseAsync(argv.length ? argv : ["all"], { from: "user" });
