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
 */

/** Int32 slots of a ring's header. Positions are byte counts modulo 2^32. */
export const WRITE = 0;
export const READ = 1;
export const CONSUMER_SLEEPING = 2;
export const PRODUCER_WAITING = 3;
export const HEADER_BYTES = 64; // a cache line of its own

export interface RingMemory {
  header: Int32Array;
  data: Uint8Array;
}

/** Lays a ring over `bytes` of `buffer` from `offset`: a header, then a power-of-two data area. */
export function ringOver(buffer: SharedArrayBuffer, offset: number, bytes: number): RingMemory {
  const capacity = 2 ** Math.floor(Math.log2(bytes - HEADER_BYTES));
  if (capacity < 64) throw new RangeError(`a ring needs at least ${HEADER_BYTES + 64} bytes; got ${bytes}`);
  return {
    header: new Int32Array(buffer, offset, HEADER_BYTES / 4),
    data: new Uint8Array(buffer, offset + HEADER_BYTES, capacity),
  };
}

export function createRing(bytes: number): RingMemory {
  return ringOver(new SharedArrayBuffer(bytes), 0, bytes);
}

const u32 = (n: number) => n >>> 0;

export class RingWriter {
  private readonly pending: Uint8Array[] = [];
  /** Bytes of pending[0] already written. */
  private offset = 0;
  private write: number;
  private readonly mask: number;

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

  /** Queues one frame and writes as much as fits. True when nothing is left pending. */
  send(frame: Uint8Array): boolean {
    const prefix = new Uint8Array(4);
    new DataView(prefix.buffer).setUint32(0, frame.length, true);
    this.pending.push(prefix, frame);
    return this.flush();
  }

  /** Writes pending bytes while there is space. Call again when the reader says it made space. */
  flush(): boolean {
    const { header, data } = this.ring;
    const capacity = data.length;
    let wrote = false;
    while (this.pending.length > 0) {
      let space = capacity - u32(this.write - u32(Atomics.load(header, READ)));
      if (space === 0) {
        Atomics.store(header, PRODUCER_WAITING, 1);
        space = capacity - u32(this.write - u32(Atomics.load(header, READ)));
        if (space === 0) break; // the reader will wake us when it frees space
        Atomics.store(header, PRODUCER_WAITING, 0);
      }
      const chunk = this.pending[0]!;
      const n = Math.min(space, chunk.length - this.offset);
      const at = this.write & this.mask;
      const first = Math.min(n, capacity - at);
      data.set(chunk.subarray(this.offset, this.offset + first), at);
      if (first < n) data.set(chunk.subarray(this.offset + first, this.offset + n), 0);
      this.offset += n;
      this.write = u32(this.write + n);
      Atomics.store(header, WRITE, this.write | 0);
      wrote = true;
      if (this.offset === chunk.length) {
        this.pending.shift();
        this.offset = 0;
      }
    }
    if (wrote && Atomics.load(header, CONSUMER_SLEEPING) === 1) {
      Atomics.store(header, CONSUMER_SLEEPING, 0);
      this.wakeReader();
    }
    return this.pending.length === 0;
  }
}

export class RingReader {
  private read: number;
  private readonly mask: number;
  private readonly lengthBytes = new Uint8Array(4);
  private lengthHave = 0;
  private frame: Uint8Array | undefined;
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

  /** Reads everything there is, handing each complete frame to `onFrame`. Returns the frames read. */
  drain(): number {
    const { header, data } = this.ring;
    let frames = 0;
    for (;;) {
      const write = u32(Atomics.load(header, WRITE));
      if (write === this.read) break;
      let available = u32(write - this.read);
      while (available > 0) {
        const at = this.read & this.mask;
        const contiguous = Math.min(available, data.length - at);
        const used = this.take(data.subarray(at, at + contiguous), () => frames++);
        this.read = u32(this.read + used);
        available -= used;
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

  /** Consumes bytes into the current frame; returns how many it used (all of them, or up to a frame's end). */
  private take(bytes: Uint8Array, counted: () => void): number {
    let used = 0;
    while (used < bytes.length) {
      if (!this.frame) {
        const n = Math.min(4 - this.lengthHave, bytes.length - used);
        this.lengthBytes.set(bytes.subarray(used, used + n), this.lengthHave);
        this.lengthHave += n;
        used += n;
        if (this.lengthHave < 4) continue;
        const length = new DataView(this.lengthBytes.buffer).getUint32(0, true);
        this.lengthHave = 0;
        if (length === 0) {
          counted();
          this.onFrame(new Uint8Array(0));
          continue;
        }
        this.frame = new Uint8Array(length);
        this.frameHave = 0;
      }
      const n = Math.min(this.frame.length - this.frameHave, bytes.length - used);
      this.frame.set(bytes.subarray(used, used + n), this.frameHave);
      this.frameHave += n;
      used += n;
      if (this.frameHave === this.frame.length) {
        const done = this.frame;
        this.frame = undefined;
        counted();
        this.onFrame(done);
      }
    }
    return used;
  }
}
