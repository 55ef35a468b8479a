import { SELF } from "cloudflare:test";
import { it, expect } from "vitest";
it("runs", async () => {
  const r = await SELF.fetch("http://x/");
  const j = await r.json() as any;
  console.log(JSON.stringify(j));
  expect(j.out.length).toBe(2);
});
