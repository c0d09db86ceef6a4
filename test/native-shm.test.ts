import assert from 'node:assert/strict';
import { type ChildProcess, fork, type StdioOptions, spawn } from 'node:child_process';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { type NativeShm, nativeLoadError, nativeShm } from '../src/channel/native.js';
import {
  CHILD_SLEEPING,
  CHILD_WROTE,
  fdIdentity,
  openShmFds,
  PARENT_SLEEPING,
  PARENT_WROTE,
  PING_SEQ,
  PING_VAL,
  PONG_SEQ,
  PONG_VAL,
  ping,
  pong,
  spinUntil,
} from './fixtures/shm-peer.js';
import { childPids, eventually } from './helpers.js';

const PEER = fileURLToPath(new URL('./fixtures/shm-peer.js', import.meta.url));
const THREAD = new URL('./fixtures/shm-thread.js', import.meta.url);
const BYTES = 4096;

/** In CI the addon must build: a missing addon fails here, with the reason, instead of skipping. */
function shm(): NativeShm {
  assert.ok(nativeShm, `the native addon did not load: ${nativeLoadError?.message}`);
  return nativeShm;
}

/** The memfd and eventfds this process holds before any test: every test must give its own back. */
const baselineFds = openShmFds();
const children = new Set<ChildProcess>();

after(async () => {
  for (const child of children) child.kill('SIGKILL');
  assert.ok(await eventually(() => childPids().length === 0), `child processes left: ${childPids()}`);
  assert.deepEqual(openShmFds(), baselineFds, 'every memfd and doorbell is closed again');
});

interface Peer {
  child: ChildProcess;
  buffer: SharedArrayBuffer;
  bellToChild: number;
  bellToParent: number;
  /** The child's first IPC message. */
  reply: Promise<any>;
  /** Kills the child if still running, waits for its exit, closes the bells. */
  dispose(): Promise<void>;
}

/**
 * Starts the peer fixture with the shared memory at fd 4 and the two bells at fds 5 and 6. `before`
 * runs on the fresh memory before the child starts.
 */
function startPeer(
  mode: string,
  options: object = {},
  how: { spawn?: boolean; before?: (i32: Int32Array) => void } = {},
): Peer {
  const native = shm();
  const { fd: memfd, buffer } = native.create(BYTES);
  how.before?.(new Int32Array(buffer));
  const bellToChild = native.doorbell();
  const bellToParent = native.doorbell();
  const stdio: StdioOptions = ['ignore', 'inherit', 'inherit', 'ipc', memfd, bellToChild, bellToParent];
  const args = [mode, JSON.stringify({ bytes: BYTES, ...options })];
  const child = how.spawn
    ? spawn(process.execPath, [PEER, ...args], { stdio, serialization: 'advanced' })
    : fork(PEER, args, { stdio, serialization: 'advanced', execArgv: [] });
  children.add(child);
  // The child has its own copy of the memfd now, and this process keeps the mapping.
  native.close(memfd);
  const exited = once(child, 'exit');
  const reply = new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code, signal) =>
      reject(new Error(`peer exited (${code ?? signal}) before replying`)),
    );
  });
  reply.catch(() => {});
  return {
    child,
    buffer,
    bellToChild,
    bellToParent,
    reply,
    async dispose() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      children.delete(child);
      native.close(bellToChild);
      native.close(bellToParent);
    },
  };
}

class PeerDied extends Error {
  constructor(
    readonly round: number,
    readonly how: string,
  ) {
    super(`the peer ${how} during round ${round}`);
  }
}

/**
 * The parent's side of the ping-pong, on the event loop: write a ping, ring the child only if it
 * sleeps, spin `spinUs` for the answer, else sleep on its own bell through `watch` (so the loop keeps
 * running). Stops at the child's exit or after `deadlineMs`. Returns how many times it slept.
 */
async function parentPingPong(
  peer: Peer,
  rounds: number,
  spinUs: number,
  deadlineMs: number,
): Promise<number> {
  let sleeps = 0;
  const native = shm();
  const i32 = new Int32Array(peer.buffer);
  const deadline = performance.now() + deadlineMs;
  let wake: (() => void) | undefined;
  let died: string | undefined;
  const onExit = (code: number | null, signal: string | null) => {
    died = `exited (${code ?? signal})`;
    wake?.();
  };
  peer.child.once('exit', onExit);
  const timer = setTimeout(() => wake?.(), deadlineMs);
  const watch = native.watch(peer.bellToParent, () => wake?.());
  try {
    for (let round = 1; round <= rounds; round++) {
      Atomics.store(i32, PING_VAL, ping(round));
      Atomics.store(i32, PING_SEQ, round);
      if (Atomics.load(i32, CHILD_SLEEPING) === 1) native.ring(peer.bellToChild);
      const answered = () => Atomics.load(i32, PONG_SEQ) >= round;
      if (!spinUntil(answered, spinUs)) {
        Atomics.store(i32, PARENT_SLEEPING, 1);
        sleeps++;
        while (!answered()) {
          if (died) throw new PeerDied(round, died);
          if (performance.now() > deadline)
            throw new Error(`round ${round}: no answer within ${deadlineMs} ms`);
          await new Promise<void>((resolve) => {
            wake = resolve;
          });
          wake = undefined;
        }
        Atomics.store(i32, PARENT_SLEEPING, 0);
      }
      const answer = Atomics.load(i32, PONG_VAL);
      if (answer !== pong(ping(round))) throw new Error(`round ${round}: answer ${answer}`);
      if (performance.now() > deadline) throw new Error(`round ${round}: past the ${deadlineMs} ms deadline`);
    }
    return sleeps;
  } finally {
    watch.close();
    clearTimeout(timer);
    peer.child.off('exit', onExit);
  }
}

describe('native shared memory', () => {
  test('the addon loads', () => {
    const native = shm();
    for (const name of ['create', 'open', 'doorbell', 'ring', 'watch', 'waitSync', 'close'] as const) {
      assert.equal(typeof native[name], 'function', name);
    }
  });

  test('create rounds up to a page; open maps the same memory; bad arguments throw', () => {
    const native = shm();
    const { fd, buffer } = native.create(100);
    try {
      assert.ok(buffer instanceof SharedArrayBuffer);
      assert.equal(buffer.byteLength, 4096);
      const again = native.open(fd, 4096);
      Atomics.store(new Int32Array(buffer), 3, 1234);
      assert.equal(Atomics.load(new Int32Array(again), 3), 1234);
      // Mapping past the end of the file would SIGBUS on access: refused.
      assert.throws(() => native.open(fd, 8192), /at least that many bytes/);
      assert.throws(() => native.create(0), TypeError);
      assert.throws(() => native.create(1.5), TypeError);
      assert.throws(() => native.ring(-1), TypeError);
      assert.throws(() => native.waitSync(fd, -1), TypeError);
      assert.throws(() => native.watch(fd, 'x' as never), TypeError);
    } finally {
      native.close(fd);
    }
    assert.throws(() => native.close(fd), { code: 'EBADF' });
  });

  test('waitSync times out when not rung; a ring before the wait is not lost; rings coalesce', () => {
    const native = shm();
    const bell = native.doorbell();
    try {
      const start = performance.now();
      assert.equal(native.waitSync(bell, 30), false);
      assert.ok(performance.now() - start >= 29, 'it waited');
      assert.equal(native.waitSync(bell, 0), false);
      native.ring(bell);
      native.ring(bell);
      assert.equal(native.waitSync(bell, 1000), true);
      assert.equal(native.waitSync(bell, 0), false, 'two rings before one wait wake it once');
      native.ring(bell);
      assert.equal(native.waitSync(bell, Number.POSITIVE_INFINITY), true);
    } finally {
      native.close(bell);
    }
  });

  test('a watched fd cannot be watched twice or closed until the watch is', async () => {
    const native = shm();
    const bell = native.doorbell();
    const watch = native.watch(bell, () => {});
    assert.throws(() => native.watch(bell, () => {}), /already watched/);
    assert.throws(() => native.close(bell), /open watch/);
    watch.close();
    watch.close();
    const calls: unknown[] = [];
    const again = native.watch(bell, (...args) => calls.push(args));
    native.ring(bell);
    assert.ok(await eventually(() => calls.length === 1, 5000, 1));
    assert.deepEqual(calls[0], [], 'onRing gets no argument when rung');
    again.close();
    native.close(bell);
  });

  test('the fds reach the child at 4, 5 and 6 (fork and spawn, advanced serialization), and no other child', async () => {
    const native = shm();
    for (const useSpawn of [false, true]) {
      const peer = startPeer('fds', {}, { spawn: useSpawn });
      try {
        // The parent closed its memfd after the fork; the mapping's file is still the child's fd 4.
        const bells = [fdIdentity(peer.bellToChild), fdIdentity(peer.bellToParent)];
        const { given } = await peer.reply;
        assert.match(given[0], /^memfd:\d+$/);
        assert.deepEqual(given.slice(1), bells, useSpawn ? 'spawn' : 'fork');

        // A sibling started while this process holds the bells (and a fresh memfd) gets none of them.
        const { fd: memfd } = native.create(BYTES);
        try {
          const sibling = fork(PEER, ['fds'], {
            stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
            execArgv: [],
          });
          children.add(sibling);
          const { given: siblingGiven, all } = await new Promise<any>((resolve) =>
            sibling.once('message', resolve),
          );
          await once(sibling, 'exit').catch(() => {});
          children.delete(sibling);
          assert.deepEqual(siblingGiven, [null, null, null], 'the sibling has no fds 4, 5, 6');
          for (const id of [...bells, fdIdentity(memfd), given[0]]) {
            assert.ok(!all.includes(id), `${id} leaked into a sibling`);
          }
        } finally {
          native.close(memfd);
        }
      } finally {
        await peer.dispose();
      }
    }
  });

  test('memory written by the parent is seen by a forked child, and the child’s writes by the parent', async () => {
    const peer = startPeer('memory', {}, { before: (i32) => Atomics.store(i32, PARENT_WROTE, 41) });
    try {
      const { seen, bytes } = await peer.reply;
      assert.equal(seen, 41);
      assert.equal(bytes, BYTES);
      assert.equal(Atomics.load(new Int32Array(peer.buffer), CHILD_WROTE), 42);
    } finally {
      await peer.dispose();
    }
  });

  test('a ring in one process wakes a watch in the other, and neither event loop is blocked', async () => {
    const native = shm();
    const peer = startPeer('async-bell', { ringAfterMs: 100 });
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    try {
      let ticksAtRing = -1;
      await new Promise<void>((resolve) => {
        const watch = native.watch(peer.bellToParent, () => {
          ticksAtRing = ticks;
          watch.close();
          resolve();
        });
      });
      assert.ok(ticksAtRing > 0, 'the parent’s timer fired while it waited for the child’s ring');
      // Ring back after a while: the child's own timer must keep firing while it waits.
      setTimeout(() => native.ring(peer.bellToChild), 50);
      const reply = await peer.reply;
      assert.equal(reply.rung, true);
      assert.ok(reply.ticks > 0, 'the child’s timer fired while it waited for the parent’s ring');
    } finally {
      clearInterval(timer);
      await peer.dispose();
    }
  });

  for (const spinUs of [5, 0]) {
    const how = spinUs ? `spinning ${spinUs} µs before sleeping` : 'sleeping on the doorbell every time';
    test(`a ping-pong of 10,000 round trips, ${how}: every value right, no lost wake-up`, async () => {
      const rounds = 10_000;
      const peer = startPeer('ping-pong', { rounds, spinUs });
      try {
        const parentSlept = await parentPingPong(peer, rounds, spinUs, 20_000);
        const { done, sleeps: childSlept } = await peer.reply;
        assert.equal(done, true);
        if (spinUs === 0) {
          // Not a speed claim: without spinning, the doorbell path is the one under test.
          assert.ok(parentSlept > 0 && childSlept > 0, `slept: parent ${parentSlept}, child ${childSlept}`);
        }
        const [code] = await once(peer.child, 'exit');
        assert.equal(code, 0);
      } finally {
        await peer.dispose();
      }
    });
  }

  test('a child that dies mid-run is noticed: the waiting parent does not hang', async () => {
    const peer = startPeer('ping-pong', { rounds: 1000, spinUs: 0, dieAt: 500 });
    try {
      const error = await parentPingPong(peer, 1000, 0, 20_000).then(
        () => undefined,
        (e: unknown) => e,
      );
      assert.ok(error instanceof PeerDied, String(error));
      assert.equal(error.round, 500);
      assert.equal(error.how, 'exited (7)');
    } finally {
      await peer.dispose();
    }
  });

  test('loads and watches in a worker thread; a watch left open closes with the thread', async () => {
    const native = shm();
    const bell = native.doorbell();
    const leftOpen = native.doorbell();
    const worker = new Worker(THREAD, { workerData: { bell, leftOpen } });
    try {
      const [{ buffer }] = await once(worker, 'message');
      assert.ok(buffer instanceof SharedArrayBuffer);
      Atomics.store(new Int32Array(buffer), 1, 99);
      native.ring(bell);
      assert.deepEqual((await once(worker, 'message'))[0], { rung: true });
      assert.equal(Atomics.load(new Int32Array(buffer), 0), 100, 'the thread saw the write and answered');
      assert.throws(() => native.close(leftOpen), /open watch/);
      await worker.terminate();
      // The thread's teardown closed its watch (and its loop closed cleanly: this process is alive).
      native.close(leftOpen);
      // The memory the thread made outlives it: the buffer is still mapped here.
      Atomics.store(new Int32Array(buffer), 2, 7);
      assert.equal(Atomics.load(new Int32Array(buffer), 2), 7);
    } finally {
      await worker.terminate();
      native.close(bell);
    }
  });
});
