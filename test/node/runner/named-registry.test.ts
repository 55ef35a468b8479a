/** NamedRegistry: the registry runners and execution backends are registered in by name. */
import { describe, expect, it } from "vitest";
import { NamedRegistry, UnknownNameError } from "../../../src/runner/named-registry";

describe("NamedRegistry", () => {
  it("resolves what was registered under a name, and lists names in registration order", () => {
    const registry = new NamedRegistry<{ id: number }>("widget");
    const a = { id: 1 };
    const b = { id: 2 };
    registry.register("b", b);
    registry.register("a", a);
    expect(registry.resolve("a")).toBe(a);
    expect(registry.names()).toEqual(["b", "a"]);
  });

  it("refuses an unknown name with UnknownNameError listing the registered names", () => {
    const registry = new NamedRegistry<string>("widget");
    expect(() => registry.resolve("x")).toThrow(new UnknownNameError("no widget is registered as 'x' (registered: none)"));
    registry.register("edge", "e");
    registry.register("origin", "o");
    expect(() => registry.resolve("gpu")).toThrow(new UnknownNameError("no widget is registered as 'gpu' (registered: edge, origin)"));
  });

  it("accepts registering the same item twice and refuses a different item under a taken name", () => {
    const registry = new NamedRegistry<object>("widget");
    const item = {};
    registry.register("edge", item);
    registry.register("edge", item);
    expect(() => registry.register("edge", {})).toThrow("a different widget is already registered as 'edge'");
    expect(registry.resolve("edge")).toBe(item);
  });
});
