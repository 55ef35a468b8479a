// The memory Worker for ppocr-rec alone (bench/memory/worker.ts); its weights are the only ones bundled.
import weights from "../../../models/ppocr-rec/model.onnx";
import { memoryWorker } from "../worker";

export default memoryWorker("ppocr-rec", weights);
