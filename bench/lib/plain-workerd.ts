/**
 * The edge Worker on plain workerd: the runtime Cloudflare runs, without `wrangler dev`'s local
 * machinery around it (its proxy Worker, its inspector connection, its trace collector and local
 * simulations). What runs is the deploy artifact (`wrangler deploy --dry-run --outdir`: the bundle
 * and its Wasm and text modules), under a workerd config written from wrangler.toml:
 * - its vars (with `vars` over them) and the secrets of .dev.vars, as text bindings;
 * - its Durable Object classes, each with SQLite storage, kept on local disk (`persistTo`);
 * - its static assets (the models' weights) as a read-only disk service bound as ASSETS;
 * - outbound fetch() allowed to loopback and private addresses (the local origin pool), as
 *   wrangler dev allows it (workerd's default network reaches public addresses only).
 * The bindings wrangler dev only simulates (KEY_RATE_LIMITER, INFERENCE_ANALYTICS) are left out:
 * the runtime runs without them (no API_KEYS; no Analytics Engine data points).
 * For benchmarks that judge the runtime rather than wrangler dev (the soak's memory growth).
 */
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { unstable_readConfig } from "wrangler";
import { edgeReadyPath, ROOT, startedWhenReady, startEdge, wranglerEnv, type EdgeOptions, type Started } from "../../src/cli/processes";

/** Where a benchmark runs its Workers: under wrangler dev (npm start's), or as deploy bundles on plain workerd. */
export type Platform = "wrangler-dev" | "workerd";

/** A benchmark's report name on `platform`: `base` under wrangler dev, `base`-workerd on plain workerd. */
export const reportNameOn = (base: string, platform: Platform) => (platform === "workerd" ? `${base}-workerd` : base);

/** The starter of an edge Worker on `platform`: startEdge (wrangler dev) or startPlainWorkerd. */
export const edgeStarterOn = (platform: Platform) => (platform === "workerd" ? startPlainWorkerd : startEdge);

/** Module kinds of the bundle's files, by extension (wrangler's rules: CompiledWasm, Text). */
const MODULE_KINDS: Record<string, string> = { ".js": "esModule", ".mjs": "esModule", ".wasm": "wasm", ".txt": "text" };

/** A string as a Cap'n Proto text literal. */
const capnpText = (value: string) => JSON.stringify(value);

/** KEY=VALUE lines of a .dev.vars file. */
function devVars(root: string): Record<string, string> {
  let text = "";
  try {
    text = readFileSync(join(root, ".dev.vars"), "utf8");
  } catch {
    return {};
  }
  return Object.fromEntries(text.split("\n").flatMap((line) => {
    const match = /^([A-Za-z0-9_]+)=(.*)$/.exec(line.trim());
    return match ? [[match[1]!, match[2]!]] : [];
  }));
}

/** Starts the Worker (or `script`) of `root` on plain workerd at 127.0.0.1:`port` (its V8 inspector on `inspectorPort`, if given); resolves once `waitFor` answers 200. */
export async function startPlainWorkerd({ port, vars = {}, script, stdio = "ignore", root = ROOT, waitFor, persistTo, inspectorPort }: EdgeOptions): Promise<Started> {
  const configPath = resolve(root, "wrangler.toml");
  const config = unstable_readConfig({ config: configPath });
  const dir = mkdtempSync(join(tmpdir(), "plain-workerd-"));
  const bundle = join(dir, "bundle");
  execFileSync(resolve(ROOT, "node_modules", ".bin", "wrangler"), ["deploy", "--dry-run", "--outdir", bundle, "--config", configPath, ...(script ? [script] : [])], { cwd: root, stdio: "ignore", env: wranglerEnv() });
  const modules = readdirSync(bundle)
    .filter((file) => MODULE_KINDS[file.slice(file.lastIndexOf("."))])
    .sort((a, b) => Number(b.endsWith(".js")) - Number(a.endsWith(".js"))) // the entry (the one .js: index.js, or the script's name) first
    .map((file) => `(name = ${capnpText(file)}, ${MODULE_KINDS[file.slice(file.lastIndexOf("."))]} = embed ${capnpText(`bundle/${file}`)})`);
  const storage = persistTo ?? join(dir, "storage");
  mkdirSync(storage, { recursive: true });
  const text = { ...config.vars, ...devVars(root), ...vars } as Record<string, unknown>;
  const objects: Array<{ name: string; class_name: string }> = config.durable_objects?.bindings ?? [];
  const bindings = [
    ...Object.entries(text).map(([name, value]) => `(name = ${capnpText(name)}, text = ${capnpText(typeof value === "string" ? value : JSON.stringify(value))})`),
    ...objects.map((b) => `(name = ${capnpText(b.name)}, durableObjectNamespace = ${capnpText(b.class_name)})`),
    ...(config.assets?.binding ? [`(name = ${capnpText(config.assets.binding)}, service = "assets")`] : []),
  ];
  const assets = resolve(root, config.assets?.directory ?? "dist/edge-assets");
  writeFileSync(
    join(dir, "config.capnp"),
    `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [
    (name = "main", worker = .edge),
    (name = "assets", disk = (path = ${capnpText(assets)}, writable = false)),
    (name = "storage", disk = (path = ${capnpText(storage)}, writable = true)),
    # The Worker's fetch() may reach loopback (the local origin pool), as under wrangler dev.
    (name = "network", network = (allow = ["public", "private", "local"])),
  ],
  sockets = [(name = "http", address = ${capnpText(`127.0.0.1:${port}`)}, http = (), service = "main")],
);
const edge :Workerd.Worker = (
  modules = [${modules.join(", ")}],
  compatibilityDate = ${capnpText(config.compatibility_date ?? "2025-09-01")},
  compatibilityFlags = [${(config.compatibility_flags ?? []).map(capnpText).join(", ")}],
  bindings = [${bindings.join(", ")}],
  durableObjectNamespaces = [${objects.map((b) => `(className = ${capnpText(b.class_name)}, uniqueKey = ${capnpText(`${config.name}-${b.class_name}`)}, enableSql = true)`).join(", ")}],
  durableObjectStorage = (localDisk = "storage"),
  globalOutbound = "network",
);
`,
  );
  const child = spawn(resolve(ROOT, "node_modules", ".bin", "workerd"), ["serve", join(dir, "config.capnp"), ...(inspectorPort ? [`--inspector-addr=127.0.0.1:${inspectorPort}`] : [])], { cwd: dir, stdio: ["ignore", stdio, stdio] });
  // The generated config, bundle and (unless persistTo) storage go with the process.
  child.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  return startedWhenReady(port, edgeReadyPath({ script, waitFor }), child);
}
