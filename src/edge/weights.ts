/**
 * Model weights at the edge: not bundled into the Worker (the upload stays small and origin-only
 * models never reach the edge) but deployed as static assets beside it (wrangler.toml `[assets]`,
 * filled by the install step src/cli/link-models.mjs) and read through the ASSETS binding when a
 * session is first created. Sessions are kept per isolate (src/edge/ort-web-runner.ts), so the
 * bytes are read once per isolate and model, and not kept once the session holds them.
 * `wrangler dev` and the tests serve the same folder locally, so they take this code path too.
 */
import { env } from "cloudflare:workers";
import { unavailable } from "../protocol/errors";

/** Path of a model's weights among the Worker's static assets. */
export function weightsPath(model: string): string {
  return `/models/${model}.onnx`;
}

/** Reads a model's ONNX bytes from the Worker's static assets. */
export async function loadWeights(model: string): Promise<ArrayBuffer> {
  // The host is irrelevant to the binding; only the path selects the file.
  const response = await (env as Env).ASSETS.fetch(new URL(weightsPath(model), "https://assets.invalid"));
  if (!response.ok) {
    await response.body?.cancel();
    throw unavailable(`the weights of model '${model}' are not deployed with this Worker (run the install step: npm install)`, 5);
  }
  return response.arrayBuffer();
}
