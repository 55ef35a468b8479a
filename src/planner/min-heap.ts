/** A binary min-heap with a comparison function, used by the optimizer's best-first search. */

/** Min-heap of items ordered by `isBefore(a, b)` (true when a comes first). */
export class MinHeap<T> {
  private readonly items: T[];

  /** A heap of `initial` (heapified in O(n)). */
  constructor(
    private readonly isBefore: (a: T, b: T) => boolean,
    initial: T[] = [],
  ) {
    this.items = initial;
    for (let i = (initial.length >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  /** Number of items. */
  get size(): number {
    return this.items.length;
  }

  /** Adds an item. */
  push(item: T): void {
    const a = this.items;
    a.push(item);
    let i = a.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.isBefore(a[i]!, a[parent]!)) break;
      [a[parent], a[i]] = [a[i]!, a[parent]!];
      i = parent;
    }
  }

  /** The item with the smallest key, left in place, or undefined when empty. */
  peek(): T | undefined {
    return this.items[0];
  }

  /** Removes and returns the item with the smallest key, or undefined when empty. */
  pop(): T | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  private siftDown(start: number): void {
    const a = this.items;
    let i = start;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < a.length && this.isBefore(a[l]!, a[m]!)) m = l;
      if (r < a.length && this.isBefore(a[r]!, a[m]!)) m = r;
      if (m === i) return;
      [a[m], a[i]] = [a[i]!, a[m]!];
      i = m;
    }
  }
}
