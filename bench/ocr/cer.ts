/**
 * Character error rate (CER) of OCR output against ground truth: edits (substituted, deleted and
 * inserted characters, Levenshtein) / reference characters. Text is compared by Unicode code point,
 * case kept; each line is normalised first: whitespace runs become one space, ends trimmed, empty
 * lines dropped. Spaces inside a line count as characters (but in `spacelessCer`). Four variants,
 * applied identically to every system:
 *
 * - `orderFreeCer` (the primary metric): a predicted line identical to a reference line pairs with it
 *   (0 edits); each other reference line is found, as an approximate substring
 *   (semi-global alignment: free start and end in the prediction), in the predicted text, best
 *   matches first (greedily: the reference line whose best span has the fewest edits per character
 *   is taken, its span cut out, and the rest searched again); the matched span's edits are counted
 *   and the text on either side of the cut becomes two pieces, so a later match cannot run across
 *   it. Reference lines whose best span does no better than deleting them are deleted (all their
 *   characters counted). What is left of the prediction, trimmed, counts as inserted characters. The predicted lines are joined
 *   with spaces in the order the system returns them (both return them top to bottom).
 *   Why primary: it scores recognition and detection (a missed line costs all its characters, a
 *   spurious one all of its own) but not reading order or line grouping, which the systems decide
 *   differently from each other and from the ground truth on the same pixels: @gutenye/ocr-node joins
 *   boxes whose midlines are within half a box height into one line (the two columns of a page come
 *   back as one line per row), and a detector may split one line at a wide gap. An order-sensitive
 *   CER charges a moved 40-character line up to 80 edits; this one charges it nothing. The price: a
 *   space beside a cut is free (it must be: it is the space that joined two merged lines), and the
 *   greedy matching is not a global optimum. For a single line it equals the plain Levenshtein CER
 *   whenever the best span is the whole prediction (the usual case) and is never more than 2 edits
 *   below it (the spaces on either side of the cut).
 * - `lineMatchedCer`: whole predicted lines matched one to one to reference lines (greedily, the pair
 *   with the lowest edits per reference character first); edits of the pairs, plus every character of
 *   unmatched reference lines (deleted) and of unmatched predicted lines (inserted). Charges line
 *   segmentation: a merged or split line costs most of a line.
 * - `orderedCer`: plain Levenshtein between the reference lines joined by spaces in reading order and
 *   the predicted lines joined by spaces in the returned order. Charges reading order too.
 * - `spacelessCer`: the order-free CER with every space removed from both sides first (reference
 *   length without spaces). PP-OCRv4's recogniser often drops the space between words in small text
 *   (the peer's errors on the test set are mostly that), so this separates word spacing from
 *   misread characters.
 *
 * Each function returns the edit count and reference length, so a corpus CER is the sum of edits over
 * the sum of reference characters (micro average), not a mean of per-image rates. An empty reference
 * gives a rate of 0 for an empty prediction and 1 otherwise (edits = inserted characters, reference
 * counted as 1).
 */

/** Edits against a reference of `referenceChars` characters; `cer` = edits / referenceChars. */
export interface CerResult {
  edits: number;
  referenceChars: number;
  cer: number;
}

/** One line normalised: whitespace runs to one space, trimmed. */
export function normaliseLine(line: string): string {
  return line.replace(/\s+/gu, " ").trim();
}

/** Lines normalised (normaliseLine), empty ones dropped. */
export function normaliseLines(lines: readonly string[]): string[] {
  return lines.map(normaliseLine).filter((line) => line !== "");
}

const codePoints = (text: string) => Array.from(text);

/** Levenshtein distance between two strings, by code point (unit costs). */
export function levenshtein(a: string, b: string): number {
  const x = codePoints(a);
  const y = codePoints(b);
  if (x.length === 0) return y.length;
  if (y.length === 0) return x.length;
  let previous = new Int32Array(y.length + 1);
  let current = new Int32Array(y.length + 1);
  for (let j = 0; j <= y.length; j++) previous[j] = j;
  for (let i = 1; i <= x.length; i++) {
    current[0] = i;
    for (let j = 1; j <= y.length; j++) {
      const substitution = previous[j - 1]! + (x[i - 1] === y[j - 1] ? 0 : 1);
      current[j] = Math.min(substitution, previous[j]! + 1, current[j - 1]! + 1);
    }
    [previous, current] = [current, previous];
  }
  return previous[y.length]!;
}

const result = (edits: number, referenceChars: number): CerResult => ({ edits, referenceChars, cer: referenceChars > 0 ? edits / referenceChars : edits > 0 ? 1 : 0 });
const lengthOf = (lines: readonly string[]) => lines.reduce((sum, line) => sum + codePoints(line).length, 0);

/** Plain CER of one prediction string against one reference string, both normalised. */
export function cer(reference: string, prediction: string): CerResult {
  const ref = normaliseLine(reference);
  return result(levenshtein(ref, normaliseLine(prediction)), codePoints(ref).length);
}

/** `orderedCer` of the module doc. */
export function orderedCer(reference: readonly string[], prediction: readonly string[]): CerResult {
  return cer(normaliseLines(reference).join(" "), normaliseLines(prediction).join(" "));
}

/** Whether [start, end) of `text` lies on word boundaries: text's ends or spaces on both sides. */
const isOnWordBoundaries = (text: readonly string[], start: number, end: number) => (start === 0 || text[start - 1] === " ") && (end === text.length || text[end] === " ");

/**
 * The best approximate occurrence of `pattern` in `text` (semi-global alignment: the whole pattern
 * against any span of text): its edits and span [start, end) in code points; among equal edits a
 * span on word boundaries (text's ends or spaces on both sides: a whole line of a joined prediction,
 * not the end of one and the start of the next), then the longest span (fewest characters left over).
 */
export function bestSpan(pattern: readonly string[], text: readonly string[]): { edits: number; start: number; end: number } {
  const m = pattern.length;
  const n = text.length;
  if (m === 0) return { edits: 0, start: 0, end: 0 };
  // cost[j] and from[j]: edits and span start of the best alignment of pattern[0, i) ending at text j.
  let cost = new Int32Array(n + 1);
  let from = new Int32Array(n + 1);
  let nextCost = new Int32Array(n + 1);
  let nextFrom = new Int32Array(n + 1);
  for (let j = 0; j <= n; j++) from[j] = j;
  for (let i = 1; i <= m; i++) {
    nextCost[0] = i;
    nextFrom[0] = 0;
    for (let j = 1; j <= n; j++) {
      const diagonal = cost[j - 1]! + (pattern[i - 1] === text[j - 1] ? 0 : 1);
      const up = cost[j]! + 1; // pattern character deleted
      const left = nextCost[j - 1]! + 1; // text character inserted
      // Ties: the earlier start (the longer span).
      let best = diagonal;
      let start = from[j - 1]!;
      if (up < best || (up === best && from[j]! < start)) {
        best = up;
        start = from[j]!;
      }
      if (left < best || (left === best && nextFrom[j - 1]! < start)) {
        best = left;
        start = nextFrom[j - 1]!;
      }
      nextCost[j] = best;
      nextFrom[j] = start;
    }
    [cost, nextCost] = [nextCost, cost];
    [from, nextFrom] = [nextFrom, from];
  }
  const isAligned = (j: number) => isOnWordBoundaries(text, from[j]!, j);
  let end = 0;
  for (let j = 1; j <= n; j++) {
    const [aligned, endAligned] = [isAligned(j), isAligned(end)];
    if (cost[j]! < cost[end]! || (cost[j] === cost[end] && (aligned !== endAligned ? aligned : j - from[j]! > end - from[end]!))) end = j;
  }
  return { edits: cost[end]!, start: from[end]!, end };
}

/** `orderFreeCer` of the module doc (the primary metric). */
export function orderFreeCer(reference: readonly string[], prediction: readonly string[]): CerResult {
  const referenceLines = normaliseLines(reference);
  // A predicted line identical to a reference line is that line read right: they pair first (0
  // edits), so that the greedy search below cannot hand part of it to another line that repeats a
  // fragment of it ("11 11" taking the "11" of "a 11").
  const pairs = new Map<string, number>();
  for (const line of referenceLines) pairs.set(line, (pairs.get(line) ?? 0) + 1);
  const predicted = normaliseLines(prediction).filter((line) => {
    const left = pairs.get(line) ?? 0;
    if (left > 0) pairs.set(line, left - 1);
    return left === 0;
  });
  // What is left of the counts is the reference lines that found no identical predicted line.
  const refs = referenceLines
    .filter((line) => {
      const unpaired = pairs.get(line)!;
      if (unpaired > 0) pairs.set(line, unpaired - 1);
      return unpaired > 0;
    })
    .map(codePoints);
  const joined = predicted.join(" ");
  /** The prediction's pieces not yet matched; each keeps its best span per reference line (computed once). */
  type Piece = { chars: string[]; spans: Map<number, ReturnType<typeof bestSpan>> };
  const piece = (chars: string[]): Piece => ({ chars, spans: new Map() });
  let pieces: Piece[] = joined === "" ? [] : [piece(codePoints(joined))];
  const trim = (chars: string[]) => {
    let start = 0;
    let end = chars.length;
    while (start < end && chars[start] === " ") start++;
    while (end > start && chars[end - 1] === " ") end--;
    return chars.slice(start, end);
  };
  const spanOf = (p: Piece, r: number) => {
    let span = p.spans.get(r);
    if (!span) p.spans.set(r, (span = bestSpan(refs[r]!, p.chars)));
    return span;
  };
  let edits = 0;
  const open = new Set(refs.keys());
  while (open.size > 0) {
    // The best match left: the lowest edits per reference character, then a span on word boundaries
    // (a whole line of the joined prediction), then the longer line, then the earlier.
    let best: { r: number; p: number; edits: number; start: number; end: number; rate: number; aligned: boolean } | undefined;
    for (const r of open) {
      pieces.forEach((p, index) => {
        const span = spanOf(p, r);
        const rate = span.edits / refs[r]!.length;
        const aligned = isOnWordBoundaries(p.chars, span.start, span.end);
        const better =
          !best ||
          rate < best.rate ||
          (rate === best.rate &&
            (aligned !== best.aligned
              ? aligned
              : refs[r]!.length > refs[best.r]!.length || (refs[r]!.length === refs[best.r]!.length && (r < best.r || (r === best.r && span.end - span.start > best.end - best.start)))));
        if (better) best = { r, p: index, rate, aligned, ...span };
      });
    }
    // No span does better than deleting the line: every line left is deleted.
    if (!best || best.edits >= refs[best.r]!.length) break;
    open.delete(best.r);
    edits += best.edits;
    const cut = pieces[best.p]!.chars;
    const rest = [trim(cut.slice(0, best.start)), trim(cut.slice(best.end))].filter((c) => c.length > 0).map(piece);
    pieces = [...pieces.slice(0, best.p), ...rest, ...pieces.slice(best.p + 1)];
  }
  for (const r of open) edits += refs[r]!.length;
  edits += pieces.reduce((sum, p) => sum + p.chars.length, 0);
  return result(edits, lengthOf(referenceLines));
}

/** `lineMatchedCer` of the module doc. */
export function lineMatchedCer(reference: readonly string[], prediction: readonly string[]): CerResult {
  const refs = normaliseLines(reference);
  const preds = normaliseLines(prediction);
  const pairs: Array<{ r: number; p: number; edits: number; rate: number }> = [];
  refs.forEach((ref, r) =>
    preds.forEach((pred, p) => {
      const edits = levenshtein(ref, pred);
      // Only pairs better than deleting the reference and inserting the prediction.
      if (edits < codePoints(ref).length + codePoints(pred).length) pairs.push({ r, p, edits, rate: edits / Math.max(1, codePoints(ref).length) });
    }),
  );
  pairs.sort((a, b) => a.rate - b.rate || a.edits - b.edits || a.r - b.r || a.p - b.p);
  const refUsed = new Set<number>();
  const predUsed = new Set<number>();
  let edits = 0;
  for (const pair of pairs) {
    if (refUsed.has(pair.r) || predUsed.has(pair.p)) continue;
    refUsed.add(pair.r);
    predUsed.add(pair.p);
    edits += pair.edits;
  }
  edits += lengthOf(refs.filter((_, r) => !refUsed.has(r)));
  edits += lengthOf(preds.filter((_, p) => !predUsed.has(p)));
  return result(edits, lengthOf(refs));
}

/** Characters of a reference (normalised lines), the denominator of every variant. */
export function referenceLength(lines: readonly string[]): number {
  return lengthOf(normaliseLines(lines));
}

/** `spacelessCer` of the module doc. */
export function spacelessCer(reference: readonly string[], prediction: readonly string[]): CerResult {
  const strip = (lines: readonly string[]) => lines.map((line) => line.replace(/\s+/gu, ""));
  return orderFreeCer(strip(reference), strip(prediction));
}

/** The four variants for one image. */
export interface ImageCer {
  orderFree: CerResult;
  lineMatched: CerResult;
  ordered: CerResult;
  spaceless: CerResult;
}

/** All four variants of one image's prediction. */
export function imageCer(reference: readonly string[], prediction: readonly string[]): ImageCer {
  return { orderFree: orderFreeCer(reference, prediction), lineMatched: lineMatchedCer(reference, prediction), ordered: orderedCer(reference, prediction), spaceless: spacelessCer(reference, prediction) };
}

/** Corpus CER: summed edits over summed reference characters (micro average). */
export function pooled(results: readonly CerResult[]): CerResult {
  return result(
    results.reduce((sum, r) => sum + r.edits, 0),
    results.reduce((sum, r) => sum + r.referenceChars, 0),
  );
}
