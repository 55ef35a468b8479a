/**
 * Flush policies decide when a free server starts the batch of a group of queued requests. A
 * policy only ever makes a batch start earlier than the plain window rule would (never later), and
 * a group holding maxBatch rows always starts at once, so no policy can stop a burst from batching
 * beyond what the window already allows. A new policy is one file exporting a FlushPolicy.
 */

/** What a policy sees of one group of queued requests (all of one batch key). */
export interface GroupView {
  /** Rows queued in the group. */
  rows: number;
  /** When the group's oldest request was queued (epoch ms). */
  oldestAtMs: number;
}

/** The limits a policy works within. */
export interface FlushLimits {
  /** Most rows in one batch. */
  maxBatch: number;
  /** Longest wait of a batch's oldest request for company, in ms. */
  windowMs: number;
}

/** Why a batch started ("deadline": one of its requests had to start to meet its own deadline). */
export type StartReason = "size" | "window" | "idle" | "deadline";

/** When a group is due: at `atMs` (at or before now means now), for `reason`. */
export interface Due {
  atMs: number;
  reason: StartReason;
}

/** A flush policy. Pure: time is passed in. */
export interface FlushPolicy {
  readonly name: string;
  /** When `group` should start on a free server. Must not be later than the window rule. */
  due(group: GroupView, nowMs: number, limits: FlushLimits): Due;
  /** Sees every admitted request (for rate estimates). */
  observe?(atMs: number, rows: number): void;
}

/** The window rule: start at maxBatch rows, or when the oldest request has waited windowMs. */
export function windowDue(group: GroupView, limits: FlushLimits): Due {
  if (group.rows >= limits.maxBatch) return { atMs: -Infinity, reason: "size" };
  return { atMs: group.oldestAtMs + limits.windowMs, reason: "window" };
}

/** The plain window policy. */
export const windowPolicy: FlushPolicy = {
  name: "window",
  due: (group, _nowMs, limits) => windowDue(group, limits),
};
