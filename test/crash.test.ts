import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  type CrashEvent,
  QuarantinedError,
  type RestartEvent,
  TaskTimeoutError,
  WorkerCrashedError,
} from '../src/index.js';
import { childPids, eventually, ISOLATED_CASES, once, withPool } from './helpers.js';

after(async () => {
  assert.ok(await eventually(() => childPids().length === 0), `child processes left: ${childPids()}`);
});

function crashed(err: unknown): WorkerCrashedError {
  assert.ok(err instanceof WorkerCrashedError, `expected WorkerCrashedError, got ${err}`);
  assert.equal(err.code, 'ERR_ISOLANE_WORKER_CRASHED');
  return err;
}

for (const { isolation, channel, label } of ISOLATED_CASES) {
  describe(`${label}: the crash contract`, () => {
    test('process.exit mid-task: the task fails, the crash is reported, the worker comes back', () =>
      withPool({ isolation, channel, workers: 1 }, async (pool) => {
        await pool.ready();
        const crash = once(pool, 'crash');
        const restart = once(pool, 'restart');
        const err = crashed(await pool.run('exit', 7).catch((e) => e));
        assert.equal(err.cause.reason, 'exit');
        assert.equal(err.cause.exitCode, 7);
        assert.equal(err.attempts, 1);
        const event: CrashEvent = await crash;
        assert.equal(event.workerId, 0);
        assert.equal(event.cause.reason, 'exit');
        assert.deepEqual([event.inFlight, event.retried, event.failed], [1, 0, 1]);
        if (isolation === 'process') assert.ok(event.pid && event.pid !== process.pid);
        else assert.ok(event.threadId && event.threadId > 0);
        assert.equal((await restart).workerId, 0);
        assert.equal(await pool.run('inc', 1), 2);
        const stats = pool.stats();
        assert.deepEqual([stats.crashes, stats.restarts, stats.workers[0]?.crashes], [1, 1, 1]);
      }));

    test('a crash loses no queued task: they wait for the respawn', () =>
      withPool({ isolation, channel, workers: 1 }, async (pool) => {
        await pool.ready();
        const doomed = pool.run('exit', 1).catch((e) => e);
        const queued = Array.from({ length: 20 }, (_, i) => pool.run('inc', i));
        crashed(await doomed);
        assert.deepEqual(
          await Promise.all(queued),
          Array.from({ length: 20 }, (_, i) => i + 1),
        );
      }));

    test('a crash loses no queued task: they go to the other worker', () =>
      withPool(
        { isolation, channel, workers: 2, restart: { backoff: { initialMs: 2_000, maxMs: 2_000 } } },
        async (pool) => {
          await pool.ready();
          const doomed = pool.run('exit', 1).catch((e) => e);
          const queued = Array.from({ length: 20 }, (_, i) => pool.run('inc', i));
          crashed(await doomed);
          assert.deepEqual(
            await Promise.all(queued),
            Array.from({ length: 20 }, (_, i) => i + 1),
          );
          // All of them ran while the crashed worker waited out its 2 s backoff.
          assert.equal(pool.stats().restarts, 0);
        },
      ));

    test('idempotent tasks hit by a crash are retried; the others fail', () =>
      withPool({ isolation, channel, workers: 1, concurrency: 3 }, async (pool) => {
        await pool.ready();
        const crash = once(pool, 'crash');
        const [retried, plain, killer] = await Promise.allSettled([
          pool.run('sleepThenValue', { ms: 300, value: 42 }, { idempotent: true }),
          pool.run('sleepThenValue', { ms: 300, value: 43 }),
          pool.run('exitOnFirstAttempt', 1),
        ]);
        assert.deepEqual(retried, { status: 'fulfilled', value: 42 });
        assert.equal(crashed((plain as PromiseRejectedResult).reason).cause.reason, 'exit');
        assert.equal(killer.status, 'rejected');
        const event = await crash;
        assert.deepEqual([event.inFlight, event.retried, event.failed], [3, 1, 2]);
        assert.equal(pool.stats().retried, 1);
      }));

    test('a retried task sees its attempt number and succeeds', () =>
      withPool({ isolation, channel, workers: 2 }, async (pool) => {
        assert.equal(await pool.run('exitOnFirstAttempt', 9, { idempotent: true }), 9);
      }));

    test('an idempotent task that keeps crashing fails after retry.attempts tries', () =>
      withPool({ isolation, channel, workers: 2, retry: { attempts: 3 } }, async (pool) => {
        const err = crashed(await pool.run('exit', 5, { idempotent: true }).catch((e) => e));
        assert.equal(err.attempts, 3);
        assert.equal(pool.stats().retried, 2);
      }));

    test('an uncaught exception in a timer is a crash with the error as cause', () =>
      withPool({ isolation, channel, workers: 1 }, async (pool) => {
        const err = crashed(await pool.run('throwInTimer', 'timer went off').catch((e) => e));
        assert.equal(err.cause.reason, 'uncaught');
        assert.equal(err.cause.error?.message, 'timer went off');
        assert.equal(await pool.run('inc', 1), 2);
      }));

    test('out of memory under maxHeapMb is a crash with cause oom', () =>
      withPool({ isolation, channel, workers: 1, maxHeapMb: 32 }, async (pool) => {
        const err = crashed(await pool.run('allocate', undefined).catch((e) => e));
        assert.equal(err.cause.reason, 'oom');
        assert.equal(await pool.run('inc', 1), 2);
      }));

    test('a hung handler under a timeout: it times out, its worker is killed, its neighbours follow the rule', () =>
      withPool({ isolation, channel, workers: 1, concurrency: 3 }, async (pool) => {
        await pool.ready();
        const crash = once(pool, 'crash');
        // The neighbours are dispatched first, so they are in flight when the hang starts.
        const neighbourRetried = pool.run('delayed', { ms: 2_000, value: 'again' }, { idempotent: true });
        const neighbourFailed = pool.run('delayed', { ms: 2_000, value: 'lost' }).catch((e) => e);
        const hung = await pool.run('hang', undefined, { timeoutMs: 200 }).catch((e) => e);
        assert.ok(hung instanceof TaskTimeoutError);
        const event = await crash;
        assert.equal(event.cause.reason, 'timeout');
        assert.deepEqual([event.inFlight, event.retried, event.failed], [2, 1, 1]);
        assert.equal(crashed(await neighbourFailed).cause.reason, 'timeout');
        assert.equal(await neighbourRetried, 'again');
      }));

    test('restarts back off exponentially', () =>
      withPool(
        {
          isolation,
          channel,
          workers: 1,
          restart: { backoff: { initialMs: 10, maxMs: 1_000 }, stableAfterMs: 60_000 },
        },
        async (pool) => {
          const delays: number[] = [];
          pool.on('restart', (e: RestartEvent) => delays.push(e.delayMs));
          for (let i = 0; i < 3; i++) crashed(await pool.run('exit', 1).catch((e) => e));
          assert.ok(await eventually(() => delays.length === 3));
          assert.deepEqual(delays, [10, 20, 40]);
        },
      ));

    test('too many crashes quarantine the pool, naming the last crash; it recovers when the window passes', () =>
      withPool(
        {
          isolation,
          channel,
          workers: 1,
          restart: { backoff: { initialMs: 1, maxMs: 1 }, intensity: { maxRestarts: 2, withinMs: 1_500 } },
        },
        async (pool) => {
          await pool.ready();
          const quarantine = once(pool, 'quarantine');
          for (let i = 0; i < 2; i++) crashed(await pool.run('exit', 11).catch((e) => e));
          // The third crash quarantines; a task waiting behind it is rejected, not lost.
          const third = pool.run('exit', 12).catch((e) => e);
          const waiting = pool.run('inc', 1).catch((e) => e);
          crashed(await third);
          const event = await quarantine;
          assert.equal(event.lastCrash.exitCode, 12);
          assert.equal(event.rejected, 1);
          const waitingErr = await waiting;
          assert.ok(waitingErr instanceof QuarantinedError, String(waitingErr));
          assert.equal(waitingErr.code, 'ERR_ISOLANE_QUARANTINED');
          assert.match(waitingErr.message, /exited with code 12/);
          const refused = await pool.run('inc', 1).catch((e) => e);
          assert.ok(refused instanceof QuarantinedError);
          assert.equal(pool.stats().state, 'quarantined');
          assert.equal(pool.stats().workers[0]?.state, 'down');
          // No respawn during the quarantine; service again once it is over.
          await sleep(Math.max(0, event.until - Date.now()) + 50);
          assert.ok(await eventually(() => pool.stats().state === 'open'));
          assert.equal(await pool.run('inc', 41), 42);
        },
      ));

    if (isolation === 'process') {
      test('SIGKILL from outside is a crash with the signal as cause', () =>
        withPool({ isolation, channel, workers: 1 }, async (pool) => {
          await pool.ready();
          const pid = pool.stats().workers[0]?.pid;
          assert.ok(pid);
          const task = pool.run('delayed', { ms: 5_000, value: 1 }).catch((e) => e);
          await sleep(50);
          process.kill(pid, 'SIGKILL');
          const err = crashed(await task);
          assert.equal(err.cause.reason, 'signal');
          assert.equal(err.cause.signal, 'SIGKILL');
          assert.equal(err.cause.pid, pid);
          assert.equal(await pool.run('inc', 1), 2);
        }));

      test('process.abort() is a crash with SIGABRT as cause', () =>
        withPool({ isolation, channel, workers: 1 }, async (pool) => {
          const err = crashed(await pool.run('abort', undefined).catch((e) => e));
          assert.equal(err.cause.reason, 'signal');
          assert.equal(err.cause.signal, 'SIGABRT');
        }));

      test('an idle worker killed from outside is replaced', () =>
        withPool({ isolation, channel, workers: 1 }, async (pool) => {
          await pool.ready();
          const pid = pool.stats().workers[0]!.pid!;
          const crash = once(pool, 'crash');
          process.kill(pid, 'SIGKILL');
          const event = await crash;
          assert.deepEqual([event.inFlight, event.retried, event.failed], [0, 0, 0]);
          assert.equal(await pool.run('inc', 1), 2);
          assert.notEqual(pool.stats().workers[0]?.pid, pid);
        }));
    }

    test('a worker that dies while sending a large result: earlier results arrive, that task gets all of it or a crash', () =>
      withPool({ isolation, channel, workers: 1, concurrency: 4 }, async (pool) => {
        await pool.ready();
        const before = await Promise.all([pool.run('inc', 1), pool.run('inc', 2)]);
        assert.deepEqual(before, [2, 3]);
        const bytes = 3 << 20;
        const crash = once(pool, 'crash');
        const outcome = await pool.run('bigThenExit', bytes).then(
          (value) => ({ value }),
          (error) => ({ error }),
        );
        if ('value' in outcome) {
          // The whole result may make it out before the exit (a result this large travels by the
          // message channel, even with channel 'ring'); never a part of it.
          assert.equal(outcome.value, 'z'.repeat(bytes));
        } else {
          const err = crashed(outcome.error);
          assert.equal(err.cause.reason, 'exit');
          assert.equal(err.cause.exitCode, 3);
        }
        assert.equal((await crash).cause.exitCode, 3);
        assert.equal(await pool.run('inc', 41), 42, 'the pool serves again');
      }));

    if (isolation === 'thread' && channel === 'ring') {
      test('a worker that corrupts the shared ring is killed for it, and the crash contract holds', () =>
        withPool(
          { isolation, channel, workers: 1, restart: { backoff: { initialMs: 10, maxMs: 10 } } },
          async (pool) => {
            await pool.ready();
            const crash = once(pool, 'crash');
            // As a hostile worker would: claim to have read far more than was ever written.
            const memory = await pool.run('ringMemory', undefined);
            const header = new Int32Array(memory, 0, 16);
            Atomics.store(header, 1, Atomics.load(header, 0) + (8 << 20));
            // The next task finds the ring corrupt as it is written.
            const err = crashed(await pool.run('inc', 1).catch((e) => e));
            assert.equal(err.cause.reason, 'protocol');
            assert.match(err.message, /breaking the channel protocol/);
            assert.equal(err.cause.error?.name, 'RingCorruptError');
            assert.equal((await crash).cause.reason, 'protocol');
            assert.equal(await pool.run('inc', 1), 2, 'a fresh worker on a fresh ring');
          },
        ));
    }
  });
}
