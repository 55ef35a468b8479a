/**
 * Tallies of the soak benchmark: each outcome is put in one category (200, 4xx, 503 refusal,
 * 5xx failure, lost, aborted, ...), counted per traffic kind and target (model or invalid case),
 * per 5-s bucket for the timeline, and the answers of valid requests are checked for lost,
 * duplicated and misrouted rows. Pure: outcomes in, counts out.
 */
import { errorMessage } from "./oip-answer";
import type { Outcome, PartialOutcome } from "./soak-client";
import type { Verdict } from "./soak-models";

/** What the soak sends. */
export type Kind = "valid-json" | "valid-binary" | "tiny-timeout" | "abort" | "raw-partial" | "invalid";

/**
 * Where an outcome falls. "503 refusal": a 503 with Retry-After and a JSON {"error"} body
 * (admission, overload, deadline: a protocol answer). "5xx failure": any other 5xx. "lost": no
 * answer to a request we did not abort. "closed": a raw client closed before an answer, as meant.
 */
export type Category = "200" | "4xx" | "503 refusal" | "5xx failure" | "other status" | "lost" | "aborted" | "closed";

export const CATEGORIES: Category[] = ["200", "4xx", "503 refusal", "5xx failure", "other status", "lost", "aborted", "closed"];

const header = (o: Extract<Outcome, { kind: "answer" }>, name: string) => {
  const v = o.headers[name];
  return Array.isArray(v) ? v.join(", ") : v;
};

/** The category of an HTTP outcome, with the error message of an error answer. */
export function categorise(outcome: Outcome): { category: Category; status: number; message?: string } {
  if (outcome.kind === "aborted") return { category: "aborted", status: 0 };
  if (outcome.kind !== "answer") return { category: "lost", status: 0, message: outcome.kind === "error" ? outcome.code : "client timeout" };
  const { status } = outcome;
  if (status === 200) return { category: "200", status };
  const message = errorMessage(outcome.body);
  const shown = message ?? `(no JSON error body: ${JSON.stringify(outcome.body.subarray(0, 80).toString("utf8"))})`;
  if (status === 503 && message !== undefined && header(outcome, "retry-after") !== undefined) return { category: "503 refusal", status, message };
  if (status >= 500) return { category: "5xx failure", status, message: shown };
  if (status >= 400) return { category: "4xx", status, message: shown };
  return { category: "other status", status, message: shown };
}

/** The category of a raw partial client: "closed" unless the server answered before the close. */
export function categorisePartial(outcome: PartialOutcome): { category: Category; status: number; message?: string } {
  const status = Number(/^HTTP\/1\.\d (\d{3})/.exec(outcome.statusLine ?? "")?.[1] ?? 0);
  if (status === 0) return { category: "closed", status };
  if (status === 503) return { category: "503 refusal", status, message: outcome.statusLine };
  return { category: status >= 500 ? "5xx failure" : status >= 400 ? "4xx" : "other status", status, message: outcome.statusLine };
}

/** A notable request, kept for the report. */
export interface Incident {
  atS: number;
  kind: Kind;
  target: string;
  detail: string;
}

/** A request that got no answer: sent at atS, given up at untilS (s from the start). */
export interface LostRequest extends Incident {
  untilS: number;
}

const MAX_INCIDENTS = 50;

const reasonOf = (message: string | undefined) => (message ?? "").replace(/\d+(\.\d+)?/g, "#").slice(0, 120);

/** Counts of one soak run. */
export class SoakTally {
  /** Per "kind" and per "kind / target": count per category. */
  readonly byKind = new Map<string, Record<string, number>>();
  /** Per invalid case: count per status (or category when there was no answer) and the first message per status. */
  readonly invalid = new Map<string, { expected: number[]; counts: Record<string, number>; messages: Record<string, string> }>();
  /** 503 refusals per message (digits replaced by #): how many, first and last send time (s). */
  readonly refusalReasons: Record<string, { count: number; firstS: number; lastS: number }> = {};
  /** Latencies of valid 200s that held their own outputs, ms, per model. */
  readonly latenciesMs = new Map<string, number[]>();
  /** 200s echoed per id. */
  private readonly answersById = new Map<string, number>();
  /** Every lost request. */
  readonly lost: LostRequest[] = [];
  readonly incidents: Record<"failure" | "misrouted" | "wrong" | "late" | "invalid accepted", Incident[]> = { failure: [], misrouted: [], wrong: [], late: [], "invalid accepted": [] };
  readonly counts = { sent: 0, skipped: 0, lost: 0, failures5xx: 0, refusals503: 0, aborted: 0, abortedAnswered: 0, misrouted: 0, wrongOutputs: 0, idMismatch: 0, late: 0, invalidAccepted: 0, errorsWithoutJson: 0 };
  /** Per 5-s bucket: sent, 200s, 503 refusals, failures (5xx failures, lost, misrouted or wrong outputs). */
  readonly timeline: Array<{ sent: number; ok: number; refused: number; failed: number }> = [];

  private bucket(atS: number) {
    const i = Math.max(0, Math.floor(atS / 5));
    while (this.timeline.length <= i) this.timeline.push({ sent: 0, ok: 0, refused: 0, failed: 0 });
    return this.timeline[i]!;
  }

  private note(list: keyof SoakTally["incidents"], incident: Incident): void {
    if (this.incidents[list].length < MAX_INCIDENTS) this.incidents[list].push(incident);
  }

  /**
   * Records one request's category; `lateByMs` > 0 when its answer came after its deadline plus the
   * margin; `timeoutMs` is the client's limit (when a lost request was given up).
   */
  record(kind: Kind, target: string, atS: number, result: { category: Category; status: number; message?: string }, { lateByMs = 0, timeoutMs = 0 } = {}): void {
    this.counts.sent++;
    for (const key of [kind, `${kind} / ${target}`]) {
      const counts = this.byKind.get(key) ?? {};
      counts[result.category] = (counts[result.category] ?? 0) + 1;
      this.byKind.set(key, counts);
    }
    const b = this.bucket(atS);
    b.sent++;
    switch (result.category) {
      case "200":
        b.ok++;
        break;
      case "503 refusal":
        b.refused++;
        this.counts.refusals503++;
        const reason = (this.refusalReasons[reasonOf(result.message)] ??= { count: 0, firstS: atS, lastS: atS });
        reason.count++;
        reason.firstS = Math.min(reason.firstS, atS);
        reason.lastS = Math.max(reason.lastS, atS);
        break;
      case "lost":
        b.failed++;
        this.counts.lost++;
        this.lost.push({ atS, untilS: atS + timeoutMs / 1000, kind, target, detail: result.message ?? "" });
        break;
      case "5xx failure":
        b.failed++;
        this.counts.failures5xx++;
        this.note("failure", { atS, kind, target, detail: `${result.status} ${result.message ?? ""}` });
        break;
      case "aborted":
        this.counts.aborted++;
        break;
    }
    if (result.message?.startsWith("(no JSON error body")) this.counts.errorsWithoutJson++;
    if (lateByMs > 0) {
      this.counts.late++;
      this.note("late", { atS, kind, target, detail: `${result.status} ${Math.round(lateByMs)} ms past deadline + margin` });
    }
  }

  /** Records an invalid case's answer; a 200 is an invalid request accepted. */
  recordInvalid(name: string, expected: number[], atS: number, result: { category: Category; status: number; message?: string }): void {
    const entry = this.invalid.get(name) ?? { expected, counts: {}, messages: {} };
    const key = result.status ? String(result.status) : result.category;
    entry.counts[key] = (entry.counts[key] ?? 0) + 1;
    if (result.message !== undefined) entry.messages[key] ??= result.message.slice(0, 160);
    this.invalid.set(name, entry);
    if (result.status >= 200 && result.status < 300) {
      this.counts.invalidAccepted++;
      this.note("invalid accepted", { atS, kind: "invalid", target: name, detail: String(result.status) });
    }
  }

  /** Records a valid request's 200: the id it echoed, whose outputs it held, and its latency. */
  recordAnswer(kind: Kind, model: string, atS: number, sentId: string, echoedId: unknown, verdict: Verdict | { kind: "unreadable"; reason: string }, latencyMs: number): void {
    if (typeof echoedId === "string") this.answersById.set(echoedId, (this.answersById.get(echoedId) ?? 0) + 1);
    if (kind === "abort") this.counts.abortedAnswered++;
    if (echoedId !== sentId) {
      this.counts.idMismatch++;
      this.note("misrouted", { atS, kind, target: model, detail: `sent id ${sentId}, answer id ${JSON.stringify(echoedId)}` });
    }
    if (verdict.kind === "other-seed") {
      this.counts.misrouted++;
      this.bucket(atS).failed++;
      this.note("misrouted", { atS, kind, target: model, detail: `id ${sentId}: outputs of seed ${verdict.seed}` });
    }
    if (verdict.kind === "wrong" || verdict.kind === "unreadable") {
      this.counts.wrongOutputs++;
      this.bucket(atS).failed++;
      this.note("wrong", { atS, kind, target: model, detail: `id ${sentId}: ${verdict.kind === "wrong" ? `max abs diff ${verdict.maxAbsDiff}` : verdict.reason}` });
    }
    if (verdict.kind === "own" && (kind === "valid-json" || kind === "valid-binary")) {
      const list = this.latenciesMs.get(model) ?? [];
      list.push(latencyMs);
      this.latenciesMs.set(model, list);
    }
  }

  /** Ids answered more than once. */
  duplicated(): number {
    return [...this.answersById.values()].filter((n) => n > 1).length;
  }
}
