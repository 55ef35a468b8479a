// The memory Worker for silero-vad alone (bench/memory/worker.ts); its weights are the only ones bundled.
import weights from "../../../models/silero-vad/model.onnx";
import { memoryWorker } from "../worker";

export default memoryWorker("silero-vad", weights);
