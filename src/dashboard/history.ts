/**
 * The dashboard's memory: the snapshots of the last `historyMs` (15 minutes by default), oldest
 * first, so a page left open for days stays small. Pure.
 */
import type { Snapshot } from "./metrics-snapshot";

/** How long snapshots are kept by default, in ms. */
export const DEFAULT_HISTORY_MS = 15 * 60_000;

/**
 * `history` with `snapshot` appended and what fell out of the last `historyMs` dropped. A snapshot
 * not newer than the last one kept (a repeated or out-of-order answer) is ignored, so every step
 * between kept snapshots has a positive duration.
 */
export function appendSnapshot(history: readonly Snapshot[], snapshot: Snapshot, historyMs = DEFAULT_HISTORY_MS): Snapshot[] {
  const last = history[history.length - 1];
  if (last && snapshot.atMs <= last.atMs) return [...history];
  return [...history, snapshot].filter((s) => s.atMs >= snapshot.atMs - historyMs);
}
