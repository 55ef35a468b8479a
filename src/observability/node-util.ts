/**
 * The two `util` functions prom-client's metric classes use, for workerd (which has no Node
 * built-ins without nodejs_compat, and this Worker does not enable it: onnxruntime-web would take
 * its Node code path). wrangler.toml and the workers tests alias `util` to this module; prom-client
 * only calls them to word the errors it throws on invalid values and labels.
 */
const show = (value: unknown): string => {
  try {
    return typeof value === "string" ? value : JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
};

export const format = (...values: unknown[]): string => values.map(show).join(" ");
export const inspect = show;
export default { format, inspect };
