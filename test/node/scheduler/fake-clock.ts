/**
 * A fake clock with timers, for driving a BatchLoop without sleeping: time moves only when the test
 * says so, timers fire in time order, and microtasks settle between events.
 */
import type { LoopHost } from "../../../src/scheduler/batch-loop";

interface Timer {
  atMs: number;
  seq: number;
  run: () => void;
}

/** A clock whose time the test moves. */
export class FakeClock {
  nowMs = 0;
  private timers: Timer[] = [];
  private seq = 0;

  readonly now = (): number => this.nowMs;

  /** Timer functions for a LoopHost. */
  readonly hostTimers: Pick<LoopHost<unknown, unknown>, "setTimer" | "clearTimer"> = {
    setTimer: (run, ms) => this.at(this.nowMs + Math.max(0, ms), run),
    clearTimer: (handle) => {
      this.timers = this.timers.filter((t) => t !== handle);
    },
  };

  /** Runs `run` at `atMs`. */
  at(atMs: number, run: () => void): Timer {
    const timer = { atMs, seq: this.seq++, run };
    this.timers.push(timer);
    return timer;
  }

  /** A promise that resolves with `value` after `ms` of fake time. */
  after<T>(ms: number, value: T): Promise<T> {
    return new Promise((resolve) => this.at(this.nowMs + ms, () => resolve(value)));
  }

  /** Fires every timer due up to `untilMs` in order, settling promises between them, and ends at untilMs. */
  async advanceTo(untilMs: number): Promise<void> {
    for (;;) {
      await settle();
      let next: Timer | undefined;
      for (const t of this.timers) if (t.atMs <= untilMs && (!next || t.atMs < next.atMs || (t.atMs === next.atMs && t.seq < next.seq))) next = t;
      if (!next) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.nowMs = Math.max(this.nowMs, next.atMs);
      next.run();
    }
    this.nowMs = Math.max(this.nowMs, untilMs);
    await settle();
  }

  /** Whether any timer is pending. */
  get hasTimers(): boolean {
    return this.timers.length > 0;
  }
}

/** Lets every pending promise callback run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
