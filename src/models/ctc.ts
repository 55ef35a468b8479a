/**
 * Greedy CTC decoding of a text recogniser's output (PP-OCR's CTCLabelDecode): per time step the most
 * probable symbol; repeats of the previous step's symbol and the blank are dropped. Symbols follow
 * PaddleOCR's convention for its dictionaries: index 0 is the blank, indices 1..N are the
 * dictionary's lines in order, and N + 1 is a space (`use_space_char`). For PP-OCRv4's
 * ppocr_keys_v1.txt (models/ppocr-rec/) that is 1 + 6623 + 1 = 6625 symbols, the recogniser's
 * last dimension. Pure: the dictionary's text is passed in.
 */
import type { Tensor } from "../protocol/tensor";
import { reduceLastAxis } from "./derived-outputs";

/** The symbol of each output index: blank (""), then the dictionary's lines, then a space. */
export function ctcSymbols(dictionaryText: string): string[] {
  const lines = dictionaryText.split(/\r?\n/);
  if (lines.at(-1) === "") lines.pop();
  return ["", ...lines, " "];
}

/** A decoded text line and its confidence: the mean probability of the symbols kept (0 for an empty line). */
export interface CtcText {
  text: string;
  confidence: number;
}

/**
 * Decodes `steps` time steps of probabilities laid out [steps, symbols.length] (one request's row of
 * the recogniser's output). Throws when the data does not match the symbols.
 */
export function greedyCtcDecode(probabilities: Float32Array, steps: number, symbols: readonly string[]): CtcText {
  const classes = symbols.length;
  if (probabilities.length < steps * classes) throw new RangeError(`${probabilities.length} values for ${steps} steps of ${classes} symbols`);
  // The reductions the recogniser's derived outputs are (src/models/derived-outputs.ts), here over the whole row.
  const rows: Tensor = { name: "probabilities", datatype: "FP32", shape: [steps, classes], data: probabilities.subarray(0, steps * classes) };
  return ctcDecodeSteps(reduceLastAxis(rows, "argmax", "argmax").data as Int32Array, reduceLastAxis(rows, "max", "max").data as Float32Array, steps, symbols);
}

/**
 * Decodes `steps` time steps given each step's most probable symbol and its probability (the
 * recogniser's derived outputs `argmax` and `max`): the same text and confidence as greedyCtcDecode
 * over the full probabilities. Throws when an index is not a symbol's.
 */
export function ctcDecodeSteps(best: ArrayLike<number>, bestProbability: ArrayLike<number>, steps: number, symbols: readonly string[]): CtcText {
  if (best.length < steps || bestProbability.length < steps) throw new RangeError(`${Math.min(best.length, bestProbability.length)} steps given, ${steps} needed`);
  let text = "";
  let sum = 0;
  let kept = 0;
  let previous = -1;
  for (let t = 0; t < steps; t++) {
    const symbol = best[t]!;
    if (!(symbol >= 0 && symbol < symbols.length)) throw new RangeError(`step ${t}: index ${symbol} is not one of ${symbols.length} symbols`);
    if (symbol !== 0 && symbol !== previous) {
      text += symbols[symbol];
      sum += bestProbability[t]!;
      kept++;
    }
    previous = symbol;
  }
  return { text, confidence: kept ? sum / kept : 0 };
}
