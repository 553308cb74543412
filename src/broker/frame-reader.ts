/**
 * Kafka request framing for one connection (4-byte big-endian size, then that many bytes), built
 * for reads into caller-chosen memory (a socket's `onread`), so steady traffic allocates only
 * the frames themselves:
 *
 * - `readTarget()` says where the next read should land: into the unfilled rest of a large frame
 *   whose start has arrived (the kernel copies straight into the frame: no extra copy), or else
 *   into a scratch buffer shared by every reader of the thread.
 * - `filled(target, n)` accounts for a read of `n` bytes into that target. Frames that become
 *   complete are handed to `onFrame` in stream order; bytes read into scratch are copied out
 *   before `filled` returns (scratch is reused by the next read of any connection).
 * - `push(chunk)` feeds bytes that live in memory the reader does not own (a 'data' event).
 *
 * Frame memory comes from `FramePool`: frames of FRAME_POOL_BYTES_MIN or more are views of
 * pooled ArrayBuffers, which go back to the pool when the receiver calls `release` (it does so
 * only for requests whose handling keeps no view of the frame once it settles; a frame never
 * released is simply garbage collected). Why: with a plain 'data' socket every read allocated
 * a fresh ArrayBuffer, and frames spanning reads were concatenated into another. At produce
 * rates that was hundreds of MB/s of short-lived external memory per network thread, and V8
 * answers external memory growth by starting a full (mark-compact) collection: several per
 * second, each a few ms of this thread plus concurrent marking on other cores.
 *
 * Sans-io (no sockets); owned by one thread (the connection's); not thread-safe.
 */

/** Smallest request frame: api key, version, correlation id, client id length. */
export const FRAME_BYTES_MIN = 10;
/** Shared scratch read buffer per thread. */
export const SCRATCH_BYTES = 64 * 1024;
/**
 * A frame whose unfilled rest is at least this is read into directly; a smaller rest goes
 * through scratch (one read may then bring it together with the frames after it).
 */
export const DIRECT_READ_BYTES_MIN = 8 * 1024;

/** Frames smaller than this are plain allocations (Node's shared slab serves most of them). */
export const FRAME_POOL_BYTES_MIN = 8 * 1024;
/** Frames larger than this are plain allocations (rare; not worth pinning). */
export const FRAME_POOL_BYTES_MAX = 1024 * 1024;
/** Free memory a thread's pool keeps at most; releases beyond it are left to the GC. */
export const FRAME_POOL_FREE_BYTES_MAX = 16 * 1024 * 1024;

let scratch: Buffer | null = null;

function scratchBuffer(): Buffer {
  scratch ??= Buffer.allocUnsafe(SCRATCH_BYTES);
  return scratch;
}

/**
 * Frame memory by power-of-two size class, per thread. `alloc` hands out a view of a free (or
 * new) ArrayBuffer of the frame's class; `release` takes back a view `alloc` returned, at most
 * once (a second release, or a buffer from elsewhere, is ignored: memory is only ever reused
 * after the one release its holder made). Owned by one thread; not thread-safe.
 */
export class FramePool {
  private readonly free = new Map<number, ArrayBuffer[]>();
  /** ArrayBuffers handed out and not yet released. */
  private readonly out = new WeakSet<ArrayBuffer>();
  private freeBytes = 0;

  alloc(size: number): Buffer {
    if (size < FRAME_POOL_BYTES_MIN || size > FRAME_POOL_BYTES_MAX) return Buffer.allocUnsafe(size);
    const classBytes = 2 ** Math.ceil(Math.log2(size));
    const ab = this.free.get(classBytes)?.pop();
    if (ab !== undefined) this.freeBytes -= classBytes;
    const mem = ab ?? new ArrayBuffer(classBytes);
    this.out.add(mem);
    return Buffer.from(mem, 0, size);
  }

  release(frame: Buffer): void {
    const mem = frame.buffer;
    if (!(mem instanceof ArrayBuffer) || !this.out.has(mem)) return;
    this.out.delete(mem);
    if (this.freeBytes + mem.byteLength > FRAME_POOL_FREE_BYTES_MAX) return;
    let list = this.free.get(mem.byteLength);
    if (list === undefined) {
      list = [];
      this.free.set(mem.byteLength, list);
    }
    list.push(mem);
    this.freeBytes += mem.byteLength;
  }

  /** Free bytes held (tests, metrics). */
  get heldBytes(): number {
    return this.freeBytes;
  }
}

/** The network thread's pool (one per thread: module state is per isolate). */
export const framePool = new FramePool();

export class FrameSizeError extends Error {
  constructor(
    readonly size: number,
    readonly maxBytes: number,
  ) {
    super(`frame size ${size} outside [${FRAME_BYTES_MIN}, ${maxBytes}]`);
    this.name = 'FrameSizeError';
  }
}

export class FrameReader {
  /** Size prefix bytes gathered so far (a prefix may arrive split across reads). */
  private readonly head = Buffer.alloc(4);
  private headFilled = 0;
  /** The frame being filled (its size prefix already read), and how much of it is filled. */
  private frame: Buffer | null = null;
  private frameFilled = 0;
  private failed = false;

  constructor(
    private readonly maxFrameBytes: number,
    private readonly onFrame: (frame: Buffer) => void,
    private readonly pool: FramePool = framePool,
  ) {
    if (!Number.isInteger(maxFrameBytes) || maxFrameBytes < FRAME_BYTES_MIN)
      throw new RangeError(`bad maxFrameBytes ${maxFrameBytes}`);
  }

  /** Where the next read should go: a large frame's unfilled rest, or the shared scratch. */
  readTarget(): Buffer {
    const f = this.frame;
    if (f !== null && f.length - this.frameFilled >= DIRECT_READ_BYTES_MIN)
      return f.subarray(this.frameFilled);
    return scratchBuffer();
  }

  /**
   * Accounts for `n` bytes read into `target` (the buffer `readTarget` returned). Throws
   * FrameSizeError on a size prefix out of bounds; the reader is then unusable.
   */
  filled(target: Uint8Array, n: number): void {
    const f = this.frame;
    if (
      f !== null &&
      target.buffer === f.buffer &&
      target.byteOffset === f.byteOffset + this.frameFilled
    ) {
      if (n > f.length - this.frameFilled) throw new RangeError(`read of ${n} past the frame`);
      this.frameFilled += n;
      this.completeFrame();
      return;
    }
    this.push(target.subarray(0, n));
  }

  /** Consumes `bytes` (copied; the caller may reuse them once this returns). */
  push(bytes: Uint8Array): void {
    if (this.failed) return;
    let at = 0;
    while (at < bytes.length) {
      if (this.frame !== null) {
        const take = Math.min(this.frame.length - this.frameFilled, bytes.length - at);
        this.frame.set(bytes.subarray(at, at + take), this.frameFilled);
        this.frameFilled += take;
        at += take;
        this.completeFrame();
        continue;
      }
      const take = Math.min(4 - this.headFilled, bytes.length - at);
      this.head.set(bytes.subarray(at, at + take), this.headFilled);
      this.headFilled += take;
      at += take;
      if (this.headFilled === 4) this.startFrame();
    }
  }

  private startFrame(): void {
    const size = this.head.readInt32BE(0);
    this.headFilled = 0;
    if (size < FRAME_BYTES_MIN || size > this.maxFrameBytes) {
      this.failed = true;
      throw new FrameSizeError(size, this.maxFrameBytes);
    }
    this.frame = this.pool.alloc(size);
    this.frameFilled = 0;
  }

  private completeFrame(): void {
    const f = this.frame;
    if (f === null || this.frameFilled < f.length) return;
    this.frame = null;
    this.frameFilled = 0;
    this.onFrame(f);
  }
}
