/**
 * Small dense linear algebra for the planner: square matrices of a MAP's phase count (usually 1-4)
 * stored row-major in `Float64Array`s, plus the few operations the model needs (products, solves,
 * stationary vectors) and a matrix exponential used to cross-check the counting-process code.
 *
 * Nothing here is tuned for large matrices; sizes are tiny and clarity wins.
 */

/** A square matrix of order `n`, row-major: entry (i, j) is `data[i * n + j]`. */
export interface Matrix {
  readonly n: number;
  readonly data: Float64Array;
}

/** Builds a matrix from rows (all rows must have the same length as the number of rows). */
export function fromRows(rows: readonly (readonly number[])[]): Matrix {
  const n = rows.length;
  const data = new Float64Array(n * n);
  rows.forEach((row, i) => {
    if (row.length !== n) throw new RangeError(`row ${i} has ${row.length} entries, expected ${n}`);
    row.forEach((v, j) => (data[i * n + j] = v));
  });
  return { n, data };
}

/** Converts a matrix back to nested arrays (for JSON output and tests). */
export function toRows(a: Matrix): number[][] {
  return Array.from({ length: a.n }, (_, i) => Array.from(a.data.subarray(i * a.n, (i + 1) * a.n)));
}

/** The zero matrix of order n. */
export function zeros(n: number): Matrix {
  return { n, data: new Float64Array(n * n) };
}

/** The identity matrix of order n. */
export function identity(n: number): Matrix {
  const a = zeros(n);
  for (let i = 0; i < n; i++) a.data[i * n + i] = 1;
  return a;
}

/** Entry (i, j). */
export function at(a: Matrix, i: number, j: number): number {
  return a.data[i * a.n + j]!;
}

/** a + b. */
export function add(a: Matrix, b: Matrix): Matrix {
  const c = zeros(a.n);
  for (let i = 0; i < c.data.length; i++) c.data[i] = a.data[i]! + b.data[i]!;
  return c;
}

/** s * a. */
export function scale(a: Matrix, s: number): Matrix {
  const c = zeros(a.n);
  for (let i = 0; i < c.data.length; i++) c.data[i] = a.data[i]! * s;
  return c;
}

/** a * b. */
export function mul(a: Matrix, b: Matrix): Matrix {
  const n = a.n;
  const c = zeros(n);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < n; k++) {
      const aik = a.data[i * n + k]!;
      if (aik === 0) continue;
      for (let j = 0; j < n; j++) c.data[i * n + j]! += aik * b.data[k * n + j]!;
    }
  return c;
}

/** Row vector times matrix: v * a. */
export function vecMul(v: ArrayLike<number>, a: Matrix): Float64Array {
  const n = a.n;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const vi = v[i]!;
    if (vi === 0) continue;
    for (let j = 0; j < n; j++) out[j]! += vi * a.data[i * n + j]!;
  }
  return out;
}

/** Matrix times the all-ones column: the row sums of a. */
export function rowSums(a: Matrix): Float64Array {
  const out = new Float64Array(a.n);
  for (let i = 0; i < a.n; i++) for (let j = 0; j < a.n; j++) out[i]! += a.data[i * a.n + j]!;
  return out;
}

/** Dot product of two vectors of equal length. */
export function dot(u: ArrayLike<number>, v: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < u.length; i++) s += u[i]! * v[i]!;
  return s;
}

/** Largest absolute row sum (the infinity norm). */
export function normInf(a: Matrix): number {
  let best = 0;
  for (let i = 0; i < a.n; i++) {
    let s = 0;
    for (let j = 0; j < a.n; j++) s += Math.abs(a.data[i * a.n + j]!);
    best = Math.max(best, s);
  }
  return best;
}

/**
 * Solves a * X = b for X by Gaussian elimination with partial pivoting.
 * Throws a RangeError when a is (numerically) singular.
 */
export function solve(a: Matrix, b: Matrix): Matrix {
  const n = a.n;
  const m = Float64Array.from(a.data);
  const x = Float64Array.from(b.data);
  for (let col = 0; col < n; col++) {
    let piv = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(m[r * n + col]!) > Math.abs(m[piv * n + col]!)) piv = r;
    const p = m[piv * n + col]!;
    if (Math.abs(p) < 1e-300) throw new RangeError("singular matrix");
    if (piv !== col) {
      for (let j = 0; j < n; j++) {
        [m[col * n + j], m[piv * n + j]] = [m[piv * n + j]!, m[col * n + j]!];
        [x[col * n + j], x[piv * n + j]] = [x[piv * n + j]!, x[col * n + j]!];
      }
    }
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const f = m[r * n + col]! / p;
      if (f === 0) continue;
      for (let j = 0; j < n; j++) {
        m[r * n + j]! -= f * m[col * n + j]!;
        x[r * n + j]! -= f * x[col * n + j]!;
      }
    }
  }
  for (let r = 0; r < n; r++) {
    const p = m[r * n + r]!;
    for (let j = 0; j < n; j++) x[r * n + j]! /= p;
  }
  return { n, data: x };
}

/** The inverse of a (throws on a singular matrix). */
export function inverse(a: Matrix): Matrix {
  return solve(a, identity(a.n));
}

/**
 * The stationary row vector x of a stochastic matrix p (x p = x, sum x = 1), or of a generator q
 * when `isGenerator` (x q = 0). Solved directly, replacing one balance equation by the normalisation.
 */
export function stationary(p: Matrix, isGenerator = false): Float64Array {
  const n = p.n;
  if (n === 1) return Float64Array.of(1);
  // Rows of the system: (p - I)^T x^T = 0 with the last equation replaced by sum(x) = 1.
  const sys = zeros(n);
  const rhs = zeros(n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) sys.data[i * n + j] = p.data[j * n + i]! - (!isGenerator && i === j ? 1 : 0);
  for (let j = 0; j < n; j++) sys.data[(n - 1) * n + j] = 1;
  rhs.data[(n - 1) * n] = 1;
  const x = solve(sys, rhs);
  return Float64Array.from({ length: n }, (_, i) => Math.max(0, x.data[i * n]!));
}

/**
 * Matrix exponential e^a by scaling and squaring with a [6/6] Padé approximant
 * (Higham's scheme, simplified: scale so that the norm is <= 0.5, then square back).
 */
export function expm(a: Matrix): Matrix {
  const n = a.n;
  const norm = normInf(a);
  const squarings = norm > 0.5 ? Math.ceil(Math.log2(norm / 0.5)) : 0;
  const x = scale(a, 2 ** -squarings);
  // Padé [6/6] coefficients c_k = (2q-k)! q! / ((2q)! k! (q-k)!) with q = 6.
  const c = [1, 1 / 2, 5 / 44, 1 / 66, 1 / 792, 1 / 15840, 1 / 665280];
  let num = identity(n);
  let den = identity(n);
  let power = identity(n);
  for (let k = 1; k < c.length; k++) {
    power = mul(power, x);
    const term = scale(power, c[k]!);
    num = add(num, term);
    den = add(den, k % 2 === 0 ? term : scale(term, -1));
  }
  let result = solve(den, num);
  for (let i = 0; i < squarings; i++) result = mul(result, result);
  return result;
}
