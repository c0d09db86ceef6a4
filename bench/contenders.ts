/**
 * The pools under test, each behind the same small interface. Every pool runs with its default
 * options except the pool size (fixed: minimum = maximum = the number of workers being measured),
 * plus the one option a row is about (isolane's `concurrency`, Piscina's `concurrentTasksPerWorker`).
 */
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { FixedClusterPool, FixedThreadPool } from 'poolifier';
import Tinypool from 'tinypool';
import workerpool from 'workerpool';
import { createPool, type Isolation } from '../src/index.js';
import type * as benchHandlers from './handlers.js';

export type Tier = Isolation;

/** A started pool. */
export interface Runner {
  tiny(x: number): Promise<number>;
  cpu(iterations: number): Promise<number>;
  /** Stops every worker and resolves once they are gone; `force` after a failure (tasks may be stuck). */
  close(force: boolean): Promise<void>;
  /**
   * Rejects when the pool reports trouble outside of any one task (an 'error' event, a crashed
   * worker): its numbers are then not worth keeping. Never resolves.
   */
  failed: Promise<never>;
}

export interface Contender {
  /** Stable key. */
  id: string;
  /** Row label. */
  name: string;
  library: 'isolane' | 'piscina' | 'tinypool' | 'workerpool' | 'poolifier';
  tier: Tier;
  /** The isolane row that the peers of the same tier are compared with. */
  baseline: boolean;
  /** One line for the legend: what is non-default about this row. */
  note?: string;
  /** Creates the pool and waits for the library's own "ready" signal, if it has one. */
  start(workers: number): Promise<Runner>;
}

/** Pipelining depth of the "pipelined" rows. */
export const PIPELINE = 64;

const ISOLANE_HANDLERS = new URL('./handlers.js', import.meta.url);

/** A promise to reject when a pool reports trouble; it is raced against every step of the benchmark. */
function failureSignal(): { failed: Promise<never>; fail: (err: unknown) => void } {
  let fail: (err: unknown) => void = () => {};
  const failed = new Promise<never>((_, reject) => {
    fail = reject;
  });
  // Observed through races; a rejection while no race is running must not count as unhandled.
  failed.catch(() => {});
  return { failed, fail };
}

function peerFile(name: string, extension: 'js' | 'cjs' = 'js'): string {
  return fileURLToPath(new URL(`./peer-handlers/${name}.${extension}`, import.meta.url));
}

function isolane(isolation: Isolation, concurrency?: number): Contender {
  const pipelined = concurrency !== undefined;
  return {
    id: `isolane-${isolation}${pipelined ? `-c${concurrency}` : ''}`,
    name: `isolane ${isolation}${pipelined ? ` c=${concurrency}` : ''}`,
    library: 'isolane',
    tier: isolation,
    baseline: !pipelined && isolation !== 'inline',
    ...(pipelined ? { note: `isolane c=${concurrency}: concurrency: ${concurrency} (pipelined)` } : {}),
    async start(workers) {
      const pool = createPool<typeof benchHandlers>({
        handlers: ISOLANE_HANDLERS,
        isolation,
        workers,
        ...(pipelined ? { concurrency } : {}),
      });
      const { failed, fail } = failureSignal();
      pool.on('crash', (event) =>
        fail(new Error(`worker ${event.workerId} crashed (${event.cause.reason})`)),
      );
      try {
        await pool.ready();
      } catch (err) {
        await pool.destroy();
        throw err;
      }
      return {
        tiny: (x) => pool.run('tiny', x),
        cpu: (n) => pool.run('cpu', n),
        close: (force) => (force ? pool.destroy() : pool.close()),
        failed,
      };
    },
  };
}

function piscina(concurrentTasksPerWorker?: number): Contender {
  const pipelined = concurrentTasksPerWorker !== undefined;
  return {
    id: pipelined ? `piscina-ctpw${concurrentTasksPerWorker}` : 'piscina',
    name: pipelined ? `piscina ctpw=${concurrentTasksPerWorker}` : 'piscina',
    library: 'piscina',
    tier: 'thread',
    baseline: false,
    ...(pipelined
      ? {
          note: `piscina ctpw=${concurrentTasksPerWorker}: concurrentTasksPerWorker: ${concurrentTasksPerWorker}`,
        }
      : {}),
    async start(workers) {
      const pool = new Piscina({
        filename: peerFile('piscina'),
        minThreads: workers,
        maxThreads: workers,
        ...(pipelined ? { concurrentTasksPerWorker } : {}),
      });
      const { failed, fail } = failureSignal();
      pool.on('error', fail);
      const tinyOptions = { name: 'tiny' };
      const cpuOptions = { name: 'cpu' };
      return {
        tiny: (x) => pool.run(x, tinyOptions),
        cpu: (n) => pool.run(n, cpuOptions),
        close: () => pool.destroy(),
        failed,
      };
    },
  };
}

function tinypool(runtime: 'worker_threads' | 'child_process'): Contender {
  return {
    id: `tinypool-${runtime === 'worker_threads' ? 'thread' : 'process'}`,
    name: `tinypool ${runtime}`,
    library: 'tinypool',
    tier: runtime === 'worker_threads' ? 'thread' : 'process',
    baseline: false,
    async start(workers) {
      const pool = new Tinypool({
        filename: peerFile('tinypool'),
        runtime,
        minThreads: workers,
        maxThreads: workers,
      });
      const { failed, fail } = failureSignal();
      pool.on('error', fail);
      const tinyOptions = { name: 'tiny' };
      const cpuOptions = { name: 'cpu' };
      return {
        tiny: (x) => pool.run(x, tinyOptions),
        cpu: (n) => pool.run(n, cpuOptions),
        close: () => pool.destroy(),
        failed,
      };
    },
  };
}

function workerpoolContender(workerType: 'thread' | 'process'): Contender {
  return {
    id: `workerpool-${workerType}`,
    name: `workerpool ${workerType}`,
    library: 'workerpool',
    tier: workerType,
    baseline: false,
    async start(workers) {
      const pool = workerpool.pool(peerFile('workerpool'), {
        minWorkers: workers,
        maxWorkers: workers,
        workerType,
      });
      return {
        // workerpool returns its own thenable; `await` handles it like any promise.
        tiny: (x) => pool.exec('tiny', [x]) as unknown as Promise<number>,
        cpu: (n) => pool.exec('cpu', [n]) as unknown as Promise<number>,
        close: async (force) => {
          await pool.terminate(force);
        },
        // workerpool reports every failure through the task it happened in.
        failed: failureSignal().failed,
      };
    },
  };
}

function poolifier(kind: 'thread' | 'cluster'): Contender {
  return {
    id: `poolifier-${kind}`,
    name: kind === 'thread' ? 'poolifier FixedThreadPool' : 'poolifier FixedClusterPool',
    library: 'poolifier',
    tier: kind === 'thread' ? 'thread' : 'process',
    baseline: false,
    async start(workers) {
      // Counted to work around a race in poolifier 5.3's destroy(): a thread worker that has handled
      // the kill message closes its port and may exit before destroy() listens for its 'exit'; then
      // destroy() never resolves (about one run in three here). Closing ends when destroy() resolves
      // or when every worker has exited, whichever comes first.
      let exits = 0;
      let allExited: () => void = () => {};
      const exited = new Promise<void>((resolve) => {
        allExited = resolve;
      });
      const exitHandler = () => {
        if (++exits >= workers) allExited();
      };
      const pool =
        kind === 'thread'
          ? new FixedThreadPool<number, number>(workers, peerFile('poolifier-thread'), { exitHandler })
          : new FixedClusterPool<number, number>(workers, peerFile('poolifier-cluster', 'cjs'), {
              exitHandler,
            });
      const { failed, fail } = failureSignal();
      try {
        // Not `pool.info.ready`: it is already true when the constructor returns, before any worker
        // has started. The event comes later, never from the constructor; `once` rejects if the
        // pool emits 'error' first.
        await once(pool.emitter!, 'ready');
      } catch (err) {
        await pool.destroy();
        throw err;
      }
      pool.emitter?.on('error', fail);
      return {
        tiny: (x) => pool.execute(x, 'tiny'),
        cpu: (n) => pool.execute(n, 'cpu'),
        close: () => Promise.race([pool.destroy(), exited]),
        failed,
      };
    },
  };
}

/** In the order they run and are printed: grouped by tier, isolane first in each group. */
export const CONTENDERS: readonly Contender[] = [
  isolane('inline'),
  isolane('thread'),
  isolane('thread', PIPELINE),
  piscina(),
  piscina(PIPELINE),
  tinypool('worker_threads'),
  workerpoolContender('thread'),
  poolifier('thread'),
  isolane('process'),
  isolane('process', PIPELINE),
  tinypool('child_process'),
  workerpoolContender('process'),
  poolifier('cluster'),
];
