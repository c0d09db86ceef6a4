import { readdirSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { createPool, type Isolation, type Pool, type PoolOptions } from '../src/index.js';
import type * as fixtures from './fixtures/handlers.js';

export const HANDLERS = new URL('./fixtures/handlers.js', import.meta.url);
export const BROKEN_HANDLERS = new URL('./fixtures/broken-handlers.js', import.meta.url);
export const EXIT_ON_LOAD_HANDLERS = new URL('./fixtures/exit-on-load.js', import.meta.url);
export const TIERS: readonly Isolation[] = ['inline', 'thread', 'process'];
export const ISOLATED_TIERS: readonly Isolation[] = ['thread', 'process'];

/** A level and the channel its batches travel by: every tier's suite runs with each channel. */
export interface TierCase {
  isolation: Isolation;
  channel: 'message' | 'ring';
  /** For test names: "thread tier (ring)". */
  label: string;
}

export const TIER_CASES: readonly TierCase[] = [
  { isolation: 'inline', channel: 'message', label: 'inline tier' },
  ...ISOLATED_TIERS.flatMap((isolation) =>
    (['message', 'ring'] as const).map((channel) => ({
      isolation,
      channel,
      label: `${isolation} tier (${channel})`,
    })),
  ),
];
export const ISOLATED_CASES: readonly TierCase[] = TIER_CASES.filter((c) => c.isolation !== 'inline');

export type FixturePool = Pool<typeof fixtures>;

/** Runs `fn` with a fresh pool and destroys it afterwards, whatever happens. */
export async function withPool<T>(
  options: Partial<PoolOptions> & { isolation: Isolation },
  fn: (pool: FixturePool) => Promise<T>,
): Promise<T> {
  const pool = createPool<typeof fixtures>({ handlers: HANDLERS, workers: 2, ...options });
  try {
    return await fn(pool);
  } finally {
    await pool.destroy();
  }
}

/** Pids of the live child processes of this process. */
export { childPids } from '../src/lab/cpu.js';

/** Threads of this process (the main thread, libuv's, V8's and any worker threads). */
export function threadCount(): number {
  return readdirSync('/proc/self/task').length;
}

/** Polls until `check` is true or `timeoutMs` passes; returns the last result. */
export async function eventually(check: () => boolean, timeoutMs = 5_000, stepMs = 20): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (check()) return true;
    await sleep(stepMs);
  }
  return check();
}

/** Waits for one emission of `event` on `pool`, failing after `timeoutMs`. */
export function once<E extends keyof import('../src/index.js').PoolEvents>(
  pool: FixturePool,
  event: E,
  timeoutMs = 10_000,
): Promise<import('../src/index.js').PoolEvents[E][0]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`no '${event}' event within ${timeoutMs} ms`)),
      timeoutMs,
    );
    pool.once(event, ((payload: never) => {
      clearTimeout(timer);
      resolve(payload);
    }) as never);
  });
}
