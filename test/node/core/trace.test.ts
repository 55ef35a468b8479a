/** W3C Trace Context and request ids (src/protocol/trace.ts): what continues a trace, what starts one. */
import { describe, expect, it } from "vitest";
import { childSpan, formatTraceparent, requestIdOf, traceOf } from "../../../src/protocol/trace";

const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT = "00f067aa0ba902b7";

describe("trace context", () => {
  it("continues a valid traceparent with a span of its own", () => {
    const trace = traceOf(`00-${TRACE}-${PARENT}-01`);
    expect(trace).toMatchObject({ traceId: TRACE, parentSpanId: PARENT, flags: "01" });
    expect(trace.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(trace.spanId).not.toBe(PARENT);
    expect(formatTraceparent(trace)).toBe(`00-${TRACE}-${trace.spanId}-01`);
    // Unsampled stays unsampled.
    expect(traceOf(`00-${TRACE}-${PARENT}-00`).flags).toBe("00");
  });

  it("starts a new trace for an absent or invalid one, never failing the request", () => {
    for (const bad of [undefined, "", "garbage", `01-${TRACE}-${PARENT}-01`, `00-${"0".repeat(32)}-${PARENT}-01`, `00-${TRACE}-${"0".repeat(16)}-01`, `00-${TRACE.toUpperCase()}-${PARENT}-01`, `00-${TRACE}-${PARENT}-1`]) {
      const trace = traceOf(bad);
      expect(trace.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(trace.traceId).not.toBe(TRACE);
      expect(trace.parentSpanId).toBeUndefined();
      expect(trace.flags).toBe("01");
    }
  });

  it("makes child spans in the same trace, parented by the current span", () => {
    const trace = traceOf(`00-${TRACE}-${PARENT}-01`);
    const child = childSpan(trace);
    expect(child).toMatchObject({ traceId: TRACE, parentSpanId: trace.spanId, flags: "01" });
    expect(child.spanId).not.toBe(trace.spanId);
  });

  it("keeps a client's request id when it is a short token, else makes one", () => {
    expect(requestIdOf("req-42.a:b_c")).toBe("req-42.a:b_c");
    for (const bad of [undefined, "", "has space", "x".repeat(129), "quote\""]) expect(requestIdOf(bad)).toMatch(/^[0-9a-f-]{36}$/);
  });
});
