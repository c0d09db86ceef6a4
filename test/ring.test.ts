import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import {
  CONSUMER_SLEEPING,
  createRing,
  READ,
  RingCorruptError,
  RingReader,
  RingWriter,
  WRITE,
} from '../src/channel/ring.js';

function frameOf(length: number, seed: number): Uint8Array {
  const f = new Uint8Array(length);
  for (let i = 0; i < length; i++) f[i] = (seed * 31 + i * 7) & 0xff;
  return f;
}

describe('shared-memory ring', () => {
  test('frames of every size arrive whole and in order across many wrap-arounds', () => {
    const ring = createRing(64 + 256); // 256 bytes of data
    const got: Uint8Array[] = [];
    const reader = new RingReader(
      ring,
      (f) => got.push(f),
      () => {},
    );
    const writer = new RingWriter(ring, () => {});
    const sent: Uint8Array[] = [];
    for (let i = 0; i < 500; i++) {
      const frame = frameOf((i * 37) % 200, i);
      sent.push(frame);
      while (!writer.send(frame) || writer.pendingBytes > 0) {
        reader.drain();
        writer.flush();
        if (writer.pendingBytes === 0) break;
      }
      reader.drain();
    }
    reader.drain();
    assert.equal(got.length, sent.length);
    for (let i = 0; i < sent.length; i++) assert.deepEqual(got[i], sent[i], `frame ${i}`);
  });

  test('a full ring keeps the rest pending and wakes the writer when space is freed; empty reads nothing', () => {
    const ring = createRing(64 + 128);
    const got: Uint8Array[] = [];
    let writerWakes = 0;
    const reader = new RingReader(
      ring,
      (f) => got.push(f),
      () => writerWakes++,
    );
    const writer = new RingWriter(ring, () => {});
    assert.equal(reader.drain(), 0, 'nothing to read in an empty ring');
    const big = frameOf(1_000, 3); // about eight times the ring
    assert.equal(writer.send(big), false, 'it does not fit at once');
    assert.ok(writer.pendingBytes > 800);
    let rounds = 0;
    while (writer.pendingBytes > 0 && rounds++ < 100) {
      reader.drain();
      writer.flush();
    }
    reader.drain();
    assert.equal(got.length, 1);
    assert.deepEqual(got[0], big, 'a frame larger than the ring streams through it');
    assert.ok(writerWakes >= 7, `the writer was woken ${writerWakes} times`);
  });

  test('zero-length frames', () => {
    const ring = createRing(64 + 64);
    const got: Uint8Array[] = [];
    const reader = new RingReader(
      ring,
      (f) => got.push(f),
      () => {},
    );
    const writer = new RingWriter(ring, () => {});
    for (let i = 0; i < 40; i++) {
      writer.send(new Uint8Array(0));
      reader.drain();
    }
    assert.equal(got.length, 40);
  });

  test('a sleeping reader is woken only when it sleeps, and the flag protocol loses no wake-up', () => {
    const ring = createRing(64 + 1024);
    let wakes = 0;
    const reader = new RingReader(
      ring,
      () => {},
      () => {},
    );
    const writer = new RingWriter(ring, () => wakes++);
    writer.send(frameOf(10, 1));
    assert.equal(wakes, 0, 'an awake reader is not rung');
    assert.equal(reader.prepareToSleep(), undefined, 'data is waiting: do not sleep');
    reader.drain();
    assert.equal(typeof reader.prepareToSleep(), 'number');
    assert.equal(Atomics.load(ring.header, CONSUMER_SLEEPING), 1);
    writer.send(frameOf(10, 2));
    assert.equal(wakes, 1, 'a sleeping reader is rung once');
    assert.equal(Atomics.load(ring.header, CONSUMER_SLEEPING), 0);
  });

  test('the writer may reuse its buffer at once: what did not fit was copied', () => {
    const ring = createRing(64 + 64);
    const got: Uint8Array[] = [];
    const reader = new RingReader(
      ring,
      (f) => got.push(f),
      () => {},
    );
    const writer = new RingWriter(ring, () => {});
    const scratch = frameOf(150, 9);
    const expected = scratch.slice();
    writer.send(scratch);
    scratch.fill(0); // the caller reuses its buffer
    for (let i = 0; i < 10 && writer.pendingBytes > 0; i++) {
      reader.drain();
      writer.flush();
    }
    reader.drain();
    assert.deepEqual(got, [expected]);
  });

  test('an untrusted writer cannot make the reader read beyond the ring, nor allocate what it never sent', () => {
    const ring = createRing(64 + 256);
    const got: Uint8Array[] = [];
    const reader = new RingReader(
      ring,
      (f) => got.push(f),
      () => {},
    );
    // Claims 4 GiB minus one byte for a frame, then sends 10 bytes of it: nothing is delivered.
    const claim = new Uint8Array(14);
    new DataView(claim.buffer).setUint32(0, 0xffff_ffff, true);
    ring.data.set(claim, 0);
    Atomics.store(ring.header, WRITE, 14);
    assert.equal(reader.drain(), 0);
    assert.ok(reader.midFrame);
    // Now claims more unread bytes than the ring holds.
    Atomics.store(ring.header, WRITE, 14 + 10_000);
    assert.throws(() => reader.drain(), RingCorruptError);
    assert.deepEqual(got, []);
  });

  test('an untrusted reader cannot make the writer overwrite unread bytes', () => {
    const ring = createRing(64 + 256);
    const writer = new RingWriter(ring, () => {});
    writer.send(frameOf(20, 1));
    Atomics.store(ring.header, READ, -5000); // "I have read ahead of what you wrote"
    assert.throws(() => writer.send(frameOf(20, 2)), RingCorruptError);
  });

  test('a frame handler that throws does not get the same frame twice', () => {
    const ring = createRing(64 + 256);
    const got: number[] = [];
    const reader = new RingReader(
      ring,
      (f) => {
        got.push(f[0]!);
        if (f[0] === 2) throw new Error('handler failed');
      },
      () => {},
    );
    const writer = new RingWriter(ring, () => {});
    for (let i = 1; i <= 4; i++) writer.send(Uint8Array.of(i, i));
    assert.throws(() => reader.drain(), /handler failed/);
    reader.drain();
    assert.deepEqual(got, [1, 2, 3, 4]);
  });

  test('stress across threads: a producer against a consumer that sleeps until its doorbell (bounded in time)', async () => {
    const bytes = 64 + 4096;
    const ring = createRing(bytes);
    const back = new SharedArrayBuffer(4);
    const backFlag = new Int32Array(back);
    const worker = new Worker(new URL('./fixtures/ring-consumer.js', import.meta.url), {
      workerData: { buffer: ring.header.buffer, bytes, back },
    });
    const waitForSpace = async (seen: number) => {
      const wait = Atomics.waitAsync(backFlag, 0, seen, 50);
      if (wait.async) await wait.value;
    };
    try {
      await once(worker, 'online');
      // Listen from the start: the report may come while we still wait for space for the last bytes.
      const reported = once(worker, 'message');
      const writer = new RingWriter(ring, () => worker.postMessage('bell'));
      let frames = 0;
      let checksum = 0;
      const deadline = performance.now() + 1_500;
      let seed = 0;
      while (performance.now() < deadline && frames < 200_000) {
        const frame = frameOf((seed * 53) % 6_000, seed++); // some frames larger than the ring
        for (let i = 0; i < frame.length; i += 97)
          checksum = (checksum + frame[i]! * (i + 1)) % 1_000_000_007;
        frames++;
        if (!writer.send(frame)) {
          // Wait (bounded) for the reader to make space; it bumps `back` and notifies.
          while (writer.pendingBytes > 0) {
            const seen = Atomics.load(backFlag, 0);
            if (writer.flush()) break;
            await waitForSpace(seen);
          }
        }
        if (seed % 1_000 === 0) await new Promise((r) => setImmediate(r)); // let the consumer sleep sometimes
      }
      const end = new Uint8Array([0xff, 0xfe, 0xfd]);
      frames++;
      checksum = (checksum + end[0]!) % 1_000_000_007; // the consumer counts the end frame too
      writer.send(end);
      while (writer.pendingBytes > 0) {
        const seen = Atomics.load(backFlag, 0);
        if (writer.flush()) break;
        await waitForSpace(seen);
      }
      const [report] = (await Promise.race([
        reported,
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error('the consumer never finished: a lost wake-up')), 20_000).unref(),
        ),
      ])) as [{ frames: number; checksum: number; ticks: number }];
      assert.equal(report.frames, frames);
      assert.equal(report.checksum, checksum);
      assert.ok(report.ticks > 0, "the consumer's event loop ran while it waited");
    } finally {
      await worker.terminate();
    }
  });
});
