/**
 * DB post-processing: the detector's probability map to text-line boxes, as PaddleOCR's
 * DBPostProcess (ppocr/postprocess/db_postprocess.py, box_type "quad", score_mode "fast", no
 * dilation) followed by TextDetector.filter_tag_det_res (predict_det.py) and sorted_boxes
 * (predict_system.py), with the PP-OCRv4 inference defaults: thresh 0.3, box_thresh 0.6,
 * unclip_ratio 1.5, max_candidates 1000, min_size 3. Pure; coordinates are pixels with (0, 0) at
 * the centre of the top-left pixel, as OpenCV's.
 *
 * Per candidate region, as boxes_from_bitmap:
 *  1. bitmap = prob > thresh; regions are its contours (cv2.findContours, RETR_LIST). We do not
 *     trace contours: every later step reads a contour only through cv2.minAreaRect, which depends
 *     on its convex hull alone, so each contour is replaced by a point set with the same hull. An
 *     outer contour is the border of an 8-connected foreground component, whose hull is the hull
 *     of the component's pixels (of its runs' end pixels). RETR_LIST also lists hole borders: a
 *     hole is a 4-connected background component not touching the image edge, and its border is
 *     the foreground pixels 4-adjacent to it, whose hull is the hull of the hole's run ends moved
 *     one pixel up, down, left and right. Contours are taken in OpenCV's list order (the reverse
 *     of the raster order in which they are found) for the max_candidates cut; the order of hole
 *     contours within it is approximate (it matters only past 1000 regions).
 *  2. get_mini_boxes: the minimum-area rectangle (exact, over the hull's edge directions) and its
 *     corners, rounded to float32 as cv2.boxPoints returns them, ordered as PaddleOCR does;
 *     dropped if its shorter side < min_size. (OpenCV computes the rectangle in float32, so a
 *     corner it places on a pixel can come out a few ulps off (44.99999 for 45), and the integer
 *     truncations of steps 3 and 4 then differ by a pixel: against OpenCV 4.9 (opencv.js) on random
 *     maps, about 1 box in 20 has a corner a pixel off; likewise a rectangle exactly min_size thick
 *     can fall either side of the threshold in OpenCV.)
 *  3. box_score_fast: the mean probability inside the rectangle over its bounding pixels, the
 *     polygon rasterised as cv2.fillPoly does (integer-truncated corners, 8-connected edges drawn,
 *     scanlines filled from rounded edge crossings); dropped if < box_thresh.
 *  4. unclip: pyclipper offsets the rectangle by d = area * unclip_ratio / perimeter with round
 *     joins, and get_mini_boxes takes the minimum-area rectangle of the result; dropped if its
 *     shorter side < min_size + 2. In real numbers this is the rectangle grown by d on every side
 *     (same centre and angle): the offset is the rectangle with sides pushed out by d and
 *     quarter-circle corners; its width in a direction t from the rectangle's axis is
 *     w|cos t| + h|sin t| + 2d, and (w cos t + h sin t + 2d)(w sin t + h cos t + 2d) >=
 *     (w + 2d)(h + 2d) on [0, 90deg] (expand: (w^2 + h^2) cos t sin t >= 0 and cos t + sin t >= 1).
 *     But pyclipper works on integers: it truncates the float corners it is given (int()) and
 *     rounds every output vertex, which moves the sides by up to half a map pixel (visible after
 *     scaling). So we run Clipper's offset itself on those integers (clipperOffset below, for the
 *     convex polygons this sees; no library) and take its minimum-area rectangle, which matches
 *     PaddleOCR's boxes exactly where the closed form is off by one.
 *  5. Corners scaled to the source image (x / mapWidth * sourceWidth, numpy's half-to-even
 *     rounding) and clipped to [0, size]; then filter_tag_det_res: corners reordered clockwise
 *     from top-left (order_points_clockwise), clipped to [0, size - 1], and boxes with a side of
 *     3 pixels or less (truncated) dropped.
 * Finally sorted_boxes: by top-left y then x, then neighbours whose top-left y differ by < 10 px
 * are put left to right.
 */
import { roundHalfEven } from "./det-input";

export type Point = [number, number];
/** Four corners, clockwise from top-left. */
export type Quad = [Point, Point, Point, Point];

/** A text line: its corners in source-image pixels (integers, clockwise from top-left, inside the image) and DB score (mean probability). */
export interface TextBox {
  points: Quad;
  score: number;
}

/** PaddleOCR's det_db_thresh, det_db_box_thresh and det_db_unclip_ratio. */
export interface DbOptions {
  thresh?: number;
  boxThresh?: number;
  unclipRatio?: number;
}

/** PaddleOCR's defaults for PP-OCRv4 inference (tools/infer/utility.py). */
export const DB_DEFAULTS: Required<DbOptions> = { thresh: 0.3, boxThresh: 0.6, unclipRatio: 1.5 };
const MAX_CANDIDATES = 1000;
const MIN_SIZE = 3;

/**
 * Text boxes from a DB probability map `prob` (height x width, row-major: the det output
 * [1, 1, height, width]) for a source image of `source` size, in reading order.
 */
export function detectBoxes(prob: Float32Array, height: number, width: number, source: { width: number; height: number }, options: DbOptions = {}): TextBox[] {
  const { thresh, boxThresh, unclipRatio } = { ...DB_DEFAULTS, ...options };
  if (prob.length < width * height) throw new RangeError(`probability map has ${prob.length} values, expected ${width} x ${height}`);
  const boxes: TextBox[] = [];
  for (const region of regionPoints(prob, width, height, thresh).slice(0, MAX_CANDIDATES)) {
    const rect = minAreaRect(region);
    if (Math.min(rect.width, rect.height) < MIN_SIZE) continue;
    const box = miniBox(rect);
    const score = boxScoreFast(prob, width, height, box);
    if (score < boxThresh) continue;
    const distance = (rect.width * rect.height * unclipRatio) / (2 * (rect.width + rect.height));
    const offset = clipperOffset(box, distance);
    if (!offset.length) continue; // corners that truncate to < 3 points: pyclipper returns nothing (and PaddleOCR fails)
    const grown = minAreaRect(offset);
    if (Math.min(grown.width, grown.height) < MIN_SIZE + 2) continue;
    const scaled = miniBox(grown).map(([x, y]): Point => [
      clamp(roundHalfEven((x / width) * source.width), 0, source.width),
      clamp(roundHalfEven((y / height) * source.height), 0, source.height),
    ]);
    const points = orderPointsClockwise(scaled).map(([x, y]): Point => [Math.min(x, source.width - 1), Math.min(y, source.height - 1)]) as Quad;
    if (Math.trunc(distanceOf(points[0], points[1])) <= 3 || Math.trunc(distanceOf(points[0], points[3])) <= 3) continue;
    boxes.push({ points, score });
  }
  return sortBoxes(boxes);
}

const clamp = (v: number, lo: number, hi: number) => (v < lo ? lo : v > hi ? hi : v);
const distanceOf = (a: Point, b: Point) => Math.hypot(a[0] - b[0], a[1] - b[1]);

// --- regions -----------------------------------------------------------------------------------

/**
 * Per contour cv2.findContours would list for `prob > thresh` (see step 1), a point set with the
 * same convex hull, in OpenCV's list order.
 */
function regionPoints(prob: Float32Array, width: number, height: number, thresh: number): Point[][] {
  // Runs of equal pixels per row; foreground runs join 8-connected, background runs 4-connected.
  const runs = { y: [] as number[], x0: [] as number[], x1: [] as number[], fore: [] as boolean[], parent: [] as number[] };
  const find = (r: number): number => {
    while (runs.parent[r] !== r) r = runs.parent[r] = runs.parent[runs.parent[r]!]!;
    return r;
  };
  const union = (a: number, b: number) => {
    const ra = find(a);
    const rb = find(b);
    if (ra !== rb) runs.parent[Math.max(ra, rb)] = Math.min(ra, rb); // the root is a component's first run
  };
  let previous = [0, 0];
  for (let y = 0; y < height; y++) {
    const first = runs.y.length;
    for (let x = 0, at = y * width; x < width; ) {
      const fore = prob[at + x]! > thresh;
      let end = x;
      while (end + 1 < width && prob[at + end + 1]! > thresh === fore) end++;
      runs.parent.push(runs.y.length);
      runs.y.push(y);
      runs.x0.push(x);
      runs.x1.push(end);
      runs.fore.push(fore);
      x = end + 1;
    }
    // Join with the previous row's runs of the same kind (8-connected: diagonal neighbours touch).
    for (const fore of [true, false]) {
      const reach = fore ? 1 : 0;
      let k = previous[0]!;
      for (let c = first; c < runs.y.length; c++) {
        if (runs.fore[c] !== fore) continue;
        while (k < previous[1]! && (runs.fore[k] !== fore || runs.x1[k]! + reach < runs.x0[c]!)) k++;
        for (let p = k; p < previous[1]! && runs.x0[p]! <= runs.x1[c]! + reach; p++) if (runs.fore[p] === fore) union(p, c);
      }
    }
    previous = [first, runs.y.length];
  }
  // Background components touching the image edge are the outside, not holes.
  const outside = new Set<number>();
  for (let r = 0; r < runs.y.length; r++) {
    if (!runs.fore[r] && (runs.y[r] === 0 || runs.y[r] === height - 1 || runs.x0[r] === 0 || runs.x1[r] === width - 1)) outside.add(find(r));
  }
  const regions = new Map<number, Point[]>();
  for (let r = 0; r < runs.y.length; r++) {
    const root = find(r);
    if (!runs.fore[r] && outside.has(root)) continue;
    const points = regions.get(root) ?? regions.set(root, []).get(root)!;
    const y = runs.y[r]!;
    const x0 = runs.x0[r]!;
    const x1 = runs.x1[r]!;
    if (runs.fore[r]) points.push([x0, y], [x1, y]);
    else points.push([x0 - 1, y], [x1 + 1, y], [x0, y - 1], [x1, y - 1], [x0, y + 1], [x1, y + 1]);
  }
  // Found in raster order at a component's first pixel (a hole's: the pixel left of it); listed last found first.
  const foundAt = (root: number) => runs.y[root]! * width + runs.x0[root]! - (runs.fore[root] ? 0 : 1);
  return [...regions.keys()].sort((a, b) => foundAt(b) - foundAt(a)).map((root) => regions.get(root)!);
}

// --- geometry ----------------------------------------------------------------------------------

/** Convex hull (Andrew's monotone chain): its vertices in order around it, without duplicate or collinear points. */
export function convexHull(points: Point[]): Point[] {
  const sorted = [...points].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const unique = sorted.filter((p, i) => i === 0 || p[0] !== sorted[i - 1]![0] || p[1] !== sorted[i - 1]![1]);
  if (unique.length < 3) return unique;
  const cross = (o: Point, a: Point, b: Point) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const chain = (pts: Point[]) => {
    const out: Point[] = [];
    for (const p of pts) {
      while (out.length >= 2 && cross(out[out.length - 2]!, out[out.length - 1]!, p) <= 0) out.pop();
      out.push(p);
    }
    out.pop();
    return out;
  };
  return [...chain(unique), ...chain(unique.reverse())];
}

/** A rotated rectangle: centre, unit vector along its `width` side, and side lengths. */
export interface RotatedRect {
  center: Point;
  axis: Point;
  width: number;
  height: number;
}

/**
 * cv2.minAreaRect: the smallest-area rectangle enclosing `points`. One side of it lies along an
 * edge of the convex hull, so each hull edge direction is tried (in doubles; OpenCV's rotating
 * calipers find the same rectangle, in float32). One point gives a 0 x 0 rectangle, two a segment
 * (height 0).
 */
export function minAreaRect(points: Point[]): RotatedRect {
  const hull = convexHull(points);
  if (hull.length === 0) throw new RangeError("minAreaRect of no points");
  if (hull.length === 1) return { center: hull[0]!, axis: [1, 0], width: 0, height: 0 };
  let best: RotatedRect | undefined;
  let bestArea = Infinity;
  for (let i = 0; i < (hull.length === 2 ? 1 : hull.length); i++) {
    const a = hull[i]!;
    const b = hull[(i + 1) % hull.length]!;
    const length = distanceOf(a, b);
    const u: Point = [(b[0] - a[0]) / length, (b[1] - a[1]) / length];
    let minU = Infinity, maxU = -Infinity, minV = Infinity, maxV = -Infinity;
    for (const [x, y] of hull) {
      const pu = x * u[0] + y * u[1];
      const pv = y * u[0] - x * u[1];
      minU = Math.min(minU, pu), maxU = Math.max(maxU, pu), minV = Math.min(minV, pv), maxV = Math.max(maxV, pv);
    }
    const area = (maxU - minU) * (maxV - minV);
    if (area < bestArea) {
      bestArea = area;
      const cu = (minU + maxU) / 2;
      const cv = (minV + maxV) / 2;
      best = { center: [cu * u[0] - cv * u[1], cu * u[1] + cv * u[0]], axis: u, width: maxU - minU, height: maxV - minV };
    }
  }
  return best!;
}

/** The rectangle's four corners (cv2.boxPoints, in no particular order). */
export function rectCorners({ center: [cx, cy], axis: [ux, uy], width, height }: RotatedRect): Quad {
  const [ax, ay] = [(ux * width) / 2, (uy * width) / 2];
  const [bx, by] = [(-uy * height) / 2, (ux * height) / 2];
  return [
    [cx - ax - bx, cy - ay - by],
    [cx + ax - bx, cy + ay - by],
    [cx + ax + bx, cy + ay + by],
    [cx - ax + bx, cy - ay + by],
  ];
}

/**
 * pyclipper's PyclipperOffset().AddPath(polygon, JT_ROUND, ET_CLOSEDPOLYGON).Execute(delta) for a
 * convex polygon and delta > 0, as Clipper 6.4's ClipperOffset computes it: coordinates truncated
 * to integers (pyclipper's int()), consecutive duplicates dropped (fewer than 3 points: nothing),
 * oriented so its Clipper area is positive, each edge pushed out by delta along its unit normal and
 * each corner joined by an arc of points stepped by 2 pi / steps, steps = pi / acos(1 - tol / delta)
 * (tol = min(0.25, delta / 4), at most delta * pi), every point rounded half away from zero.
 * Returns the points (the final union only tidies the outline; its hull is the same).
 */
export function clipperOffset(polygon: Point[], delta: number): Point[] {
  const path: Point[] = [];
  for (const [x, y] of polygon) {
    const p: Point = [Math.trunc(x), Math.trunc(y)];
    const last = path[path.length - 1];
    if (!last || last[0] !== p[0] || last[1] !== p[1]) path.push(p);
  }
  while (path.length > 1 && path[0]![0] === path[path.length - 1]![0] && path[0]![1] === path[path.length - 1]![1]) path.pop();
  if (path.length < 3) return [];
  let area = 0;
  for (let i = 0, j = path.length - 1; i < path.length; j = i++) area += (path[j]![0] + path[i]![0]) * (path[j]![1] - path[i]![1]);
  if (-area / 2 < 0) path.reverse();
  const tolerance = Math.min(0.25, delta * 0.25);
  const steps = Math.min(Math.PI / Math.acos(1 - tolerance / delta), delta * Math.PI);
  const [sin, cos, stepsPerRad] = [Math.sin((2 * Math.PI) / steps), Math.cos((2 * Math.PI) / steps), steps / (2 * Math.PI)];
  const round = (v: number) => (v < 0 ? Math.trunc(v - 0.5) : Math.trunc(v + 0.5));
  const normals = path.map(([x0, y0], j): Point => {
    const [x1, y1] = path[(j + 1) % path.length]!;
    const length = Math.hypot(x1 - x0, y1 - y0);
    return [(y1 - y0) / length, -(x1 - x0) / length];
  });
  const out: Point[] = [];
  const at = (j: number, [nx, ny]: Point): Point => [round(path[j]![0] + nx * delta), round(path[j]![1] + ny * delta)];
  for (let j = 0, k = path.length - 1; j < path.length; j++) {
    const [nk, nj] = [normals[k]!, normals[j]!];
    const sinA = nk[0] * nj[1] - nj[0] * nk[1];
    const cosA = nk[0] * nj[0] + nk[1] * nj[1];
    if (Math.abs(sinA * delta) < 1 && cosA > 0) {
      out.push(at(j, nk)); // (almost) straight on; Clipper keeps k here
      continue;
    }
    if (sinA * delta < 0) {
      out.push(at(j, nk), path[j]!, at(j, nj)); // a reflex corner
    } else {
      // DoRound: from the previous edge's normal, rotated step by step, then the next edge's normal.
      const count = Math.max(Math.round(stepsPerRad * Math.abs(Math.atan2(Math.min(1, Math.max(-1, sinA)), cosA))), 1);
      let [x, y] = nk;
      for (let i = 0; i < count; i++) {
        out.push(at(j, [x, y]));
        [x, y] = [x * cos - sin * y, x * sin + y * cos];
      }
      out.push(at(j, nj));
    }
    k = j;
  }
  return out;
}

/** get_mini_boxes: the corners (float32) in PaddleOCR's order: corners sorted by x; of the left two the upper is first and the lower last, of the right two the upper second. */
function miniBox(rect: RotatedRect): Quad {
  // float32, as cv2.boxPoints returns them (a corner on a pixel is then exactly that pixel, as in OpenCV).
  const p = rectCorners(rect).map(([x, y]): Point => [Math.fround(x), Math.fround(y)]).sort((a, b) => a[0] - b[0]);
  const [i1, i4] = p[1]![1] > p[0]![1] ? [0, 1] : [1, 0];
  const [i2, i3] = p[3]![1] > p[2]![1] ? [2, 3] : [3, 2];
  return [p[i1]!, p[i2]!, p[i3]!, p[i4]!];
}

/** predict_det's order_points_clockwise: the two leftmost (stable by x) are top-left and bottom-left by y, the others top-right and bottom-right. */
function orderPointsClockwise(points: Point[]): Quad {
  const byX = [...points].sort((a, b) => a[0] - b[0]);
  const [tl, bl] = byX.slice(0, 2).sort((a, b) => a[1] - b[1]) as [Point, Point];
  const [tr, br] = byX.slice(2).sort((a, b) => a[1] - b[1]) as [Point, Point];
  return [tl, tr, br, bl];
}

// --- score -------------------------------------------------------------------------------------

/** box_score_fast: mean of `prob` over the box polygon rasterised as cv2.fillPoly within the box's bounding pixels. */
function boxScoreFast(prob: Float32Array, width: number, height: number, box: Quad): number {
  const xs = box.map((p) => p[0]);
  const ys = box.map((p) => p[1]);
  const xmin = clamp(Math.floor(Math.min(...xs)), 0, width - 1);
  const xmax = clamp(Math.ceil(Math.max(...xs)), 0, width - 1);
  const ymin = clamp(Math.floor(Math.min(...ys)), 0, height - 1);
  const ymax = clamp(Math.ceil(Math.max(...ys)), 0, height - 1);
  const mw = xmax - xmin + 1;
  const mh = ymax - ymin + 1;
  const mask = fillPoly(mw, mh, box.map(([x, y]): Point => [Math.trunc(x - xmin), Math.trunc(y - ymin)]));
  let sum = 0;
  let count = 0;
  for (let y = 0; y < mh; y++) {
    for (let x = 0; x < mw; x++) {
      if (mask[y * mw + x]) {
        sum += prob[(ymin + y) * width + xmin + x]!;
        count++;
      }
    }
  }
  return count ? sum / count : 0;
}

/**
 * cv2.fillPoly(mask, [polygon], 1) with LINE_8 and integer vertices (OpenCV's CollectPolyEdges +
 * FillEdgeCollection): each edge is drawn as an 8-connected line, clipped to the mask first
 * (clipLine); each scanline y is filled between consecutive crossings of the edges active on it
 * (y0 <= y < y1), x in 16.16 fixed point from the vertex + 0.5 (from the clipped end points, without
 * the 0.5, for an edge that leaves the mask), floored.
 */
function fillPoly(mw: number, mh: number, polygon: Point[]): Uint8Array {
  const mask = new Uint8Array(mw * mh);
  const set = (x: number, y: number) => (mask[y * mw + x] = 1);
  const inside = (x: number, y: number) => x >= 0 && x < mw && y >= 0 && y < mh;
  const edges: Array<{ y0: number; y1: number; x: number; dx: number }> = [];
  for (let i = 0; i < polygon.length; i++) {
    const [ax, ay] = polygon[(i + polygon.length - 1) % polygon.length]!;
    const [bx, by] = polygon[i]!;
    let [x0, y0, x1, y1] = [ax * 65536 + 32768, ay, bx * 65536 + 32768, by];
    if (inside(ax, ay) && inside(bx, by)) line8(ax, ay, bx, by, set);
    else {
      const [cx0, cy0, cx1, cy1, visible] = clipLine(mw, mh, ax, ay, bx, by);
      if (visible) line8(cx0, cy0, cx1, cy1, set);
      if (cy0 !== cy1) [x0, y0, x1, y1] = [cx0 * 65536, cy0, cx1 * 65536, cy1];
    }
    if (ay === by) continue;
    const dx = Math.trunc((x1 - x0) / (y1 - y0));
    edges.push(ay < by ? { y0: ay, y1: by, x: x0 + (ay - y0) * dx, dx } : { y0: by, y1: ay, x: x1 + (by - y1) * dx, dx });
  }
  for (let y = Math.max(0, Math.min(...edges.map((e) => e.y0))); y < Math.min(mh, Math.max(...edges.map((e) => e.y1))); y++) {
    const crossings = edges.filter((e) => e.y0 <= y && y < e.y1).map((e) => e.x + (y - e.y0) * e.dx).sort((a, b) => a - b);
    for (let i = 0; i + 1 < crossings.length; i += 2) {
      const from = Math.max(0, Math.floor(crossings[i]! / 65536));
      const to = Math.min(mw - 1, Math.floor(crossings[i + 1]! / 65536));
      for (let x = from; x <= to; x++) mask[y * mw + x] = 1;
    }
  }
  return mask;
}

/** OpenCV's clipLine to [0, w-1] x [0, h-1] (integer Cohen-Sutherland): the clipped end points and whether any of the line is inside. */
function clipLine(w: number, h: number, x1: number, y1: number, x2: number, y2: number): [number, number, number, number, boolean] {
  const [right, bottom] = [w - 1, h - 1];
  const code = (x: number, y: number) => +(x < 0) + +(x > right) * 2 + +(y < 0) * 4 + +(y > bottom) * 8;
  let [c1, c2] = [code(x1, y1), code(x2, y2)];
  if ((c1 & c2) === 0 && (c1 | c2) !== 0) {
    if (c1 & 12) {
      const a = c1 < 8 ? 0 : bottom;
      x1 += Math.trunc(((a - y1) * (x2 - x1)) / (y2 - y1));
      y1 = a;
      c1 = +(x1 < 0) + +(x1 > right) * 2;
    }
    if (c2 & 12) {
      const a = c2 < 8 ? 0 : bottom;
      x2 += Math.trunc(((a - y2) * (x2 - x1)) / (y2 - y1));
      y2 = a;
      c2 = +(x2 < 0) + +(x2 > right) * 2;
    }
    if ((c1 & c2) === 0 && (c1 | c2) !== 0) {
      if (c1) {
        const a = c1 === 1 ? 0 : right;
        y1 += Math.trunc(((a - x1) * (y2 - y1)) / (x2 - x1));
        x1 = a;
        c1 = 0;
      }
      if (c2) {
        const a = c2 === 1 ? 0 : right;
        y2 += Math.trunc(((a - x2) * (y2 - y1)) / (x2 - x1));
        x2 = a;
        c2 = 0;
      }
    }
  }
  return [x1, y1, x2, y2, (c1 | c2) === 0];
}

/** OpenCV's 8-connected line (LineIterator, left to right): `count = major + 1` pixels, error term `major - 2 minor`. */
function line8(x0: number, y0: number, x1: number, y1: number, set: (x: number, y: number) => void): void {
  if (x1 < x0) [x0, y0, x1, y1] = [x1, y1, x0, y0];
  const dx = x1 - x0;
  const dy = Math.abs(y1 - y0);
  const stepY = y1 < y0 ? -1 : 1;
  const xMajor = dx >= dy;
  const major = xMajor ? dx : dy;
  const minor = xMajor ? dy : dx;
  let err = major - 2 * minor;
  for (let i = 0, x = x0, y = y0; i <= major; i++) {
    set(x, y);
    const diagonal = err < 0;
    err += -2 * minor + (diagonal ? 2 * major : 0);
    if (xMajor) (x += 1), (y += diagonal ? stepY : 0);
    else (y += stepY), (x += diagonal ? 1 : 0);
  }
}

// --- order -------------------------------------------------------------------------------------

/** sorted_boxes: by top-left (y, x), then a box whose top-left y is within 10 px of its predecessor's and left of it moves before it (bubbling up). */
function sortBoxes(boxes: TextBox[]): TextBox[] {
  const out = [...boxes].sort((a, b) => a.points[0][1] - b.points[0][1] || a.points[0][0] - b.points[0][0]);
  for (let i = 0; i < out.length - 1; i++) {
    for (let j = i; j >= 0; j--) {
      const [a, b] = [out[j]!, out[j + 1]!];
      if (Math.abs(b.points[0][1] - a.points[0][1]) < 10 && b.points[0][0] < a.points[0][0]) [out[j], out[j + 1]] = [b, a];
      else break;
    }
  }
  return out;
}
