import assert from 'node:assert/strict';
import { type Dirent, readdirSync, readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { createPool, InvalidOptionError, type PoolOptions, WorkerCrashedError } from '../src/index.js';
import type * as fixtures from './fixtures/handlers.js';
import { childPids, eventually, HANDLERS } from './helpers.js';

/** Processes of the sandbox uids this file uses, wherever they are (an orphan is no child of ours). */
function sandboxedProcesses(): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${entry}/status`, 'utf8'))?.[1]);
      if ((uid >= 150_000 && uid <= 150_099) || uid === DEFAULT_RANGE_FIRST) found.push(Number(entry));
    } catch {
      // gone
    }
  }
  return found;
}
const DEFAULT_RANGE_FIRST = 100_000;

after(async () => {
  assert.ok(await eventually(() => childPids().length === 0), `child processes left: ${childPids()}`);
  assert.ok(
    await eventually(() => sandboxedProcesses().length === 0),
    `sandboxed processes left: ${sandboxedProcesses()}`,
  );
  assert.ok(await eventually(() => ourCgroups().length === 0), `cgroups left: ${ourCgroups()}`);
});

/** The per-worker cgroups this process made (named isolane-<our pid>-<n>) that still exist. */
function ourCgroups(): string[] {
  const found: string[] = [];
  for (const controller of ['memory', 'pids', 'cpu', 'cpuacct']) {
    const stack = [`/sys/fs/cgroup/${controller}`];
    while (stack.length > 0) {
      const dir = stack.pop()!;
      let entries: Dirent[];
      try {
        entries = readdirSync(dir, { withFileTypes: true });
      } catch {
        continue;
      }
      for (const e of entries) {
        if (!e.isDirectory()) continue;
        if (e.name.startsWith(`isolane-${process.pid}-`)) found.push(`${dir}/${e.name}`);
        else if (dir.split('/').length < 7) stack.push(`${dir}/${e.name}`);
      }
    }
  }
  return found;
}

function rejects(options: Partial<PoolOptions>, option: string, pattern: RegExp) {
  assert.throws(
    () => createPool({ handlers: HANDLERS, ...options } as PoolOptions),
    (err: unknown) => {
      assert.ok(err instanceof InvalidOptionError, String(err));
      assert.equal(err.option, option);
      assert.match(err.message, pattern);
      return true;
    },
  );
}

describe('bad sandbox options fail at createPool, naming the option', () => {
  test('a sandbox needs the process tier', () =>
    rejects({ isolation: 'thread', sandbox: { namespaces: true } }, 'sandbox', /isolation: 'process'/));
  test("uid 'per-tenant' needs dedicated tenancy", () =>
    rejects({ isolation: 'process', sandbox: { uid: 'per-tenant' } }, 'sandbox.uid', /tenancy: 'dedicated'/));
  test('uid 0 is no boundary', () =>
    rejects({ isolation: 'process', sandbox: { uid: 0 } }, 'sandbox.uid', /not 0/));
  test('unknown sandbox key', () =>
    rejects(
      { isolation: 'process', sandbox: { chroot: '/' } as never },
      'sandbox.chroot',
      /not a known option/,
    ));
  test('unknown limit', () =>
    rejects(
      { isolation: 'process', sandbox: { limits: { disk: 1 } as never } },
      'sandbox.limits.disk',
      /allowed/,
    ));
  test('memory limit too small to start Node', () =>
    rejects(
      { isolation: 'process', sandbox: { limits: { memoryMb: 8 } } },
      'sandbox.limits.memoryMb',
      /at least 64/,
    ));
  test('env must be variable names', () =>
    rejects(
      { isolation: 'process', sandbox: { env: ['A=B'] } },
      'sandbox.env',
      /environment variable names/,
    ));
  test('uidRange must be ordered', () =>
    rejects({ isolation: 'process', sandbox: { uidRange: [5, 1] } }, 'sandbox.uidRange', /first <= last/));
  test('tenancy must be shared or dedicated', () =>
    rejects({ tenancy: 'solo' as never }, 'tenancy', /'shared' or 'dedicated'/));
});

const asRoot = process.getuid?.() === 0;

describe('the sandbox, for real (needs root, as in CI)', {
  skip: asRoot ? false : 'not running as root',
}, () => {
  for (const channel of ['message', 'ring'] as const) {
    test(`per-tenant uid, own namespaces, only allowlisted environment, no network (${channel})`, async () => {
      process.env.ISOLANE_TEST_SECRET = 'do not leak';
      const pool = createPool<typeof fixtures>({
        handlers: HANDLERS,
        isolation: 'process',
        channel,
        tenancy: 'dedicated',
        sandbox: { uid: 'per-tenant', uidRange: [150_000, 150_099], namespaces: true, env: ['PATH'] },
      });
      try {
        assert.equal(pool.stats().channel, channel, 'the ring reaches through the launch chain');
        const a = await pool.run('identity', undefined, { tenant: 'a' });
        const b = await pool.run('identity', undefined, { tenant: 'b' });
        assert.equal(a.uid, 150_000);
        assert.equal(a.gid, 150_000);
        assert.equal(b.uid, 150_001);
        assert.equal(a.pid, 1, 'its own pid namespace');
        assert.deepEqual(a.env, ['PATH']);
        assert.deepEqual(a.interfaces, [], 'a network namespace with no interface up');
        // The host sees the real pids; stats report them.
        const pids = pool.stats().workers.map((w) => w.pid);
        assert.ok(pids.every((p) => typeof p === 'number' && p > 1));
        const report = pool.describeIsolation();
        for (const boundary of ['memory', 'environment', 'signals', 'network', 'crash'] as const) {
          assert.equal(report.boundaries[boundary].holds, true, boundary);
        }
        assert.equal(report.boundaries.resources.holds, false, 'no limits were set');
      } finally {
        delete process.env.ISOLANE_TEST_SECRET;
        await pool.destroy();
      }
    });
  }

  test('limits: memory beyond the cgroup and CPU beyond RLIMIT_CPU end the worker with cause limit', async () => {
    const pool = createPool<typeof fixtures>({
      handlers: HANDLERS,
      isolation: 'process',
      tenancy: 'dedicated',
      sandbox: {
        uid: 'per-tenant',
        namespaces: true,
        limits: { memoryMb: 192, cpuSeconds: 1, processes: 64, openFiles: 128 },
      },
    });
    try {
      const memory = await pool.run('allocateOffHeap', undefined, { tenant: 't' }).catch((e) => e);
      assert.ok(memory instanceof WorkerCrashedError, String(memory));
      assert.equal(memory.cause.reason, 'limit');
      assert.equal(memory.cause.limit, 'memory');
      const cpu = await pool.run('hang', undefined, { tenant: 't' }).catch((e) => e);
      assert.ok(cpu instanceof WorkerCrashedError, String(cpu));
      assert.equal(cpu.cause.reason, 'limit');
      assert.equal(cpu.cause.limit, 'cpu');
      assert.equal(await pool.run('inc', 1, { tenant: 't' }), 2, 'the tenant is served again');
      assert.equal(pool.describeIsolation().boundaries.resources.holds, true);
    } finally {
      await pool.destroy();
    }
  });

  test('a SIGKILL from outside, inside the namespaces, is reported as SIGKILL', async () => {
    const pool = createPool<typeof fixtures>({
      handlers: HANDLERS,
      isolation: 'process',
      tenancy: 'dedicated',
      sandbox: { uid: 'per-tenant', namespaces: true },
    });
    try {
      await pool.run('inc', 1, { tenant: 't' });
      const pid = pool.stats().workers[0]!.pid!;
      const task = pool.run('delayed', { ms: 5_000, value: 1 }, { tenant: 't' }).catch((e) => e);
      await new Promise((r) => setTimeout(r, 50));
      process.kill(pid, 'SIGKILL');
      const err = await task;
      assert.ok(err instanceof WorkerCrashedError);
      assert.equal(err.cause.signal, 'SIGKILL');
    } finally {
      await pool.destroy();
    }
  });
});
