/**
 * The bytes of the ng reply cache (cookie-cache.ts), off the JavaScript heap.
 *
 * Replies are appended to 1 MB chunks (Buffers outside V8's heap), each after the bytes of its key (the
 * cookie, latin1), so the cache's index (cookie-index.ts) can compare keys without a string per entry; an
 * entry is a slot number, its place kept in typed arrays, so the cache holds no object per reply. Held as V8
 * strings, 72,000 replies (400 cycles/s for the 60 s a reply may live) took 55 MB of heap and grew RSS by
 * ~100 MB; here they cost their bytes and nothing for the garbage collector to trace. Replies leave in about the order they came
 * (generations, oldest-first eviction), so whole chunks empty out and are freed, giving the memory back.
 */

const CHUNK_BYTES = 1 << 20;

/** An Int32Array twice as long as `a`, holding its values (per-slot arrays grow this way). */
export function doubled(a: Int32Array): Int32Array {
  const b = new Int32Array(a.length * 2);
  b.set(a);
  return b;
}

interface Chunk {
  buf: Buffer;
  used: number;
  /** Slots still pointing into it. */
  live: number;
}

export class ReplyStore {
  private readonly chunks = new Map<number, Chunk>();
  private currentChunk = -1;
  private nextChunk = 0;
  private slotChunk: Int32Array = new Int32Array(1024);
  private slotOffset: Int32Array = new Int32Array(1024);
  private slotLength: Int32Array = new Int32Array(1024);
  /** Bytes of the key in front of the reply. */
  private slotKeyLength: Int32Array = new Int32Array(1024);
  /** Free slot numbers (a stack) and how many slots were ever handed out. */
  private freeSlots: number[] = [];
  private slotsUsed = 0;

  /** Copies `key` (a latin1 string: one byte per char) and `reply` in; returns the slot. */
  put(reply: Buffer, key = ''): number {
    const slot = this.takeSlot();
    const size = key.length + reply.length;
    let id = this.currentChunk;
    let chunk = this.chunks.get(id);
    if (!chunk || chunk.used + size > chunk.buf.length) {
      // An entry larger than a chunk gets one of its own, which the next entry does not share.
      id = this.nextChunk++;
      chunk = { buf: Buffer.allocUnsafeSlow(Math.max(CHUNK_BYTES, size)), used: 0, live: 0 };
      this.chunks.set(id, chunk);
      this.currentChunk = id;
    }
    chunk.buf.write(key, chunk.used, key.length, 'latin1');
    reply.copy(chunk.buf, chunk.used + key.length);
    this.slotChunk[slot] = id;
    this.slotOffset[slot] = chunk.used;
    this.slotKeyLength[slot] = key.length;
    this.slotLength[slot] = reply.length;
    chunk.used += size;
    chunk.live++;
    return slot;
  }

  /** The reply in `slot`: a view of the stored bytes (they are never overwritten while the slot lives). */
  get(slot: number): Buffer {
    const chunk = this.chunks.get(this.slotChunk[slot]!)!;
    const start = this.slotOffset[slot]! + this.slotKeyLength[slot]!;
    return chunk.buf.subarray(start, start + this.slotLength[slot]!);
  }

  /** Bytes of the reply in `slot` (its key not counted). */
  length(slot: number): number {
    return this.slotLength[slot]!;
  }

  /** Bytes of the key in `slot`. */
  keyLength(slot: number): number {
    return this.slotKeyLength[slot]!;
  }

  /** Bytes `slot` takes in its chunk: key plus reply (what the cache charges against its byte bound). */
  entryBytes(slot: number): number {
    return this.slotKeyLength[slot]! + this.slotLength[slot]!;
  }

  /** Whether the key stored in `slot` is `key`, byte for byte (no string is made). */
  keyEquals(slot: number, key: string): boolean {
    if (this.slotKeyLength[slot] !== key.length) return false;
    const buf = this.chunks.get(this.slotChunk[slot]!)!.buf;
    const offset = this.slotOffset[slot]!;
    for (let i = 0; i < key.length; i++) if (buf[offset + i] !== key.charCodeAt(i)) return false;
    return true;
  }

  /** Gives `slot` back; a chunk no slot points into any more is freed (the current one is kept for reuse). */
  release(slot: number): void {
    const id = this.slotChunk[slot]!;
    const chunk = this.chunks.get(id)!;
    if (--chunk.live === 0) {
      if (id === this.currentChunk) chunk.used = 0;
      else this.chunks.delete(id);
    }
    this.freeSlots.push(slot);
  }

  /** Drops everything (the cache was cleared or aged out all at once). */
  clear(): void {
    this.chunks.clear();
    this.currentChunk = -1;
    this.freeSlots = [];
    this.slotsUsed = 0;
  }

  /** Bytes of chunk memory held (for tests). */
  get chunkBytes(): number {
    let n = 0;
    for (const c of this.chunks.values()) n += c.buf.length;
    return n;
  }

  private takeSlot(): number {
    const free = this.freeSlots.pop();
    if (free !== undefined) return free;
    if (this.slotsUsed === this.slotChunk.length) {
      this.slotChunk = doubled(this.slotChunk);
      this.slotOffset = doubled(this.slotOffset);
      this.slotLength = doubled(this.slotLength);
      this.slotKeyLength = doubled(this.slotKeyLength);
    }
    return this.slotsUsed++;
  }
}
