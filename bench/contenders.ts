/**
 * The pools under test, each behind the same small interface. Every pool runs with its default
 * options except the pool size (fixed: minimum = maximum = the number of workers being measured),
 * plus the one option a row is about (isolane's `channel`, Piscina's `concurrentTasksPerWorker`).
 * The raw baselines (no pool at all) are in raw.ts.
 */
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { Piscina } from 'piscina';
import { FixedClusterPool, FixedThreadPool } from 'poolifier';
import Tinypool from 'tinypool';
import workerpool from 'workerpool';
import { nativeLoadError } from '../src/channel/native.js';
import { createPool, type Isolation, type Pool } from '../src/index.js';
import type * as benchHandlers from './handlers.js';
import { failureSignal } from './measure.js';
import { rawOneWay, rawPerTask } from './raw.js';
import { WORKLOADS, type Workload } from './report.js';

export type Tier = Isolation;

export type Library = 'isolane' | 'piscina' | 'tinypool' | 'workerpool' | 'poolifier' | 'raw';

/** A started pool. */
export interface Runner {
  tiny(x: number): Promise<number>;
  cpu(iterations: number): Promise<number>;
  /** The payload echo: resolves with the same bytes (valid until the next call, for a pool that moves them). */
  bytes(payload: Uint8Array): Promise<Uint8Array>;
  /** Stops every worker and resolves once they are gone; `force` after a failure (tasks may be stuck). */
  close(force: boolean): Promise<void>;
  /**
   * Rejects when the pool reports trouble outside of any one task (an 'error' event, a crashed
   * worker): its numbers are then not worth keeping. Never resolves.
   */
  failed: Promise<never>;
}

/** One measure of a one-way stream: messages the workers counted, over the time it took. */
export interface StreamRound {
  messages: number;
  seconds: number;
}

/** Started workers that are sent small messages one way, with no reply but their count. */
export interface Streamer {
  /** Streams for `durationMs`, then waits until the workers counted every message. */
  stream(durationMs: number): Promise<StreamRound>;
  close(force: boolean): Promise<void>;
  failed: Promise<never>;
}

interface Common {
  /** Stable key. */
  id: string;
  /** Row label. */
  name: string;
  library: Library;
  tier: Tier;
  /** The isolane row that the peers of the same tier are compared with. */
  baseline: boolean;
  /** One line for the legend: what is non-default about this row. */
  note?: string;
}

/** A pool of tasks: measured on each of its workloads, sequentially and with many in flight. */
export interface PoolContender extends Common {
  kind: 'pool';
  workloads: readonly Workload[];
  /** Creates the pool and waits for the library's own "ready" signal, if it has one. */
  start(workers: number): Promise<Runner>;
}

/** A one-way stream of messages (no tasks): measured in messages per second, under the tiny workload. */
export interface StreamContender extends Common {
  kind: 'stream';
  start(workers: number): Promise<Streamer>;
}

export type Contender = PoolContender | StreamContender;

/** Piscina's pipelining depth in its "ctpw" row. */
export const PIPELINE = 64;

const ISOLANE_HANDLERS = new URL('./handlers.js', import.meta.url);
const PAYLOAD_WORKLOADS: readonly Workload[] = ['4k', '1m'];

function peerFile(name: string, extension: 'js' | 'cjs' = 'js'): string {
  return fileURLToPath(new URL(`./peer-handlers/${name}.${extension}`, import.meta.url));
}

/**
 * `'message'`: `channel: 'message'`. `'transfer'`: the default channel, and the payload moved both
 * ways instead of copied (the row runs the payload workloads only).
 */
type IsolaneVariant = 'message' | 'transfer';

function isolane(isolation: Isolation, variant?: IsolaneVariant): PoolContender {
  const channel = isolation === 'inline' ? 'direct' : variant === 'message' ? 'message' : 'ring';
  return {
    kind: 'pool',
    id: `isolane-${isolation}${variant ? `-${variant}` : ''}`,
    name: `isolane ${isolation}${variant ? `, ${variant}` : ''}`,
    library: 'isolane',
    tier: isolation,
    baseline: variant === undefined && isolation !== 'inline',
    workloads: variant === 'transfer' ? PAYLOAD_WORKLOADS : WORKLOADS,
    note:
      variant === 'message'
        ? `isolane ${isolation}, message: channel: 'message'`
        : variant === 'transfer'
          ? `isolane ${isolation}, transfer: the payload moved, not copied: run(…, { transfer }) ` +
            '(buffers recycled from earlier results) and the handler returns move(bytes)'
          : `isolane ${isolation}: default options; checked to run over channel '${channel}'`,
    async start(workers) {
      const pool = createPool<typeof benchHandlers>({
        handlers: ISOLANE_HANDLERS,
        isolation,
        workers,
        ...(variant === 'message' ? { channel: 'message' } : {}),
      });
      const { failed, fail } = failureSignal();
      pool.on('crash', (event) =>
        fail(new Error(`worker ${event.workerId} crashed (${event.cause.reason})`)),
      );
      try {
        await pool.ready();
        checkChannel(pool.stats().channel, channel, isolation);
      } catch (err) {
        await pool.destroy();
        throw err;
      }
      return {
        tiny: (x) => pool.run('tiny', x),
        cpu: (n) => pool.run('cpu', n),
        bytes: variant === 'transfer' ? movedEcho(pool) : (b) => pool.run('echoBytes', b),
        close: (force) => (force ? pool.destroy() : pool.close()),
        failed,
      };
    },
  };
}

/** A row must measure the channel it is named after, not a fallback. */
function checkChannel(actual: string, expected: string, isolation: Isolation): void {
  if (actual === expected) return;
  const why =
    isolation === 'process' && expected === 'ring' && nativeLoadError
      ? `; the native addon (build/Release/isolane_shm.node) did not load: ${nativeLoadError.message}`
      : '';
  throw new Error(`pool.stats().channel is '${actual}', expected '${expected}'${why}`);
}

/**
 * The payload echo with the bytes moved both ways. A moved buffer is detached on the sending side,
 * so each task sends one of the buffers that came back from earlier tasks (the first ones are
 * copies of the payload), as a program that moves its buffers would.
 */
function movedEcho(pool: Pool<typeof benchHandlers>) {
  const spare = new Map<number, Uint8Array<ArrayBuffer>[]>();
  return async (payload: Uint8Array): Promise<Uint8Array> => {
    const free = spare.get(payload.length) ?? [];
    spare.set(payload.length, free);
    const sent = free.pop() ?? payload.slice();
    const back = await pool.run('echoBytesMoved', sent, { transfer: [sent.buffer] });
    // Moved here by postMessage: a plain ArrayBuffer underneath.
    free.push(back as Uint8Array<ArrayBuffer>);
    return back;
  };
}

function piscina(concurrentTasksPerWorker?: number): PoolContender {
  const pipelined = concurrentTasksPerWorker !== undefined;
  return {
    kind: 'pool',
    id: pipelined ? `piscina-ctpw${concurrentTasksPerWorker}` : 'piscina',
    name: pipelined ? `piscina ctpw=${concurrentTasksPerWorker}` : 'piscina',
    library: 'piscina',
    tier: 'thread',
    baseline: false,
    workloads: WORKLOADS,
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
      const bytesOptions = { name: 'echoBytes' };
      return {
        tiny: (x) => pool.run(x, tinyOptions),
        cpu: (n) => pool.run(n, cpuOptions),
        bytes: (b) => pool.run(b, bytesOptions),
        close: () => pool.destroy(),
        failed,
      };
    },
  };
}

function tinypool(runtime: 'worker_threads' | 'child_process'): PoolContender {
  return {
    kind: 'pool',
    id: `tinypool-${runtime === 'worker_threads' ? 'thread' : 'process'}`,
    name: `tinypool ${runtime}`,
    library: 'tinypool',
    tier: runtime === 'worker_threads' ? 'thread' : 'process',
    baseline: false,
    workloads: WORKLOADS,
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
      const bytesOptions = { name: 'echoBytes' };
      return {
        tiny: (x) => pool.run(x, tinyOptions),
        cpu: (n) => pool.run(n, cpuOptions),
        bytes: (b) => pool.run(b, bytesOptions),
        close: () => pool.destroy(),
        failed,
      };
    },
  };
}

function workerpoolContender(workerType: 'thread' | 'process'): PoolContender {
  return {
    kind: 'pool',
    id: `workerpool-${workerType}`,
    name: `workerpool ${workerType}`,
    library: 'workerpool',
    tier: workerType,
    baseline: false,
    workloads: WORKLOADS,
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
        bytes: (b) => pool.exec('echoBytes', [b]) as unknown as Promise<Uint8Array>,
        close: async (force) => {
          await pool.terminate(force);
        },
        // workerpool reports every failure through the task it happened in.
        failed: failureSignal().failed,
      };
    },
  };
}

function poolifier(kind: 'thread' | 'cluster'): PoolContender {
  return {
    kind: 'pool',
    id: `poolifier-${kind}`,
    name: kind === 'thread' ? 'poolifier FixedThreadPool' : 'poolifier FixedClusterPool',
    library: 'poolifier',
    tier: kind === 'thread' ? 'thread' : 'process',
    baseline: false,
    workloads: WORKLOADS,
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
          ? new FixedThreadPool<unknown, unknown>(workers, peerFile('poolifier-thread'), { exitHandler })
          : new FixedClusterPool<unknown, unknown>(workers, peerFile('poolifier-cluster', 'cjs'), {
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
        tiny: (x) => pool.execute(x, 'tiny') as Promise<number>,
        cpu: (n) => pool.execute(n, 'cpu') as Promise<number>,
        bytes: (b) => pool.execute(b, 'echoBytes') as Promise<Uint8Array>,
        close: () => Promise.race([pool.destroy(), exited]),
        failed,
      };
    },
  };
}

/**
 * In the order they run and are printed: grouped by tier, isolane first in each group, the raw
 * baselines last.
 */
export const CONTENDERS: readonly Contender[] = [
  isolane('inline'),
  isolane('thread'),
  isolane('thread', 'message'),
  isolane('thread', 'transfer'),
  piscina(),
  piscina(PIPELINE),
  tinypool('worker_threads'),
  workerpoolContender('thread'),
  poolifier('thread'),
  rawPerTask('thread'),
  rawOneWay(),
  isolane('process'),
  isolane('process', 'message'),
  tinypool('child_process'),
  workerpoolContender('process'),
  poolifier('cluster'),
  rawPerTask('process'),
];
