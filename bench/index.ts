/**
 * `npm run bench -- <suite>`: runs one benchmark suite (edge, origin, planner) or all of them.
 * Each writes its report to bench/reports/<suite>.{json,md}.
 */
export {};

const suites: Record<string, () => Promise<{ main(): Promise<void> }>> = {
  edge: () => import("./edge"),
  origin: () => import("./origin"),
};

const requested = process.argv[2] ?? "all";
const chosen = requested === "all" ? Object.keys(suites) : [requested];
for (const suite of chosen) {
  const load = suites[suite];
  if (!load) {
    console.error(`unknown suite "${suite}"; choose one of: ${Object.keys(suites).join(", ")}, all`);
    process.exit(2);
  }
  console.log(`== bench ${suite}`);
  await (await load()).main();
}
