/**
 * `npm run plan`, `npm run profile` and `npm run bench` as a user runs them (real processes, stdout
 * and stderr pipes): --help lists every option, --version the project's version, and a usage error
 * is one line `error: ...` plus a hint to --help on stderr, exit code 2, no stack trace. Nothing is
 * profiled or benchmarked: every call here ends at argument parsing.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a CLI entry point as `npm run` does (tsx), with CI unset so that nothing depends on it; killed after 30 s. */
function cli(file: string, ...args: string[]): Promise<Ran> {
  return new Promise((done) => {
    execFile(process.execPath, ["--import", "tsx", file, ...args], { encoding: "utf8", timeout: 30_000, env: { ...process.env, CI: "" } }, (error, stdout, stderr) => {
      done({ code: error ? (typeof error.code === "number" ? error.code : null) : 0, stdout, stderr });
    });
  });
}
const plan = (...args: string[]) => cli("src/cli/plan.ts", ...args);
const profile = (...args: string[]) => cli("src/cli/profile.ts", ...args);
const bench = (...args: string[]) => cli("bench/index.ts", ...args);

const VERSION = (JSON.parse(readFileSync("package.json", "utf8")) as { version: string }).version;
const SUITES = ["edge", "origin", "scheduler", "fidelity", "closed-loop", "deploy", "observability", "memory", "soak", "size-classes", "ocr", "streams", "planner", "all"];

/** A usage error as every CLI reports it: exit code 2, `error: <what>` on one line, a hint to --help, nothing else. */
function expectUsageError(run: Ran, what: RegExp, help: string): void {
  expect(run.code).toBe(2);
  const lines = run.stderr.trimEnd().split("\n");
  expect(lines).toHaveLength(2);
  expect(lines[0]).toMatch(/^error: /);
  expect(lines[0]).toMatch(what);
  expect(lines[1]).toBe(`(see \`${help} --help\`)`);
  expect(run.stderr).not.toMatch(/^\s+at /m); // no stack trace
  expect(run.stdout).toBe("");
}

/** Help on stdout, exit code 0, listing `flags` (with their defaults where given; help wraps its lines). */
function expectHelp(run: Ran, usage: string, flags: string[]): void {
  expect(run.code).toBe(0);
  expect(run.stderr).toBe("");
  expect(run.stdout).toMatch(new RegExp(`^Usage: ${usage}`));
  const text = run.stdout.replace(/\s+/g, " ");
  for (const flag of flags) expect(text).toContain(flag);
  expect(run.stdout).not.toMatch(/\x1b\[/); // plain text when not a terminal
}

describe("npm run plan", () => {
  it("--help lists every option and the exit codes; --version prints the version", async () => {
    const [help, version] = await Promise.all([plan("--help"), plan("--version")]);
    expectHelp(help, "npm run plan -- --problem FILE.json", ["--problem <file>", "--profile <file>", "--live <url>", "--model <name>", "--json", "(default: false)", "--version", "--help", "Exit codes"]);
    expect(version).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: "" });
  });

  it("refuses an unknown option, a bad value and missing options with exit code 2", async () => {
    const [unknown, misspelt, badUrl, noModel, noValue] = await Promise.all([plan("--bogus"), plan("--jsn"), plan("--live", "not a url"), plan("--live", "http://127.0.0.1:8787"), plan("--problem")]);
    expectUsageError(unknown, /unknown option '--bogus'/, "npm run plan --");
    expectUsageError(misspelt, /unknown option '--jsn' \(did you mean --json\?\)/, "npm run plan --");
    expectUsageError(badUrl, /'--live <url>' argument 'not a url' is invalid/, "npm run plan --");
    expectUsageError(noModel, /--live needs at least one --model NAME/, "npm run plan --");
    expectUsageError(noValue, /option '--problem <file>' argument missing/, "npm run plan --");
  });
});

describe("npm run profile", () => {
  it("--help lists every option with its default and the known models (it used to crash)", async () => {
    expectHelp(await profile("--help"), "npm run profile --", ["--models <list>", "ppocr-cls, ppocr-rec, ppocr-det, silero-vad", "(default: all)", "--runtimes <list>", "(default: origin,edge)", "--quick", "--version"]);
  });

  it("refuses an unknown model or runtime and an unknown option with exit code 2", async () => {
    const [model, runtime, unknown] = await Promise.all([profile("--models", "ppocr-cls,nope"), profile("--runtimes", "gpu"), profile("--fast")]);
    expectUsageError(model, /unknown model "nope"; known: ppocr-cls, ppocr-rec, ppocr-det, silero-vad/, "npm run profile --");
    expectUsageError(runtime, /unknown runtime "gpu"; known: origin, edge/, "npm run profile --");
    expectUsageError(unknown, /unknown option '--fast'/, "npm run profile --");
  });
});

describe("npm run bench", () => {
  it("--help lists the suites; each suite's --help its options", async () => {
    const [help, edge, closedLoop, deploy, memory, soak, planner] = await Promise.all([bench("--help"), ...["edge", "closed-loop", "deploy", "memory", "soak", "planner"].map((suite) => bench(suite, "--help"))]);
    expectHelp(help, "npm run bench -- <suite>", ["--version", "--help"]);
    for (const suite of SUITES) expect(help.stdout).toMatch(new RegExp(`^  ${suite}( \\[options\\])? +\\S`, "m")); // one line each, with what it measures
    expectHelp(edge!, "npm run bench -- edge", ["--baseline <rev>", "--quick", "--platform <platform>", '(choices: "wrangler-dev", "workerd", default: "wrangler-dev")']);
    expectHelp(closedLoop!, "npm run bench -- closed-loop", ["--quick", "--policies <list>", "--workloads <list>", "--phase-s <s>", "(default: 60, 20 with --quick)", "--trace-s <s>"]);
    expectHelp(deploy!, "npm run bench -- deploy", ["--trials <n>", "(default: 3)"]);
    expectHelp(memory!, "npm run bench -- memory", ["--quick", "--models <list>"]);
    expectHelp(soak!, "npm run bench -- soak", ["--duration-s <s>", "(default: 600)", "--rate <n>", "(default: 40)", "--warm-up-s <s>", "--origins <n>", "--max-origins <n>", "--seed <n>", "--quiet", "--platform <platform>", '(choices: "wrangler-dev", "workerd", default: "wrangler-dev")']);
    expectHelp(planner!, "npm run bench -- planner", ["--quick", "--render"]);
  });

  it("refuses an unknown suite, naming the suites, and an unknown option with exit code 2", async () => {
    const [suite, unknown, misspelt] = await Promise.all([bench("nope"), bench("edge", "--bogus"), bench("edge", "--quik")]);
    expectUsageError(suite, new RegExp(`unknown suite "nope"; choose one of: ${SUITES.join(", ")}$`), "npm run bench --");
    expectUsageError(unknown, /unknown option '--bogus'/, "npm run bench -- edge");
    expectUsageError(misspelt, /did you mean --quick\?/, "npm run bench -- edge");
  });

  it("refuses bad values before a suite starts", async () => {
    const runs = await Promise.all([
      bench("deploy", "--trials", "three"),
      bench("memory", "--models", "ppocr-cls,nope"),
      bench("closed-loop", "--policies", "static-mean,never"),
      bench("closed-loop", "--phase-s", "-5"),
      bench("soak", "--rate", "fast"),
      bench("soak", "--duration-s", "60", "--warm-up-s", "60"),
      bench("soak", "--origins", "3", "--max-origins", "2"),
      bench("edge", "--baseline", "no-such-revision-here"),
      bench("soak", "--platform", "docker"),
      bench("edge", "--platform", "workerd", "--baseline", "HEAD"),
    ]);
    const [trials, models, policies, phase, rate, warmUp, origins, baseline, platform, edgeBaseline] = runs;
    expectUsageError(trials!, /'--trials <n>' argument 'three' is invalid\. expected an integer in \[1, 10\]/, "npm run bench -- deploy");
    expectUsageError(models!, /unknown model "nope"/, "npm run bench -- memory");
    expectUsageError(policies!, /unknown policy "never"/, "npm run bench -- closed-loop");
    expectUsageError(phase!, /'--phase-s <s>' argument '-5' is invalid/, "npm run bench -- closed-loop");
    expectUsageError(rate!, /'--rate <n>' argument 'fast' is invalid/, "npm run bench -- soak");
    expectUsageError(warmUp!, /--warm-up-s must be less than --duration-s/, "npm run bench -- soak");
    expectUsageError(origins!, /--max-origins must be at least --origins/, "npm run bench -- soak");
    expectUsageError(baseline!, /not a revision of this repository/, "npm run bench -- edge");
    expectUsageError(platform!, /'--platform <platform>' argument 'docker' is invalid\. Allowed choices are wrangler-dev, workerd/, "npm run bench -- soak");
    expectUsageError(edgeBaseline!, /option '--platform <platform>' cannot be used with option '--baseline <rev>'/, "npm run bench -- edge");
  });
});

describe("npm run keys", () => {
  const keys = (...args: string[]) => cli("src/cli/keys.ts", ...args);

  it("makes a key whose SHA-256 is the entry it prints for API_KEYS", async () => {
    const run = await keys("new", "team-a", "--models", "ppocr-cls,silero-vad");
    expect(run.code).toBe(0);
    const key = /key \(give it to the client; it is not stored anywhere\): (\S+)/.exec(run.stdout)?.[1];
    const entry = JSON.parse(/API_KEYS entry: (.+)/.exec(run.stdout)?.[1] ?? "null") as { name: string; sha256: string; models: string[] };
    const { createHash } = await import("node:crypto");
    expect(entry).toEqual({ name: "team-a", sha256: createHash("sha256").update(key!).digest("hex"), models: ["ppocr-cls", "silero-vad"] });
  });

  it("refuses a bad name with a usage error", async () => {
    expectUsageError(await keys("new", "bad name"), /name: letters, digits/, "npm run keys --");
  });
});
