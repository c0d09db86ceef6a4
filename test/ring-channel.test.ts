import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { nativeShm } from '../src/channel/native.js';
import { encodeRun, type FromWorker, type ResultBatch, type ToWorker } from '../src/channel/protocol.js';
import { CONSUMER_SLEEPING, createRing, RingCorruptError } from '../src/channel/ring.js';
import { RingChannel } from '../src/channel/ring-channel.js';
import { decodeFromWorker, decodeToWorker } from '../src/channel/ring-codec.js';
import { type PoolRingEnd, threadRing } from '../src/channel/ring-link.js';
import { openShmFds } from './fixtures/shm-peer.js';

const PEER = new URL('./fixtures/ring-peer.js', import.meta.url);
const NAMES = new Map([['echo', 0]]);

interface Peer {
  worker: Worker;
  end: PoolRingEnd;
  results: ResultBatch[];
  broken: Error[];
  exited: Promise<unknown[]>;
}

async function startPeer(
  mode: 'echo' | 'die-mid-frame' | 'corrupt',
  doorbells: 'eventfd' | 'port',
  spinUs: number,
  onResults?: (batch: ResultBatch) => void,
): Promise<Peer> {
  const results: ResultBatch[] = [];
  const broken: Error[] = [];
  let worker: Worker | undefined;
  const { setup, end } = threadRing(
    () => worker?.postMessage({ t: 'bell' }),
    {
      spinUs,
      onMessage: (msg: FromWorker) => {
        if (msg.t !== 'results') return;
        results.push(msg);
        onResults?.(msg);
      },
      onBroken: (error) => broken.push(error),
    },
    doorbells,
  );
  worker = new Worker(PEER, { workerData: { setup, mode } });
  const exited = once(worker, 'exit');
  worker.on('message', (msg: { t: string }) => {
    if (msg.t === 'bell') end.wake();
  });
  const [up] = await once(worker, 'message');
  assert.equal(up.t, 'up');
  return { worker, end, results, broken, exited };
}

async function stop(peer: Peer): Promise<void> {
  await peer.worker.terminate();
  peer.end.close();
}

const DOORBELLS: ('eventfd' | 'port')[] = nativeShm ? ['eventfd', 'port'] : ['port'];

describe('ring channel between threads', () => {
  for (const doorbells of DOORBELLS) {
    test(`${doorbells} doorbells: no lost wake-up when both sides always sleep (bounded: 3,000 round trips or 10 s)`, async () => {
      const fdsBefore = openShmFds();
      // spinUs 0: every message finds the other side asleep, so each one needs its doorbell.
      let resolveReply: ((batch: ResultBatch) => void) | undefined;
      const peer = await startPeer('echo', doorbells, 0, (batch) => resolveReply?.(batch));
      try {
        const deadline = Date.now() + 10_000;
        let rounds = 0;
        for (; rounds < 3_000 && Date.now() < deadline; rounds++) {
          const reply = new Promise<ResultBatch>((resolve, reject) => {
            resolveReply = resolve;
            setTimeout(
              () => reject(new Error(`round ${rounds}: no reply within 2 s: a lost wake-up`)),
              2_000,
            ).unref();
          });
          peer.end.post(encodeRun([{ id: rounds, name: 'echo', input: rounds * 2, attempt: 1 }], NAMES));
          const batch = await reply;
          assert.equal(batch.ids[0], rounds);
          assert.equal(batch.values[0], rounds * 2);
        }
        assert.ok(rounds >= 100, `only ${rounds} round trips`);
        assert.deepEqual(peer.broken, []);
      } finally {
        await stop(peer);
      }
      assert.deepEqual(openShmFds(), fdsBefore, 'the doorbells are closed with the channel');
    });
  }

  test('pipelined: many batches in flight, some larger than the ring, all arrive in order', async () => {
    const peer = await startPeer('echo', DOORBELLS[0]!, 50);
    try {
      const total = 2_000;
      const done = new Promise<void>((resolve) => {
        const check = setInterval(() => {
          if (peer.results.reduce((n, b) => n + b.ids.length, 0) >= total) {
            clearInterval(check);
            resolve();
          }
        }, 5);
      });
      const big = 'y'.repeat(1_500_000); // larger than one ring: it streams through both ways
      for (let i = 0; i < total; i++) {
        peer.end.post(
          encodeRun([{ id: i, name: 'echo', input: i % 500 === 7 ? big : i, attempt: 1 }], NAMES),
        );
      }
      await Promise.race([
        done,
        new Promise((_, reject) => setTimeout(() => reject(new Error('stalled')), 20_000).unref()),
      ]);
      const ids = peer.results.flatMap((b) => [...b.ids]);
      assert.deepEqual(
        ids,
        Array.from({ length: total }, (_, i) => i),
      );
      const values = peer.results.flatMap((b) => b.values);
      for (let i = 0; i < total; i++) assert.equal(values[i], i % 500 === 7 ? big : i);
    } finally {
      await stop(peer);
    }
  });

  test('a peer that dies mid-frame: the whole frames before it arrive, the half-written one is dropped', async () => {
    const peer = await startPeer('die-mid-frame', DOORBELLS[0]!, 50);
    peer.end.post(encodeRun([{ id: 5, name: 'echo', input: 'before', attempt: 1 }], NAMES));
    const [code] = await peer.exited;
    assert.equal(code, 3);
    peer.end.close(); // reads what is left, as the thread tier does on exit
    assert.equal(peer.results.length, 1);
    assert.deepEqual([...peer.results[0]!.ids], [5]);
    assert.equal(peer.results[0]!.values[0], 'before');
    assert.deepEqual(peer.broken, [], 'a half-written frame is not corruption');
  });

  test('a peer that corrupts the ring is reported as broken, and the channel stops reading', async () => {
    const peer = await startPeer('corrupt', 'port', 0);
    try {
      peer.end.post(encodeRun([{ id: 1, name: 'echo', input: 1, attempt: 1 }], NAMES));
      const deadline = Date.now() + 5_000;
      while (peer.broken.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      assert.equal(peer.broken.length, 1);
      assert.ok(peer.broken[0] instanceof RingCorruptError, String(peer.broken[0]));
      assert.deepEqual(peer.results, []);
    } finally {
      await stop(peer);
    }
  });
});

describe('ring channel polling policy (both ends in one thread)', () => {
  const pair = (awaiting: () => boolean, spinUs: number) => {
    const aToB = createRing(64 + 4096);
    const bToA = createRing(64 + 4096);
    const rings = { a: 0, b: 0 };
    const got: { a: unknown[]; b: unknown[] } = { a: [], b: [] };
    let a: RingChannel<FromWorker> | undefined;
    let b: RingChannel<ToWorker> | undefined;
    a = new RingChannel<FromWorker>({
      outgoing: aToB,
      incoming: bToA,
      ringPeer: () => {
        rings.b++;
        b?.wake();
      },
      decode: decodeFromWorker,
      onMessage: (m) => got.a.push(m),
      onBroken: (e) => assert.fail(e),
      spinUs,
      awaitingReply: awaiting,
    });
    b = new RingChannel<ToWorker>({
      outgoing: bToA,
      incoming: aToB,
      ringPeer: () => {
        rings.a++;
        a?.wake();
      },
      decode: decodeToWorker,
      onMessage: (m) => {
        got.b.push(m);
        if (m.t === 'ping') b!.post({ t: 'pong', seq: m.seq });
      },
      onBroken: (e) => assert.fail(e),
      spinUs,
    });
    return { a, b, aToB, bToA, rings, got };
  };
  const turns = async (n: number) => {
    for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
  };

  test('a side that awaits no reply sleeps at once; the other keeps polling for spinUs', async () => {
    let outstanding = 0;
    const { a, b, aToB, bToA, got } = pair(() => outstanding > 0, 200_000);
    try {
      outstanding = 1;
      a.post({ t: 'ping', seq: 1 });
      await turns(5);
      assert.deepEqual(got.a, [{ t: 'pong', seq: 1 }]);
      outstanding = 0;
      await turns(3);
      assert.equal(
        Atomics.load(bToA.header, CONSUMER_SLEEPING),
        1,
        'the side with nothing outstanding sleeps',
      );
      assert.equal(
        Atomics.load(aToB.header, CONSUMER_SLEEPING),
        0,
        'the other still polls within its window',
      );
    } finally {
      a.close();
      b.close();
    }
  });

  test('with spinUs 0 each message rings the sleeping side, and nothing is lost', async () => {
    const { a, b, rings, got } = pair(() => true, 0);
    try {
      for (let i = 1; i <= 50; i++) {
        a.post({ t: 'ping', seq: i });
        await turns(2);
      }
      await turns(5);
      assert.deepEqual(
        got.a.map((m) => (m as { seq: number }).seq),
        Array.from({ length: 50 }, (_, i) => i + 1),
      );
      assert.ok(rings.b >= 50, `the worker side was rung ${rings.b} times for 50 messages`);
    } finally {
      a.close();
      b.close();
    }
  });
});
