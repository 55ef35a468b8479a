/**
 * Reading the deployment files as the tools that use them would: the Dockerfiles of
 * deploy/origin/ (instructions, stages, exec-form ENTRYPOINT / CMD / HEALTHCHECK), and the
 * Kubernetes and KServe manifests of deploy/k8s/ and deploy/kserve/ (every YAML document), plus the
 * rule by which Kubernetes turns an image's ENTRYPOINT and CMD and a container's command and args
 * into the process it starts. No Docker or cluster is needed: the tests run that process themselves.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { parseAllDocuments } from "yaml";

/** Repository root. */
export const ROOT = join(import.meta.dirname, "..", "..", "..");

/** One Dockerfile instruction, continuation lines joined. */
export interface DockerInstruction {
  keyword: string;
  /** Everything after the keyword, trimmed. */
  args: string;
}

/** A parsed Dockerfile: the ARGs before the first FROM (name: default), and its stages in order (each starting at FROM); the last one is the image. */
export interface Dockerfile {
  globalArgs: Record<string, string | undefined>;
  stages: DockerInstruction[][];
}

/** Parses a Dockerfile: comments and parser directives dropped, `\` continuations joined. */
export function parseDockerfile(text: string): Dockerfile {
  const instructions: DockerInstruction[] = [];
  let pending = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (!pending && (line === "" || line.startsWith("#"))) continue;
    if (pending && line.startsWith("#")) continue; // comments inside a continued instruction
    if (line.endsWith("\\")) {
      pending += `${line.slice(0, -1).trimEnd()} `;
      continue;
    }
    const whole = (pending + line).trim();
    pending = "";
    const match = /^(\S+)\s*(.*)$/s.exec(whole);
    if (match) instructions.push({ keyword: match[1]!.toUpperCase(), args: match[2]!.trim() });
  }
  const globalArgs: Record<string, string | undefined> = {};
  const stages: DockerInstruction[][] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === "FROM") stages.push([]);
    if (stages.length) stages.at(-1)!.push(instruction);
    else if (instruction.keyword === "ARG") {
      const [name, value] = instruction.args.split(/=(.*)/s);
      globalArgs[name!] = value;
    }
  }
  return { globalArgs, stages };
}

/** A FROM's image with global ARG defaults substituted (`${NODE_IMAGE}` -> node:22-slim); `AS name` dropped. */
export function fromImage(dockerfile: Dockerfile, from: DockerInstruction): string {
  const image = from.args.split(/\s+/).find((word) => !word.startsWith("--"))!;
  return image.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, braced: string | undefined, bare: string | undefined) => dockerfile.globalArgs[(braced ?? bare)!] ?? "");
}

/** Reads deploy/origin/Dockerfile.<variant>. */
export function readDockerfile(variant: "cpu" | "cuda"): Dockerfile {
  return parseDockerfile(readFileSync(join(ROOT, "deploy", "origin", `Dockerfile.${variant}`), "utf8"));
}

/** The last instruction `keyword` of the image's stage (the last stage); throws when there is none. */
export function finalInstruction(dockerfile: Dockerfile, keyword: string): DockerInstruction {
  const found = dockerfile.stages.at(-1)!.filter((i) => i.keyword === keyword).at(-1);
  if (!found) throw new Error(`the final stage has no ${keyword}`);
  return found;
}

/**
 * The JSON array of an exec-form instruction. Shell form is refused: it runs the command under
 * `/bin/sh -c`, which does not pass SIGTERM on, so gpu-origin would never drain.
 */
export function execForm(args: string): string[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(args);
  } catch {
    throw new Error(`not in exec form (a JSON array): ${args}`);
  }
  if (!Array.isArray(parsed) || !parsed.every((s) => typeof s === "string")) throw new Error(`not a JSON array of strings: ${args}`);
  return parsed;
}

/** The image's ENTRYPOINT and CMD (exec form). */
export function imageCommand(dockerfile: Dockerfile): { entrypoint: string[]; cmd: string[] } {
  return { entrypoint: execForm(finalInstruction(dockerfile, "ENTRYPOINT").args), cmd: execForm(finalInstruction(dockerfile, "CMD").args) };
}

/** The environment the image's stage sets with ENV (`KEY=value` pairs; values without spaces or quotes). */
export function imageEnv(dockerfile: Dockerfile): Record<string, string> {
  const env: Record<string, string> = {};
  for (const { keyword, args } of dockerfile.stages.at(-1)!) {
    if (keyword !== "ENV") continue;
    for (const pair of args.split(/\s+/)) {
      const match = /^([A-Za-z_][A-Za-z0-9_]*)=(\S*)$/.exec(pair);
      if (!match) throw new Error(`ENV ${args}: write it as KEY=value pairs`);
      env[match[1]!] = match[2]!;
    }
  }
  return env;
}

/** HEALTHCHECK's options (`--interval=10s` -> interval: "10s") and its exec-form command. */
export function healthCheck(dockerfile: Dockerfile): { options: Record<string, string>; command: string[] } {
  const match = /^((?:--[a-z-]+=\S+\s+)*)CMD\s+(.*)$/s.exec(finalInstruction(dockerfile, "HEALTHCHECK").args);
  if (!match) throw new Error("HEALTHCHECK is not `[--option=value ...] CMD [...]`");
  const options = Object.fromEntries([...match[1]!.matchAll(/--([a-z-]+)=(\S+)/g)].map((m) => [m[1]!, m[2]!]));
  return { options, command: execForm(match[2]!) };
}

/** A Kubernetes container's command and args, as in a pod spec. */
export interface ContainerCommand {
  command?: string[];
  args?: string[];
}

/**
 * The process Kubernetes starts for a container of `image` (its ENTRYPOINT and CMD): `command`
 * replaces the ENTRYPOINT and `args` the CMD; a `command` without `args` drops the image's CMD.
 */
export function containerProcess(container: ContainerCommand, image: { entrypoint: string[]; cmd: string[] }): string[] {
  if (container.command) return [...container.command, ...(container.args ?? [])];
  return [...image.entrypoint, ...(container.args ?? image.cmd)];
}

/** gpu-origin's own flags in a process line: what follows the bundle's path. */
export function originArgs(process: string[]): string[] {
  const at = process.findIndex((part) => part.endsWith("dist/gpu-origin/main.js"));
  if (at < 0) throw new Error(`not a gpu-origin command: ${process.join(" ")}`);
  return process.slice(at + 1);
}

/** A Kubernetes object from a manifest, with the file it came from. */
export interface ManifestObject {
  file: string;
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  // Each kind's own fields; the tests read them after the schema check.
  [field: string]: unknown;
}

/** The object as written in its manifest, without the `file` the tests track it by. */
export function asWritten(object: ManifestObject): Record<string, unknown> {
  const { file: _file, ...written } = object;
  return written;
}

/** Every *.yaml under `dirs` (recursively), relative to the repository root, sorted. */
export function yamlFiles(...dirs: string[]): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir)
      .map((entry) => join(dir, entry))
      .flatMap((path) => (statSync(path).isDirectory() ? walk(path) : /\.ya?ml$/.test(path) ? [path] : []));
  return dirs.flatMap((dir) => walk(join(ROOT, dir))).map((path) => relative(ROOT, path)).sort();
}

/** Every YAML document of `files` (relative to the root); a document with a YAML error throws, naming the file. */
export function readManifests(files: string[]): ManifestObject[] {
  return files.flatMap((file) =>
    parseAllDocuments(readFileSync(join(ROOT, file), "utf8")).flatMap((document) => {
      if (document.errors.length) throw new Error(`${file}: ${document.errors.map((e) => e.message).join("; ")}`);
      const value = document.toJS() as ManifestObject | null;
      return value === null ? [] : [{ ...value, file }];
    }),
  );
}
