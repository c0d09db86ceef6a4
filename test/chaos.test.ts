import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createPool, WorkerCrashedError } from '../src/index.js';
import type * as fixtures from './fixtures/handlers.js';
import { childPids, eventually, HANDLERS, ISOLATED_CASES, threadCount } from './helpers.js';

const TASKS = 3_000;
/** One task in this many is a killer: a non-idempotent task that ends its worker. */
const KILLER_EVERY = 150;
const DEADLINE_MS = 60_000;

/** A seeded generator, so a failing run can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1_664_525 + 1_013_904_223) >>> 0;
    return s / 2 ** 32;
  };
}

for (const { isolation, channel, label } of ISOLATED_CASES) {
  describe(`${label}: chaos`, () => {
    test(`${TASKS} tasks while workers are killed at random: each settles once, idempotent ones all succeed`, async () => {
      const seed = Number(process.env.CHAOS_SEED ?? Date.now() % 100_000);
      const rand = random(seed);
      const threadsBefore = threadCount();
      const pool = createPool<typeof fixtures>({
        handlers: HANDLERS,
        isolation,
        channel,
        workers: 3,
        concurrency: 4,
        retry: { attempts: 50 },
        restart: {
          backoff: { initialMs: 1, maxMs: 20 },
          intensity: { maxRestarts: 100_000, withinMs: 1_000 },
        },
      });
      let crashEvents = 0;
      let hitInEvents = 0;
      pool.on('crash', (e) => {
        crashEvents++;
        hitInEvents += e.inFlight;
      });
      let stopKilling = false;
      let externalKills = 0;
      try {
        await pool.ready();
        // The process tier is also killed from outside, at random moments, whatever it is doing.
        const killer = (async () => {
          while (!stopKilling && isolation === 'process') {
            await sleep(5 + rand() * 25);
            const live = pool.stats().workers.filter((w) => w.state === 'ready' && w.pid);
            const victim = live[Math.floor(rand() * live.length)];
            if (!victim?.pid) continue;
            try {
              process.kill(victim.pid, 'SIGKILL');
              externalKills++;
            } catch {
              // it died on its own meanwhile
            }
          }
        })();

        const settledCount = new Array<number>(TASKS).fill(0);
        const outcomes: Promise<void>[] = [];
        let killers = 0;
        for (let i = 0; i < TASKS; i++) {
          const isKiller = i % KILLER_EVERY === KILLER_EVERY - 1;
          if (isKiller) killers++;
          const p = isKiller
            ? pool.run('exit', 1).then(
                () => assert.fail('a killer task cannot succeed'),
                (err) => assert.ok(err instanceof WorkerCrashedError, `killer ${i}: ${err}`),
              )
            : pool.run('inc', i, { idempotent: true }).then((v) => assert.equal(v, i + 1, `task ${i}`));
          outcomes.push(
            p.finally(() => {
              settledCount[i] = (settledCount[i] ?? 0) + 1;
            }),
          );
          if (i % 100 === 0) await sleep(rand() * 3);
        }
        const deadline = sleep(DEADLINE_MS, 'timeout', { ref: false });
        const all = await Promise.race([Promise.all(outcomes), deadline]);
        assert.notEqual(all, 'timeout', `not every task settled within ${DEADLINE_MS} ms (seed ${seed})`);
        stopKilling = true;
        await killer;
        await sleep(50);
        assert.ok(
          settledCount.every((n) => n === 1),
          'a task settled more than once',
        );

        const stats = pool.stats();
        assert.equal(stats.completed, TASKS - killers, `seed ${seed}`);
        assert.equal(stats.failed, killers, `seed ${seed}`);
        assert.equal(stats.running, 0);
        assert.equal(stats.queued, 0);
        assert.ok(stats.crashes >= killers, `crashes ${stats.crashes} < killers ${killers}`);
        assert.equal(stats.crashes, crashEvents);
        assert.ok(hitInEvents >= killers);
        if (isolation === 'process') assert.ok(externalKills > 0);
      } finally {
        stopKilling = true;
        await pool.destroy();
      }
      assert.ok(await eventually(() => childPids().length === 0), `child processes left: ${childPids()}`);
      assert.ok(
        await eventually(() => threadCount() <= threadsBefore),
        `threads left: ${threadCount()} > ${threadsBefore}`,
      );
    });
  });
}
