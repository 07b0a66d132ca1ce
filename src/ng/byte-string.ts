/**
 * Identifiers from ng messages (call-id, tags, via-branch, labels) are byte strings: bencode carries bytes,
 * and two ids that differ in one byte are two calls, UTF-8 or not. Inside ngrelay such an id is a JS string
 * with one char per byte (latin1), which maps bytes to chars losslessly; these helpers convert at the edges.
 */

/** The id a wire value stands for (Buffer: its bytes; a JS string is taken as already converted). */
export function idFromWire(v: Buffer | string): string {
  return typeof v === 'string' ? v : v.toString('latin1');
}

/** The wire bytes of an id, for replies (the encoders would write a JS string as UTF-8). */
export function idToWire(id: string): Buffer {
  return Buffer.from(id, 'latin1');
}
