// The memory Worker for ppocr-cls alone (bench/memory/worker.ts); its weights are the only ones bundled.
import weights from "../../../models/ppocr-cls/model.onnx";
import { memoryWorker } from "../worker";

export default memoryWorker("ppocr-cls", weights);
