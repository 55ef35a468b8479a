import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ctcSymbols, greedyCtcDecode } from "../../../src/models/ctc";

/** One-hot-ish rows: at each step, probability 0.9 on the given index. */
function steps(indices: number[], classes: number): Float32Array {
  const out = new Float32Array(indices.length * classes).fill(0.1 / (classes - 1));
  indices.forEach((index, t) => (out[t * classes + index] = 0.9));
  return out;
}

describe("greedyCtcDecode", () => {
  const symbols = ["", "a", "b", " "];

  it("drops blanks and repeats, but keeps a symbol repeated across a blank", () => {
    expect(greedyCtcDecode(steps([1, 1, 0, 1, 2, 2, 3, 2], 4), 8, symbols)).toEqual({ text: "aab b", confidence: expect.closeTo(0.9, 6) });
    expect(greedyCtcDecode(steps([0, 0], 4), 2, symbols)).toEqual({ text: "", confidence: 0 });
  });

  it("refuses data shorter than its steps", () => {
    expect(() => greedyCtcDecode(new Float32Array(7), 2, symbols)).toThrow(RangeError);
  });
});

describe("ctcSymbols", () => {
  it("maps PP-OCRv4's dictionary to the recogniser's 6625 outputs: blank, 6623 lines, space", () => {
    const symbols = ctcSymbols(readFileSync("models/ppocr-rec/ppocr_keys_v1.txt", "utf8"));
    expect(symbols.length).toBe(6625);
    expect([symbols[0], symbols.at(-1)]).toEqual(["", " "]);
    expect(symbols.slice(1).every((s) => s.length > 0)).toBe(true);
  });
});
