/**
 * The optimizer's best-first queue entries in struct-of-arrays form (a search can cost hundreds of
 * thousands of configurations): a configuration with its cost, or a group of configurations (one
 * placement, shard count and window, every maxBatch) not yet costed, under a lower bound of their cost.
 */

/** Queue entries by index; `isBefore` is the queue's order. */
export class Candidates {
  readonly cost: number[] = [];
  readonly isGroup: boolean[] = [];
  readonly placement: number[] = []; // index into the optimizer's PLACEMENTS
  readonly shards: number[] = [];
  readonly windowIndex: number[] = [];
  /** maxBatch of a configuration; 0 for a group. */
  readonly maxBatch: number[] = [];
  /** Origin replicas of a configuration (0 at the edge or for a group). */
  readonly poolSize: number[] = [];

  /** Adds a configuration with its cost (USD per hour); returns its index. */
  add(cost: number, placement: number, shards: number, windowIndex: number, maxBatch: number, poolSize: number): number {
    return this.push(cost, false, placement, shards, windowIndex, maxBatch, poolSize);
  }

  /** Adds a group with a lower bound of its configurations' costs; returns its index. */
  addGroup(costBound: number, placement: number, shards: number, windowIndex: number): number {
    return this.push(costBound, true, placement, shards, windowIndex, 0, 0);
  }

  /**
   * Cheaper first; at equal cost a group first (so that it is expanded before any configuration that
   * one of its own could tie), then shorter window, smaller maxBatch, fewer shards, edge, smaller pool.
   */
  isBefore = (a: number, b: number): boolean =>
    this.cost[a] !== this.cost[b]
      ? this.cost[a]! < this.cost[b]!
      : this.isGroup[a] !== this.isGroup[b]
        ? this.isGroup[a]!
        : this.windowIndex[a] !== this.windowIndex[b]
          ? this.windowIndex[a]! < this.windowIndex[b]!
          : this.maxBatch[a] !== this.maxBatch[b]
            ? this.maxBatch[a]! < this.maxBatch[b]!
            : this.shards[a] !== this.shards[b]
              ? this.shards[a]! < this.shards[b]!
              : this.placement[a] !== this.placement[b]
                ? this.placement[a]! < this.placement[b]!
                : this.poolSize[a]! < this.poolSize[b]!;

  private push(cost: number, isGroup: boolean, placement: number, shards: number, windowIndex: number, maxBatch: number, poolSize: number): number {
    this.cost.push(cost);
    this.isGroup.push(isGroup);
    this.placement.push(placement);
    this.shards.push(shards);
    this.windowIndex.push(windowIndex);
    this.maxBatch.push(maxBatch);
    this.poolSize.push(poolSize);
    return this.cost.length - 1;
  }
}
