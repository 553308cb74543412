/**
 * Splits a Kafka response stream into whole frames without allocating per read in the common
 * case: `push` takes a view of one read (valid only during the call, as `connectReading` gives)
 * and calls `onFrame` with a view of each whole frame (from its 4-byte size on, valid only during
 * the call). Only a frame split across reads is copied, into one buffer that grows to the largest
 * such frame. Used by the latency bench, whose own garbage collection pauses would otherwise show
 * up as broker latency.
 *
 * Benchmark-only; owned by the thread that reads the socket; not thread-safe.
 */

/** A response frame larger than this is a protocol error here (the bench fetches at most 1 MiB). */
const FRAME_BYTES_MAX = 16 * 1024 * 1024;

export class FrameReader {
  /** Bytes of a frame split across reads (the first `partialBytes` of it). */
  private partial = Buffer.alloc(0);
  private partialBytes = 0;

  constructor(private readonly onFrame: (frame: Buffer) => void) {}

  push(chunk: Buffer): void {
    let at = 0;
    if (this.partialBytes > 0) {
      at = this.fillPartial(chunk);
      if (this.partialBytes > 0) return; // the split frame took the whole chunk
    }
    while (chunk.length - at >= 4) {
      const size = frameSize(chunk, at);
      if (chunk.length - at - 4 < size) break;
      this.onFrame(chunk.subarray(at, at + 4 + size));
      at += 4 + size;
    }
    this.keep(chunk, at, chunk.length);
  }

  /** Moves the start of `chunk` into the split frame, delivering it once whole; returns bytes used. */
  private fillPartial(chunk: Buffer): number {
    let at = Math.min(4 - Math.min(this.partialBytes, 4), chunk.length);
    this.keep(chunk, 0, at);
    if (this.partialBytes < 4) return at;
    const need = 4 + frameSize(this.partial, 0);
    const take = Math.min(need - this.partialBytes, chunk.length - at);
    this.keep(chunk, at, at + take);
    at += take;
    if (this.partialBytes === need) {
      this.partialBytes = 0;
      this.onFrame(this.partial.subarray(0, need));
    }
    return at;
  }

  /** Appends chunk[from, to) to the split frame's buffer, growing it when needed. */
  private keep(chunk: Buffer, from: number, to: number): void {
    const bytes = to - from;
    if (bytes === 0) return;
    if (this.partial.length < this.partialBytes + bytes) {
      const grown = Buffer.allocUnsafe(
        Math.max(2 * this.partial.length, this.partialBytes + bytes),
      );
      this.partial.copy(grown, 0, 0, this.partialBytes);
      this.partial = grown;
    }
    chunk.copy(this.partial, this.partialBytes, from, to);
    this.partialBytes += bytes;
  }
}

function frameSize(b: Buffer, at: number): number {
  const size = b.readInt32BE(at);
  if (size < 0 || size > FRAME_BYTES_MAX) throw new Error(`bad response frame size ${size}`);
  return size;
}
