/**
 * A single-producer, single-consumer byte ring over shared memory (a SharedArrayBuffer between
 * threads, or one mapped in two processes by the native addon), carrying length-prefixed frames.
 *
 * Nobody blocks: a writer that finds the ring full keeps the rest of its bytes pending and flags
 * that it waits for space; a reader that finds it empty flags that it sleeps. Each side, after
 * moving its index, checks the other's flag and only then rings the other's doorbell, so a wake-up
 * costs nothing while both sides are busy. Flags and indexes are sequentially consistent atomics:
 * a side that raises its flag re-reads the other's index before sleeping, so no wake-up is lost.
 * Frames may be larger than the ring: they stream through it.
 *
 * The other side may be untrusted (a sandboxed tenant shares the memory with the pool): an index
 * that cannot be right throws RingCorruptError, a frame's claimed length allocates memory only as
 * its bytes arrive, and one drain reads a bounded amount, so a hostile peer can neither make this
 * side read out of bounds, nor allocate what it never sent, nor keep it in a loop.
 */

/** Int32 slots of a ring's header. Positions are byte counts modulo 2^32. */
export const WRITE = 0;
export const READ = 1;
export const CONSUMER_SLEEPING = 2;
export const PRODUCER_WAITING = 3;
/** The CPU the reader last polled from (+1; 0: unknown), so that a writer polling for its answer knows when they share a core. */
export const READER_CPU = 4;
export const HEADER_BYTES = 64; // a cache line of its own

export interface RingMemory {
  header: Int32Array;
  data: Uint8Array;
}

/** The other side broke the ring's invariants: its memory cannot be trusted any more. */
export class RingCorruptError extends Error {
  override name = 'RingCorruptError';
}

/** Lays a ring over `bytes` of `buffer` from `offset`: a header, then a power-of-two data area. */
export function ringOver(buffer: SharedArrayBuffer, offset: number, bytes: number): RingMemory {
  const capacity = 2 ** Math.floor(Math.log2(bytes - HEADER_BYTES));
  if (!(capacity >= 64))
    throw new RangeError(`a ring needs at least ${HEADER_BYTES + 64} bytes; got ${bytes}`);
  return {
    header: new Int32Array(buffer, offset, HEADER_BYTES / 4),
    data: new Uint8Array(buffer, offset + HEADER_BYTES, capacity),
  };
}

export function createRing(bytes: number): RingMemory {
  return ringOver(new SharedArrayBuffer(bytes), 0, bytes);
}

const u32 = (n: number) => n >>> 0;

/** A copy (Buffer's own slice() would return a view). */
const copyOf = (bytes: Uint8Array, from = 0): Uint8Array => Uint8Array.prototype.slice.call(bytes, from);

export class RingWriter {
  /** Bytes not yet in the ring, oldest first: own copies, never the caller's buffers. */
  private readonly pending: Uint8Array[] = [];
  /** Bytes of pending[0] already written. */
  private offset = 0;
  private write: number;
  private readonly mask: number;
  private readonly prefix = new Uint8Array(4);
  private readonly prefixView = new DataView(this.prefix.buffer);

  /** `wakeReader` rings the reader's doorbell; it is called only when the reader sleeps. */
  constructor(
    private readonly ring: RingMemory,
    private readonly wakeReader: () => void,
  ) {
    this.write = u32(Atomics.load(ring.header, WRITE));
    this.mask = ring.data.length - 1;
  }

  get pendingBytes(): number {
    let n = -this.offset;
    for (const chunk of this.pending) n += chunk.length;
    return n;
  }

  /**
   * Writes one frame, as much as fits; the rest is copied and kept pending. The caller may reuse
   * `frame` as soon as this returns. True when nothing is left pending.
   */
  send(frame: Uint8Array): boolean {
    return this.sendv([frame]);
  }

  /** Writes one frame given as pieces, one after the other (no copy to join them). As `send`. */
  sendv(pieces: readonly Uint8Array[]): boolean {
    let length = 0;
    for (const piece of pieces) length += piece.length;
    this.prefixView.setUint32(0, length, true);
    let i = -1; // the prefix, then each piece
    let wrote = 0;
    const queued = this.pending.length > 0; // then this frame goes after what waits
    if (!queued) {
      for (; i < pieces.length; i++) {
        const chunk = i < 0 ? this.prefix : pieces[i]!;
        wrote = this.put(chunk, 0);
        if (wrote < chunk.length) break;
        wrote = 0;
      }
    }
    // What did not fit waits, copied.
    for (; i < pieces.length; i++) {
      const chunk = i < 0 ? this.prefix : pieces[i]!;
      if (wrote < chunk.length) this.pending.push(copyOf(chunk, wrote));
      wrote = 0;
    }
    if (queued) return this.flush();
    this.wakeIfSleeping();
    return this.pending.length === 0;
  }

  /** Writes pending bytes while there is space. Call again when the reader says it made space. */
  flush(): boolean {
    while (this.pending.length > 0) {
      const chunk = this.pending[0]!;
      this.offset += this.put(chunk, this.offset);
      if (this.offset < chunk.length) break;
      this.pending.shift();
      this.offset = 0;
    }
    this.wakeIfSleeping();
    return this.pending.length === 0;
  }

  /** Copies as much of `chunk` from `from` as fits; returns the bytes written. */
  private put(chunk: Uint8Array, from: number): number {
    const { header, data } = this.ring;
    const capacity = data.length;
    let written = 0;
    while (from + written < chunk.length) {
      let space = this.space();
      if (space === 0) {
        Atomics.store(header, PRODUCER_WAITING, 1);
        space = this.space();
        if (space === 0) break; // the reader will wake us when it frees space
        Atomics.store(header, PRODUCER_WAITING, 0);
      }
      const start = from + written;
      const n = Math.min(space, chunk.length - start);
      const at = this.write & this.mask;
      const first = Math.min(n, capacity - at);
      data.set(first === chunk.length && start === 0 ? chunk : chunk.subarray(start, start + first), at);
      if (first < n) data.set(chunk.subarray(start + first, start + n), 0);
      written += n;
      this.write = u32(this.write + n);
      Atomics.store(header, WRITE, this.write | 0);
    }
    if (written > 0) this.wrote = true;
    return written;
  }

  private wrote = false;

  private space(): number {
    const used = u32(this.write - u32(Atomics.load(this.ring.header, READ)));
    if (used > this.ring.data.length)
      throw new RingCorruptError(`the reader's position is ${used} bytes behind, beyond the ring`);
    return this.ring.data.length - used;
  }

  private wakeIfSleeping(): void {
    if (!this.wrote) return;
    this.wrote = false;
    const header = this.ring.header;
    if (Atomics.load(header, CONSUMER_SLEEPING) === 1) {
      Atomics.store(header, CONSUMER_SLEEPING, 0);
      this.wakeReader();
    }
  }
}

/** A frame of up to this many bytes is allocated whole when it begins; a longer one grows as its bytes arrive. */
const FIRST_CHUNK_BYTES = 16 << 20;

export class RingReader {
  private read: number;
  private readonly mask: number;
  private readonly lengthBytes = new Uint8Array(4);
  private readonly lengthView = new DataView(this.lengthBytes.buffer);
  private lengthHave = 0;
  /** The frame being assembled, its announced length, and how many bytes of it have arrived. */
  private frame: Uint8Array | undefined;
  private frameLength = 0;
  private frameHave = 0;

  /** `wakeWriter` rings the writer's doorbell; it is called only when the writer waits for space. */
  constructor(
    private readonly ring: RingMemory,
    private readonly onFrame: (frame: Uint8Array) => void,
    private readonly wakeWriter: () => void,
  ) {
    this.read = u32(Atomics.load(ring.header, READ));
    this.mask = ring.data.length - 1;
  }

  /** Whether bytes are waiting. */
  hasData(): boolean {
    return u32(Atomics.load(this.ring.header, WRITE)) !== this.read;
  }

  /** Whether a frame has begun to arrive but is not complete. */
  get midFrame(): boolean {
    return this.frame !== undefined || this.lengthHave > 0;
  }

  /**
   * Reads what there is, handing each complete frame to `onFrame`: at most `maxFrames` frames and
   * about two rings' worth of bytes (call again while `hasData()`). Returns the frames read.
   */
  drain(maxFrames = Number.POSITIVE_INFINITY): number {
    const { header, data } = this.ring;
    const capacity = data.length;
    let frames = 0;
    for (let pass = 0; pass < 2 && frames < maxFrames; pass++) {
      const write = u32(Atomics.load(header, WRITE));
      if (write === this.read) break;
      let available = u32(write - this.read);
      if (available > capacity)
        throw new RingCorruptError(`the writer claims ${available} unread bytes in a ring of ${capacity}`);
      while (available > 0 && frames < maxFrames) {
        const at = this.read & this.mask;
        const contiguous = Math.min(available, capacity - at);
        const before = this.read;
        frames += this.take(data, at, at + contiguous, maxFrames - frames);
        available -= u32(this.read - before);
      }
      Atomics.store(header, READ, this.read | 0);
      if (Atomics.load(header, PRODUCER_WAITING) === 1) {
        Atomics.store(header, PRODUCER_WAITING, 0);
        this.wakeWriter();
      }
    }
    return frames;
  }

  /**
   * About to sleep: raise the flag, then look once more. Returns the write position to sleep on
   * (as stored, for Atomics.wait on `header[WRITE]`), or undefined when data arrived meanwhile and
   * the caller must drain instead. Waiting on the value read here, after the flag went up, is what
   * makes a write between this check and the wait impossible to miss.
   */
  prepareToSleep(): number | undefined {
    Atomics.store(this.ring.header, CONSUMER_SLEEPING, 1);
    const write = Atomics.load(this.ring.header, WRITE);
    if (u32(write) !== this.read) {
      Atomics.store(this.ring.header, CONSUMER_SLEEPING, 0);
      return undefined;
    }
    return write;
  }

  /**
   * Consumes data[start, end) up to the end of the `budget`-th frame, advancing the read position
   * before each frame is handed over, so that a throwing `onFrame` never sees a frame twice.
   * Returns the frames completed.
   */
  private take(data: Uint8Array, start: number, end: number, budget: number): number {
    const base = this.read;
    let at = start;
    let frames = 0;
    const deliver = (frame: Uint8Array) => {
      this.read = u32(base + (at - start));
      frames++;
      this.onFrame(frame);
    };
    while (at < end && frames < budget) {
      if (!this.frame) {
        const n = Math.min(4 - this.lengthHave, end - at);
        for (let i = 0; i < n; i++) this.lengthBytes[this.lengthHave + i] = data[at + i]!;
        this.lengthHave += n;
        at += n;
        if (this.lengthHave < 4) continue;
        this.lengthHave = 0;
        const length = this.lengthView.getUint32(0, true);
        if (length === 0) {
          deliver(new Uint8Array(0));
          continue;
        }
        // Whole frames already in the ring are copied in one go.
        if (end - at >= length) {
          const done = copyOf(data.subarray(at, at + length));
          at += length;
          deliver(done);
          continue;
        }
        this.frame = new Uint8Array(Math.min(length, FIRST_CHUNK_BYTES));
        this.frameLength = length;
        this.frameHave = 0;
      }
      const n = Math.min(this.frameLength - this.frameHave, end - at);
      if (this.frameHave + n > this.frame.length) {
        const grown = new Uint8Array(
          Math.min(this.frameLength, Math.max(this.frame.length * 2, this.frameHave + n)),
        );
        grown.set(this.frame.subarray(0, this.frameHave));
        this.frame = grown;
      }
      this.frame.set(data.subarray(at, at + n), this.frameHave);
      this.frameHave += n;
      at += n;
      if (this.frameHave === this.frameLength) {
        const done = this.frame;
        this.frame = undefined;
        deliver(done);
      }
    }
    this.read = u32(base + (at - start));
    return frames;
  }
}
