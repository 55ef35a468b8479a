import { describe, expect, it } from "vitest";
import { BatchContractError, concatBatch, splitBatch } from "../../../src/batching/tensor-batch";
import type { TensorSpec } from "../../../src/models/manifest";
import type { Tensor } from "../../../src/protocol/tensor";

const spec = (name: string, shape: number[], batchAxis: number | null): TensorSpec => ({ name, datatype: "FP32", shape, batchAxis });
const tensor = (name: string, shape: number[], values: number[]): Tensor => ({ name, datatype: "FP32", shape, data: Float32Array.from(values) });
/** The values of a float tensor as a plain array. */
const values = (t: Tensor | undefined) => Array.from(t!.data as Float32Array);

describe("concatBatch and splitBatch", () => {
  it("concatenates along axis 0 and splits back", () => {
    const specs = [spec("x", [-1, 2], 0)];
    const batch = concatBatch(specs, [[tensor("x", [1, 2], [1, 2])], [tensor("x", [2, 2], [3, 4, 5, 6])]]);
    expect(batch[0]!.shape).toEqual([3, 2]);
    expect(values(batch[0])).toEqual([1, 2, 3, 4, 5, 6]);
    const parts = splitBatch(specs, batch, [1, 2]);
    expect(values(parts[1]![0])).toEqual([3, 4, 5, 6]);
    expect(parts[1]![0]!.shape).toEqual([2, 2]);
  });

  it("interleaves correctly along an inner batch axis (a recurrent state [2, N, 3])", () => {
    const specs = [spec("state", [2, -1, 3], 1)];
    const a = tensor("state", [2, 1, 3], [1, 2, 3, 10, 20, 30]);
    const b = tensor("state", [2, 2, 3], [4, 5, 6, 7, 8, 9, 40, 50, 60, 70, 80, 90]);
    const batch = concatBatch(specs, [[a], [b]]);
    expect(batch[0]!.shape).toEqual([2, 3, 3]);
    expect(values(batch[0])).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 30, 40, 50, 60, 70, 80, 90]);
    const [backA, backB] = splitBatch(specs, batch, [1, 2]);
    expect(values(backA![0])).toEqual(values(a));
    expect(values(backB![0])).toEqual(values(b));
  });

  it("shares unbatched inputs instead of concatenating them", () => {
    const specs = [spec("x", [-1, 1], 0), { ...spec("sr", [], null), datatype: "INT64" as const }];
    const sr: Tensor = { name: "sr", datatype: "INT64", shape: [], data: BigInt64Array.from([16000n]) };
    const batch = concatBatch(specs, [[tensor("x", [1, 1], [1]), sr], [tensor("x", [1, 1], [2]), sr]]);
    expect(batch[1]).toBe(sr);
  });

  it("refuses outputs whose batch dimension does not match the rows sent", () => {
    const specs = [spec("y", [-1, 2], 0)];
    expect(() => splitBatch(specs, [tensor("y", [2, 2], [1, 2, 3, 4])], [1, 2])).toThrow(BatchContractError);
  });
});
