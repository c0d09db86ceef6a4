/**
 * N workers behind one `send()`, arranged one of two ways:
 * - naive: a dumb round-robin front over N independent pools of one worker each. A request sent to
 *   a unit that is down is refused at once; a crash fails what the unit was running; nothing is
 *   retried, nothing is routed around, and the unit comes back after the restart delay.
 * - isolane: one pool of N workers with isolane's policies for a crash: idempotent requests (the
 *   ones hit by a crash are retried elsewhere), hot spares (`restart.spares`), a heartbeat
 *   (`heartbeatMs`), and dispatch only to ready workers (routing around), the queue holding the rest.
 * Used by the lab (process workers) and inside the threads topology's server (thread workers).
 */
import { performance } from 'node:perf_hooks';
import { createPool, type Pool, type PoolOptions } from '../../index.js';
import { DOWN_CODE, type Outcome } from './accounting.js';
import type { CrashKind } from './schedule.js';

export type Policy = 'naive' | 'isolane';

/** Something the pools reported, with the wall-clock time it was seen (ms since the epoch). */
export interface TimelineEvent {
  t: number;
  /** Which pool: `unit 3` (naive), `pool` (isolane), prefixed with `inner ` inside the server. */
  scope: string;
  type: 'crash' | 'start' | 'recover';
  workerId: number;
  reason?: string;
  downMs?: number;
  via?: string;
}

/** A clock that reads the same in every thread and process of the machine: ms since the epoch. */
export function wallNow(): number {
  return performance.timeOrigin + performance.now();
}

/** Without a heartbeat, a hang is noticed when the hung task times out. */
export const HANG_TIMEOUT_MS = 1_000;
/** The heartbeat of the isolane arrangement: a worker that misses two is hung. */
export const HEARTBEAT_MS = 200;
/** The heap limit set for out-of-memory crashes. */
export const OOM_HEAP_MB = 64;
/** Tasks a naive unit accepts at once: enough that a live unit never refuses. */
const NAIVE_CONCURRENCY = 10_000;

export interface BackendOptions {
  policy: Policy;
  isolation: 'process' | 'thread';
  workers: number;
  handlers: URL;
  /** How long the pool waits before it respawns a crashed worker. */
  restartDelayMs: number;
  spares: number;
  /** Tasks one worker of the isolane pool holds at once. */
  concurrency: number;
  maxHeapMb?: number;
  /** Prefix of the timeline scopes. */
  prefix: string;
  timeline: TimelineEvent[];
  /** The task that makes a worker crash the way `kind` says (for kinds that are not a kill from outside). */
  crashTask(kind: CrashKind): { name: string; input: unknown };
}

export interface Injection {
  /** Wall-clock time of the injection. */
  t: number;
  /** The timeline scope whose events tell when the crashed unit is back. */
  scope: string;
}

export interface Backend {
  ready(): Promise<void>;
  send(name: string, input: unknown): Promise<Outcome>;
  inject(kind: CrashKind): Injection;
  /** Runs a task that is not a request (on unit 0 when naive); it is not retried. */
  call(name: string, input: unknown): Promise<unknown>;
  destroy(): Promise<void>;
}

export function createBackend(options: BackendOptions): Backend {
  return options.policy === 'naive' ? naiveBackend(options) : isolaneBackend(options);
}

function record(pool: Pool, scope: string, timeline: TimelineEvent[]): void {
  pool.on('crash', (e) =>
    timeline.push({ t: wallNow(), scope, type: 'crash', workerId: e.workerId, reason: e.cause.reason }),
  );
  pool.on('workerStart', (e) => timeline.push({ t: wallNow(), scope, type: 'start', workerId: e.workerId }));
  pool.on('recover', (e) =>
    timeline.push({
      t: wallNow(),
      scope,
      type: 'recover',
      workerId: e.workerId,
      downMs: e.downMs,
      via: e.via,
    }),
  );
}

export function toOutcome(result: Promise<unknown>): Promise<Outcome> {
  return result.then(
    (value) => ({ ok: true, attempts: (value as { attempts?: number } | undefined)?.attempts ?? 1 }),
    (err: { code?: string; remoteCode?: string; attempts?: number; message?: string }) => ({
      ok: false,
      attempts: err.attempts ?? Number(/after (\d+) tries/.exec(err.message ?? '')?.[1] ?? 1),
      code: err.remoteCode ?? err.code ?? 'ERR_UNKNOWN',
    }),
  );
}

function base(options: BackendOptions): PoolOptions {
  return {
    handlers: options.handlers,
    isolation: options.isolation,
    restart: { backoff: { initialMs: options.restartDelayMs, maxMs: options.restartDelayMs } },
    ...(options.maxHeapMb ? { maxHeapMb: options.maxHeapMb } : {}),
  };
}

function naiveBackend(options: BackendOptions): Backend {
  const pools: Pool[] = [];
  const up: boolean[] = [];
  for (let i = 0; i < options.workers; i++) {
    const pool = createPool({ ...base(options), workers: 1, concurrency: NAIVE_CONCURRENCY });
    const scope = `${options.prefix}unit ${i}`;
    record(pool, scope, options.timeline);
    up.push(false);
    // The front learns a unit is down the way a client does: its next request is refused.
    pool.on('crash', () => {
      up[i] = false;
    });
    pool.on('workerStart', () => {
      up[i] = true;
    });
    pools.push(pool);
  }
  let next = 0;
  const victim = () => pools[0]!.stats().workers[0]?.pid;
  return {
    ready: async () => {
      await Promise.all(pools.map((p) => p.ready()));
    },
    send(name, input) {
      const i = next++ % pools.length;
      if (!up[i]) return Promise.resolve({ ok: false, attempts: 1, code: DOWN_CODE });
      return toOutcome(pools[i]!.run(name, input));
    },
    inject(kind) {
      const t = wallNow();
      if (kind === 'sigkill' || kind === 'process') kill(victim());
      else {
        const task = options.crashTask(kind);
        const timeoutMs = kind === 'hang' ? HANG_TIMEOUT_MS : undefined;
        void pools[0]!.run(task.name, task.input, timeoutMs ? { timeoutMs } : {}).catch(() => {});
      }
      return { t, scope: `${options.prefix}unit 0` };
    },
    call: (name, input) => pools[0]!.run(name, input),
    destroy: async () => {
      await Promise.all(pools.map((p) => p.destroy()));
    },
  };
}

function isolaneBackend(options: BackendOptions): Backend {
  const pool = createPool({
    ...base(options),
    workers: options.workers,
    concurrency: options.concurrency,
    restart: {
      backoff: { initialMs: options.restartDelayMs, maxMs: options.restartDelayMs },
      spares: options.spares,
    },
    heartbeatMs: HEARTBEAT_MS,
  });
  const scope = `${options.prefix}pool`;
  record(pool, scope, options.timeline);
  // The busiest ready active worker (not a spare): a crash there hits the most.
  const victim = () =>
    pool
      .stats()
      .workers.filter((w) => w.state === 'ready' && w.role === 'active' && w.pid !== undefined)
      .sort((a, b) => b.running - a.running || a.id - b.id)[0]?.pid;
  return {
    ready: () => pool.ready(),
    send: (name, input) => toOutcome(pool.run(name, input, { idempotent: true })),
    inject(kind) {
      const t = wallNow();
      if (kind === 'sigkill' || kind === 'process') kill(victim());
      else {
        const task = options.crashTask(kind);
        // The heartbeat notices a hang. The crash task itself is not idempotent: it is never retried.
        void pool.run(task.name, task.input).catch(() => {});
      }
      return { t, scope };
    },
    call: (name, input) => pool.run(name, input),
    destroy: () => pool.destroy(),
  };
}

/** The handler (in handlers.ts) that crashes its worker the way `kind` says. */
export const CRASH_HANDLERS: Partial<Record<CrashKind, string>> = {
  uncaught: 'crashUncaught',
  oom: 'crashOom',
  hang: 'crashHang',
  fatal: 'crashFatal',
};

function kill(pid: number | undefined): void {
  if (pid === undefined) throw new Error('crash lab: no live worker process to kill');
  process.kill(pid, 'SIGKILL');
}
