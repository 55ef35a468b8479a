import { describe, expect, it } from "vitest";
import { FrontDoor, PIE_TARGET_SHARE } from "../../../src/buffer/front-door";
import { TelemetryRecorder } from "../../../src/control/telemetry";
import { CATALOG } from "../../../src/models/catalog";
import { maxLatencyMsOf } from "../../../src/models/manifest";
import { InferenceError } from "../../../src/protocol/errors";
import { MAX_BURST_MS, UPDATE_MS } from "../../../src/scheduler/pie";

const manifest = CATALOG.get("ppocr-cls")!.manifest;
const budgetMs = maxLatencyMsOf(manifest);

function door(random = () => 0.5) {
  const telemetry = new TelemetryRecorder(manifest.name, -7);
  return { door: new FrontDoor(manifest, telemetry, random), telemetry };
}

/** What the telemetry holds: rows that arrived, and rows refused. */
function counts(telemetry: TelemetryRecorder, nowMs: number) {
  const report = telemetry.take(nowMs + 1_000, { queuedRows: 0, runningRows: 0 });
  return { arrivedRows: report.arrivalRows.reduce((a, b) => a + b, 0), refusedRows: report.refusedRows };
}

describe("the Worker's front door", () => {
  it("refuses requests due before a shard said it is busy until, on that shard only, until then", () => {
    const { door: frontDoor } = door();
    const nowMs = 1_000_000;
    frontDoor.sent(0, 1);
    frontDoor.replied(0, 3, { heldMs: 1, busyUntilMs: nowMs + 1_500 }, nowMs);
    const refusal = frontDoor.refusal(0, nowMs + 1_000, nowMs);
    expect(refusal).toBeInstanceOf(InferenceError);
    expect(refusal).toMatchObject({ status: 503, retryAfterS: 2, message: expect.stringMatching(/overloaded: busy for about 1500 ms/) });
    expect(frontDoor.refusal(0, nowMs + 1_600, nowMs)).toBeUndefined(); // due after: the shard may take it
    expect(frontDoor.refusal(1, nowMs + 1_000, nowMs)).toBeUndefined(); // another shard
    expect(frontDoor.refusal(0, nowMs + 2_500, nowMs + 1_500)).toBeUndefined(); // busy no longer
  });

  it("counts each refusal in the model's telemetry as an arrival refused, of the mean rows of the requests it sent on", () => {
    const { door: frontDoor, telemetry } = door();
    const nowMs = 2_000_000;
    frontDoor.replied(0, 3, { heldMs: 1, busyUntilMs: nowMs + 900 }, nowMs);
    // Sixteen 4-row requests move the mean from 1 by a sixteenth of the gap each: 4 - 3 (15/16)^16 = 2.93, so 3 rows a refusal.
    for (let i = 0; i < 16; i++) frontDoor.sent(1, 4);
    const expectedRows = Math.round(4 - 3 * (15 / 16) ** 16);
    expect(frontDoor.refusal(0, nowMs + 500, nowMs)).toBeDefined();
    expect(frontDoor.refusal(0, nowMs + 600, nowMs)).toBeDefined();
    expect(frontDoor.refusal(0, nowMs + 1_000, nowMs)).toBeUndefined(); // admitted: the buffer counts it
    expect(counts(telemetry, nowMs)).toEqual({ arrivedRows: 2 * expectedRows, refusedRows: 2 * expectedRows });
  });

  it("refuses with PIE while the way to a shard stays congested, with its own target from the model's longest wait", () => {
    const { door: frontDoor, telemetry } = door(() => 0); // refuse whenever PIE's probability is above 0
    let nowMs = 3_000_000;
    const congestedMs = 10 * PIE_TARGET_SHARE * budgetMs;
    let refusal: InferenceError | undefined;
    for (let step = 0; step < 200 && !refusal; step++) {
      refusal = frontDoor.refusal(0, nowMs + budgetMs, nowMs);
      if (refusal) break;
      frontDoor.sent(0, 1);
      // The buffer held each request 2 ms; the way there and back took 1 ms, then (after 20 updates) ten times PIE's target more.
      frontDoor.replied(0, 2 + 1 + (step < 20 ? 0 : congestedMs), { heldMs: 2 }, nowMs);
      nowMs += UPDATE_MS;
    }
    expect(refusal).toMatchObject({ status: 503, message: expect.stringMatching(new RegExp(`overloaded: refusing \\d+ % of new requests; the way to its buffer took ${congestedMs} ms more than usual lately`)) });
    // Not before the burst allowance after the congestion began was spent.
    expect(nowMs - 3_000_000 - 20 * UPDATE_MS).toBeGreaterThanOrEqual(MAX_BURST_MS);
    expect(frontDoor.refusal(1, nowMs + budgetMs, nowMs)).toBeUndefined(); // the way to another shard is clear
    expect(counts(telemetry, nowMs)).toEqual({ arrivedRows: 1, refusedRows: 1 }); // one-row requests were sent on
  });
});
