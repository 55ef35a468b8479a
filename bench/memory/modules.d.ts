// Module types of the memory Worker's bundled files (wrangler's Data and CompiledWasm rules in
// bench/memory/wrangler.toml), for the type-check of bench/ (tsconfig.node.json).
declare module "*.onnx" {
  const bytes: ArrayBuffer;
  export default bytes;
}
declare module "*.wasm" {
  const module: WebAssembly.Module;
  export default module;
}
