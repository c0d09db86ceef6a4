import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import type { CrashEvent, RecoverEvent } from '../src/index.js';
import { childPids, eventually, ISOLATED_CASES, once, TIER_CASES, withPool } from './helpers.js';

after(async () => {
  assert.ok(await eventually(() => childPids().length === 0), `child processes left: ${childPids()}`);
});

for (const { isolation, channel, label } of ISOLATED_CASES) {
  describe(`${label}: spares, heartbeats, routing around`, () => {
    test('a ready spare takes a dead worker’s place at once; the dead one comes back as a spare', () =>
      withPool(
        { isolation, channel, workers: 1, restart: { spares: 1, backoff: { initialMs: 300, maxMs: 300 } } },
        async (pool) => {
          await pool.ready();
          assert.deepEqual(
            pool.stats().workers.map((w) => w.role),
            ['active', 'spare'],
          );
          const recovered = once(pool, 'recover');
          const crashed = pool.run('exit', 1).catch((e) => e);
          const event: RecoverEvent = await recovered;
          assert.deepEqual(event, { workerId: 1, downMs: 0, via: 'spare' });
          await crashed;
          // The crashed worker is still waiting out its 300 ms backoff, yet tasks are served.
          assert.equal(await pool.run('inc', 1), 2);
          assert.equal(pool.stats().workers[0]?.state, 'down');
          assert.ok(await eventually(() => pool.stats().workers.every((w) => w.state === 'ready')));
          assert.deepEqual(
            pool.stats().workers.map((w) => w.role),
            ['spare', 'active'],
          );
        },
      ));

    test('without a spare, capacity comes back with the respawn, and the recover event says how long it was down', () =>
      withPool(
        { isolation, channel, workers: 1, restart: { backoff: { initialMs: 100, maxMs: 100 } } },
        async (pool) => {
          await pool.ready();
          const recovered = once(pool, 'recover');
          await pool.run('exit', 1).catch(() => {});
          const event = await recovered;
          assert.equal(event.via, 'respawn');
          assert.equal(event.workerId, 0);
          assert.ok(event.downMs >= 100, `down ${event.downMs} ms`);
        },
      ));

    test('a worker whose event loop stops answering heartbeats is killed as hung, without any task timeout', () =>
      withPool({ isolation, channel, workers: 2, heartbeatMs: 100 }, async (pool) => {
        await pool.ready();
        const crash = once(pool, 'crash');
        const hung = pool.run('hang', undefined, { idempotent: false }).catch((e) => e);
        const event: CrashEvent = await crash;
        assert.equal(event.cause.reason, 'hang');
        const err = await hung;
        assert.equal(err.code, 'ERR_ISOLANE_WORKER_CRASHED');
        assert.equal(err.cause.reason, 'hang');
        // A busy but answering worker is left alone: async waits keep the event loop free.
        assert.equal(await pool.run('delayed', { ms: 500, value: 'fine' }), 'fine');
        assert.equal(pool.stats().crashes, 1);
      }));

    test('routing around: while one worker restarts, every task goes to the live one', () =>
      withPool(
        { isolation, channel, workers: 2, restart: { backoff: { initialMs: 1_000, maxMs: 1_000 } } },
        async (pool) => {
          await pool.ready();
          await pool.run('exit', 1).catch(() => {});
          const started = pool.stats().workers.filter((w) => w.state === 'ready');
          assert.equal(started.length, 1);
          const results = await Promise.all(Array.from({ length: 50 }, (_, i) => pool.run('inc', i)));
          assert.equal(results.length, 50);
          assert.equal(pool.stats().restarts, 0, 'served while the other worker was still down');
        },
      ));
  });
}

for (const { isolation, channel, label } of TIER_CASES) {
  test(`${label}: concurrency 'auto' pipelines short tasks but never piles them behind a slow one`, () =>
    withPool({ isolation, channel, workers: 2 }, async (pool) => {
      await pool.ready();
      // Teach the pool that inc is short.
      await Promise.all(Array.from({ length: 20 }, (_, i) => pool.run('inc', i)));
      const slow = pool.run('spin', 400);
      let incsDone = 0;
      let slowDone = false;
      const incs = Array.from({ length: 200 }, (_, i) =>
        pool.run('inc', i).then((v) => {
          if (!slowDone) incsDone++;
          return v;
        }),
      );
      await slow.then(() => {
        slowDone = true;
      });
      await Promise.all(incs);
      if (isolation !== 'inline') {
        // The other worker served every short task while the slow one held its worker.
        assert.equal(incsDone, 200);
        const running = pool.stats().workers.map((w) => w.completed);
        assert.ok(Math.max(...running) >= 200);
      }
    }));
}

for (const { isolation, channel, label } of TIER_CASES) {
  test(`${label}: concurrency 'auto' prefetches exactly one task behind a measured millisecond task`, () =>
    withPool({ isolation, channel, workers: 1 }, async (pool) => {
      await pool.ready();
      await pool.run('spin', 5); // measured: about 5 ms of synchronous work
      const tasks = Array.from({ length: 5 }, () => pool.run('spin', 5));
      const stats = pool.stats();
      assert.equal(stats.running, 2, 'one running, one waiting in the worker');
      assert.equal(stats.queued, 3);
      await Promise.all(tasks);
    }));
}
