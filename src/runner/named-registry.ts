/**
 * A registry of implementations by name, the shape of onnxruntime-common's `registerBackend`: each
 * platform registers its implementation under a name in its entry point, and callers resolve the
 * name they were configured with. Runners (src/runner/registry.ts) and gpu-origin's execution
 * backends (gpu-origin/backend-registry.ts) are registered this way.
 *
 * Kept smaller than onnxruntime's: names are always given explicitly (a manifest's placement, an
 * origin's --provider), so there is no priority order and no fallback to another name. Registering
 * a taken name again is a no-op for the same implementation and an error for another one, as
 * onnxruntime does at equal priority. Pure: no platform imports.
 */

/** Thrown when a name was never registered; the message lists the registered names. */
export class UnknownNameError extends Error {
  override name = "UnknownNameError";
}

/** Implementations of one kind (e.g. "runner") by name, in registration order. */
export class NamedRegistry<T> {
  private readonly entries = new Map<string, T>();

  /** `kind` names what is registered, for messages ("runner", "execution backend"). */
  constructor(readonly kind: string) {}

  /** Registers `item` under `name`. Throws when `name` is taken by a different item. */
  register(name: string, item: T): void {
    const current = this.entries.get(name);
    if (current !== undefined && current !== item) throw new Error(`a different ${this.kind} is already registered as '${name}'`);
    this.entries.set(name, item);
  }

  /** The item registered as `name`. Throws UnknownNameError listing the registered names. */
  resolve(name: string): T {
    const item = this.entries.get(name);
    if (item === undefined) {
      const known = this.names();
      throw new UnknownNameError(`no ${this.kind} is registered as '${name}' (registered: ${known.length ? known.join(", ") : "none"})`);
    }
    return item;
  }

  /** Registered names, in registration order. */
  names(): string[] {
    return [...this.entries.keys()];
  }
}
