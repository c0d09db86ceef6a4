import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { NotRingCloneable } from '../src/channel/clone.js';
import { encodeResults, encodeRun, type ResultBatch, type RunBatch } from '../src/channel/protocol.js';
import { decodeFromWorker, decodeToWorker, FrameEncoder, FrameError } from '../src/channel/ring-codec.js';

const VALUES: unknown[] = [
  0,
  -0,
  1,
  -1,
  2 ** 31 - 1,
  -(2 ** 31),
  2 ** 31,
  2 ** 53 + 2,
  0.1,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
  '',
  'plain',
  'ünïcödé ✓ 𝄞 \u0000 end',
  'x'.repeat(100_000),
  true,
  false,
  null,
  undefined,
  10n,
  { a: 1, nested: { list: [1, 'two', null, undefined] } },
  // biome-ignore lint/suspicious/noSparseArray: a hole must survive as in a structured clone
  [1, , 3],
  new Date(0),
  new Map([[1, { b: 2 }]]),
  new Set(['s']),
  new Uint8Array([1, 2, 3]),
  new Float64Array([0.5, -0]),
  /re/g,
];

function runBatchOf(inputs: unknown[]): RunBatch {
  const names = new Map([
    ['a', 0],
    ['b', 1],
  ]);
  return encodeRun(
    inputs.map((input, i) => ({ id: i * 3 + 1, name: i % 2 ? 'a' : 'b', input, attempt: 1 + (i % 3) })),
    names,
  );
}

describe('ring codec', () => {
  test('a run batch of every kind of value arrives as a structured clone would deliver it', () => {
    const encoder = new FrameEncoder();
    const batch = runBatchOf(VALUES);
    const decoded = decodeToWorker(encoder.encode(batch)) as RunBatch;
    assert.equal(decoded.t, 'run');
    assert.deepEqual(decoded.ids, batch.ids);
    assert.deepEqual(decoded.handlers, batch.handlers);
    assert.deepEqual(decoded.attempts, batch.attempts);
    assert.deepEqual(decoded.inputs, structuredClone(batch.inputs));
    assert.ok(Object.is(decoded.inputs[1], -0), '-0 stays -0');
    assert.ok(!(1 in (decoded.inputs[22] as unknown[])), 'the hole stays a hole');
  });

  test('byte arrays travel raw, large ones without a copy into the frame, each with a buffer of its own', () => {
    for (const mode of ['exact', 'bytes'] as const) {
      const encoder = new FrameEncoder(mode);
      const big = new Uint8Array(100_000).map((_, i) => i & 0xff);
      const small = Uint8Array.of(1, 2, 3);
      const inputs = [
        big,
        small,
        new Uint8Array(0),
        new Float64Array([1.5, -0]),
        new DataView(new ArrayBuffer(4)),
      ];
      assert.ok(
        encoder.encodeSegments(runBatchOf(inputs)).includes(big),
        'the large array is a piece of its own',
      );
      const decoded = (decodeToWorker(encoder.encode(runBatchOf(inputs))) as RunBatch)
        .inputs as ArrayBufferView[];
      assert.deepEqual(decoded, inputs, mode);
      for (const view of decoded) {
        assert.equal(view.byteOffset, 0);
        assert.equal(
          view.buffer.byteLength,
          view.byteLength,
          `${mode}: a buffer of its own, exactly its size`,
        );
      }
      assert.notEqual(decoded[0]!.buffer, big.buffer);
    }
  });

  test("between threads ('exact'), views arrive as postMessage delivers them, or the ring declines", () => {
    const encoder = new FrameEncoder('exact');
    // A Buffer arrives as a Uint8Array, as from postMessage.
    const [buffer] = (decodeToWorker(encoder.encode(runBatchOf([Buffer.alloc(9, 1)]))) as RunBatch).inputs;
    assert.equal((buffer as object).constructor, Uint8Array);
    assert.deepEqual(buffer, new Uint8Array(9).fill(1));
    // A structured clone of a partial view carries its whole buffer; the ring cannot: it declines.
    const partial = new Uint8Array(new ArrayBuffer(64), 8, 16);
    assert.throws(() => encoder.encode(runBatchOf([{ nested: partial }])), NotRingCloneable);
    assert.throws(() => encoder.encode(runBatchOf([partial])), NotRingCloneable);
    assert.throws(
      () => encoder.encode(runBatchOf([new Int32Array(new SharedArrayBuffer(8))])),
      NotRingCloneable,
    );
  });

  test("between processes ('bytes'), views arrive as Node's IPC delivers them", () => {
    const encoder = new FrameEncoder('bytes');
    const partial = new Uint16Array(new ArrayBuffer(64), 8, 4).fill(7);
    const [buffer, view] = (
      decodeToWorker(encoder.encode(runBatchOf([Buffer.from('node buffer'), partial]))) as RunBatch
    ).inputs as [Buffer, Uint16Array];
    assert.ok(Buffer.isBuffer(buffer));
    assert.equal(buffer.toString(), 'node buffer');
    assert.equal(view.constructor, Uint16Array);
    assert.deepEqual([...view], [7, 7, 7, 7]);
    assert.equal(view.buffer.byteLength, 8, 'only its own bytes, in a buffer of its own');
    assert.throws(
      () => encoder.encode(runBatchOf([new Int32Array(new SharedArrayBuffer(8))])),
      NotRingCloneable,
    );
  });

  test('results, failures included, round-trip', () => {
    const encoder = new FrameEncoder();
    const batch = encodeResults([
      { id: 1, ok: true, value: 'done', s: 0.25 },
      { id: 2, ok: false, kind: 'threw', error: { name: 'TypeError', message: 'bad', stack: 'at x' } },
      { id: 3, ok: true, value: { deep: [1, 2] } },
    ]);
    const decoded = decodeFromWorker(encoder.encode(batch)) as ResultBatch;
    assert.deepEqual(decoded.ids, batch.ids);
    assert.deepEqual(decoded.ok, batch.ok);
    assert.deepEqual(decoded.sync, batch.sync);
    assert.deepEqual(decoded.values, batch.values);
  });

  test('control messages round-trip', () => {
    const encoder = new FrameEncoder();
    assert.deepEqual(decodeToWorker(encoder.encode({ t: 'abort', id: 77 })), { t: 'abort', id: 77 });
    assert.deepEqual(decodeToWorker(encoder.encode({ t: 'ping', seq: 3 })), { t: 'ping', seq: 3 });
    assert.deepEqual(decodeToWorker(encoder.encode({ t: 'close' })), { t: 'close' });
    assert.deepEqual(decodeFromWorker(encoder.encode({ t: 'pong', seq: 4 })), { t: 'pong', seq: 4 });
    assert.throws(() => encoder.encode({ t: 'ready', handlers: [] }), /do not travel over the ring/);
  });

  test('the encoder reuses and grows its buffer; an earlier frame is not needed after the next encode', () => {
    const encoder = new FrameEncoder();
    const small = decodeToWorker(encoder.encode(runBatchOf([1]))) as RunBatch;
    const big = runBatchOf(Array.from({ length: 20_000 }, (_, i) => `value ${i}`));
    const decoded = decodeToWorker(encoder.encode(big)) as RunBatch;
    assert.deepEqual(decoded.inputs, big.inputs);
    assert.deepEqual(small.inputs, [1]);
  });

  test('a value that cannot be cloned throws as postMessage would, and the encoder stays usable', () => {
    const encoder = new FrameEncoder();
    assert.throws(() => encoder.encode(runBatchOf([1, () => {}])), /could not be cloned/);
    assert.deepEqual((decodeToWorker(encoder.encode(runBatchOf([5]))) as RunBatch).inputs, [5]);
  });

  test('malformed frames throw FrameError and never read past the frame', () => {
    const encoder = new FrameEncoder();
    const good = encoder.encode(runBatchOf([1, 'two', { three: 3 }])).slice();
    const cases: [string, Uint8Array][] = [
      ['empty', new Uint8Array(0)],
      ['unknown kind', Uint8Array.of(99)],
      [
        'a result kind sent to a worker',
        encoder.encode(encodeResults([{ id: 1, ok: true, value: 1 }])).slice(),
      ],
      ['truncated', good.subarray(0, good.length - 3)],
      ['stray bytes', Uint8Array.of(...encoder.encode(runBatchOf([1, 'two'])), 0)],
      ['a count larger than the frame', Uint8Array.of(1, 0xff, 0xff, 0xff, 0x7f)],
    ];
    const badTag = good.slice();
    badTag[5 + 11] = 200; // the first value's tag
    cases.push(['an unknown value tag', badTag]);
    const badTail = good.slice();
    badTail[badTail.length - 2] = badTail[badTail.length - 2]! ^ 0xff;
    cases.push(['a corrupt cloned tail', badTail]);
    for (const [what, frame] of cases) {
      assert.throws(() => decodeToWorker(frame), FrameError, what);
    }
    assert.throws(() => decodeFromWorker(good), FrameError, 'a run batch sent to the pool');
  });

  test('random bytes only ever throw FrameError (bounded fuzz)', () => {
    let seed = 12345;
    const random = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed >>> 16;
    };
    const encoder = new FrameEncoder();
    const seeds = [
      encoder.encode(runBatchOf([1, 'a', { b: 2 }, null])).slice(),
      encoder
        .encode(
          encodeResults([
            { id: 1, ok: true, value: [1] },
            { id: 2, ok: true, value: 'x' },
          ]),
        )
        .slice(),
    ];
    for (let i = 0; i < 3_000; i++) {
      const base = seeds[i % 2]!.slice();
      const flips = 1 + (random() % 4);
      for (let f = 0; f < flips; f++) base[random() % base.length] = random() & 0xff;
      const frame = random() % 5 === 0 ? base.subarray(0, random() % base.length) : base;
      for (const decode of [decodeToWorker, decodeFromWorker]) {
        try {
          decode(frame);
        } catch (err) {
          assert.ok(
            err instanceof FrameError,
            `iteration ${i}: ${(err as Error).name}: ${(err as Error).message}`,
          );
        }
      }
    }
  });
});
