import { createOrtWebSession, ort } from "./edge/ort-web";
import cls from "../models/ppocr-cls/model.onnx";
export default {
  async fetch(): Promise<Response> {
    const t0 = performance.now();
    const s = await createOrtWebSession(cls);
    const t1 = performance.now();
    const x = new ort.Tensor("float32", new Float32Array(3 * 48 * 192).fill(0.5), [1, 3, 48, 192]);
    const out = await s.run({ [s.inputNames[0]!]: x });
    return Response.json({ create: t1 - t0, inputs: s.inputNames, outputs: s.outputNames, out: Array.from(out[s.outputNames[0]!]!.data as Float32Array) });
  },
};
