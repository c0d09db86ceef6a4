/**
 * The raw baselines: what worker_threads and child_process give with no pool library around them,
 * measured in the same run as the pools, for the bar the pools are held to.
 *
 * - per task: the smallest pool that works (workers taken in turn, one message per task carrying
 *   { id, fn, x }, one reply { id, value }, a Map of the pending promises), over postMessage or over
 *   the IPC channel of `child_process.fork` (serialization 'advanced');
 * - one-way: small numbers posted to worker threads that only count them, pipelined, with no reply
 *   but a count now and then: about the most messages per second postMessage carries.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { PoolContender, Runner, StreamContender, StreamRound, Tier } from './contenders.js';
import { failureSignal } from './measure.js';
import { WORKLOADS } from './report.js';

const ECHO_WORKER = fileURLToPath(new URL('./raw/echo-worker.js', import.meta.url));
const COUNT_WORKER = fileURLToPath(new URL('./raw/count-worker.js', import.meta.url));

/** The index of each task function in the echo worker's table. */
const FN = { tiny: 0, cpu: 1, echoBytes: 2 } as const;

/** One-way: messages sent in a row before yielding to the event loop, and between count reports. */
const CHUNK = 1024;
/** One-way: the most messages a worker may be behind the sender (its queue, in memory). */
const MAX_AHEAD = 32 * CHUNK;

interface Reply {
  id: number;
  value?: unknown;
  error?: string;
}

/** A started worker (thread or process) that answers the echo protocol. */
interface Endpoint {
  send(message: unknown): void;
  onMessage(listener: (message: any) => void): void;
  stop(force: boolean): Promise<void>;
}

/** Starts a worker thread and waits for its "ready" message; `onGone` hears of an error or an exit. */
async function threadEndpoint(
  file: string,
  workerData: unknown,
  onGone: (err: Error) => void,
): Promise<Endpoint> {
  const worker = new Worker(file, { workerData });
  let stopping = false;
  worker.on('error', (err) => onGone(err));
  worker.on('exit', (code) => {
    if (!stopping) onGone(new Error(`a worker thread exited (code ${code})`));
  });
  try {
    await once(worker, 'message');
  } catch (err) {
    await worker.terminate();
    throw err;
  }
  return {
    send: (message) => worker.postMessage(message),
    onMessage: (listener) => worker.on('message', listener),
    stop: async () => {
      stopping = true;
      await worker.terminate();
    },
  };
}

/** Forks a child process and waits for its "ready" message; `onGone` hears of an error or an exit. */
async function processEndpoint(file: string, onGone: (err: Error) => void): Promise<Endpoint> {
  const child: ChildProcess = fork(file, [], {
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let stopping = false;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.on('error', (err) => onGone(err));
  child.on('exit', (code, signal) => {
    if (!stopping) onGone(new Error(`a child process exited (${signal ?? `code ${code}`})`));
  });
  try {
    await once(child, 'message');
  } catch (err) {
    child.kill('SIGKILL');
    throw err;
  }
  return {
    send: (message) => child.send(message as object),
    onMessage: (listener) => child.on('message', listener),
    stop: async (force) => {
      stopping = true;
      if (child.exitCode === null && child.signalCode === null) {
        if (force) child.kill('SIGKILL');
        else child.disconnect(); // it exits on 'disconnect'
        await exited;
      }
    },
  };
}

/** Starts `workers` endpoints, stopping those that started if one fails. */
async function startAll(workers: number, start: () => Promise<Endpoint>): Promise<Endpoint[]> {
  const started = await Promise.allSettled(Array.from({ length: workers }, start));
  const failure = started.find((s) => s.status === 'rejected');
  const endpoints = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  if (failure) {
    await Promise.all(endpoints.map((e) => e.stop(true)));
    throw failure.reason;
  }
  return endpoints;
}

export function rawPerTask(tier: Exclude<Tier, 'inline'>): PoolContender {
  const name = tier === 'thread' ? 'raw postMessage, per task' : 'raw IPC, per task';
  return {
    kind: 'pool',
    id: `raw-${tier}`,
    name,
    library: 'raw',
    tier,
    baseline: false,
    workloads: WORKLOADS,
    note:
      tier === 'thread'
        ? `${name}: no pool: workers in turn, one postMessage per task and one per reply, a Map of pending promises`
        : `${name}: the same over child_process.fork (serialization 'advanced')`,
    async start(workers) {
      const { failed, fail } = failureSignal();
      const pending = new Map<number, { resolve(value: any): void; reject(err: Error): void }>();
      const gone = (err: Error) => {
        for (const p of pending.values()) p.reject(err);
        pending.clear();
        fail(err);
      };
      const endpoints = await startAll(workers, () =>
        tier === 'thread' ? threadEndpoint(ECHO_WORKER, undefined, gone) : processEndpoint(ECHO_WORKER, gone),
      );
      const onReply = (m: Reply) => {
        const p = pending.get(m.id);
        if (!p) return;
        pending.delete(m.id);
        if (m.error === undefined) p.resolve(m.value);
        else p.reject(new Error(m.error));
      };
      for (const e of endpoints) e.onMessage(onReply);
      let nextId = 0;
      let next = 0;
      const run = (fn: number, x: unknown) =>
        new Promise<any>((resolve, reject) => {
          const id = nextId++;
          pending.set(id, { resolve, reject });
          endpoints[next]!.send({ id, fn, x });
          next = next + 1 === endpoints.length ? 0 : next + 1;
        });
      return {
        tiny: (x) => run(FN.tiny, x),
        cpu: (n) => run(FN.cpu, n),
        bytes: (b) => run(FN.echoBytes, b),
        close: async (force) => {
          await Promise.all(endpoints.map((e) => e.stop(force)));
        },
        failed,
      } satisfies Runner;
    },
  };
}

export function rawOneWay(): StreamContender {
  const name = 'raw postMessage, one-way';
  return {
    kind: 'stream',
    id: 'raw-thread-one-way',
    name,
    library: 'raw',
    tier: 'thread',
    baseline: false,
    note:
      `${name}: messages/s (not tasks): small numbers posted to workers (in turn, ${CHUNK} at a time) ` +
      `that only count them, at most ${MAX_AHEAD.toLocaleString('en-US')} ahead; no reply`,
    async start(workers) {
      const { failed, fail } = failureSignal();
      const endpoints = await startAll(workers, () =>
        threadEndpoint(COUNT_WORKER, { reportEvery: CHUNK }, fail),
      );
      const counted = endpoints.map(() => 0);
      const totals: ((total: number) => void)[] = [];
      let wake: (() => void) | undefined;
      endpoints.forEach((e, i) => {
        e.onMessage((m: number | { total: number }) => {
          if (typeof m === 'number') {
            counted[i] = m;
            wake?.();
          } else {
            totals[i]?.(m.total);
          }
        });
      });
      const stream = async (durationMs: number): Promise<StreamRound> => {
        const sent = endpoints.map(() => 0);
        counted.fill(0);
        const start = performance.now();
        const deadline = start + durationMs;
        while (performance.now() < deadline) {
          let blocked = true;
          endpoints.forEach((e, i) => {
            if (sent[i]! - counted[i]! >= MAX_AHEAD) return;
            blocked = false;
            for (let k = 0; k < CHUNK; k++) e.send(k);
            sent[i]! += CHUNK;
          });
          if (blocked) {
            await new Promise<void>((resolve) => {
              wake = resolve;
            });
            wake = undefined;
          } else {
            await nextTurn();
          }
        }
        const counts = await Promise.all(
          endpoints.map(
            (e, i) =>
              new Promise<number>((resolve) => {
                totals[i] = resolve;
                e.send('end');
              }),
          ),
        );
        const seconds = (performance.now() - start) / 1000;
        counts.forEach((n, i) => {
          if (n !== sent[i]) throw new Error(`worker ${i} counted ${n} messages of ${sent[i]} sent`);
        });
        return { messages: counts.reduce((a, b) => a + b, 0), seconds };
      };
      return {
        stream,
        close: async (force) => {
          await Promise.all(endpoints.map((e) => e.stop(force)));
        },
        failed,
      };
    },
  };
}
