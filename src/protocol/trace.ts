/**
 * Request identity across the hops, on the edge and the origin alike: W3C Trace Context
 * (`traceparent`: version 00, a 16-byte trace id, an 8-byte parent span id, flags) and a request id.
 *
 * - A request that brings a valid `traceparent` continues its trace; each server answers with its
 *   own span in that trace (`traceparent` echoed with the trace id kept and this hop's span id).
 *   An invalid or absent one starts a new trace (the W3C rule: never fail a request for it).
 * - The span is what the next hop gets as its parent: the edge's request span goes to its buffer,
 *   and a batch sent to the origin carries its oldest request's trace with the batch's own span.
 * - `X-Request-Id`: a client's own (a short token) is kept, otherwise one is made; every answer
 *   carries it, and the structured logs name it.
 * Pure: WebCrypto's getRandomValues only, so it runs in workerd and Node.
 */

/** A hop's place in a trace. */
export interface TraceContext {
  /** 32 lower-case hex digits, not all zero. */
  traceId: string;
  /** This hop's span: 16 lower-case hex digits, not all zero. */
  spanId: string;
  /** The caller's span, when the request continued a trace. */
  parentSpanId?: string;
  /** Trace flags (bit 0: sampled), 2 hex digits. */
  flags: string;
}

/** Header carrying a request's id. */
export const REQUEST_ID_HEADER = "x-request-id";

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/** The trace context of a request: a child span of `traceparent` when it is valid, else a new trace (sampled). */
export function traceOf(traceparent: string | null | undefined): TraceContext {
  const match = TRACEPARENT.exec((traceparent ?? "").trim());
  const [, traceId, parentSpanId, flags] = match ?? [];
  if (traceId && parentSpanId && flags && !isZero(traceId) && !isZero(parentSpanId)) return { traceId, spanId: randomHex(8), parentSpanId, flags };
  return { traceId: randomHex(16), spanId: randomHex(8), flags: "01" };
}

/** A new span in `trace`, its parent the current one (a hop downstream). */
export function childSpan(trace: TraceContext): TraceContext {
  return { traceId: trace.traceId, spanId: randomHex(8), parentSpanId: trace.spanId, flags: trace.flags };
}

/** The `traceparent` header naming `trace`'s span. */
export function formatTraceparent(trace: Pick<TraceContext, "traceId" | "spanId" | "flags">): string {
  return `00-${trace.traceId}-${trace.spanId}-${trace.flags}`;
}

/** A request's id: the client's `X-Request-Id` when it is a short token, else a new UUID. */
export function requestIdOf(header: string | null | undefined): string {
  return header && REQUEST_ID.test(header) ? header : crypto.randomUUID();
}

function isZero(hex: string): boolean {
  return /^0+$/.test(hex);
}

/** Two hex digits of every byte value. */
const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

function randomHex(bytes: number): string {
  for (;;) {
    let out = "";
    for (const b of crypto.getRandomValues(new Uint8Array(bytes))) out += HEX[b];
    if (!isZero(out)) return out;
  }
}
