import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { accuracyMarkdown, measureAccuracy } from "../../../bench/ocr/accuracy";
import { createPeer, type Peer } from "../../../bench/ocr/peer";
import { ocrTestSet } from "../../../bench/ocr/test-images";

// A small real run of @gutenye/ocr-node on rendered lines: checks the harness (rendering, the peer's
// input path, scoring), not a hard-coded reading.
describe("the peer on rendered lines", () => {
  let peer: Peer;
  beforeAll(async () => {
    peer = await createPeer({ threads: 1 });
  });
  afterAll(async () => {
    await peer?.close();
  });

  it("reads three lines with a CER under 0.2, with boxes and scores", async () => {
    const set = await ocrTestSet({ seed: 1, lines: 3, pages: 0 });
    const lines = await peer.recognise(set[0]!.png);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines[0]!.box).toHaveLength(4);
    expect(lines[0]!.score).toBeGreaterThan(0.5);
    const report = await measureAccuracy({ peer: async (png) => (await peer.recognise(png)).map((l) => l.text) }, set, { warmUp: false });
    const peerResult = report.systems.peer!;
    expect(peerResult.rows).toHaveLength(3);
    expect(peerResult.failures).toBe(0);
    expect(peerResult.cer.all.referenceChars).toBe(set.reduce((n, i) => n + i.lines[0]!.length, 0));
    expect(peerResult.cer.line.cer).toBeLessThan(0.2);
    expect(accuracyMarkdown(report)).toContain("| peer |");
  });

  it("scores a failing system as reading nothing", async () => {
    const set = await ocrTestSet({ seed: 1, lines: 2, pages: 0 });
    const report = await measureAccuracy({ broken: async () => { throw new Error("no"); }, blank: async () => [] }, set);
    expect(report.systems.broken!.failures).toBe(2);
    expect(report.systems.broken!.cer.all.cer).toBe(1);
    expect(report.systems.blank!.cer.line.cer).toBe(1);
    expect(Number.isNaN(report.systems.blank!.cer.page.cer)).toBe(false);
  });
});
