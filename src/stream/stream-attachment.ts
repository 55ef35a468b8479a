/**
 * What a stream keeps with its WebSocket (`serializeAttachment`, at most 2,048 bytes once
 * structured-cloned), so that it survives the stream buffer's hibernation: the model and scalars it
 * was opened with, how many chunks were answered, and the recurrent state after the last of them
 * (a Float32Array: Silero's 2 x 128 floats are 1,024 bytes; the whole attachment about 1.1 KB).
 * Nothing is in flight when a Durable Object hibernates, so this is the whole stream. Pure.
 */
import { z } from "zod";

/** A stream's attachment. */
export interface StreamAttachment {
  /** Format version. */
  v: 1;
  model: string;
  scalars: Record<string, number>;
  /** Chunks answered so far: the seq of the next answer. */
  nextSeq: number;
  /** The recurrent state after the last answered chunk (one row; zeros before the first). */
  state: Float32Array;
}

/** Most bytes an attachment may take serialized (the platform's limit). */
export const MAX_ATTACHMENT_BYTES = 2048;

const schema = z.object({
  v: z.literal(1),
  model: z.string(),
  scalars: z.record(z.string(), z.number()),
  nextSeq: z.number().int().min(0),
  state: z.instanceof(Float32Array),
});

/** The attachment of a socket (its deserialized value), or undefined when it is not one. */
export function readAttachment(value: unknown): StreamAttachment | undefined {
  const parsed = schema.safeParse(value);
  return parsed.success ? (parsed.data as StreamAttachment) : undefined;
}
