import { createHash } from "node:crypto";
import sharp from "sharp";
import { describe, expect, it } from "vitest";
import { availableFamilies, ocrTestSet, ppocrCharset } from "../../../bench/ocr/test-images";

const digest = (images: { png: Uint8Array }[]) => createHash("sha256").update(Buffer.concat(images.map((i) => i.png))).digest("hex");

describe("ocrTestSet", () => {
  it("is deterministic for a seed, image by image, and differs across seeds", async () => {
    const a = await ocrTestSet({ seed: 7, lines: 6, pages: 1 });
    const b = await ocrTestSet({ seed: 7, lines: 6, pages: 1 });
    expect(digest(a)).toBe(digest(b));
    expect(a.map((i) => i.lines)).toEqual(b.map((i) => i.lines));
    // Image i does not depend on how many are asked for.
    const fewer = await ocrTestSet({ seed: 7, lines: 3, pages: 0 });
    expect(fewer.map((i) => i.lines)).toEqual(a.slice(0, 3).map((i) => i.lines));
    expect(digest(fewer)).toBe(digest(a.slice(0, 3)));
    const other = await ocrTestSet({ seed: 8, lines: 6, pages: 0 });
    expect(other.map((i) => i.lines)).not.toEqual(a.slice(0, 6).map((i) => i.lines));
  });

  it("gives PNGs of the stated size, ids and kinds in order, and ground truth in the recogniser's characters", async () => {
    const set = await ocrTestSet({ seed: 3, lines: 12, pages: 2 });
    expect(set.map((i) => i.kind)).toEqual([...Array(12).fill("line"), "page", "page"]);
    expect(set[0]!.id).toBe("line-000");
    expect(set[12]!.id).toBe("page-00");
    const charset = ppocrCharset();
    expect(charset.size).toBe(6624); // 6623 dictionary symbols and a space
    for (const image of set) {
      const meta = await sharp(image.png).metadata();
      expect(meta.format).toBe("png");
      expect([meta.width, meta.height]).toEqual([image.width, image.height]);
      expect(image.lines.length).toBeGreaterThan(0);
      for (const line of image.lines) {
        expect(line).toBe(line.trim());
        expect(line).not.toMatch(/\s\s/);
        for (const c of line) expect(charset.has(c), `${image.id}: ${JSON.stringify(c)} in ${JSON.stringify(line)}`).toBe(true);
      }
      if (image.kind === "line") {
        expect(image.lines).toHaveLength(1);
        expect(image.height).toBeGreaterThanOrEqual(16);
      } else {
        expect([image.width, image.height]).toEqual([800, 1000]);
        expect(image.lines.length).toBeGreaterThanOrEqual(5);
        expect(image.lines.length).toBeLessThanOrEqual(15);
      }
    }
    expect(availableFamilies()).toContain("DejaVu Sans");
  });

  it("draws the text: a line image has dark-on-light or light-on-dark ink across its middle", async () => {
    const [image] = await ocrTestSet({ seed: 11, lines: 1, pages: 0 });
    const { data, info } = await sharp(image!.png).greyscale().raw().toBuffer({ resolveWithObject: true });
    const values = Array.from(data);
    expect(Math.max(...values) - Math.min(...values)).toBeGreaterThan(100);
    expect(info.width).toBe(image!.width);
  });
});
