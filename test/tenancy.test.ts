import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createPool, InvalidOptionError, TenantLimitError } from '../src/index.js';
import type * as fixtures from './fixtures/handlers.js';
import { childPids, eventually, HANDLERS, withPool } from './helpers.js';

after(async () => {
  assert.ok(await eventually(() => childPids().length === 0), `child processes left: ${childPids()}`);
});

describe('shared tenancy: fairness and per-tenant limits', () => {
  test('a tenant flooding the pool cannot starve another: tenants are served in turn', () =>
    withPool({ isolation: 'thread', workers: 1, concurrency: 1 }, async (pool) => {
      await pool.ready();
      const order: string[] = [];
      const flood = Array.from({ length: 30 }, (_, i) =>
        pool.run('delayed', { ms: 2, value: i }, { tenant: 'flood' }).then(() => order.push('flood')),
      );
      const polite = Array.from({ length: 3 }, (_, i) =>
        pool.run('delayed', { ms: 2, value: i }, { tenant: 'polite' }).then(() => order.push('polite')),
      );
      await Promise.all([...flood, ...polite]);
      const lastPolite = order.lastIndexOf('polite');
      assert.ok(lastPolite < 10, `the polite tenant finished at position ${lastPolite} of ${order.length}`);
    }));

  test('tenantLimits.maxQueued rejects with TenantLimitError for that tenant only', () =>
    withPool(
      { isolation: 'thread', workers: 1, concurrency: 1, tenantLimits: { maxQueued: 2 } },
      async (pool) => {
        await pool.ready();
        const running = pool.run('delayed', { ms: 100, value: 0 }, { tenant: 'a' });
        const queued = [1, 2].map((v) => pool.run('echo', v, { tenant: 'a' }));
        const err = await pool.run('echo', 3, { tenant: 'a' }).catch((e) => e);
        assert.ok(err instanceof TenantLimitError, String(err));
        assert.equal(err.code, 'ERR_ISOLANE_TENANT_LIMIT');
        assert.equal(err.tenant, 'a');
        assert.equal(await pool.run('echo', 'b', { tenant: 'b' }), 'b', 'another tenant is not limited');
        assert.deepEqual(await Promise.all([running, ...queued]), [0, 1, 2]);
      },
    ));

  test('tenantLimits.maxRunning caps a tenant’s running tasks; the rest wait their turn', () =>
    withPool(
      { isolation: 'thread', workers: 2, concurrency: 10, tenantLimits: { maxRunning: 2 } },
      async (pool) => {
        await pool.ready();
        const tasks = Array.from({ length: 6 }, (_, i) =>
          pool.run('delayed', { ms: 50, value: i }, { tenant: 'a' }),
        );
        assert.equal(pool.stats().running, 2);
        assert.equal(pool.stats().queued, 4);
        const other = pool.run('delayed', { ms: 1, value: 'b' }, { tenant: 'b' });
        assert.equal(pool.stats().running, 3, 'another tenant still runs');
        assert.deepEqual(await Promise.all(tasks), [0, 1, 2, 3, 4, 5]);
        assert.equal(await other, 'b');
      },
    ));

  test('a crash event names the tenants whose tasks it hit', () =>
    withPool({ isolation: 'thread', workers: 1, concurrency: 4 }, async (pool) => {
      await pool.ready();
      const crash = new Promise<{ tenants: string[] }>((resolve) => pool.once('crash', resolve));
      await Promise.allSettled([
        pool.run('delayed', { ms: 200, value: 1 }, { tenant: 'x' }),
        pool.run('exit', 1, { tenant: 'y' }),
      ]);
      assert.deepEqual((await crash).tenants.sort(), ['x', 'y']);
    }));

  test('a bad tenant name is rejected', () =>
    withPool({ isolation: 'inline' }, async (pool) => {
      const err = await pool.run('echo', 1, { tenant: '' }).catch((e) => e);
      assert.ok(err instanceof InvalidOptionError);
      assert.equal(err.option, 'tenant');
    }));
});

for (const isolation of ['thread', 'process'] as const) {
  describe(`${isolation}: dedicated tenancy`, () => {
    test('a tenant’s tasks only run on its own workers, also after a crash and a retry', async () => {
      const pool = createPool<typeof fixtures>({
        handlers: HANDLERS,
        isolation,
        tenancy: 'dedicated',
        perTenant: 1,
      });
      try {
        const where = async (tenant: string) => {
          const id = await pool.run('pid', undefined, { tenant });
          const worker = pool.stats().workers.find((w) => w.tenant === tenant && w.state === 'ready');
          return { id, worker };
        };
        const a = await where('a');
        const b = await where('b');
        assert.equal(pool.stats().tenants, 2);
        if (isolation === 'process') assert.notEqual(a.id.pid, b.id.pid);
        // A crash in a's worker; a's idempotent retry runs on a's respawned worker, never on b's.
        assert.equal(await pool.run('exitOnFirstAttempt', 7, { tenant: 'a', idempotent: true }), 7);
        const workers = pool.stats().workers;
        assert.deepEqual(workers.map((w) => w.tenant).sort(), ['a', 'b']);
        const aWorker = workers.find((w) => w.tenant === 'a')!;
        const bWorker = workers.find((w) => w.tenant === 'b')!;
        assert.equal(aWorker.crashes, 1);
        assert.equal(bWorker.crashes, 0);
        assert.equal(bWorker.completed, 1, 'b’s worker ran only b’s task');
      } finally {
        await pool.destroy();
      }
    });

    test('a task without a tenant is refused', async () => {
      const pool = createPool<typeof fixtures>({ handlers: HANDLERS, isolation, tenancy: 'dedicated' });
      try {
        const err = await pool.run('echo', 1).catch((e) => e);
        assert.ok(err instanceof InvalidOptionError);
        assert.match(err.message, /tenant' is required/);
      } finally {
        await pool.destroy();
      }
    });

    test('maxTenants evicts the least recently used tenant; idleMs stops idle ones', async () => {
      const pool = createPool<typeof fixtures>({
        handlers: HANDLERS,
        isolation,
        tenancy: 'dedicated',
        maxTenants: 2,
        idleMs: 1_500, // long enough that a and c are not also stopped for idleness while b's eviction is checked
      });
      try {
        await pool.run('echo', 1, { tenant: 'a' });
        await pool.run('echo', 1, { tenant: 'b' });
        await pool.run('echo', 1, { tenant: 'a' }); // a is now the most recently used
        await pool.run('echo', 1, { tenant: 'c' }); // evicts b
        assert.equal(pool.stats().tenants, 2);
        assert.ok(await eventually(() => !pool.stats().workers.some((w) => w.tenant === 'b')));
        assert.deepEqual(
          pool
            .stats()
            .workers.map((w) => w.tenant)
            .sort(),
          ['a', 'c'],
        );
        // Both go idle and are stopped; a later task starts a new worker.
        assert.ok(await eventually(() => pool.stats().tenants === 0, 10_000));
        assert.equal(await pool.run('inc', 1, { tenant: 'a' }), 2);
        assert.equal(pool.stats().completed, 5);
      } finally {
        await pool.destroy();
      }
      await sleep(10);
    });
  });
}
