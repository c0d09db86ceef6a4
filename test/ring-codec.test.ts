import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
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
