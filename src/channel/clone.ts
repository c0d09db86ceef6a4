/**
 * V8's serializer (the structured clone) for the values a ring frame cannot carry inline, with
 * typed arrays and DataViews handled the way the message channel of the same tier handles them:
 *
 * - `'exact'` (between threads, where the message channel is postMessage): a view that owns its
 *   whole ArrayBuffer arrives as a view of the same type over a copy of it (a Buffer as a
 *   Uint8Array, as postMessage makes it); a view into part of a larger buffer, or into shared or
 *   resizable memory, cannot be reproduced here (a structured clone would carry the whole buffer,
 *   or share it), so serializing it throws `NotRingCloneable` and the caller sends by postMessage;
 * - `'bytes'` (between processes, where the message channel is Node's IPC with advanced
 *   serialization): a view arrives as a view of the same type over a copy of its own bytes, and a
 *   Buffer as a Buffer, as IPC delivers them.
 *
 * Unlike `v8.deserialize`, which returns typed arrays as views into the message they came in, every
 * view decoded here has an ArrayBuffer of its own, so no value shows the bytes of another task.
 */
import { Deserializer, Serializer } from 'node:v8';

/** A value the ring cannot carry exactly: send the message by the message channel instead. */
export class NotRingCloneable extends Error {
  override name = 'NotRingCloneable';
}

export type ViewMode = 'exact' | 'bytes';

type ViewConstructor = new (buffer: ArrayBuffer, byteOffset: number, length: number) => ArrayBufferView;

const VIEWS: readonly (readonly [string, ViewConstructor, number])[] = [
  ['Int8Array', Int8Array, 1],
  ['Uint8Array', Uint8Array, 1],
  ['Uint8ClampedArray', Uint8ClampedArray, 1],
  ['Int16Array', Int16Array, 2],
  ['Uint16Array', Uint16Array, 2],
  ['Int32Array', Int32Array, 4],
  ['Uint32Array', Uint32Array, 4],
  ['Float32Array', Float32Array, 4],
  ['Float64Array', Float64Array, 8],
  ['BigInt64Array', BigInt64Array, 8],
  ['BigUint64Array', BigUint64Array, 8],
  ['DataView', DataView, 1],
];
const BUFFER = VIEWS.length;
const VIEW_INDEX = new Map(VIEWS.map(([name], i) => [name, i]));

function viewIndex(view: ArrayBufferView): number {
  const name =
    view instanceof DataView
      ? 'DataView'
      : (view as unknown as { [Symbol.toStringTag]: string })[Symbol.toStringTag];
  const index = VIEW_INDEX.get(name);
  if (index === undefined) throw new NotRingCloneable(`cannot clone a ${name}`);
  return index;
}

/** A view over the whole of a plain (not resizable, not shared) ArrayBuffer. */
export function ownsWholeBuffer(view: ArrayBufferView): boolean {
  const buffer = view.buffer;
  return (
    buffer instanceof ArrayBuffer &&
    !(buffer as { resizable?: boolean }).resizable &&
    view.byteOffset === 0 &&
    view.byteLength === buffer.byteLength
  );
}

class RingSerializer extends Serializer {
  constructor(private readonly mode: ViewMode) {
    super();
    // Not in Node's type definitions, but public (Node's DefaultSerializer does the same).
    (
      this as unknown as { _setTreatArrayBufferViewsAsHostObjects(on: boolean): void }
    )._setTreatArrayBufferViewsAsHostObjects(true);
  }

  _writeHostObject(object: object): void {
    if (!ArrayBuffer.isView(object)) throw new NotRingCloneable('cannot clone a host object');
    const view = object;
    const buffer = view.buffer;
    if (!(buffer instanceof ArrayBuffer)) throw new NotRingCloneable('a view into shared memory');
    if (this.mode === 'exact' && !ownsWholeBuffer(view)) {
      throw new NotRingCloneable('a view into part of a buffer, or into a resizable one');
    }
    const index = Buffer.isBuffer(view) && this.mode === 'bytes' ? BUFFER : viewIndex(view);
    this.writeUint32(index);
    this.writeUint32(view.byteLength);
    this.writeRawBytes(new Uint8Array(buffer, view.byteOffset, view.byteLength));
  }
}

class RingDeserializer extends Deserializer {
  _readHostObject(): unknown {
    const index = this.readUint32();
    const byteLength = this.readUint32();
    const raw = this.readRawBytes(byteLength);
    // A copy with a buffer of its own, exactly as long as the view.
    const own = raw.buffer.slice(raw.byteOffset, raw.byteOffset + byteLength) as ArrayBuffer;
    if (index === BUFFER) return Buffer.from(own);
    const entry = VIEWS[index];
    if (!entry || byteLength % entry[2] !== 0)
      throw new Error(`a malformed typed array (type ${index}, ${byteLength} bytes)`);
    return new entry[1](own, 0, byteLength / entry[2]);
  }
}

export function cloneToBytes(value: unknown, mode: ViewMode): Buffer {
  const serializer = new RingSerializer(mode);
  serializer.writeHeader();
  serializer.writeValue(value);
  return serializer.releaseBuffer();
}

export function cloneFromBytes(bytes: Uint8Array): unknown {
  const deserializer = new RingDeserializer(bytes);
  deserializer.readHeader();
  return deserializer.readValue();
}
