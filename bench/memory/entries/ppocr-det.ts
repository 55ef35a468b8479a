// The memory Worker for ppocr-det alone (bench/memory/worker.ts); its weights are the only ones bundled.
import weights from "../../../models/ppocr-det/model.onnx";
import { memoryWorker } from "../worker";

export default memoryWorker("ppocr-det", weights);
