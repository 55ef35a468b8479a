/** Finds a served model by the name (and optional version) in a request path. */
import type { RuntimeConfig } from "../config";
import type { CatalogEntry } from "../models/catalog";
import { notFound } from "../protocol/errors";

/** The model named in the path, or a 404 InferenceError (the name is echoed truncated). */
export function lookupModel(config: RuntimeConfig, name: string, version: string | undefined): CatalogEntry {
  const entry = config.models.get(name);
  const shown = JSON.stringify(name.slice(0, 64));
  if (!entry) throw notFound(`unknown model ${shown}`);
  if (version !== undefined && version !== entry.manifest.version) throw notFound(`model ${shown} has no version ${JSON.stringify(version.slice(0, 32))}`);
  return entry;
}
