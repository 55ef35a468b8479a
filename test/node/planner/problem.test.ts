import { describe, expect, it } from "vitest";
import { parseProblem } from "../../../src/planner/problem";
import { solveProblem } from "../../../src/planner/solve-problem";

const ISSUE_EXAMPLE = {
  arrival: { kind: "map", D0: [[-10.82, 0], [0, -16.66]], D1: [[0.63, 10.19], [0.68, 15.98]] },
  serviceMs: { kind: "linear", baseMs: 10, perItemMs: 34 },
  servers: { kind: "unbounded" },
  slo: { percentile: 0.95, ms: 900 },
  evaluate: [{ maxBatch: 20, windowMs: 100 }],
};

const errorsOf = (json: unknown): string[] => {
  const parsed = parseProblem(json);
  if (parsed.ok) throw new Error("expected the problem to be rejected");
  return parsed.errors;
};

describe("parseProblem", () => {
  it("accepts the issue's example and the documented variants", () => {
    expect(parseProblem(ISSUE_EXAMPLE).ok).toBe(true);
    const variant = { ...ISSUE_EXAMPLE, arrival: { kind: "poisson", ratePerS: 40 }, serviceMs: { kind: "table", ms: [3, 4, 6] }, servers: { kind: "fixed", count: 2 } };
    expect(parseProblem(variant).ok).toBe(true);
  });

  it("rejects a D0 + D1 that is not a generator, naming the field", () => {
    const bad = { ...ISSUE_EXAMPLE, arrival: { kind: "map", D0: [[-10, 0], [0, -16.66]], D1: [[0.63, 10.19], [0.68, 15.98]] } };
    expect(errorsOf(bad)).toEqual([expect.stringMatching(/^arrival\.D0: row 0 of D0 \+ D1 sums to .* not a generator/)]);
  });

  it("rejects negative rates", () => {
    expect(errorsOf({ ...ISSUE_EXAMPLE, arrival: { kind: "poisson", ratePerS: -5 } })).toEqual(["arrival.ratePerS: must be > 0 (requests per second)"]);
    const negativeD1 = { kind: "map", D0: [[-10.82, 0], [0, -16.66]], D1: [[-0.63, 11.45], [0.68, 15.98]] };
    expect(errorsOf({ ...ISSUE_EXAMPLE, arrival: negativeD1 })[0]).toMatch(/^arrival\.D1: D1\[0\]\[0\] = -0.63 is negative/);
  });

  it.each([0, 1, 1.5, -0.1])("rejects the percentile %s (outside (0, 1))", (percentile) => {
    expect(errorsOf({ ...ISSUE_EXAMPLE, slo: { percentile, ms: 900 } })).toEqual(["slo.percentile: must be in (0, 1)"]);
  });

  it("rejects an empty grid", () => {
    expect(errorsOf({ ...ISSUE_EXAMPLE, evaluate: [] })).toEqual(["evaluate: must list at least one configuration"]);
    const { evaluate: _, ...optimise } = ISSUE_EXAMPLE;
    expect(errorsOf({ ...optimise, search: { maxBatch: [] } })).toEqual(["search.maxBatch: must not be empty"]);
  });

  it("reads costSlack as a fraction of the cheapest plan's cost, naming the field on errors", () => {
    const { evaluate: _, ...optimise } = ISSUE_EXAMPLE;
    expect(parseProblem({ ...optimise, costSlack: 0.05 }).ok).toBe(true);
    expect(errorsOf({ ...optimise, costSlack: -0.1 })).toEqual(["costSlack: must be >= 0"]);
    expect(errorsOf({ ...optimise, costSlack: 2 })[0]).toMatch(/^costSlack: must be <= 1/);
  });

  it("rejects unknown fields so that typos do not pass silently", () => {
    expect(errorsOf({ ...ISSUE_EXAMPLE, slos: {} })[0]).toMatch(/Unrecognized key: "slos"/);
  });
});

describe("solveProblem", () => {
  it("returns evaluations in the contract's shape and order", () => {
    const problem = parseProblem({ ...ISSUE_EXAMPLE, evaluate: [{ maxBatch: 20, windowMs: 100 }, { maxBatch: 1, windowMs: 5 }] });
    if (!problem.ok) throw new Error(problem.errors.join());
    const solution = solveProblem(problem.problem);
    if (solution.kind !== "evaluations") throw new Error("expected evaluations");
    expect(Object.keys(solution.evaluations[0]!)).toEqual(["maxBatch", "windowMs", "latencyMs", "meanBatch", "meanLatencyMs"]);
    expect(Object.keys(solution.evaluations[0]!.latencyMs)).toEqual(["p50", "p95", "p99"]);
    expect(solution.evaluations.map((e) => e.maxBatch)).toEqual([20, 1]);
    expect(solution.evaluations[1]!.latencyMs.p99).toBeCloseTo(44, 6); // s(1) = 10 + 34
  });

  it("reports null latencies for an overloaded fixed server", () => {
    const problem = parseProblem({ ...ISSUE_EXAMPLE, arrival: { kind: "poisson", ratePerS: 100 }, servers: { kind: "fixed", count: 1 }, evaluate: [{ maxBatch: 1, windowMs: 1 }] });
    if (!problem.ok) throw new Error(problem.errors.join());
    const solution = solveProblem(problem.problem);
    expect(solution.kind === "evaluations" && solution.evaluations[0]!.latencyMs).toEqual({ p50: null, p95: null, p99: null });
  });

  it("reads servers.formation (default sealed) and overheadMs, naming the field on errors", () => {
    const fixed = { ...ISSUE_EXAMPLE, servers: { kind: "fixed", count: 2 } };
    const parsed = parseProblem(fixed);
    expect(parsed.ok && parsed.problem.servers).toEqual({ kind: "fixed", count: 2, formation: "sealed" });
    const lazy = parseProblem({ ...fixed, servers: { kind: "fixed", count: 1, scope: "per-shard", formation: "lazy" }, overheadMs: 3.5 });
    expect(lazy.ok && lazy.problem.servers).toEqual({ kind: "fixed", count: 1, scope: "per-shard", formation: "lazy" });
    expect(lazy.ok && lazy.problem.overheadMs).toBe(3.5);
    expect(errorsOf({ ...fixed, servers: { kind: "fixed", count: 1, formation: "eager" } })[0]).toMatch(/^servers\.formation: /);
    expect(errorsOf({ ...fixed, overheadMs: -1 })).toEqual(["overheadMs: must be >= 0 (ms)"]);
    expect(errorsOf({ ...fixed, servers: { kind: "fixed", count: 1, formaton: "lazy" } })[0]).toMatch(/^servers: .*formaton/);
    expect(errorsOf({ ...ISSUE_EXAMPLE, evaluate: undefined, placements: { origin: { formation: "batchy" } } })[0]).toMatch(/^placements\.origin\.formation: /);
    expect(parseProblem({ ...ISSUE_EXAMPLE, evaluate: undefined, placements: { origin: { formation: "sealed" } } }).ok).toBe(true);
  });
});
