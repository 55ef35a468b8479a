import { SELF } from "cloudflare:test";
import { it, expect } from "vitest";
it("serves cls", async () => {
  const data = Array.from({ length: 3 * 48 * 192 }, (_, i) => (i % 17) / 17);
  const r = await SELF.fetch("http://x/v2/models/ppocr-cls/infer", { method: "POST", body: JSON.stringify({ inputs: [{ name: "x", datatype: "FP32", shape: [1, 3, 48, 192], data }] }) });
  console.log(r.status, JSON.stringify([...r.headers]), (await r.text()).slice(0, 300));
  const v = await SELF.fetch("http://x/v2/models/silero-vad/infer", { method: "POST", body: JSON.stringify({ inputs: [{ name: "input", datatype: "FP32", shape: [2, 512], data: Array.from({ length: 1024 }, (_, i) => Math.sin(i / 5)) }] }) });
  console.log(v.status, JSON.stringify([...v.headers]), (await v.text()).slice(0, 300));
  expect(r.status).toBe(200);
});
