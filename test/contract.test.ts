import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AbortError,
  createPool,
  InvalidOptionError,
  PoolClosedError,
  QueueFullError,
  SerializationError,
  TaskError,
  TaskTimeoutError,
  UnknownHandlerError,
  WorkerStartError,
} from '../src/index.js';
import {
  BROKEN_HANDLERS,
  childPids,
  EXIT_ON_LOAD_HANDLERS,
  eventually,
  TIER_CASES,
  withPool,
} from './helpers.js';

after(async () => {
  assert.ok(await eventually(() => childPids().length === 0), `child processes left: ${childPids()}`);
});

for (const { isolation, channel, label } of TIER_CASES) {
  describe(`${label}: results, errors and options`, () => {
    test('returns results, structured values included', () =>
      withPool({ isolation, channel }, async (pool) => {
        assert.equal(await pool.run('add', { a: 2, b: 3 }), 5);
        const value = { when: new Date(0), tags: new Set(['a']), bytes: new Uint8Array([1, 2]), big: 10n };
        assert.deepEqual(await pool.run('echo', value), value);
        assert.equal(await pool.run('delayed', { ms: 5, value: 'later' }), 'later');
      }));

    test('runs many tasks concurrently and returns each its own result', () =>
      withPool({ isolation, channel, concurrency: 4 }, async (pool) => {
        const out = await Promise.all(Array.from({ length: 500 }, (_, i) => pool.run('inc', i)));
        assert.deepEqual(
          out,
          Array.from({ length: 500 }, (_, i) => i + 1),
        );
        const stats = pool.stats();
        assert.equal(stats.completed, 500);
        assert.equal(stats.running, 0);
        assert.equal(stats.queued, 0);
        assert.equal(stats.runTime.count, 500);
        // Tasks and results travelled in batches, and stats() says how well that amortized.
        assert.equal(stats.batches.toWorkers.items, 500);
        assert.equal(stats.batches.fromWorkers.items, 500);
        assert.ok(
          stats.batches.toWorkers.messages < 500,
          `${stats.batches.toWorkers.messages} messages for 500 tasks`,
        );
        assert.ok(stats.batches.toWorkers.max > 1);
        assert.ok(Math.abs(stats.batches.toWorkers.mean - 500 / stats.batches.toWorkers.messages) < 1e-9);
        assert.ok(stats.queueWait.max >= stats.queueWait.p50);
      }));

    test('async handlers run several at once on one worker', () =>
      withPool({ isolation, channel, workers: 1, concurrency: 10 }, async (pool) => {
        const started = performance.now();
        await Promise.all(Array.from({ length: 10 }, () => pool.run('delayed', { ms: 200, value: 1 })));
        // Ten 200 ms waits one after the other would take 2 s; together they take about 200 ms.
        assert.ok(performance.now() - started < 1_500);
      }));

    test('a thrown error keeps its name, message, code and remote stack', () =>
      withPool({ isolation, channel }, async (pool) => {
        const err = await pool.run('fail', { message: 'bad input', code: 'E_BAD' }).catch((e) => e);
        assert.ok(err instanceof TaskError);
        assert.equal(err.code, 'ERR_ISOLANE_TASK');
        assert.equal(err.message, 'bad input');
        assert.equal(err.remoteName, 'RangeError');
        assert.equal(err.remoteCode, 'E_BAD');
        assert.equal(err.handler, 'fail');
        assert.match(err.remoteStack ?? '', /handlers\.(js|ts)/);
        const rejected = await pool.run('rejectLater', 'async bad').catch((e) => e);
        assert.ok(rejected instanceof TaskError);
        assert.equal(rejected.remoteName, 'TypeError');
        const str = await pool.run('throwString', undefined).catch((e) => e);
        assert.ok(str instanceof TaskError);
        assert.match(str.message, /plain string/);
        assert.equal(pool.stats().failed, 3);
      }));

    test('an unknown handler rejects, naming it and the handlers there are', () =>
      withPool({ isolation, channel }, async (pool) => {
        // Before any worker reported its handlers, and after.
        const early = await pool.run('nope' as 'echo', 1).catch((e) => e);
        assert.ok(early instanceof UnknownHandlerError, String(early));
        assert.match(early.message, /'nope'.*add.*echo/);
        await pool.ready();
        const late = await pool.run('nope' as 'echo', 1).catch((e) => e);
        assert.ok(late instanceof UnknownHandlerError);
        assert.equal(late.code, 'ERR_ISOLANE_UNKNOWN_HANDLER');
      }));

    test('bad run() options reject with the option named', () =>
      withPool({ isolation, channel }, async (pool) => {
        const bad = [
          [{ timeoutMs: -5 }, 'timeoutMs'],
          [{ idempotent: 'yes' }, 'idempotent'],
          [{ signal: {} }, 'signal'],
          [{ retries: 1 }, 'retries'],
        ] as const;
        for (const [options, option] of bad) {
          const err = await pool.run('echo', 1, options as never).catch((e) => e);
          assert.ok(err instanceof InvalidOptionError, `${option}: ${err}`);
          assert.equal(err.option, option);
        }
        const noName = await pool.run('' as 'echo', 1).catch((e) => e);
        assert.ok(noName instanceof InvalidOptionError);
      }));

    test('abort before the task starts', () =>
      withPool({ isolation, channel }, async (pool) => {
        const err = await pool.run('echo', 1, { signal: AbortSignal.abort('no') }).catch((e) => e);
        assert.ok(err instanceof AbortError);
        assert.equal(err.name, 'AbortError');
        assert.equal(err.code, 'ABORT_ERR');
      }));

    test('abort while queued removes the task; abort while running tells the handler', () =>
      withPool({ isolation, channel, workers: 1 }, async (pool) => {
        await pool.ready();
        const blocker = new AbortController();
        const running = pool.run('waitForAbort', undefined, { signal: blocker.signal });
        const queued = new AbortController();
        const waiting = pool.run('echo', 'never', { signal: queued.signal });
        await sleep(50);
        queued.abort();
        assert.ok((await waiting.catch((e) => e)) instanceof AbortError);
        assert.equal(pool.stats().queued, 0);
        blocker.abort();
        assert.ok((await running.catch((e) => e)) instanceof AbortError);
        // The worker saw the abort, finished, and serves the next task.
        assert.equal(await pool.run('echo', 'next'), 'next');
      }));

    test('a timeout rejects with TaskTimeoutError', () =>
      withPool({ isolation, channel, timeoutMs: 100 }, async (pool) => {
        const err = await pool.run('neverSettles', undefined).catch((e) => e);
        assert.ok(err instanceof TaskTimeoutError);
        assert.equal(err.code, 'ERR_ISOLANE_TIMEOUT');
        assert.equal(err.timeoutMs, 100);
        const override = await pool.run('neverSettles', undefined, { timeoutMs: 30 }).catch((e) => e);
        assert.equal(override.timeoutMs, 30);
        assert.equal(await pool.run('echo', 'still serving'), 'still serving');
      }));

    test('a full queue rejects with QueueFullError', () =>
      withPool({ isolation, channel, workers: 1, maxQueue: 2 }, async (pool) => {
        await pool.ready();
        const running = pool.run('delayed', { ms: 100, value: 0 });
        const queued = [pool.run('echo', 1), pool.run('echo', 2)];
        const err = await pool.run('echo', 3).catch((e) => e);
        assert.ok(err instanceof QueueFullError);
        assert.equal(err.code, 'ERR_ISOLANE_QUEUE_FULL');
        assert.deepEqual(await Promise.all([running, ...queued]), [0, 1, 2]);
      }));

    test('close finishes queued and running tasks, then refuses new ones', async () => {
      const pool = createPool({
        handlers: new URL('./fixtures/handlers.js', import.meta.url),
        isolation,
        channel,
        workers: 1,
      });
      const tasks = [0, 1, 2].map((i) => pool.run('delayed', { ms: 30, value: i }));
      const closed = pool.close();
      const refused = await pool.run('echo', 1).catch((e) => e);
      assert.ok(refused instanceof PoolClosedError);
      assert.deepEqual(await Promise.all(tasks), [0, 1, 2]);
      await closed;
      assert.equal(pool.stats().state, 'closed');
      assert.ok(pool.stats().workers.every((w) => w.state === 'down'));
    });

    test('destroy rejects queued and running tasks with PoolClosedError', async () => {
      const pool = createPool({
        handlers: new URL('./fixtures/handlers.js', import.meta.url),
        isolation,
        channel,
        workers: 1,
      });
      await pool.ready();
      const running = pool.run('delayed', { ms: 5_000, value: 0 }).catch((e) => e);
      const queued = pool.run('echo', 1).catch((e) => e);
      await sleep(20);
      await pool.destroy();
      for (const p of [running, queued]) {
        const err = await p;
        assert.ok(err instanceof PoolClosedError, String(err));
        assert.equal(err.code, 'ERR_ISOLANE_POOL_CLOSED');
      }
      assert.equal(pool.stats().state, 'destroyed');
    });

    test('await using closes the pool', async () => {
      let stats: ReturnType<import('../src/index.js').Pool['stats']> | undefined;
      {
        await using pool = createPool({
          handlers: new URL('./fixtures/handlers.js', import.meta.url),
          isolation,
          channel,
        });
        assert.equal(await pool.run('inc', 1), 2);
        stats = pool.stats();
        setImmediate(() => {
          stats = pool.stats();
        });
      }
      await sleep(5);
      assert.equal(stats?.state, 'closed');
    });

    test('a handler module that fails to load rejects with WorkerStartError, without a crash loop', async () => {
      const pool = createPool({ handlers: BROKEN_HANDLERS, isolation, channel, workers: 2 });
      let restarts = 0;
      pool.on('restart', () => restarts++);
      try {
        const err = await pool.run('echo', 1).catch((e) => e);
        assert.ok(err instanceof WorkerStartError, String(err));
        assert.equal(err.code, 'ERR_ISOLANE_WORKER_START');
        assert.match(err.message, /broken on purpose/);
        await assert.rejects(pool.ready(), WorkerStartError);
        assert.ok((await pool.run('echo', 2).catch((e) => e)) instanceof WorkerStartError);
        assert.equal(restarts, 0);
      } finally {
        await pool.destroy();
      }
    });

    test('a missing handler module rejects with WorkerStartError', async () => {
      const pool = createPool({ handlers: '/nonexistent/handlers.js', isolation, channel, workers: 1 });
      try {
        const err = await pool.run('echo', 1).catch((e) => e);
        assert.ok(err instanceof WorkerStartError, String(err));
        assert.match(err.message, /nonexistent/);
      } finally {
        await pool.destroy();
      }
    });

    if (isolation !== 'inline') {
      test('a module that exits while loading is a start error, not a crash loop', async () => {
        const pool = createPool({ handlers: EXIT_ON_LOAD_HANDLERS, isolation, channel, workers: 1 });
        try {
          const err = await pool.run('echo', 1).catch((e) => e);
          assert.ok(err instanceof WorkerStartError, String(err));
          assert.match(err.message, /exited with code 9 before it was ready/);
        } finally {
          await pool.destroy();
        }
      });

      test('non-cloneable input and output reject with SerializationError; other tasks are unharmed', () =>
        withPool({ isolation, channel, workers: 1, concurrency: 4 }, async (pool) => {
          await pool.ready();
          const [good, bad, good2] = await Promise.allSettled([
            pool.run('echo', 1),
            pool.run('echo', { fn: () => 1 }),
            pool.run('echo', 2),
          ]);
          assert.deepEqual(good, { status: 'fulfilled', value: 1 });
          assert.deepEqual(good2, { status: 'fulfilled', value: 2 });
          assert.equal(bad.status, 'rejected');
          const inputErr = (bad as PromiseRejectedResult).reason;
          assert.ok(inputErr instanceof SerializationError);
          assert.equal(inputErr.direction, 'input');
          const outputErr = await pool.run('returnFunction', undefined).catch((e) => e);
          assert.ok(outputErr instanceof SerializationError);
          assert.equal(outputErr.direction, 'result');
          assert.equal(outputErr.code, 'ERR_ISOLANE_NOT_CLONEABLE');
          assert.equal(pool.stats().crashes, 0);
        }));
    }

    if (isolation === 'thread') {
      test('a SharedArrayBuffer in an input is shared with the worker, whatever the channel', () =>
        withPool({ isolation, channel }, async (pool) => {
          const sab = new SharedArrayBuffer(8);
          assert.equal(await pool.run('writeShared', sab), 1);
          assert.equal(Atomics.load(new Int32Array(sab), 0), 42);
        }));

      test('transfer moves an ArrayBuffer instead of copying it', () =>
        withPool({ isolation, channel }, async (pool) => {
          const buf = new ArrayBuffer(1024);
          assert.equal(await pool.run('byteLength', buf, { transfer: [buf] }), 1024);
          assert.equal(buf.byteLength, 0, 'the caller no longer owns the buffer');
        }));
    }

    test('move() returns a result; the thread tier moves it instead of copying it', () =>
      withPool({ isolation, channel, workers: 1 }, async (pool) => {
        const bytes = await pool.run('movedBytes', 4096);
        assert.equal(bytes.byteLength, 4096);
        assert.ok(bytes.every((b) => b === 7));
        const left = await pool.run('lastMovedLength', undefined);
        assert.equal(
          left,
          isolation === 'thread' ? 0 : 4096,
          'moved away from the worker only between threads',
        );
      }));

    test('large payloads (4 KiB, 1 MiB, 3 MiB) arrive whole both ways', () =>
      withPool({ isolation, channel, workers: 1 }, async (pool) => {
        for (const size of [4096, 1 << 20, 3 << 20]) {
          const input = new Uint8Array(size);
          for (let i = 0; i < size; i += 4099) input[i] = i & 0xff;
          const output = (await pool.run('echo', input)) as Uint8Array;
          assert.equal(output.byteLength, size);
          assert.deepEqual(Buffer.from(output), Buffer.from(input));
          const text = 'é'.repeat(size / 2);
          assert.equal(await pool.run('echo', text), text);
        }
      }));

    test('typed-array views arrive as the level delivers them, whatever the channel', () =>
      withPool({ isolation, channel, workers: 1 }, async (pool) => {
        const partial = new Uint32Array(new ArrayBuffer(64), 8, 4).fill(9);
        const shape = await pool.run('viewShape', partial);
        assert.equal(shape.type, 'Uint32Array');
        assert.deepEqual(shape.values, [9, 9, 9, 9]);
        if (isolation === 'process') {
          // Node's IPC hands a view into the message it came in; the ring, a buffer of the view's own.
          if (channel === 'ring') assert.deepEqual([shape.byteOffset, shape.bufferBytes], [0, 16]);
        } else {
          // A structured clone (thread) carries the whole buffer; inline passes the object itself.
          assert.deepEqual([shape.byteOffset, shape.bufferBytes], [8, 64]);
        }
        const buffer = await pool.run('viewShape', Buffer.from([1, 2, 3]));
        // A Buffer stays a Buffer inline and between processes; postMessage makes it a Uint8Array.
        assert.equal(buffer.isBuffer, isolation !== 'thread');
        assert.deepEqual(buffer.values, [1, 2, 3]);
      }));

    test('stats() names the level and reports every worker', () =>
      withPool({ isolation, channel, workers: 2 }, async (pool) => {
        await pool.ready();
        await pool.run('inc', 1);
        const stats = pool.stats();
        assert.equal(stats.isolation, isolation);
        assert.equal(stats.channel, isolation === 'inline' ? 'direct' : channel);
        assert.equal(stats.state, 'open');
        assert.equal(stats.workers.length, 2);
        for (const w of stats.workers) {
          assert.equal(w.state, 'ready');
          if (isolation === 'process') assert.ok(w.pid && w.pid !== process.pid);
          if (isolation === 'thread') assert.ok(w.threadId && w.threadId > 0);
        }
        assert.equal(
          stats.workers.reduce((n, w) => n + w.completed, 0),
          1,
        );
      }));
  });
}

test('maxQueue 0 means never wait: a task runs at once if a worker has room, else it is refused', () =>
  withPool({ isolation: 'thread', workers: 1, concurrency: 2, maxQueue: 0 }, async (pool) => {
    await pool.ready();
    const first = pool.run('delayed', { ms: 100, value: 1 });
    const second = pool.run('delayed', { ms: 100, value: 2 });
    const third = await pool.run('echo', 3).catch((e) => e);
    assert.ok(third instanceof QueueFullError, String(third));
    assert.deepEqual(await Promise.all([first, second]), [1, 2]);
    assert.equal(await pool.run('echo', 4), 4);
  }));
