/**
 * How the pool's messages travel as bytes over a shared-memory ring: one frame per message, batch
 * columns written as raw numbers, and each value either inline (numbers, strings, booleans, null,
 * undefined: what most tasks carry, at a few nanoseconds each) or, for anything else, through V8's
 * serializer, all of a frame's other values in one call. V8's serializer is the structured clone
 * that postMessage and the IPC channel use, so a value arrives as it would over a message channel.
 *
 * Decoding treats a frame as untrusted (it may come from a sandboxed tenant's process): every read is
 * bounds-checked and a malformed frame throws FrameError, never reads past the frame.
 */
import { cloneFromBytes, cloneToBytes, ownsWholeBuffer, type ViewMode } from './clone.js';
import type { FromWorker, ResultBatch, RunBatch, ToWorker } from './protocol.js';

/** A frame that cannot be a message of this protocol. */
export class FrameError extends Error {
  override name = 'FrameError';
}

enum Kind {
  Run = 1,
  Abort = 2,
  Ping = 3,
  Close = 4,
  Results = 5,
  Pong = 6,
}

enum Tag {
  Undefined = 0,
  Null = 1,
  False = 2,
  True = 3,
  Int32 = 4,
  Float64 = 5,
  String = 6,
  /** The next value of the frame's V8-serialized tail. */
  Cloned = 7,
  /** A plain Uint8Array (see isPlainBytes): its bytes, raw. */
  Bytes = 8,
}

/** Byte arrays at least this large are written from where they are, not copied into the frame first. */
const SEGMENT_MIN_BYTES = 16 * 1024;

/**
 * Whether a value can travel as raw bytes and arrive as the message channel would deliver it: a
 * Uint8Array (not a subclass such as Buffer) over plain memory; between threads, only one that owns
 * its whole buffer (a structured clone of a partial view would carry the whole buffer).
 */
function isPlainBytes(v: object, mode: ViewMode): v is Uint8Array {
  if (v.constructor !== Uint8Array) return false;
  const bytes = v as Uint8Array;
  return mode === 'exact' ? ownsWholeBuffer(bytes) : bytes.buffer instanceof ArrayBuffer;
}

const INITIAL_BYTES = 64 * 1024;

/**
 * Writes messages into a reusable buffer; each result is valid until the next call. `views` says
 * how typed arrays must arrive (see clone.ts): as postMessage (`'exact'`, between threads) or as
 * Node's IPC (`'bytes'`, between processes) delivers them.
 */
export class FrameEncoder {
  constructor(private readonly views: ViewMode = 'exact') {}

  private bytes = Buffer.allocUnsafe(INITIAL_BYTES);
  private view = new DataView(this.bytes.buffer, this.bytes.byteOffset, this.bytes.length);
  private at = 0;
  private cloned: unknown[] = [];
  /** The frame so far, in pieces: parts of the buffer, and large byte arrays where they are. */
  private segments: Uint8Array[] = [];
  /** Where the buffer's current piece starts. */
  private segmentStart = 0;

  /** One frame in one piece (a copy of the pieces if there are several). */
  encode(msg: ToWorker | FromWorker): Uint8Array {
    const segments = this.encodeSegments(msg);
    if (segments.length === 1) return segments[0]!;
    return Buffer.concat(segments);
  }

  /**
   * One frame as the pieces it is made of, in order, to be written one after the other; valid until
   * the next call. Throws (as postMessage would) when a value cannot be cloned.
   */
  encodeSegments(msg: ToWorker | FromWorker): readonly Uint8Array[] {
    this.at = 0;
    this.cloned.length = 0;
    this.segments = [];
    this.segmentStart = 0;
    switch (msg.t) {
      case 'run':
        this.run(msg);
        break;
      case 'results':
        this.results(msg);
        break;
      case 'abort':
        this.u8(Kind.Abort);
        this.f64(msg.id);
        break;
      case 'ping':
        this.u8(Kind.Ping);
        this.f64(msg.seq);
        break;
      case 'pong':
        this.u8(Kind.Pong);
        this.f64(msg.seq);
        break;
      case 'close':
        this.u8(Kind.Close);
        break;
      default:
        throw new TypeError(`isolane: '${msg.t}' messages do not travel over the ring`);
    }
    this.closeSegment();
    if (this.cloned.length > 0) {
      this.segments.push(cloneToBytes(this.cloned, this.views));
      this.cloned.length = 0;
    }
    return this.segments;
  }

  private closeSegment(): void {
    if (this.at > this.segmentStart) {
      this.segments.push(
        new Uint8Array(
          this.bytes.buffer,
          this.bytes.byteOffset + this.segmentStart,
          this.at - this.segmentStart,
        ),
      );
    }
    this.segmentStart = this.at;
  }

  private run(batch: RunBatch): void {
    const n = batch.ids.length;
    this.reserve(5 + n * 12);
    this.u8(Kind.Run);
    this.u32(n);
    for (let i = 0; i < n; i++) {
      this.reserve(12);
      this.f64(batch.ids[i]!);
      this.view.setUint16(this.at, batch.handlers[i]!, true);
      this.at += 2;
      this.u8(batch.attempts[i]!);
      this.value(batch.inputs[i]);
    }
  }

  private results(batch: ResultBatch): void {
    const n = batch.ids.length;
    this.reserve(5 + n * 18);
    this.u8(Kind.Results);
    this.u32(n);
    for (let i = 0; i < n; i++) {
      this.reserve(18);
      this.f64(batch.ids[i]!);
      this.u8(batch.ok[i]!);
      this.f64(batch.sync[i]!);
      this.value(batch.values[i]);
    }
  }

  private value(v: unknown): void {
    this.reserve(5);
    switch (typeof v) {
      case 'number':
        if ((v | 0) === v && (v !== 0 || 1 / v > 0)) {
          this.u8(Tag.Int32);
          this.view.setInt32(this.at, v, true);
          this.at += 4;
        } else {
          this.reserve(9);
          this.u8(Tag.Float64);
          this.f64(v);
        }
        return;
      case 'string': {
        this.reserve(5 + v.length * 3);
        this.u8(Tag.String);
        const written = this.bytes.write(v, this.at + 4, 'utf8');
        this.u32(written);
        this.at += written;
        return;
      }
      case 'boolean':
        this.u8(v ? Tag.True : Tag.False);
        return;
      case 'undefined':
        this.u8(Tag.Undefined);
        return;
      default:
        if (v === null) {
          this.u8(Tag.Null);
          return;
        }
        if (typeof v === 'object' && isPlainBytes(v, this.views)) {
          this.u8(Tag.Bytes);
          this.u32(v.byteLength);
          if (v.byteLength >= SEGMENT_MIN_BYTES) {
            this.closeSegment();
            this.segments.push(v);
          } else {
            this.reserve(v.byteLength);
            this.bytes.set(v, this.at);
            this.at += v.byteLength;
          }
          return;
        }
        this.u8(Tag.Cloned);
        this.cloned.push(v);
    }
  }

  private u8(n: number): void {
    this.bytes[this.at++] = n;
  }

  private u32(n: number): void {
    this.view.setUint32(this.at, n, true);
    this.at += 4;
  }

  private f64(n: number): void {
    this.view.setFloat64(this.at, n, true);
    this.at += 8;
  }

  private reserve(n: number): void {
    if (this.at + n <= this.bytes.length) return;
    let size = this.bytes.length * 2;
    while (size < this.at + n) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    // Pieces already closed keep pointing into the old buffer; the open one is carried over.
    this.bytes.copy(grown, this.segmentStart, this.segmentStart, this.at);
    this.bytes = grown;
    this.view = new DataView(grown.buffer, grown.byteOffset, grown.length);
  }
}

/** Reads one frame; every read is checked against its end. */
class FrameReader {
  private readonly view: DataView;
  private readonly bytes: Buffer;
  at = 0;
  /** Positions in `values` arrays waiting for the cloned tail, in order. */
  readonly pending: { into: unknown[]; index: number }[] = [];

  constructor(frame: Uint8Array) {
    this.bytes = Buffer.from(frame.buffer, frame.byteOffset, frame.length);
    this.view = new DataView(frame.buffer, frame.byteOffset, frame.length);
  }

  private need(n: number): void {
    if (this.at + n > this.bytes.length)
      throw new FrameError(`frame ends at ${this.bytes.length}, ${n} more bytes needed at ${this.at}`);
  }

  u8(): number {
    this.need(1);
    return this.bytes[this.at++]!;
  }

  u16(): number {
    this.need(2);
    const n = this.view.getUint16(this.at, true);
    this.at += 2;
    return n;
  }

  u32(): number {
    this.need(4);
    const n = this.view.getUint32(this.at, true);
    this.at += 4;
    return n;
  }

  f64(): number {
    this.need(8);
    const n = this.view.getFloat64(this.at, true);
    this.at += 8;
    return n;
  }

  /** A count of records of at least `recordBytes` each: more than the frame can hold is a lie. */
  count(recordBytes: number): number {
    const n = this.u32();
    if (n * recordBytes > this.bytes.length - this.at)
      throw new FrameError(`a count of ${n} records does not fit the frame`);
    return n;
  }

  value(into: unknown[], index: number): void {
    const tag = this.u8();
    switch (tag) {
      case Tag.Undefined:
        into[index] = undefined;
        return;
      case Tag.Null:
        into[index] = null;
        return;
      case Tag.False:
        into[index] = false;
        return;
      case Tag.True:
        into[index] = true;
        return;
      case Tag.Int32:
        this.need(4);
        into[index] = this.view.getInt32(this.at, true);
        this.at += 4;
        return;
      case Tag.Float64:
        into[index] = this.f64();
        return;
      case Tag.String: {
        const length = this.u32();
        this.need(length);
        into[index] = this.bytes.toString('utf8', this.at, this.at + length);
        this.at += length;
        return;
      }
      case Tag.Cloned:
        this.pending.push({ into, index });
        return;
      case Tag.Bytes: {
        const length = this.u32();
        this.need(length);
        // A copy with an ArrayBuffer of its own, as a structured clone makes.
        const start = this.bytes.byteOffset + this.at;
        into[index] = new Uint8Array(this.bytes.buffer.slice(start, start + length));
        this.at += length;
        return;
      }
      default:
        throw new FrameError(`unknown value tag ${tag}`);
    }
  }

  /** Fills the values that travelled through V8's serializer; the tail must be all that is left. */
  finish(): void {
    if (this.pending.length === 0) {
      if (this.at !== this.bytes.length)
        throw new FrameError(`${this.bytes.length - this.at} stray bytes after the message`);
      return;
    }
    let cloned: unknown;
    try {
      cloned = cloneFromBytes(this.bytes.subarray(this.at));
    } catch (err) {
      throw new FrameError(`the cloned values do not deserialize: ${(err as Error).message}`);
    }
    if (!Array.isArray(cloned) || cloned.length !== this.pending.length) {
      throw new FrameError(`expected ${this.pending.length} cloned values`);
    }
    for (let i = 0; i < cloned.length; i++) {
      const slot = this.pending[i]!;
      slot.into[slot.index] = cloned[i];
    }
  }
}

export function decodeToWorker(frame: Uint8Array): ToWorker {
  const r = new FrameReader(frame);
  const kind = r.u8();
  let msg: ToWorker;
  switch (kind) {
    case Kind.Run: {
      const n = r.count(12);
      msg = {
        t: 'run',
        ids: new Array<number>(n),
        handlers: new Array<number>(n),
        inputs: new Array(n),
        attempts: new Array<number>(n),
      };
      for (let i = 0; i < n; i++) {
        msg.ids[i] = r.f64();
        msg.handlers[i] = r.u16();
        msg.attempts[i] = r.u8();
        r.value(msg.inputs, i);
      }
      break;
    }
    case Kind.Abort:
      msg = { t: 'abort', id: r.f64() };
      break;
    case Kind.Ping:
      msg = { t: 'ping', seq: r.f64() };
      break;
    case Kind.Close:
      msg = { t: 'close' };
      break;
    default:
      throw new FrameError(`unknown message kind ${kind} for a worker`);
  }
  r.finish();
  return msg;
}

export function decodeFromWorker(frame: Uint8Array): FromWorker {
  const r = new FrameReader(frame);
  const kind = r.u8();
  let msg: FromWorker;
  switch (kind) {
    case Kind.Results: {
      const n = r.count(18);
      msg = {
        t: 'results',
        ids: new Array<number>(n),
        ok: new Array<number>(n),
        values: new Array(n),
        sync: new Array<number>(n),
      };
      for (let i = 0; i < n; i++) {
        msg.ids[i] = r.f64();
        msg.ok[i] = r.u8();
        msg.sync[i] = r.f64();
        r.value(msg.values, i);
      }
      break;
    }
    case Kind.Pong:
      msg = { t: 'pong', seq: r.f64() };
      break;
    default:
      throw new FrameError(`unknown message kind ${kind} from a worker`);
  }
  r.finish();
  return msg;
}
