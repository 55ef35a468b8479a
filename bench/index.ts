/**
 * `npm run bench -- <suite>`: runs one benchmark suite (edge, origin, scheduler, fidelity, planner, closed-loop, soak) or all of them.
 * Each writes its report to bench/reports/<suite>.{json,md}.
 */
export {};

const suites: Record<string, () => Promise<{ main(): Promise<void> }>> = {
  edge: () => import("./edge"),
  origin: () => import("./origin"),
  scheduler: () => import("./scheduler"),
  fidelity: () => import("./fidelity"),
  "closed-loop": () => import("./closed-loop"),
  deploy: () => import("./deploy"), // the deploy path: upload size, first request after start, over-limit 413s
  memory: () => import("./memory"), // workerd memory per model and batch size: `npm run bench -- memory [--quick]`
  soak: () => import("./soak"), // 10 minutes by default: `npm run bench -- soak --duration-s 90` for a trial
  planner: async () => {
    const [accuracy, speed] = await Promise.all([import("./planner-accuracy"), import("./planner-speed")]);
    return {
      async main() {
        accuracy.main(process.argv.slice(3)); // e.g. `npm run bench -- planner --quick`
        speed.main();
      },
    };
  },
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
