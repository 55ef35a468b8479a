/**
 * The origin's production build and its container images, without Docker (none can run here; see
 * docs/origin.md): `npm run build:origin` once, then
 *
 * - the bundle: plain JavaScript that imports no tsx, only Node built-ins and production dependencies;
 * - the Dockerfiles: their build steps, the two variants' commands, port, health check, user and base;
 * - the image's command, exactly as Dockerfile.cpu's ENTRYPOINT + CMD say (only --host and --port
 *   changed to loopback and a free port), run for real from the repository root and from the folder
 *   deploy/origin/stage-runtime.mjs lays out for the image's /app, with nothing else around it: it
 *   turns ready, answers a signed inference as onnxruntime-node does, passes the image's HEALTHCHECK
 *   command, and drains and exits 0 on SIGTERM;
 * - Dockerfile.cuda's command on a machine without the CUDA provider libraries: refused, saying what
 *   to install.
 *
 * Every process is bounded and killed in afterAll.
 */
import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { builtinModules } from "node:module";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseOriginConfig } from "../../../gpu-origin/origin-config";
import { manifestOf, maxAbsDiff, runReference, seededFloats, signedFetch } from "../origin/fixtures";
import { stopOrigin, TEST_SECRET, waitReady, type OriginProcess } from "../origin/origin-process";
import { execForm, finalInstruction, fromImage, healthCheck, imageCommand, imageEnv, originArgs, readDockerfile, ROOT, type Dockerfile } from "./deploy-files";

const DIST = join(ROOT, "dist", "gpu-origin");
const cpu = readDockerfile("cpu");
const cuda = readDockerfile("cuda");

/** The image's process line with --host 127.0.0.1 and --port `port`, and `node` as this Node. */
function localCommand(dockerfile: Dockerfile, port: number): string[] {
  const { entrypoint, cmd } = imageCommand(dockerfile);
  const line = [...entrypoint, ...cmd];
  const replace = (flag: string, value: string) => {
    const at = line.indexOf(flag);
    if (at < 0) throw new Error(`the image's command has no ${flag}`);
    line[at + 1] = value;
  };
  replace("--host", "127.0.0.1");
  replace("--port", String(port));
  expect(line[0]).toBe("node");
  return [process.execPath, ...line.slice(1)];
}

/** Starts a process line in `cwd` with only PATH, the image's ENV and ORIGIN_SECRET in its environment; resolves once it says where it listens (or exits). */
async function run(line: string[], cwd: string, dockerfile: Dockerfile, user?: { uid: number; gid: number }): Promise<OriginProcess> {
  const env = { PATH: process.env.PATH ?? "", ...imageEnv(dockerfile), ORIGIN_SECRET: TEST_SECRET };
  const child = spawn(line[0]!, line.slice(1), { cwd, env, stdio: ["ignore", "pipe", "pipe"], ...user });
  let text = "";
  child.once("error", (error) => (text += `spawn failed: ${error.message}\n`));
  child.stdout!.on("data", (d: Buffer) => (text += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (text += d.toString()));
  const exited = once(child, "exit").then(([code, signal]) => (code ?? signal) as number | string);
  const deadline = Date.now() + 30_000;
  for (;;) {
    const match = /live on (http:\/\/127\.0\.0\.1:\d+)/.exec(text);
    if (match || child.exitCode !== null || Date.now() > deadline) return { child, url: match?.[1] ?? "", output: () => text, exited };
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Whether a user other than the owner may execute `file`: every folder above it enterable by others, the file executable by others. */
function othersCanRun(file: string): boolean {
  const resolved = realpathSync(file);
  if (!(statSync(resolved).mode & 0o001)) return false;
  for (let dir = dirname(resolved); ; dir = dirname(dir)) {
    if (!(statSync(dir).mode & 0o001)) return false;
    if (dirname(dir) === dir) return true;
  }
}

/** Runs the image's HEALTHCHECK command against `port`; resolves with its exit code. */
async function runHealthCheck(port: number): Promise<number | null> {
  const { command } = healthCheck(cpu);
  const line = command.map((part) => part.replace(":8801/", `:${port}/`));
  const child = spawn(process.execPath, line.slice(1), { stdio: "ignore" });
  const [code] = (await once(child, "exit")) as [number | null];
  return code;
}

/** SIGTERM by pid; resolves with the exit code and everything it printed. */
async function terminate(origin: OriginProcess): Promise<{ code: number | string; output: string }> {
  process.kill(origin.child.pid!, "SIGTERM");
  const code = await origin.exited;
  return { code, output: origin.output() };
}

let stageDir = "";
let buildOutput = "";
const started: OriginProcess[] = [];

beforeAll(() => {
  // The build the images run (`npm run build:origin`), run here the same way.
  const script = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> }).scripts["build:origin"];
  expect(script).toBe("node deploy/origin/build.mjs");
  buildOutput = execFileSync(process.execPath, ["deploy/origin/build.mjs"], { cwd: ROOT, encoding: "utf8" });
  stageDir = mkdtempSync(join(tmpdir(), "origin-runtime-"));
  execFileSync(process.execPath, ["deploy/origin/stage-runtime.mjs", stageDir], { cwd: ROOT, encoding: "utf8" });
}, 60_000);

afterAll(async () => {
  await Promise.all(started.map(stopOrigin));
  if (stageDir) rmSync(stageDir, { recursive: true, force: true });
});

describe("npm run build:origin", () => {
  it("bundles gpu-origin into plain JavaScript that imports no tsx, only Node built-ins and production dependencies", () => {
    expect(buildOutput).toMatch(/^gpu-origin: built dist\/gpu-origin\/main\.js \(\d+ KiB, \d+ modules\)/);
    const bundle = readFileSync(join(DIST, "main.js"), "utf8");
    expect(statSync(join(DIST, "main.js")).size).toBeLessThan(1 << 20);
    const meta = JSON.parse(readFileSync(join(DIST, "meta.json"), "utf8")) as { inputs: Record<string, unknown>; outputs: Record<string, { imports: { path: string; external?: boolean }[] }> };
    expect(Object.keys(meta.inputs)).toEqual(expect.arrayContaining(["gpu-origin/main.ts", "src/origin/hop-signature.ts"]));
    const externals = new Set(Object.values(meta.outputs).flatMap((o) => o.imports.filter((i) => i.external).map((i) => i.path)));
    const { dependencies } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { dependencies: Record<string, string> };
    const allowed = (path: string) => path.startsWith("node:") || builtinModules.includes(path) || Object.keys(dependencies).some((d) => path === d || path.startsWith(`${d}/`));
    expect([...externals].filter((path) => !allowed(path))).toEqual([]);
    expect(externals).toContain("onnxruntime-node");
    // Nothing of tsx, nor a TypeScript file left to load at run time.
    expect(bundle).not.toMatch(/["']tsx(\/[^"']*)?["']/);
    expect(bundle).not.toMatch(/(import|from)\s*\(?\s*["'][^"']*\.ts["']/);
    expect(JSON.parse(readFileSync(join(DIST, "package.json"), "utf8"))).toMatchObject({ type: "module" });
  });

  it("lays out the runtime folder with the bundle, the models and only the packages the bundle needs", () => {
    expect(readdirSync(stageDir).sort()).toEqual(["dist", "models", "node_modules"]);
    expect(relative(ROOT, stageDir).startsWith("..")).toBe(true); // nothing of the checkout's node_modules is reachable from it
    expect(readdirSync(join(stageDir, "models")).sort()).toEqual(readdirSync(join(ROOT, "models")).filter((m) => existsSync(join(ROOT, "models", m, "manifest.json"))).sort());
    expect(readdirSync(join(stageDir, "models", "ppocr-det")).sort()).toEqual(["manifest.json", "model.onnx", "profile.json"]);
    const packages = readdirSync(join(stageDir, "node_modules"));
    expect(packages).toEqual(expect.arrayContaining(["onnxruntime-node", "onnxruntime-common", "hono", "zod", "fflate", "@hono"]));
    for (const unwanted of ["tsx", "esbuild", "wrangler", "vitest", "onnxruntime-web", "@gutenye", "@ricky0123"]) expect(packages).not.toContain(unwanted);
    // onnxruntime-node's prebuilt binaries: this platform's only.
    const binaries = join(stageDir, "node_modules", "onnxruntime-node", "bin", "napi-v6");
    expect(readdirSync(binaries)).toEqual([process.platform]);
    expect(readdirSync(join(binaries, process.platform))).toEqual([process.arch]);
  });
});

describe("Dockerfiles", () => {
  const cpuCommand = imageCommand(cpu);
  const config = parseOriginConfig(cpuCommand.cmd, { ORIGIN_SECRET: TEST_SECRET });

  it("build with npm ci, the models, build:origin and stage-runtime, and copy only the staged folder into the image", () => {
    for (const dockerfile of [cpu, cuda]) {
      const buildStage = dockerfile.stages.find((stage) => /\bAS build$/i.test(stage[0]!.args))!;
      const runs = buildStage.filter((i) => i.keyword === "RUN").map((i) => i.args).join(" && ");
      expect(runs).toMatch(/npm ci --ignore-scripts.*node src\/cli\/link-models\.mjs.*npm run build:origin.*node deploy\/origin\/stage-runtime\.mjs \/runtime/s);
      const final = dockerfile.stages.at(-1)!;
      expect(final.filter((i) => i.keyword === "COPY" && i.args.includes("--from=build")).map((i) => i.args)).toEqual(["--from=build /runtime /app"]);
      expect(finalInstruction(dockerfile, "WORKDIR").args).toBe("/app");
    }
    expect(cuda.stages.flat().filter((i) => i.keyword === "RUN").map((i) => i.args)).toContainEqual(
      expect.stringMatching(/^ONNXRUNTIME_NODE_INSTALL=cuda12 npm rebuild onnxruntime-node && test -f node_modules\/onnxruntime-node\/bin\/napi-v6\/linux\/x64\/libonnxruntime_providers_cuda\.so$/),
    );
  });

  it("run the same entrypoint; the CUDA image's command is the CPU image's with --provider cuda", () => {
    expect(cpuCommand.entrypoint).toEqual(["node", "--enable-source-maps", "dist/gpu-origin/main.js"]);
    expect(imageCommand(cuda)).toEqual({ entrypoint: cpuCommand.entrypoint, cmd: [...cpuCommand.cmd, "--provider", "cuda"] });
    expect(originArgs([...cpuCommand.entrypoint, ...cpuCommand.cmd])).toEqual(cpuCommand.cmd);
    expect([config.host, config.provider, parseOriginConfig(imageCommand(cuda).cmd, { ORIGIN_SECRET: TEST_SECRET }).provider]).toEqual(["0.0.0.0", "cpu", "cuda"]);
  });

  it("expose the command's port, check /v2/health/ready on it, and run as a numeric non-root user", () => {
    for (const dockerfile of [cpu, cuda]) {
      expect(finalInstruction(dockerfile, "EXPOSE").args).toBe(String(config.port));
      const check = healthCheck(dockerfile);
      expect(check.command.slice(0, 2)).toEqual(["node", "-e"]);
      expect(check.command[2]).toContain(`'http://127.0.0.1:${config.port}/v2/health/ready'`);
      expect(check.options).toMatchObject({ interval: "10s", timeout: "3s", retries: "3" });
      expect(finalInstruction(dockerfile, "USER").args).toMatch(/^[1-9]\d*:[1-9]\d*$/);
    }
  });

  it("set the same environment: production, onnxruntime's telemetry off (it cannot write its device id as the image's user)", () => {
    expect(imageEnv(cpu)).toEqual({ NODE_ENV: "production", ORT_DISABLE_TELEMETRY: "1" });
    expect(imageEnv(cuda)).toEqual(imageEnv(cpu));
  });

  it("use node:22-slim, and NVIDIA's CUDA 12 runtime with cuDNN for the CUDA image", () => {
    expect(fromImage(cpu, cpu.stages.at(-1)![0]!)).toBe("node:22-slim");
    expect(fromImage(cuda, cuda.stages.at(-1)![0]!)).toMatch(/^nvidia\/cuda:12\.\d+\.\d+-cudnn-runtime-ubuntu\d+\.\d+$/);
    expect(cuda.stages.at(-1)!.map((i) => `${i.keyword} ${i.args}`)).toContain("COPY --from=node /usr/local/bin/node /usr/local/bin/node");
  });

  it("refuse a shell-form command (it would not pass SIGTERM on to node)", () => {
    expect(() => execForm("node dist/gpu-origin/main.js --port 8801")).toThrow(/not in exec form/);
  });

  it("leave secrets, dependencies and build output out of the build context (.dockerignore)", () => {
    const ignored = readFileSync(join(ROOT, ".dockerignore"), "utf8").split("\n").filter((line) => line && !line.startsWith("#"));
    expect(ignored).toEqual(expect.arrayContaining([".dev.vars", ".env*", ".git", "node_modules", "dist", "models/*/*.onnx"]));
  });

  it("MODELS_DIR points gpu-origin at another models folder; --models-dir wins over it", () => {
    expect(parseOriginConfig(cpuCommand.cmd, { ORIGIN_SECRET: TEST_SECRET }).modelsDir).toBe("models");
    expect(parseOriginConfig(cpuCommand.cmd, { ORIGIN_SECRET: TEST_SECRET, MODELS_DIR: "/mnt/models" }).modelsDir).toBe("/mnt/models");
    expect(parseOriginConfig([...cpuCommand.cmd, "--models-dir", "/opt/m"], { ORIGIN_SECRET: TEST_SECRET, MODELS_DIR: "/mnt/models" }).modelsDir).toBe("/opt/m");
  });
});

describe("the image's command", () => {
  it("from the repository root: ready, a signed inference matches onnxruntime-node, HEALTHCHECK passes, SIGTERM drains and exits 0", async () => {
    const origin = await run(localCommand(cpu, 0), ROOT, cpu);
    started.push(origin);
    expect(origin.url, origin.output()).not.toBe("");
    await waitReady(origin);
    expect(origin.output()).toMatch(/live on http:\/\/127\.0\.0\.1:\d+ \(provider cpu\); loading ppocr-cls, ppocr-det, ppocr-rec, silero-vad/);

    const audio = seededFloats(512, 11);
    const body = JSON.stringify({ id: "deploy-1", inputs: [{ name: "input", datatype: "FP32", shape: [1, 512], data: Array.from(audio) }] });
    const response = await signedFetch(origin.url, "/v2/models/silero-vad/infer", { method: "POST", body });
    expect(response.status).toBe(200);
    expect(response.headers.get("x-batch-size")).toBe("1");
    const answer = (await response.json()) as { model_name: string; id: string; outputs: { name: string; datatype: string; shape: number[]; data: number[] }[] };
    expect(answer).toMatchObject({ model_name: "silero-vad", id: "deploy-1" });
    expect(answer.outputs.map(({ name, datatype, shape, data }) => ({ name, datatype, shape, length: data.length }))).toEqual([
      { name: "output", datatype: "FP32", shape: [1, 1], length: 1 },
      { name: "stateN", datatype: "FP32", shape: [2, 1, 128], length: 256 },
    ]);
    const reference = await runReference("silero-vad", [
      { name: "input", datatype: "FP32", shape: [1, 512], data: audio },
      { name: "state", datatype: "FP32", shape: [2, 1, 128], data: new Float32Array(256) },
      { name: "sr", datatype: "INT64", shape: [], data: BigInt64Array.of(16000n) },
    ]);
    expect(maxAbsDiff(answer.outputs[0]!.data, reference.output!)).toBeLessThanOrEqual(1e-4);
    // Unsigned: refused, as everything but the health routes.
    expect((await fetch(`${origin.url}/v2/models/silero-vad/infer`, { method: "POST", body })).status).toBe(401);

    const port = Number(new URL(origin.url).port);
    expect(await runHealthCheck(port)).toBe(0);

    const { code, output } = await terminate(origin);
    expect(code, output).toBe(0);
    expect(output).toContain("gpu-origin: SIGTERM: draining (new work gets 503)");
    expect(output).toContain("gpu-origin: drained; exiting");
    // The health check fails once nothing answers.
    expect(await runHealthCheck(port)).toBe(1);
  });

  // Run as root (as CI is), it runs as the image's user too, in a folder that user cannot write.
  const imageUser = process.getuid?.() === 0 ? (([uid, gid]) => ({ uid: Number(uid), gid: Number(gid) }))(finalInstruction(cpu, "USER").args.split(":")) : undefined;

  it(`from the staged runtime folder alone (the image's /app)${imageUser ? ", as the image's user" : ""}: ready, a signed ppocr-det inference, SIGTERM exits 0`, async () => {
    chmodSync(stageDir, 0o755);
    const line = localCommand(cpu, 0);
    // The image has node where any user runs it; this checkout's may sit in a folder only its owner can enter (a fresh clone under mktemp -d).
    if (imageUser && !othersCanRun(line[0]!)) {
      const node = join(stageDir, ".node", "node");
      mkdirSync(dirname(node), { mode: 0o755 });
      copyFileSync(line[0]!, node);
      chmodSync(node, 0o755);
      line[0] = node;
    }
    const origin = await run(line, stageDir, cpu, imageUser);
    started.push(origin);
    expect(origin.url, origin.output()).not.toBe("");
    await waitReady(origin);
    const inputs = [{ name: "x", datatype: "FP32" as const, shape: [1, 3, 64, 64], data: seededFloats(3 * 64 * 64, 5) }];
    const body = JSON.stringify({ inputs: inputs.map((t) => ({ ...t, data: Array.from(t.data) })) });
    const response = await signedFetch(origin.url, "/v2/models/ppocr-det/infer", { method: "POST", body });
    expect(response.status).toBe(200);
    const answer = (await response.json()) as { outputs: { name: string; shape: number[]; data: number[] }[] };
    const output = manifestOf("ppocr-det").outputs[0]!.name;
    expect(answer.outputs.map((o) => [o.name, o.shape])).toEqual([[output, [1, 1, 64, 64]]]);
    const reference = await runReference("ppocr-det", inputs);
    expect(maxAbsDiff(answer.outputs[0]!.data, reference[output]!)).toBeLessThanOrEqual(1e-4);
    const { code, output: log } = await terminate(origin);
    expect(code, log).toBe(0);
    expect(log).not.toContain("[W:onnxruntime"); // e.g. a file it wanted to write
  });

  const hasCudaLibraries = existsSync(join(ROOT, "node_modules", "onnxruntime-node", "bin", "napi-v6", "linux", "x64", "libonnxruntime_providers_cuda.so"));

  it.skipIf(hasCudaLibraries)("Dockerfile.cuda's command, where the CUDA provider is not installed: exits 1 saying what to install", async () => {
    const origin = await run(localCommand(cuda, 0), ROOT, cuda);
    started.push(origin);
    expect(await origin.exited).toBe(1);
    expect(origin.output()).toContain("execution provider 'cuda' is not installed");
    expect(origin.output()).toContain("ONNXRUNTIME_NODE_INSTALL=cuda12");
  });
});
