import { spawnSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";

const TSX = join(process.cwd(), "node_modules/tsx/dist/cli.mjs");
const dir = mkdtempSync(join(tmpdir(), "plan-cli-"));

function plan(problem: unknown, ...flags: string[]) {
  const file = join(dir, `p${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(file, typeof problem === "string" ? problem : JSON.stringify(problem));
  const run = spawnSync(process.execPath, [TSX, "src/cli/plan.ts", "--problem", file, ...flags], { encoding: "utf8" });
  return { code: run.status, stdout: run.stdout, stderr: run.stderr };
}

const EXAMPLE = {
  arrival: { kind: "map", D0: [[-10.82, 0], [0, -16.66]], D1: [[0.63, 10.19], [0.68, 15.98]] },
  serviceMs: { kind: "linear", baseMs: 10, perItemMs: 34 },
  servers: { kind: "unbounded" },
  slo: { percentile: 0.95, ms: 900 },
  evaluate: [{ maxBatch: 20, windowMs: 100 }],
};

describe("npm run plan", () => {
  it("prints the evaluations as JSON with --json", () => {
    const { code, stdout } = plan(EXAMPLE, "--json");
    expect(code).toBe(0);
    const out = JSON.parse(stdout);
    expect(out.evaluations).toHaveLength(1);
    expect(out.evaluations[0]).toMatchObject({ maxBatch: 20, windowMs: 100, latencyMs: { p50: expect.any(Number), p95: expect.any(Number), p99: expect.any(Number) }, meanBatch: expect.any(Number) });
  });

  it("prints a table by default", () => {
    const { code, stdout } = plan(EXAMPLE);
    expect(code).toBe(0);
    expect(stdout).toMatch(/maxBatch\s+windowMs\s+p50 ms/);
  });

  it("exits with 2 and names the field on a bad problem", () => {
    const { code, stderr } = plan({ ...EXAMPLE, slo: { percentile: 1.2, ms: 900 } });
    expect(code).toBe(2);
    expect(stderr).toMatch(/slo\.percentile: must be in \(0, 1\)/);
  });

  it("exits with 2 on a file that is not JSON, and without --problem", () => {
    expect(plan("{not json").code).toBe(2);
    const run = spawnSync(process.execPath, [TSX, "src/cli/plan.ts"], { encoding: "utf8" });
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/missing --problem/);
  });

  it("optimises when there is no evaluate list, and exits with 1 when nothing meets the SLO", () => {
    const { evaluate: _, ...optimise } = EXAMPLE;
    const small = { ...optimise, search: { maxBatch: { max: 8 }, windowMs: [10, 100], shards: { max: 2 }, poolSize: { max: 2 } } };
    const ok = plan(small, "--json");
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout).plan).toMatchObject({ placement: expect.stringMatching(/edge|origin/), maxBatch: expect.any(Number) });
    const impossible = plan({ ...small, slo: { percentile: 0.95, ms: 1 } }, "--json");
    expect(impossible.code).toBe(1);
    expect(JSON.parse(impossible.stdout).plan).toBeNull();
  });
});
