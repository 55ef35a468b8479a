/**
 * DB post-processing (src/ocr/db-postprocess.ts). The geometry against closed forms and brute
 * force: convex hulls, minimum-area rectangles of rotated rectangles and random point sets, the
 * unclip closed form (rectangle grown by d) against a numerically offset shape, and Clipper's
 * integer offset against it. detectBoxes on synthetic probability maps whose expected boxes are
 * computed from the drawn rectangles: axis-aligned (exact, Clipper's rounding included), rotated
 * (within 2.5 px), too-faint and too-thin regions dropped, a hole listed as its own contour
 * (cv2.RETR_LIST), scaling to the source, clipping, and reading order.
 */
import { describe, expect, it } from "vitest";
import { clipperOffset, convexHull, detectBoxes, minAreaRect, rectCorners, type Point, type Quad } from "../../../src/ocr/db-postprocess";

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32). */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const cross = (o: Point, a: Point, b: Point) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);

/** The corners of a w x h rectangle centred at (cx, cy), its w side at `angle` radians. */
function rectangle(cx: number, cy: number, w: number, h: number, angle: number): Quad {
  const [c, s] = [Math.cos(angle), Math.sin(angle)];
  return ([[-1, -1], [1, -1], [1, 1], [-1, 1]] as const).map(([a, b]): Point => [cx + (a * w * c) / 2 - (b * h * s) / 2, cy + (a * w * s) / 2 + (b * h * c) / 2]) as Quad;
}

/** Smallest bounding-rectangle area over the directions of all point pairs (a superset of the hull's edges). */
function bruteForceMinArea(points: Point[]): number {
  let best = Infinity;
  for (const a of points) {
    for (const b of points) {
      const length = Math.hypot(b[0] - a[0], b[1] - a[1]);
      if (length === 0) continue;
      const [ux, uy] = [(b[0] - a[0]) / length, (b[1] - a[1]) / length];
      const us = points.map(([x, y]) => x * ux + y * uy);
      const vs = points.map(([x, y]) => y * ux - x * uy);
      best = Math.min(best, (Math.max(...us) - Math.min(...us)) * (Math.max(...vs) - Math.min(...vs)));
    }
  }
  return best;
}

/** Sorts corners so two quads compare regardless of starting corner. */
const sortedCorners = (quad: Point[]) => [...quad].sort((a, b) => a[0] - b[0] || a[1] - b[1]);

describe("geometry", () => {
  it("convexHull keeps exactly the extreme points, in order, none collinear", () => {
    expect(sortedCorners(convexHull([[0, 0], [4, 0], [2, 0], [4, 4], [0, 4], [2, 2], [1, 3], [0, 2], [4, 4]]))).toEqual([[0, 0], [0, 4], [4, 0], [4, 4]]);
    const next = random(7);
    for (let t = 0; t < 50; t++) {
      const points = Array.from({ length: 3 + Math.floor(next() * 60) }, (): Point => [Math.round(next() * 40), Math.round(next() * 25)]);
      const hull = convexHull(points);
      for (let i = 0; i < hull.length && hull.length >= 3; i++) {
        const [a, b, c] = [hull[i]!, hull[(i + 1) % hull.length]!, hull[(i + 2) % hull.length]!];
        expect(cross(a, b, c)).toBeGreaterThan(0); // strictly convex, one orientation
        for (const p of points) expect(cross(a, b, p)).toBeGreaterThanOrEqual(0); // everything inside or on it
        expect(points).toContainEqual(a);
      }
    }
  });

  it("minAreaRect recovers rotated rectangles of known angle and sides", () => {
    const next = random(3);
    for (const degrees of [0, 17, 45, 73, 90, 120, 163]) {
      const corners = rectangle(50, 40, 40, 12, (degrees * Math.PI) / 180);
      // Corners plus points inside.
      const inside = Array.from({ length: 30 }, (): Point => {
        const [a, b] = [next() - 0.5, next() - 0.5];
        const [p, q, r] = [corners[0], corners[1], corners[3]];
        return [p[0] + (a + 0.5) * (q[0] - p[0]) + (b + 0.5) * (r[0] - p[0]), p[1] + (a + 0.5) * (q[1] - p[1]) + (b + 0.5) * (r[1] - p[1])];
      });
      const rect = minAreaRect([...corners, ...inside]);
      expect([rect.width, rect.height].sort((a, b) => a - b)).toEqual([expect.closeTo(12, 9), expect.closeTo(40, 9)]);
      expect(rect.center[0]).toBeCloseTo(50, 9);
      expect(rect.center[1]).toBeCloseTo(40, 9);
      sortedCorners(rectCorners(rect)).forEach((p, i) => {
        expect(p[0]).toBeCloseTo(sortedCorners(corners)[i]![0], 9);
        expect(p[1]).toBeCloseTo(sortedCorners(corners)[i]![1], 9);
      });
    }
  });

  it("minAreaRect matches a brute-force minimum over all directions and encloses the points", () => {
    const next = random(11);
    for (let t = 0; t < 60; t++) {
      const points = Array.from({ length: 3 + Math.floor(next() * 25) }, (): Point => [next() * 100, next() * 30 + next() * next() * 50]);
      const rect = minAreaRect(points);
      expect(rect.width * rect.height).toBeCloseTo(bruteForceMinArea(points), 6);
      const [ux, uy] = rect.axis;
      for (const [x, y] of points) {
        const [dx, dy] = [x - rect.center[0], y - rect.center[1]];
        expect(Math.abs(dx * ux + dy * uy)).toBeLessThanOrEqual(rect.width / 2 + 1e-9);
        expect(Math.abs(dy * ux - dx * uy)).toBeLessThanOrEqual(rect.height / 2 + 1e-9);
      }
    }
    expect(minAreaRect([[3, 4]])).toMatchObject({ center: [3, 4], width: 0, height: 0 });
    expect(minAreaRect([[0, 0], [2, 2], [4, 4]])).toMatchObject({ width: expect.closeTo(Math.hypot(4, 4), 9), height: 0 });
  });

  it("unclip: the round-joined offset of a w x h rectangle by d has the (w + 2d) x (h + 2d) rectangle as its minimum-area rectangle", () => {
    const next = random(5);
    for (let t = 0; t < 20; t++) {
      const [w, h, angle] = [5 + next() * 200, 3 + next() * 40, next() * Math.PI];
      const d = (w * h * 1.5) / (2 * (w + h)); // DB's distance at unclip_ratio 1.5
      // The offset shape numerically: a circle of radius d around each corner (its convex hull is the offset).
      const shape = rectangle(70, 50, w, h, angle).flatMap(([x, y]) => Array.from({ length: 1440 }, (_, k): Point => [x + d * Math.cos((k * Math.PI) / 720), y + d * Math.sin((k * Math.PI) / 720)]));
      const rect = minAreaRect(shape);
      const [short, long] = [h + 2 * d, w + 2 * d].sort((a, b) => a - b);
      expect([rect.width, rect.height].sort((a, b) => a - b)).toEqual([expect.closeTo(short!, 3), expect.closeTo(long!, 3)]);
      expect(rect.center[0]).toBeCloseTo(70, 6);
      // Clipper's offset of the truncated corners, rounded: near the closed form (truncation moves a
      // corner by < 1 px per coordinate, rounding by <= 0.5).
      const clipped = minAreaRect(clipperOffset(rectangle(70, 50, w, h, angle), d));
      const [small, large] = [clipped.width, clipped.height].sort((a, b) => a - b);
      expect(Math.abs(small! - short!)).toBeLessThan(3);
      expect(Math.abs(large! - long!)).toBeLessThan(3);
    }
  });

  it("clipperOffset: an integer axis-aligned rectangle grows to the rounded sides (Clipper rounds half away from zero)", () => {
    const d = (100 * 30 * 1.5) / (2 * 130); // 17.307...
    const rect = minAreaRect(clipperOffset([[10, 20], [110, 20], [110, 50], [10, 50]], d));
    const xs = rectCorners(rect).map((p) => p[0]);
    const ys = rectCorners(rect).map((p) => p[1]);
    expect([Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)].map((v) => Math.round(v * 1e9) / 1e9)).toEqual([-7, 127, 3, 67]);
    // Corners that truncate to fewer than three distinct points offset to nothing (pyclipper returns []).
    expect(clipperOffset([[1.2, 1.5], [1.9, 1.1], [1.4, 1.8], [5.5, 1.9]], 2)).toEqual([]);
  });
});

/** A probability map with `background`, and `paint` to fill the pixels whose centres lie in a rectangle. */
function probabilityMap(width: number, height: number, background = 0.02) {
  const prob = new Float32Array(width * height).fill(background);
  const paint = (quad: Quad, value: number) => {
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        if (quad.every((a, i) => cross(a, quad[(i + 1) % 4]!, [x, y]) >= -1e-9)) prob[y * width + x] = value;
      }
    }
  };
  /** An axis-aligned block of pixels [x0, x1] x [y0, y1], inclusive. */
  const block = (x0: number, y0: number, x1: number, y1: number, value: number) => {
    for (let y = y0; y <= y1; y++) prob.fill(value, y * width + x0, y * width + x1 + 1);
  };
  return { prob, paint, block };
}

/**
 * DB's box for a block of pixels [x0, x1] x [y0, y1] in a `width` x `height` map (source of the
 * same size): the pixel-centre rectangle's sides pushed out by d = area * 1.5 / perimeter and
 * rounded (Clipper, half away from zero), then clipped to the image.
 */
function grownBlock(x0: number, y0: number, x1: number, y1: number, width = 1e9, height = 1e9): Quad {
  const [w, h] = [x1 - x0, y1 - y0];
  const d = (w * h * 1.5) / (2 * (w + h));
  const round = (v: number) => Math.sign(v) * Math.round(Math.abs(v));
  const [l, t] = [Math.max(0, round(x0 - d)), Math.max(0, round(y0 - d))];
  const [r, b] = [Math.min(width - 1, round(x1 + d)), Math.min(height - 1, round(y1 + d))];
  return [[l, t], [r, t], [r, b], [l, b]];
}

describe("detectBoxes", () => {
  it("recovers an axis-aligned region as its grown rectangle, exactly, with its mean probability", () => {
    const { prob, block } = probabilityMap(200, 160);
    block(20, 30, 119, 45, 0.9);
    const [box, ...rest] = detectBoxes(prob, 160, 200, { width: 200, height: 160 });
    expect(rest).toEqual([]);
    expect(box!.points).toEqual(grownBlock(20, 30, 119, 45)); // [[10, 20], [129, 20], [129, 55], [10, 55]]
    expect(box!.points).toEqual([[10, 20], [129, 20], [129, 55], [10, 55]]);
    expect(box!.score).toBeCloseTo(0.9, 6);
    // In a source twice the map's size, corners scale (and round) with it.
    expect(detectBoxes(prob, 160, 200, { width: 400, height: 320 })[0]!.points).toEqual([[20, 40], [258, 40], [258, 110], [20, 110]]);
  });

  it("recovers rotated regions within a couple of pixels of the grown rectangle", () => {
    for (const degrees of [25, -12, 60]) {
      const { prob, paint } = probabilityMap(240, 220);
      const angle = (degrees * Math.PI) / 180;
      paint(rectangle(120, 110, 90, 16, angle), 0.85);
      const boxes = detectBoxes(prob, 220, 240, { width: 240, height: 220 });
      expect(boxes).toHaveLength(1);
      const d = (90 * 16 * 1.5) / (2 * 106);
      const expected = sortedCorners(rectangle(120, 110, 90 + 2 * d, 16 + 2 * d, angle));
      sortedCorners(boxes[0]!.points).forEach(([x, y], i) => {
        expect(Math.abs(x - expected[i]![0])).toBeLessThan(2.5);
        expect(Math.abs(y - expected[i]![1])).toBeLessThan(2.5);
      });
      // Clockwise from the top-left corner (the leftmost two: upper first).
      const [tl, tr, br, bl] = boxes[0]!.points;
      expect(cross(tl, tr, br)).toBeGreaterThan(0);
      expect(Math.max(tl[0], bl[0])).toBeLessThanOrEqual(Math.min(tr[0], br[0]));
      expect(tl[1]).toBeLessThanOrEqual(bl[1]);
    }
  });

  it("drops regions whose mean probability is under box_thresh, or thinner than min_size", () => {
    const { prob, block } = probabilityMap(200, 120);
    block(10, 10, 100, 30, 0.5); // above thresh (0.3), mean under box_thresh (0.6)
    block(10, 50, 100, 70, 0.65); // kept
    block(10, 90, 150, 91, 0.99); // two rows: its rectangle is 1 pixel tall, under min_size 3
    const boxes = detectBoxes(prob, 120, 200, { width: 200, height: 120 });
    expect(boxes.map((b) => b.points)).toEqual([grownBlock(10, 50, 100, 70, 200, 120)]);
    expect(detectBoxes(prob, 120, 200, { width: 200, height: 120 }, { boxThresh: 0.45 })).toHaveLength(2);
  });

  it("lists a hole as a contour of its own, as cv2.findContours(RETR_LIST) does", () => {
    const { prob, block } = probabilityMap(120, 80);
    block(10, 10, 100, 60, 0.95);
    block(40, 30, 42, 32, 0); // a 3 x 3 hole: its border (5 x 5 pixels) scores (16 x 0.95) / 25 = 0.608
    const boxes = detectBoxes(prob, 80, 120, { width: 120, height: 80 });
    expect(boxes).toHaveLength(2);
    const hole = boxes.find((b) => b.points[0][0] > 20)!;
    expect(hole.score).toBeCloseTo((16 * 0.95) / 25, 5);
    // The hole's border runs over pixels 39..43 x 29..33: a 4 x 4 rectangle grown by d = 16 * 1.5 / 16 = 1.5,
    // which Clipper rounds away from zero (37.5 -> 38, 44.5 -> 45).
    expect(hole.points).toEqual([[38, 28], [45, 28], [45, 35], [38, 35]]);
  });

  it("clips boxes to the image and sorts them into reading order", () => {
    const { prob, block } = probabilityMap(200, 140);
    block(120, 50, 180, 60, 0.9); // on the same line as the next, 4 px higher: still after it
    block(20, 54, 80, 64, 0.9);
    block(30, 100, 199, 139, 0.9); // touches the right and bottom edges
    block(10, 5, 60, 15, 0.9); // first line
    const boxes = detectBoxes(prob, 140, 200, { width: 200, height: 140 });
    expect(boxes.map((b) => b.points)).toEqual([[10, 5, 60, 15], [20, 54, 80, 64], [120, 50, 180, 60], [30, 100, 199, 139]].map(([x0, y0, x1, y1]) => grownBlock(x0!, y0!, x1!, y1!, 200, 140)));
    expect(boxes[3]!.points[2]).toEqual([199, 139]);
    for (const { points } of boxes) for (const [x, y] of points) expect([x >= 0 && x <= 199, y >= 0 && y <= 139]).toEqual([true, true]);
  });
});
