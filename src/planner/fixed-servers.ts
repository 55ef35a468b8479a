/**
 * Request latency with a fixed number of servers, for both batch formations, under MAP arrivals:
 * a Markov chain embedded at the arrivals of batch heads, solved numerically on a time grid.
 *
 * The head of a batch is the oldest request in it. For one queue (a shard, or the shared pool) with
 * one server, let X be the time from a head's arrival until the server is free (0 if it is free)
 * and psi the MAP phase just after that arrival. The head's batch then starts at
 *   C = max(X, Y),  Y = min(T, tau_{B-1})
 * (tau_n: the n-th arrival after the head; Y is when the batch would be ready on its own: full at
 * maxBatch B, or the window T after the head). Sealed formation: the batch holds the arrivals up to Y
 * (k = min(B, 1 + N(Y))), and the next head is the first arrival after Y. Lazy formation: the batch
 * holds the arrivals up to C, at most B (k = min(B, 1 + N(C))), and the next head is arrival k (the
 * B-th arrival, already queued when more than B wait, or the first arrival after C). With G the
 * next head's arrival time and s(k) the deterministic service, the next head sees
 *   X' = max(0, C + s(k) - G),
 * a Lindley-type recursion whose increments depend only on (X, psi) and the MAP after the head, so
 * (X, psi) is a Markov chain. On a shared thread (lazy, one server: the requests' front door runs on
 * the server's thread) a head that finds the server busy reaches the queue when it frees, so its
 * window runs from X: Y = min(X + T, tau_{B-1}), and the counting matrices reach X + T. Its kernel comes from the MAP's counting matrices P(n, t) and their
 * integrals J(n, t) (countingGrid, by uniformisation) on a grid of step h: P(n, x) D1-cells for
 * tau_B, P(n, T) for windows that time out, J(B-2, .) D1 for windows that fill, J(0, .) D1 for the gap
 * to the next arrival. The stationary vector is found by power iteration with iterative
 * aggregation-disaggregation over the phases (a slowly switching MMPP otherwise needs thousands of
 * iterations). X lives on [0, M h]; M doubles (up to MAX_CELLS) while more than 1e-9 of the mass
 * leaves the grid, and what is left out is reported as `truncatedMass`.
 *
 * Latency: every batch contributes its head (latency C + s(k)) and its k - 1 other members, whose
 * latency is C - tau_i + s(k); given the batch's close and count, the members' arrival times are
 * taken as uniform over the span they occupy (exact for Poisson arrivals, where arrivals in an
 * interval given their number are uniform; an approximation for MAPs whose phase changes within a
 * window). The tagged-request distribution is this measure over batches divided by E[k]. With
 * answers in turn (answerMsPerRow a: the end of a batch's service answers its requests one by one in
 * arrival order) the head leaves (k - 1) a early and the members' span is cut into k - 1 equal
 * slices, the r-th latest leaving r a early: the order statistics in their mean places, so the
 * mean latency is exact and the percentiles are within the simulator's noise (planner-accuracy.md).
 *
 * Several servers (count c > 1), sealed formation: cyclic assignment, batch n waits for the server
 * that batch n - c used (exact for equal service times, FIFO otherwise close): X_n = max(0, C_(n-c) +
 * s(k_(n-c)) - (the c cycles from head n - c to head n)), the c - 1 later cycles (a window, then the
 * gap to the next arrival) not depending on the servers. Clipping at 0 after each cycle is exact,
 * so the c-step kernel is the one-step kernel followed by c - 1 subtractions of a cycle.
 * Lazy formation with c > 1 has two candidates and keeps the one with the smaller mean latency:
 * cyclic assignment, the intermediate cycles drawn from the stationary heads (a mean-field step,
 * since a lazy cycle depends on its head's wait), which is right at light load and errs high near
 * saturation (a lazy batch's size, hence how long it holds its server, depends on its wait); and
 * one server c times as fast in the recursion (s(k) / c advances X; the request still takes s(k)),
 * the heavy-traffic limit, which errs high at light load (a batch may start on any free server) and
 * low near saturation (a server frees only when its whole batch ends). A pool shared by S > 1 sealed
 * shards is solved from a virtual shard's sealed queue (latency-model.ts sharedSealedPool), whose
 * wait of a sealed batch for a server is `releaseWaitCdf`. Beyond MAX_CYCLIC_SERVERS servers (large
 * origin pools) only the fast server is solved, for speed.
 * bench/reports/planner-accuracy.md measures these limits.
 *
 * Sealed windows: a window of at least one cell ends on a grid point (the step shrinks a little to
 * fit it); a window under one cell keeps the step, with its batches from P(n, T) and the batches
 * that fill within it closing at its middle (windowCounts), both at their place within the cell.
 *
 * Numerical care: every shift by a non-grid amount splits the mass linearly between the two
 * neighbouring grid points (mean-preserving); the stationary iteration stops when an iteration moves
 * less than CONVERGED_L1 of mass; mass that leaves the grid is renormalised and reported
 * (truncatedMass, with the mass in the last tenth of the grid).
 */
import { type MarkovianArrival, nextArrivalPhaseMatrix, peakRatePerS, phaseAfterArrival, timeToArrivalMoments } from "./arrival";
import { batchSizeDistribution } from "./batch-size";
import { type CountingMatrices, countingGrid, countingMatrices } from "./counting-process";
import type { LatencyDistribution } from "./latency-model";
import { add, expm, fromRows, scale as scaleMatrix, stationary } from "./matrix";
import type { Formation } from "./queueing";

/** One queue with fixed servers. */
export interface FixedServerInput {
  /** Arrivals into this queue (a shard's thinned MAP, or all arrivals for a shared lazy pool). */
  arrival: MarkovianArrival;
  /** service[k - 1] = s(k), ms, k = 1 .. maxBatch. */
  service: Float64Array;
  maxBatch: number;
  windowMs: number;
  /** Servers of this queue (c). */
  servers: number;
  formation: Formation;
  /**
   * The requests' front door runs on the server's own thread (locally the Worker and its Durable
   * Object share one workerd thread): a request that arrives while a batch runs reaches the queue
   * when the batch ends, so a head that finds the server busy opens its window then (at X, not at
   * its arrival). Lazy formation with one server only. Default false.
   */
  sharedThread?: boolean;
  /**
   * Of each batch's service s(k), the last k x answerMsPerRow ms answer its requests one at a time
   * in arrival order (on a shared thread, each request's own handling after the batch is computed):
   * the i-th of k is done (k - i) x answerMsPerRow before s(k) ends. Needs s(k) >= k x
   * answerMsPerRow. The queue is the same; only when each request leaves it differs. Default 0.
   */
  answerMsPerRow?: number;
  /** Added to every latency, ms. */
  extraMs?: number;
  /** Grid cells over T + s(B); default 48. */
  cellsPerScale?: number;
  /** c > 1: "cyclic" assignment or a "fast" server (default: cyclic for sealed, both for lazy). */
  multiServer?: "cyclic" | "fast";
  /** Cap on the power iterations; default MAX_ITERATIONS. */
  maxIterations?: number;
  /**
   * Work this solve may spend, shared with the caller's other solves (a search's budget): each
   * power iteration adds its cost in grid operations (about width^2 x phases^2 per pass over the
   * grid) to `spent`; past `limit` the solve stops and the queue counts as unstable (not shown to
   * meet anything). Deterministic, where a clock is not: in workerd time does not advance while
   * code runs. Default: none (unbounded, uncounted).
   */
  budget?: WorkBudget;
}

/** Grid operations a caller allows its solves and what they spent (see FixedServerInput.budget), updated in place. */
export interface WorkBudget {
  limit: number;
  spent: number;
}

/** The solution for one queue. */
export interface FixedServerModel extends LatencyDistribution {
  isStable: boolean;
  meanMs: number;
  /** probs[k - 1] = P(batch size = k). */
  batchSizeProbs: Float64Array;
  meanBatch: number;
  /** Busy fraction per server (this queue's work only). */
  utilisation: number;
  /** Probability mass of X that fell off the grid (per batch, stationary). */
  truncatedMass: number;
  iterations: number;
  cells: number;
  stepMs: number;
  /**
   * Sealed formation: P(W <= ms) for a request, W the wait of its batch for a server after the
   * batch is sealed (its window's end, or when it filled). Lazy formation: undefined.
   */
  releaseWaitCdf?: (ms: number) => number;
}

/** Most grid cells for X; beyond, the step doubles (at most MAX_COARSENINGS times). */
export const MAX_CELLS = 512;
const MAX_COARSENINGS = 4;
const MAX_ITERATIONS = 3000;
/** Iterations allowed to the cyclic candidate of a lazy pool (see fixedServerLatency). */
const LAZY_CYCLIC_ITERATIONS = 300;
const LAZY_CYCLIC_MAX_UTILISATION = 0.7;
/** Most servers solved by cyclic assignment (more: the fast server only). */
export const MAX_CYCLIC_SERVERS = 8;
/** Power iteration stops when an iteration moves less than this much mass (L1). */
const CONVERGED_L1 = 1e-7;
/**
 * On grids coarser than the default (the optimizer's screen, whose grid errs by ~1e-2 anyway): the
 * convergence threshold, and the mass allowed beyond the grid (1e-9 otherwise).
 */
const SCREEN_CONVERGED_L1 = 1e-6;
const SCREEN_TAIL = 1e-6;
const isScreen = (input: FixedServerInput): boolean => input.cellsPerScale !== undefined && input.cellsPerScale < 48;

const unstable = (utilisation: number, maxBatch: number): FixedServerModel => ({
  isStable: false,
  meanMs: Infinity,
  batchSizeProbs: new Float64Array(maxBatch),
  meanBatch: maxBatch,
  utilisation,
  truncatedMass: 1,
  iterations: 0,
  cells: 0,
  stepMs: 0,
  cdf: () => 0,
  percentile: () => Infinity,
});

/** Solves one queue; see the module doc. */
export function fixedServerLatency(input: FixedServerInput): FixedServerModel {
  const { arrival, maxBatch: B, servers: c, formation } = input;
  if (input.sharedThread && (formation !== "lazy" || c !== 1)) throw new RangeError("fixedServerLatency: a shared thread is one server with lazy formation");
  const T = input.maxBatch === 1 ? 0 : input.windowMs; // a batch of one is full at once: no window
  const service = input.service;
  const answerMs = input.answerMsPerRow ?? 0;
  if (!(answerMs >= 0) || service.some((s, k) => s < (k + 1) * answerMs - 1e-9)) throw new RangeError("fixedServerLatency: answerMsPerRow must be >= 0 and s(k) >= k x answerMsPerRow");
  const sB = service[B - 1]!;
  // Lazy: full batches are the most a server can do; beyond that nothing is stable.
  let bestPerItem = Infinity;
  for (let k = 1; k <= B; k++) bestPerItem = Math.min(bestPerItem, service[k - 1]! / k);
  const capacityLoad = (arrival.ratePerS / 1000) * bestPerItem / c;
  if (capacityLoad >= 1) return unstable(capacityLoad, B);

  let largestService = 0;
  if (formation === "sealed") {
    // Sealed batches do not grow with the queue: their own load decides stability.
    const batches = batchSizeDistribution(arrival, countingMatrices(arrival, T / 1000, Math.max(1, B - 1)), B);
    let meanService = 0;
    batches.probs.forEach((pk, k) => (meanService += pk * service[k]!));
    const load = (batches.batchRatePerS * meanService) / 1000 / c;
    if (load >= 1) return unstable(load, B);
    // Sealed batches do not grow with the queue: size the grid by the largest service that more
    // than 1e-3 of them need, not by s(maxBatch) (a maxBatch of 64 that windows never fill would
    // make the step coarse next to the batches' real service times).
    let above = 1;
    for (let k = 1; k <= B; k++) {
      largestService = Math.max(largestService, service[k - 1]!);
      above -= batches.probs[k - 1]!;
      if (above < 1e-3) break;
    }
  } else largestService = sB;

  const scale = T + largestService;
  const cellsPerScale = (input.cellsPerScale ?? 48) / (B === 1 && c === 1 ? tailCoarsening(arrival, sB, scale / (input.cellsPerScale ?? 48)) : 1);
  const solveWith = (multiServer: "cyclic" | "fast", maxIterations = MAX_ITERATIONS): FixedServerModel => {
    const fine = solveOnGrid({ ...input, multiServer, maxIterations }, scale, cellsPerScale);
    if (fine.chain.diverged) return unstable(Math.max(capacityLoad, 1), B);
    return measure(input, fine.chain, fine.h, fine.windowCells, fine.cells);
  };
  // Cyclic assignment costs c - 1 cycle subtractions per iteration: beyond MAX_CYCLIC_SERVERS
  // (large origin pools, where waiting is rare below saturation) only the fast server is solved.
  if (c > MAX_CYCLIC_SERVERS && !input.multiServer) return solveWith("fast");
  if (formation === "sealed" || c === 1 || input.multiServer) return solveWith(input.multiServer ?? (formation === "sealed" ? "cyclic" : "fast"));
  // Lazy with c > 1: neither approximation holds throughout. Cyclic assignment is right at light
  // load and errs high near saturation (a lazy batch's size, hence how long it holds its server,
  // depends on its wait); the fast server errs high at light load and low near saturation. Take
  // the one with the smaller mean latency.
  // The cyclic candidate's mean-field cycles are rebuilt every iteration and, near saturation (where
  // it errs high and loses to the fast server anyway), converge slowly: it is tried only up to
  // LAZY_CYCLIC_MAX_UTILISATION, with LAZY_CYCLIC_ITERATIONS at most.
  const fast = solveWith("fast");
  if (!fast.isStable || fast.utilisation > LAZY_CYCLIC_MAX_UTILISATION) return fast;
  const cyclic = solveWith("cyclic", LAZY_CYCLIC_ITERATIONS);
  return cyclic.isStable && cyclic.iterations < LAZY_CYCLIC_ITERATIONS && (!fast.isStable || cyclic.meanMs <= fast.meanMs) ? cyclic : fast;
}

/**
 * How many times coarser than scale / cellsPerScale to start the grid of one server without
 * batching (B = 1, so no window: the direct path). Near saturation its waits reach many service
 * times, beyond what MAX_CELLS cells of that step hold, and the grid would double and then coarsen
 * through several solves to get there, most of the work. Kingman's heavy-traffic tail,
 * P(W > x) ~ rho exp(-2 (1 - rho) x / (s ca^2)), ca^2 the squared coefficient of variation of the
 * gaps between arrivals, says how far the mass the grid keeps (1e-9) reaches: the grid starts on the
 * coarsest power of two whose first nine tenths hold that. Poisson arrivals only: a MAP's gaps'
 * ca^2 misjudges its reach both ways (correlated gaps reach further; an on/off MMPP's long silences
 * give a gap SCV of 76 and a start 64 times too coarse, which put its p95 20 % off), so a MAP's grid
 * grows and coarsens from the default step while mass leaves it.
 */
function tailCoarsening(arrival: MarkovianArrival, serviceMs: number, stepMs: number): number {
  if (arrival.phases !== 1) return 1;
  const rho = (arrival.ratePerS / 1000) * serviceMs;
  if (!(rho > 0 && rho < 1)) return 1;
  const { meanS, secondMomentS2 } = timeToArrivalMoments(arrival, phaseAfterArrival(arrival));
  const ca2 = Math.max(0, secondMomentS2 / (meanS * meanS) - 1);
  const reachMs = ((serviceMs * ca2) / (2 * (1 - rho))) * Math.log(rho * 1e9);
  const factor = reachMs / 0.9 / (MAX_CELLS * stepMs);
  return factor >= 2 ? 2 ** Math.floor(Math.log2(factor)) : 1;
}

interface GridSolution {
  chain: Chain;
  h: number;
  windowCells: number;
  cells: number;
}

/**
 * The stationary chain on a grid of `cellsPerScale` cells over T + s(B): the grid doubles while
 * mass leaves it (up to MAX_CELLS), then its step doubles (up to MAX_COARSENINGS times).
 */
function solveOnGrid(input: FixedServerInput, scale: number, cellsPerScale: number, from?: GridSolution): GridSolution {
  const tailTolerance = isScreen(input) ? SCREEN_TAIL : 1e-9;
  const T = input.maxBatch === 1 ? 0 : input.windowMs;
  const m = input.arrival.phases;
  let cells = Math.max(16, 2 ** Math.ceil(Math.log2(2.5 * cellsPerScale)));
  let pi: Float64Array | undefined;
  let h = scale / cellsPerScale;
  // The window ends on a grid point (the step shrinks to fit it). Lazy formation: a window under half
  // a cell counts as 0 only when it almost never holds a second arrival (peak rate x window < 0.05):
  // its effect is then a fraction of a cell of waiting; otherwise the step shrinks to the window.
  // Sealed formation takes a window under a cell as it is (windowCounts): it never pins the step.
  const isSealed = input.formation === "sealed";
  const pinsStep = !isSealed && T > 0 && (peakRatePerS(input.arrival) / 1000) * T >= 0.05;
  const cellsOf = (step: number): number => (isSealed ? Math.floor(T / step + 1e-9) : Math.max(pinsStep ? 1 : 0, Math.round(T / step)));
  let windowCells = cellsOf(h);
  if (windowCells > 0) h = T / windowCells;
  if (from) {
    // Interpolate the coarse stationary vector onto this grid (mass split linearly by position).
    const reach = from.cells * from.h;
    while (cells < MAX_CELLS && cells * h < reach) cells *= 2;
    pi = new Float64Array((cells + 1) * m);
    for (let i = 0; i <= from.cells; i++) {
      const pos = (i * from.h) / h;
      const k = Math.floor(pos);
      const f = pos - k;
      for (let r = 0; r < m; r++) {
        const mass = from.chain.pi[i * m + r]!;
        if (k >= cells) pi[cells * m + r]! += mass;
        else {
          pi[k * m + r]! += (1 - f) * mass;
          pi[(k + 1) * m + r]! += f * mass;
        }
      }
    }
  }
  for (let coarsenings = 0; ; ) {
    const chain = solveChain(input, h, windowCells, cells, pi);
    const isTruncated = chain.lost > tailTolerance || chain.tailMass > tailTolerance;
    if (isTruncated && !chain.diverged && cells < MAX_CELLS) {
      pi = chain.pi;
      cells *= 2;
      continue;
    }
    if (isTruncated && !chain.diverged && coarsenings < MAX_COARSENINGS) {
      // The grid is as long as allowed: twice the step, same number of cells.
      const wider = cellsOf(2 * h);
      if (pinsStep && wider === 0) return { chain, h, windowCells, cells }; // the window pins the step (truncation reported)
      coarsenings++;
      h *= 2;
      windowCells = wider;
      if (windowCells > 0) h = T / windowCells;
      pi = undefined;
      continue;
    }
    return { chain, h, windowCells, cells };
  }
}

interface Chain {
  pi: Float64Array;
  grid: CountingMatrices[];
  lost: number;
  tailMass: number;
  iterations: number;
  diverged: boolean;
}

/**
 * The grid cell where the window of a head at cell i (X = i h) ends: T after the head's arrival, or
 * on a shared thread T after X (the head reaches the queue when the server frees).
 */
function windowEnds(input: FixedServerInput, windowCells: number): (i: number) => number {
  const held = input.formation === "lazy" && input.sharedThread === true && windowCells > 0;
  return held ? (i) => i + windowCells : () => windowCells;
}

/**
 * Sealed formation: the batches a window holds. P(n, T) for n <= B - 2 arrivals after the head
 * (the batch times out with n + 1), from the grid when the window ends on a grid point; and for a
 * window under one cell (windowCells 0) from the counting matrices at T, with the mass by phase
 * pair of the batches that fill within it (`full`: the phase transition over T less those), which
 * the caller closes at the window's middle.
 */
function windowCounts(input: FixedServerInput, grid: CountingMatrices[], windowCells: number): { atWindow: Float64Array; full?: Float64Array } {
  const T = input.maxBatch === 1 ? 0 : input.windowMs;
  const B = input.maxBatch;
  if (input.formation !== "sealed" || windowCells > 0 || !(T > 0) || B === 1) return { atWindow: grid[windowCells]!.p };
  const { arrival } = input;
  const m = arrival.phases;
  const atWindow = countingMatrices(arrival, T / 1000, B - 1).p;
  const full = Float64Array.from(expm(scaleMatrix(add(arrival.d0, arrival.d1), T / 1000)).data);
  for (let n = 0; n <= B - 2; n++) for (let x = 0; x < m * m; x++) full[x]! -= atWindow[n * m * m + x]!;
  for (let x = 0; x < m * m; x++) full[x] = Math.max(0, full[x]!);
  return { atWindow, full };
}

/** The counting-matrix cells a kernel uses: cellMass(n)[j] = (J(n, t_{j+1}) - J(n, t_j)) D1. */
function cellMasses(arrival: MarkovianArrival, grid: CountingMatrices[], n: number, cells: number): Float64Array {
  const m = arrival.phases;
  const mm = m * m;
  const out = new Float64Array(cells * mm);
  if (n < 0) return out;
  for (let j = 0; j < cells; j++) {
    const a = grid[j]!.j;
    const b = grid[j + 1]!.j;
    for (let r = 0; r < m; r++)
      for (let q = 0; q < m; q++) {
        const dj = b[n * mm + r * m + q]! - a[n * mm + r * m + q]!;
        if (dj === 0) continue;
        for (let col = 0; col < m; col++) out[j * mm + r * m + col]! += dj * arrival.d1.data[q * m + col]!;
      }
  }
  return out;
}

function solveChain(input: FixedServerInput, h: number, windowCells: number, cells: number, start?: Float64Array): Chain {
  const tailTolerance = isScreen(input) ? SCREEN_TAIL : 1e-9;
  const { arrival, maxBatch: B, servers: c, formation } = input;
  const m = arrival.phases;
  const mm = m * m;
  const width = cells + 1;
  const isLazy = formation === "lazy";
  // Several servers: cyclic assignment (batch n takes the server of batch n - c), or one server c
  // times as fast (lazy formation's other candidate).
  const isCyclic = c > 1 && (input.multiServer ?? (isLazy ? "fast" : "cyclic")) === "cyclic";
  const sEff = Float64Array.from(input.service, (s) => (isCyclic ? s : s / c));
  // The counting matrices reach the last window's end (past the grid on a shared thread).
  const windowEnd = windowEnds(input, windowCells);
  const gridCells = Math.max(cells, windowEnd(cells));
  const grid = countingGrid(arrival, (gridCells * h) / 1000, Math.max(1, B), gridCells);
  const gapCells = cellMasses(arrival, grid, 0, cells);
  const fullCells = cellMasses(arrival, grid, B - 2, cells); // (B-1)-th arrival after the head
  const overCells = cellMasses(arrival, grid, B - 1, cells); // B-th arrival after the head
  const nextPhase = nextArrivalPhaseMatrix(arrival).data;
  const { atWindow, full: fullAtHead } = windowCounts(input, grid, windowCells);
  // Where a sealed window closes, in cells (within a cell for a window under one cell), and
  // where such a window's batches that fill close on average (its middle).
  const T = input.maxBatch === 1 ? 0 : input.windowMs;
  const closeAt = fullAtHead ? T / h : windowCells;
  const filledAt = T / 2 / h;

  // Cumulative gap masses for the tail (gap beyond the Z value).
  const gapCumulative = new Float64Array(width * mm);
  for (let j = 0; j < cells; j++) for (let x = 0; x < mm; x++) gapCumulative[(j + 1) * mm + x] = gapCumulative[j * mm + x]! + gapCells[j * mm + x]!;

  let pi: Float64Array = new Float64Array(width * m);
  if (start && start.length <= pi.length) for (let i = 0; i < start.length; i++) pi[i] = start[i]!;
  else for (let r = 0; r < m; r++) pi[r] = arrival.phaseStationary[r]!;
  const out = Array.from({ length: m }, () => new Float64Array(width * m));
  const z = new Float64Array(width * m);
  let lost = 0;
  const lostBy = new Float64Array(m);

  const put = (buf: Float64Array, pos: number, phase: number, mass: number, source: number): void => {
    if (pos <= 0) {
      buf[phase]! += mass;
      return;
    }
    const i = Math.floor(pos);
    if (i >= cells) {
      lostBy[source]! += mass;
      return;
    }
    const f = pos - i;
    buf[i * m + phase]! += (1 - f) * mass;
    buf[(i + 1) * m + phase]! += f * mass;
  };

  /**
   * buf += the distribution of max(0, V - G) for V with masses `from` (grid, by phase phi) and G a
   * duration whose mass per cell j (at its middle) and phase pair is kernel[j][phi][q], `total` its
   * whole mass per phase pair (beyond the grid counted in the clip at 0).
   */
  const subtract = (from: Float64Array, buf: Float64Array, kernel: Float64Array, cumulative: Float64Array, total: ArrayLike<number>): void => {
    for (let phi = 0; phi < m; phi++)
      for (let q = 0; q < m; q++) {
        const o = phi * m + q;
        for (let zi = 0; zi <= cells; zi++) {
          const mass = from[zi * m + phi]!;
          if (mass === 0) continue;
          const half = 0.5 * mass;
          let at = zi * m + q;
          for (let j = 0; j < zi; j++, at -= m) {
            const g = half * kernel[j * mm + o]!;
            buf[at]! += g;
            buf[at - m]! += g;
          }
          buf[q]! += mass * (total[o]! - cumulative[Math.min(zi, cells) * mm + o]!);
        }
      }
  };
  const cumulativeOf = (kernel: Float64Array, into: Float64Array): Float64Array => {
    for (let j = 0; j < cells; j++) for (let x = 0; x < mm; x++) into[(j + 1) * mm + x] = into[j * mm + x]! + kernel[j * mm + x]!;
    return into;
  };

  // X' = max(0, Z - e) for the Z masses in z (by phase phi), into buf: Z on the grid, gap cells at
  // their middles, so X' = Z - j - 1/2 splits evenly over two points.
  const applyGap = (buf: Float64Array): void => subtract(z, buf, gapCells, gapCumulative, nextPhase);

  const step = (source: number): void => {
    const buf = out[source]!;
    buf.fill(0);
    z.fill(0);
    const psi = source;
    for (let i = 0; i <= cells; i++) {
      const p = pi[i * m + psi]!;
      if (p < 1e-300) continue;
      if (isLazy) {
        // tau_B <= x: the batch is full at C = x; the next head was already queued at tau_B.
        {
          // pos = i - j - 1/2 + s(B)/h for j < i, in cells: split over two points as put() does.
          const shift = sEff[B - 1]! / h - 0.5;
          const base = Math.floor(shift);
          const f = shift - base;
          for (let q = 0; q < m; q++) {
            const o = psi * m + q;
            for (let j = 0; j < i; j++) {
              const g = overCells[j * mm + o]!;
              if (g === 0) continue;
              const at = i - j + base;
              if (at + 1 > cells) {
                lostBy[source]! += p * g;
                continue;
              }
              buf[at * m + q]! += (1 - f) * p * g;
              buf[(at + 1) * m + q]! += f * p * g;
            }
          }
        }
        const P = grid[i]!.p;
        const end = windowEnd(i);
        if (i >= end) {
          // C = x, N(x) = n <= B - 1 arrivals queued after the head: k = n + 1.
          for (let n = 0; n < B; n++) addZ(p, P, n, sEff[n]! / h);
        } else {
          addZ(p, P, B - 1, sEff[B - 1]! / h); // (a) N(x) = B - 1: full at C = x
          if (B >= 2) {
            // (b) tau_{B-1} in (x, window end]: full at C = tau_{B-1}, next head after a gap.
            const Jx = grid[i]!.j;
            const JT = grid[end]!.j;
            for (let r = 0; r < m; r++) {
              if (r !== psi) continue;
              for (let q = 0; q < m; q++) {
                let w = 0;
                for (let u = 0; u < m; u++) w += (JT[(B - 2) * mm + r * m + u]! - Jx[(B - 2) * mm + r * m + u]!) * arrival.d1.data[u * m + q]!;
                if (w > 0) put(z, sEff[B - 1]! / h, q, p * w, source);
              }
            }
            // (c) N(window end) = n <= B - 2: the window times out, C = its end (Z counts from there).
            for (let n = 0; n <= B - 2; n++) addZ(p, grid[end]!.p, n, sEff[n]! / h);
          }
        }
      } else {
        // Sealed: the window closes at Y whatever the server; C = max(x, Y).
        const x = i;
        if (B === 1) put(z, x + sEff[0]! / h, psi, p, source);
        else {
          for (let n = 0; n <= B - 2; n++)
            for (let q = 0; q < m; q++) {
              const w = atWindow[n * mm + psi * m + q]!;
              if (w > 0) put(z, Math.max(x - closeAt, 0) + sEff[n]! / h, q, p * w, source);
            }
          for (let j = 0; j < windowCells; j++) {
            const y = j + 0.5;
            for (let q = 0; q < m; q++) {
              const w = fullCells[j * mm + psi * m + q]!;
              if (w > 0) put(z, Math.max(x - y, 0) + sEff[B - 1]! / h, q, p * w, source);
            }
          }
          if (fullAtHead) for (let q = 0; q < m; q++) if (fullAtHead[psi * m + q]! > 0) put(z, Math.max(x - filledAt, 0) + sEff[B - 1]! / h, q, p * fullAtHead[psi * m + q]!, source);
        }
      }
    }
    applyGap(buf);

    function addZ(p: number, P: Float64Array, n: number, pos: number): void {
      for (let q = 0; q < m; q++) {
        const w = P[n * mm + psi * m + q]!;
        if (w > 1e-18) put(z, pos, q, p * w, source);
      }
    }
  };

  const tailOf = (v: Float64Array): number => {
    let t = 0;
    for (let i = Math.floor(cells * 0.9) * m; i < v.length; i++) t += v[i]!;
    return t;
  };
  // Cyclic assignment (sealed): the time between a head and the head c batches later is this head's
  // cycle (in step) and c - 1 further cycles, each a window and the gap to the next arrival whatever
  // the servers, whose duration (mass per cell j at its middle, by phase pair) is `cycle`.
  const cycle = new Float64Array(isCyclic ? cells * mm : 0);
  const cycleCumulative = new Float64Array(isCyclic ? width * mm : 0);
  const cycleTotal = new Float64Array(mm);
  const offsets = new Float64Array(isCyclic ? width * m : 0); // per source phase: where the final gap starts
  const addCycle = (source: number, weight: number, fromOffsets: boolean): void => {
    // cycle[source][.] += weight * (offsets (by phase phi) + gap (phi -> q)).
    for (let oi = 0; oi <= cells && fromOffsets; oi++)
      for (let phi = 0; phi < m; phi++) {
        const mass = offsets[oi * m + phi]! * weight;
        if (mass === 0) continue;
        for (let q = 0; q < m; q++) {
          const o = phi * m + q;
          cycleTotal[source * m + q]! += mass * nextPhase[o]!;
          for (let j = 0; j + oi < cells; j++) cycle[(oi + j) * mm + source * m + q]! += mass * gapCells[j * mm + o]!;
        }
      }
  };
  const putOffset = (pos: number, phase: number, mass: number): void => {
    const i = Math.floor(pos);
    if (i >= cells) {
      offsets[cells * m + phase]! += mass;
      return;
    }
    const f = pos - i;
    offsets[i * m + phase]! += (1 - f) * mass;
    offsets[(i + 1) * m + phase]! += f * mass;
  };
  if (isCyclic && !isLazy)
    for (let psi = 0; psi < m; psi++) {
      offsets.fill(0);
      if (B === 1) offsets[psi] = 1;
      else {
        for (let n = 0; n <= B - 2; n++) for (let q = 0; q < m; q++) putOffset(closeAt, q, atWindow[n * mm + psi * m + q]!);
        for (let j = 0; j < windowCells; j++) for (let q = 0; q < m; q++) putOffset(j + 0.5, q, fullCells[j * mm + psi * m + q]!);
        if (fullAtHead) for (let q = 0; q < m; q++) putOffset(filledAt, q, fullAtHead[psi * m + q]!);
      }
      addCycle(psi, 1, true);
    }
  const lazyCycles = (): void => {
    cycle.fill(0);
    cycleTotal.fill(0);
    for (let psi = 0; psi < m; psi++) {
      offsets.fill(0);
      let mass = 0;
      for (let i = 0; i <= cells; i++) mass += pi[i * m + psi]!;
      if (mass <= 0) {
        offsets[psi] = 1;
        addCycle(psi, 1, true);
        continue;
      }
      // tau_B <= x: the next head is the B-th arrival, at tau_B (suffix sums of pi over x > u).
      let above = 0;
      for (let j = cells - 1; j >= 0; j--) {
        above += pi[(j + 1) * m + psi]!;
        if (above === 0) continue;
        for (let q = 0; q < m; q++) {
          const g = (above / mass) * overCells[j * mm + psi * m + q]!;
          cycle[j * mm + psi * m + q]! += g;
          cycleTotal[psi * m + q]! += g;
        }
      }
      for (let i = 0; i <= cells; i++) {
        const p = pi[i * m + psi]! / mass;
        if (p === 0) continue;
        const P = grid[i]!.p;
        if (i >= windowCells || B === 1) {
          for (let n = 0; n < B; n++) for (let q = 0; q < m; q++) offsets[i * m + q]! += p * P[n * mm + psi * m + q]!;
        } else {
          for (let q = 0; q < m; q++) offsets[i * m + q]! += p * P[(B - 1) * mm + psi * m + q]!;
          for (let j = i; j < windowCells; j++) for (let q = 0; q < m; q++) putOffset(j + 0.5, q, p * fullCells[j * mm + psi * m + q]!);
          for (let n = 0; n <= B - 2; n++) for (let q = 0; q < m; q++) offsets[windowCells * m + q]! += p * atWindow[n * mm + psi * m + q]!;
        }
      }
      addCycle(psi, 1, true);
    }
  };
  const shifted = new Float64Array(isCyclic ? width * m : 0);

  let iterations = 0;
  let diverged = false;
  let spare: Float64Array = new Float64Array(width * m);
  const sourceMass = new Float64Array(m);
  const maxIterations = input.maxIterations ?? MAX_ITERATIONS;
  // Passes over the grid per iteration: each phase's step (the lazy full-batch shift and the gap),
  // the cyclic subtractions, and the lazy cycles rebuilt from the heads.
  const passes = m * (2 + (isCyclic ? c - 1 : 0)) + (isCyclic && isLazy ? B : 0);
  const iterationUnits = passes * width * width * mm;
  for (; iterations < maxIterations; iterations++) {
    if (input.budget && (input.budget.spent += iterationUnits) > input.budget.limit) {
      diverged = true; // out of budget: not shown to be stable
      break;
    }
    lostBy.fill(0);
    if (isCyclic && isLazy) lazyCycles();
    if (isCyclic && (isLazy || iterations === 0)) cumulativeOf(cycle, cycleCumulative);
    for (let r = 0; r < m; r++) {
      sourceMass[r] = 0;
      for (let i = 0; i <= cells; i++) sourceMass[r]! += pi[i * m + r]!;
      if (sourceMass[r]! > 0) {
        step(r);
        for (let extra = 1; extra < (isCyclic ? c : 1); extra++) {
          shifted.set(out[r]!);
          out[r]!.fill(0);
          subtract(shifted, out[r]!, cycle, cycleCumulative, cycleTotal);
        }
      } else out[r]!.fill(0);
    }
    // Aggregation: the phase-to-phase chain of heads, then disaggregation.
    const next = spare;
    next.fill(0);
    if (m > 1) {
      const rows = Array.from({ length: m }, (_, r) => {
        const row = new Array<number>(m).fill(0);
        if (sourceMass[r]! <= 0) {
          // No head in this phase now: its row is where the next arrival from it leads.
          for (let q = 0; q < m; q++) row[q] = nextPhase[r * m + q]!;
          return row;
        }
        let total = 0;
        for (let i = 0; i <= cells; i++) for (let q = 0; q < m; q++) row[q]! += out[r]![i * m + q]!;
        for (let q = 0; q < m; q++) total += row[q]!;
        return row.map((v) => v / total);
      });
      let a: Float64Array;
      try {
        a = stationary(fromRows(rows));
      } catch {
        a = sourceMass.slice(); // a reducible phase chain: no aggregation step this time
      }
      for (let r = 0; r < m; r++) {
        if (sourceMass[r]! <= 0) continue;
        let total = 0;
        const o = out[r]!;
        for (let i = 0; i < o.length; i++) total += o[i]!;
        const f = a[r]! / total;
        for (let i = 0; i < o.length; i++) next[i]! += f * o[i]!;
      }
    } else next.set(out[0]!);
    let total = 0;
    for (let i = 0; i < next.length; i++) total += next[i]!;
    lost = 1 - total;
    if (!(total > 1e-6)) {
      // Almost everything left the grid: far too short for this queue.
      diverged = cells >= MAX_CELLS;
      break;
    }
    for (let i = 0; i < next.length; i++) next[i]! /= total;
    let diff = 0;
    for (let i = 0; i < next.length; i++) diff += Math.abs(next[i]! - pi[i]!);
    spare = pi;
    pi = next;
    if (diff < (isScreen(input) ? SCREEN_CONVERGED_L1 : CONVERGED_L1) && iterations > 2) break;
    if (cells < MAX_CELLS && iterations % 16 === 15 && (lost > tailTolerance || tailOf(pi) > tailTolerance)) break; // the caller grows the grid
    if (lost > 1e-3 && iterations > 200) {
      // Mass keeps leaving the grid: let the caller grow it, or call the queue unstable.
      diverged = cells >= MAX_CELLS;
      break;
    }
  }
  if (iterations >= maxIterations) diverged = lost > 1e-6;
  const tailMass = tailOf(pi);
  return { pi, grid, lost: Math.max(0, lost), tailMass, iterations, diverged };
}

/** The latency measure of the batches of the stationary heads: see the module doc. */
function measure(input: FixedServerInput, chain: Chain, h: number, windowCells: number, cells: number): FixedServerModel {
  const { arrival, maxBatch: B, formation, service } = input;
  const m = arrival.phases;
  const mm = m * m;
  const extra = input.extraMs ?? 0;
  const { pi, grid } = chain;
  const windowEnd = windowEnds(input, windowCells);
  const fullCells = cellMasses(arrival, grid, B - 2, grid.length - 1);
  const overCells = cellMasses(arrival, grid, B - 1, cells);
  const { atWindow, full: fullAtHead } = windowCounts(input, grid, windowCells);
  const T = input.maxBatch === 1 ? 0 : input.windowMs; // a batch of one is full at once: no window
  const hl = h / 2;
  const maxLatency = cells * h + T + service.reduce((a, b) => Math.max(a, b), 0) + h;
  const bins = Math.ceil(maxLatency / hl) + 2;
  const points = new Float64Array(bins);
  const slopes = new Float64Array(bins + 1);
  const sizes = new Float64Array(B);
  let totalRequests = 0;
  let meanSum = 0;
  const point = (ms: number, mass: number): void => {
    points[Math.min(bins - 1, Math.max(0, Math.round(ms / hl)))]! += mass;
    meanSum += mass * ms;
  };
  const uniform = (fromMs: number, toMs: number, mass: number): void => {
    meanSum += (mass * (fromMs + toMs)) / 2;
    const a = Math.min(bins - 1, Math.max(0, Math.round(fromMs / hl)));
    const b = Math.min(bins - 1, Math.max(0, Math.round(toMs / hl)));
    if (b <= a) {
      points[a]! += mass;
      return;
    }
    slopes[a]! += mass / (b - a);
    slopes[b]! -= mass / (b - a);
  };
  const answerMs = input.answerMsPerRow ?? 0;
  /**
   * A batch of size k closing at C (ms) whose k - 1 members other than the head arrived over
   * (C - span, C], `lastAtClose` of them exactly at the close. With answers in turn
   * (answerMsPerRow = a) the head leaves (k - 1) a before the batch's end and the r-th latest
   * member r a before: the members' arrivals, uniform over the span, are split into as many equal
   * slices as members, the r-th latest slice leaving r a early (the order statistics' mean places;
   * the mean latency is exact, as the a's add up to a k (k - 1) / 2 either way).
   */
  const batch = (w: number, k: number, closeMs: number, spanMs: number, lastAtClose: boolean): void => {
    if (w <= 0) return;
    const s = service[k - 1]!;
    sizes[k - 1]! += w;
    totalRequests += w * k;
    point(closeMs + s - (k - 1) * answerMs, w);
    let others = k - 1;
    let early = 0;
    if (lastAtClose && others > 0) {
      point(s + closeMs - spanMs, w);
      others--;
      early = 1;
    }
    if (others === 0) return;
    if (answerMs === 0) return uniform(closeMs - spanMs + s, closeMs + s, w * others);
    const sliceMs = spanMs / others;
    for (let r = 0; r < others; r++) {
      const fromMs = closeMs - spanMs + s + r * sliceMs - (r + early) * answerMs;
      uniform(fromMs, fromMs + sliceMs, w);
    }
  };
  // Sealed: requests by their batch's wait for a server after its release, on the grid (mass split between neighbours).
  const releaseWaits = new Float64Array(formation === "sealed" ? cells + 2 : 0);
  const released = (requests: number, waitMs: number): void => {
    if (requests <= 0) return;
    const pos = Math.max(0, waitMs) / h;
    const i = Math.min(cells, Math.floor(pos));
    const f = Math.min(1, pos - i);
    releaseWaits[i]! += (1 - f) * requests;
    releaseWaits[i + 1]! += f * requests;
  };
  const rowSum = (a: Float64Array, offset: number): number => {
    let s = 0;
    for (let q = 0; q < m; q++) s += a[offset + q]!;
    return s;
  };
  for (let i = 0; i <= cells; i++)
    for (let psi = 0; psi < m; psi++) {
      const p = pi[i * m + psi]!;
      if (p < 1e-300) continue;
      const x = i * h;
      if (formation === "lazy") {
        for (let j = 0; j < i; j++) {
          const u = (j + 0.5) * h;
          batch(p * rowSum(overCells, j * mm + psi * m), B, x, u, false);
        }
        const P = grid[i]!.p;
        const end = windowEnd(i);
        if (i >= end) for (let n = 0; n < B; n++) batch(p * rowSum(P, n * mm + psi * m), n + 1, x, x, false);
        else {
          batch(p * rowSum(P, (B - 1) * mm + psi * m), B, x, x, false);
          if (B >= 2) {
            for (let j = i; j < end; j++) {
              const u = (j + 0.5) * h;
              batch(p * rowSum(fullCells, j * mm + psi * m), B, u, u, true);
            }
            for (let n = 0; n <= B - 2; n++) batch(p * rowSum(grid[end]!.p, n * mm + psi * m), n + 1, end * h, end * h, false);
          }
        }
      } else if (B === 1) {
        batch(p, 1, x, 0, false);
        released(p, x);
      } else {
        for (let n = 0; n <= B - 2; n++) {
          const w = p * rowSum(atWindow, n * mm + psi * m);
          batch(w, n + 1, Math.max(x, T), T, false);
          released(w * (n + 1), x - T);
        }
        for (let j = 0; j < windowCells; j++) {
          const y = (j + 0.5) * h;
          const w = p * rowSum(fullCells, j * mm + psi * m);
          batch(w, B, Math.max(x, y), y, true);
          released(w * B, x - y);
        }
        if (fullAtHead) {
          // Filled within a window under half a cell: at T / 2 on average.
          const w = p * rowSum(fullAtHead, psi * m);
          batch(w, B, Math.max(x, T / 2), T / 2, true);
          released(w * B, x - T / 2);
        }
      }
    }
  // CDF at bin edges: cdf[g] = P(latency <= g * hl).
  const cdfAt = new Float64Array(bins);
  let density = 0;
  let acc = 0;
  for (let g = 0; g < bins; g++) {
    if (g > 0) acc += density * 1; // one bin of the current density (mass per bin)
    density += slopes[g]!;
    acc += points[g]!;
    cdfAt[g] = acc / totalRequests;
  }
  const batches = sizes.reduce((a, b) => a + b, 0);
  const batchSizeProbs: Float64Array<ArrayBuffer> = new Float64Array(B);
  for (let k = 0; k < B; k++) batchSizeProbs[k] = sizes[k]! / batches;
  const meanBatch = totalRequests / batches;
  let meanService = 0;
  batchSizeProbs.forEach((pk, k) => (meanService += pk * service[k]!));
  const utilisation = ((arrival.ratePerS / meanBatch) * meanService) / 1000 / input.servers;
  let releaseWaitCdf: FixedServerModel["releaseWaitCdf"];
  if (formation === "sealed") {
    const total = releaseWaits.reduce((a, b) => a + b, 0);
    for (let i = 0; i < releaseWaits.length; i++) releaseWaits[i] = releaseWaits[i]! / total + (i > 0 ? releaseWaits[i - 1]! : 0);
    releaseWaitCdf = (ms) => {
      if (ms < 0) return 0;
      const i = Math.floor(ms / h);
      return i >= cells + 1 ? 1 : Math.min(1, releaseWaits[i]!);
    };
  }
  const cdf = (xMs: number): number => {
    const y = (xMs - extra) / hl;
    if (y < 0) return 0;
    const g = Math.floor(y);
    if (g >= bins - 1) return Math.min(1, cdfAt[bins - 1]!);
    const f = y - g;
    return Math.min(1, cdfAt[g]! * (1 - f) + cdfAt[g + 1]! * f);
  };
  const percentile = (q: number): number => {
    let lo = 0;
    let hi = bins - 1;
    if (cdfAt[hi]! < q) return Infinity;
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (cdfAt[mid]! >= q) hi = mid;
      else lo = mid;
    }
    const a = cdfAt[lo]!;
    const b = cdfAt[hi]!;
    const f = b > a ? (q - a) / (b - a) : 1;
    return extra + (lo + Math.min(1, Math.max(0, f))) * hl;
  };
  return {
    isStable: true,
    meanMs: meanSum / totalRequests + extra,
    batchSizeProbs,
    meanBatch,
    utilisation,
    truncatedMass: chain.lost + chain.tailMass,
    iterations: chain.iterations,
    cells,
    stepMs: h,
    cdf,
    percentile,
    ...(releaseWaitCdf && { releaseWaitCdf }),
  };
}
