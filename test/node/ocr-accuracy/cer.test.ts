import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bestSpan, cer, imageCer, levenshtein, lineMatchedCer, normaliseLine, orderedCer, orderFreeCer, pooled, spacelessCer } from "../../../bench/ocr/cer";

describe("levenshtein and plain cer", () => {
  it("is 0 for identical text and counts substitutions, insertions and deletions once each", () => {
    expect(cer("Invoice 12", "Invoice 12")).toEqual({ edits: 0, referenceChars: 10, cer: 0 });
    expect(cer("abcdefghij", "abcdXfghij").cer).toBeCloseTo(1 / 10, 12);
    expect(cer("abcdefgh", "abcdeXfgh")).toEqual({ edits: 1, referenceChars: 8, cer: 1 / 8 }); // insertion
    expect(cer("abcdefgh", "abcdfgh")).toEqual({ edits: 1, referenceChars: 8, cer: 1 / 8 }); // deletion
    expect(levenshtein("kitten", "sitting")).toBe(3);
    expect(levenshtein("", "abc")).toBe(3);
  });

  it("gives 1 for an empty prediction and can exceed 1 with insertions", () => {
    expect(cer("total", "").cer).toBe(1);
    expect(cer("ab", "abcdef").cer).toBe(2);
  });

  it("normalises whitespace runs and keeps case", () => {
    expect(normaliseLine("  a \t b\n c  ")).toBe("a b c");
    expect(cer("Total  due", " Total due ").cer).toBe(0);
    expect(cer("Total", "total").cer).toBeCloseTo(1 / 5, 12);
  });

  it("counts by code point", () => {
    expect(cer("价格 $5", "价格 $6")).toEqual({ edits: 1, referenceChars: 5, cer: 1 / 5 });
  });
});

describe("bestSpan", () => {
  it("finds a pattern inside text with free ends and prefers the longest of equal spans", () => {
    const chars = (s: string) => Array.from(s);
    expect(bestSpan(chars("world"), chars("hello world again"))).toEqual({ edits: 0, start: 6, end: 11 });
    expect(bestSpan(chars("wXrld"), chars("hello world"))).toEqual({ edits: 1, start: 6, end: 11 });
    expect(bestSpan(chars("abc"), chars("xyz")).edits).toBe(3);
  });
});

describe("orderFreeCer (primary)", () => {
  const page = ["Quarterly Report", "Revenue grew 12.5% in March", "Costs fell by $1,200"];

  it("is 0 for a perfect reading in any order, merged or split", () => {
    expect(orderFreeCer(page, page).cer).toBe(0);
    expect(orderFreeCer(page, [...page].reverse()).cer).toBe(0);
    // Two columns read as one line per row, and a line split at a gap.
    expect(orderFreeCer(page, ["Quarterly Report", "Revenue grew 12.5% in March Costs fell by $1,200"]).cer).toBe(0);
    expect(orderFreeCer(page, ["Quarterly", "Report", "Costs fell by $1,200", "Revenue grew 12.5% in March"]).cer).toBe(0);
  });

  it("charges 1/n for one substitution in n characters", () => {
    const n = page.join("").length;
    const r = orderFreeCer(page, ["Quarterly Report", "Revenue grew 12.5% in Narch", "Costs fell by $1,200"]);
    expect(r).toEqual({ edits: 1, referenceChars: n, cer: 1 / n });
  });

  it("charges a missed line all its characters and a spurious line all of its own", () => {
    const n = page.join("").length;
    expect(orderFreeCer(page, page.slice(0, 2)).edits).toBe(page[2]!.length);
    expect(orderFreeCer(page, [...page, "XYZ"]).edits).toBe(3);
    expect(orderFreeCer(page, []).cer).toBe(1);
    expect(orderFreeCer(page, []).referenceChars).toBe(n);
  });

  it("equals plain CER on a single line", () => {
    for (const [ref, pred] of [["Party 25.7% website", "Party25.7%website"], ["abc", "xabcx"], ["order no. 5", "0rder no 5."], ["abc", ""]] as const) {
      expect(orderFreeCer([ref], [pred]).edits).toBe(cer(ref, pred).edits);
    }
  });
});

describe("lineMatchedCer and orderedCer", () => {
  const page = ["left one", "right one", "left two", "right two"];

  it("are 0 for a perfect reading in reading order", () => {
    expect(lineMatchedCer(page, page).cer).toBe(0);
    expect(orderedCer(page, page).cer).toBe(0);
  });

  it("line matching ignores order but charges merged lines; the ordered CER charges order", () => {
    expect(lineMatchedCer(page, [...page].reverse()).cer).toBe(0);
    expect(orderedCer(page, [...page].reverse()).cer).toBeGreaterThan(0.3);
    const merged = ["left one right one", "left two right two"];
    expect(orderFreeCer(page, merged).cer).toBe(0);
    expect(lineMatchedCer(page, merged).cer).toBeGreaterThan(0.3);
  });

  it("line-matched: one substitution is 1/n, an empty prediction 1", () => {
    const n = page.join("").length;
    expect(lineMatchedCer(page, ["left one", "right onE", "left two", "right two"]).cer).toBeCloseTo(1 / n, 12);
    expect(lineMatchedCer(page, []).cer).toBe(1);
  });
});

describe("spacelessCer", () => {
  it("ignores spaces only", () => {
    expect(spacelessCer(["Party 25.7% website"], ["Party25.7%website"])).toEqual({ edits: 0, referenceChars: 17, cer: 0 });
    expect(spacelessCer(["Party 25.7%"], ["Party 25.1%"]).cer).toBeCloseTo(1 / 10, 12);
    expect(orderFreeCer(["Party 25.7% website"], ["Party25.7%website"]).edits).toBe(2);
  });
});

describe("pooled and imageCer", () => {
  it("pools edits over reference characters, not rates", () => {
    const a = cer("abcdefghij", "abcdefghiX"); // 1 / 10
    const b = cer("ab", ""); // 2 / 2
    expect(pooled([a, b])).toEqual({ edits: 3, referenceChars: 12, cer: 3 / 12 });
    const zero = (referenceChars: number) => ({ edits: 0, referenceChars, cer: 0 });
    expect(imageCer(["a b"], ["a b"])).toEqual({ orderFree: zero(3), lineMatched: zero(3), ordered: zero(3), spaceless: zero(2) });
  });
});

describe("properties", () => {
  const line = fc.string({ unit: fc.constantFrom("a", "b", "c", " ", "1", "."), minLength: 1, maxLength: 12 });

  it("orderFreeCer is 0 for the reference lines in any order and on one line within the plain CER's edits less the two spaces beside a cut", () => {
    // Orders fast-check once found that greedy matching got wrong: a line that repeats a fragment of another took it.
    for (const [lines, order] of [
      [["ac", "c c"], [0, 1]],
      [["  .a", "aaaa", "c", "c . "], [2, 0, 1, 3]],
      [["a 11", "11 11", "a"], [0, 1, 2]],
    ] as Array<[string[], number[]]>)
      expect(orderFreeCer(lines, order.map((i) => lines[i]!)).edits).toBe(0);
    fc.assert(
      fc.property(fc.array(line, { minLength: 1, maxLength: 6 }), fc.integer(), (lines, seed) => {
        const shuffled = [...lines].sort((a, b) => ((a.length * 31 + seed) % 7) - ((b.length * 31 + seed) % 7));
        expect(orderFreeCer(lines, shuffled).edits).toBe(0);
      }),
    );
    fc.assert(
      fc.property(line, line, (ref, pred) => {
        const plain = cer(ref, pred);
        const free = orderFreeCer([ref], [pred]);
        expect(free.referenceChars).toBe(plain.referenceChars);
        expect(free.edits).toBeGreaterThanOrEqual(plain.edits - 2);
        expect(free.edits).toBeLessThanOrEqual(plain.referenceChars + normaliseLine(pred).length);
      }),
    );
  });
});
