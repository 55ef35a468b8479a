import { describe, expect, it } from "vitest";
import { renderFigure } from "../../../bench/lib/svg-plot";

const attrs = (svg: string, tag: string) => [...svg.matchAll(new RegExp(`<${tag} ([^>]*)/>`, "g"))].map((m) => Object.fromEntries([...m[1]!.matchAll(/([\w-]+)="([^"]*)"/g)].map((a) => [a[1], a[2]])));
const tickLabels = (svg: string) => [...svg.matchAll(/text-anchor="(?:end|middle)">([^<]*)</g)].map((m) => m[1]);

describe("renderFigure", () => {
  it("draws bars from the axis, the bar series of a panel side by side", () => {
    const svg = renderFigure({ title: "t", xLabel: "batch", xMaxS: 4, xTicks: [1, 2, 3], panels: [{ yLabel: "n", yMax: 10, series: [
      { name: "a", color: "#a00", shape: "bars", points: [[1, 10], [2, 5], [3, NaN]] },
      { name: "b", color: "#0a0", shape: "bars", points: [[1, 2]] },
    ] }] });
    const bars = attrs(svg, "rect").filter((r) => r.fill !== "none" && r.fill !== "white" && Number(r.width) !== 10);
    expect(bars.map((r) => r.fill)).toEqual(["#a00", "#a00", "#0a0"]);
    const [a1, a2, b1] = bars.map((r) => ({ x: Number(r.x), y: Number(r.y), w: Number(r.width), h: Number(r.height) }));
    expect(a1!.y + a1!.h).toBeCloseTo(a2!.y + a2!.h, 1); // one baseline
    expect(a1!.h).toBeCloseTo(2 * a2!.h, 0);
    expect(b1!.x).toBeCloseTo(a1!.x + a1!.w, 1); // beside a's bar at x = 1, not over it
    expect(svg).not.toContain("<path");
  });

  it("scatters markers on log axes with 1-2-5 ticks and draws y = x where both ranges meet", () => {
    const svg = renderFigure({ title: "t", xLabel: "predicted ms", xLog: true, xMinS: 10, xMaxS: 1000, panels: [{ yLabel: "measured ms", yLog: true, identityLine: "y = x", series: [{ name: "runs", color: "#00f", shape: "markers", points: [[20, 30], [200, 150]] }] }] });
    expect(svg).not.toContain("<path");
    expect(tickLabels(svg)).toEqual(expect.arrayContaining(["10", "20", "50", "100", "200", "500", "1000"]));
    const [p, q] = attrs(svg, "circle").filter((c) => c.r === "3.5").map((c) => [Number(c.cx), Number(c.cy)] as const);
    const identity = attrs(svg, "line").find((l) => l.stroke === "#777" && l["stroke-dasharray"] && l.x1 !== l.x2 && l.y1 !== l.y2)!;
    // The y axis runs 20 to 200 (the data rounded out), so y = x runs from 20 to 200 too: the decade the markers' x span.
    expect(q![0] - p![0]).toBeCloseTo(Number(identity.x2) - Number(identity.x1), 0);
    expect(Number(identity.x1)).toBeCloseTo(p![0], 0);
    expect(Number(identity.y2)).toBeLessThan(Number(identity.y1)); // rising to the right
    expect(svg).toContain(">y = x</text>"); // in the legend
  });

  it("widens the legend for long names and escapes text", () => {
    const short = renderFigure({ title: "a < b", xLabel: "s", xMaxS: 10, panels: [{ yLabel: "y", series: [{ name: "x", color: "#000", points: [[0, 1]] }] }] });
    const long = renderFigure({ title: "t", xLabel: "s", xMaxS: 10, panels: [{ yLabel: "y", series: [{ name: "a rather long series name, json", color: "#000", points: [[0, 1]] }] }] });
    const plotWidth = (svg: string) => Number(attrs(svg, "rect").find((r) => r.stroke === "#999")!.width);
    expect(plotWidth(long)).toBeLessThan(plotWidth(short));
    expect(short).toContain("a &lt; b");
  });
});
