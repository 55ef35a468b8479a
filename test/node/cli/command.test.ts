import { InvalidArgumentError } from "commander";
import { describe, expect, it } from "vitest";
import { httpUrl, integerIn, listOf, numberWhere, repeatable } from "../../../src/cli/command";

/** The message of the usage error `parse(value)` throws. */
function refusal(parse: (value: string) => unknown, value: string): string {
  try {
    parse(value);
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidArgumentError);
    return (error as Error).message;
  }
  throw new Error(`${value} was accepted`);
}

describe("the CLIs' option value parsers", () => {
  it("numberWhere: finite numbers for which the check holds", () => {
    const rate = numberWhere("a rate in (0, 200]", (n) => n > 0 && n <= 200);
    expect(rate("40")).toBe(40);
    expect(rate("0.5")).toBe(0.5);
    for (const bad of ["", " ", "abc", "40/s", "NaN", "Infinity", "0", "201"]) expect(refusal(rate, bad)).toBe("expected a rate in (0, 200].");
  });

  it("integerIn: integers within the bounds", () => {
    const trials = integerIn(1, 10);
    expect(trials("3")).toBe(3);
    expect(trials("10")).toBe(10);
    for (const bad of ["0", "11", "2.5", "three"]) expect(refusal(trials, bad)).toBe("expected an integer in [1, 10].");
  });

  it("listOf: comma-separated known names, an unknown one named", () => {
    const models = listOf("model", ["ppocr-cls", "silero-vad"]);
    expect(models("silero-vad")).toEqual(["silero-vad"]);
    expect(models("ppocr-cls, silero-vad,")).toEqual(["ppocr-cls", "silero-vad"]);
    expect(refusal(models, "ppocr-cls,whisper")).toBe('unknown model "whisper"; known: ppocr-cls, silero-vad.');
    expect(refusal(models, ",")).toBe("expected a comma-separated list of models (ppocr-cls, silero-vad).");
  });

  it("httpUrl and repeatable", () => {
    expect(httpUrl("http://127.0.0.1:8787")).toBe("http://127.0.0.1:8787");
    expect(refusal(httpUrl, "127.0.0.1:8787")).toMatch(/expected an http\(s\) URL/);
    expect(refusal(httpUrl, "ftp://127.0.0.1")).toMatch(/expected an http\(s\) URL/);
    expect(repeatable("b", repeatable("a"))).toEqual(["a", "b"]);
  });
});
