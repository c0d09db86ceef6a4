/** The two measures, the warm-up, and a guard against a pool that never answers. */
import { performance, type RecordableHistogram } from 'node:perf_hooks';
import type { Runner } from './contenders.js';
import { CPU_ITERATIONS, cpu } from './workload.cjs';

export type Task = (input: number) => Promise<number>;

export interface SequentialResult {
  p50Us: number;
  p99Us: number;
  samples: number;
}

export interface ThroughputResult {
  /** The median of the rounds' rates. */
  tasksPerSec: number;
  /** Each round's rate, in the order they ran. */
  rounds: number[];
  inFlight: number;
}

/**
 * One task at a time, awaiting each, for `durationMs`: the round trip of a single task through an
 * otherwise idle pool. Each latency is recorded in nanoseconds into `histogram`, so that the rounds
 * of a cell add up to one distribution. Returns the number of tasks run.
 */
export async function sequential(
  task: Task,
  input: number,
  durationMs: number,
  histogram: RecordableHistogram,
): Promise<number> {
  const deadline = performance.now() + durationMs;
  let samples = 0;
  for (;;) {
    const t0 = performance.now();
    await task(input);
    const t1 = performance.now();
    histogram.record(Math.max(1, Math.round((t1 - t0) * 1e6)));
    samples++;
    if (t1 >= deadline) return samples;
  }
}

export function summarize(histogram: RecordableHistogram): SequentialResult {
  return {
    p50Us: histogram.percentile(50) / 1000,
    p99Us: histogram.percentile(99) / 1000,
    samples: histogram.count,
  };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * A closed loop with `inFlight` tasks outstanding: each completion submits the next task until
 * `durationMs` has passed. The rate (tasks per second) counts the completions inside that window;
 * the tasks still in flight at its end are awaited, not counted, so that the next measure starts
 * from an idle pool. The clock is read on each completion rather than by a timer, because with the
 * inline tier the whole loop can run in microtasks without ever yielding to the event loop.
 */
export function throughput(task: Task, input: number, inFlight: number, durationMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let outstanding = 0;
    let completed = 0;
    let failed: unknown;
    let stoppedAt = 0;
    const start = performance.now();
    const deadline = start + durationMs;
    const settle = () => {
      if (outstanding > 0) return;
      if (failed !== undefined) reject(failed);
      else resolve(completed / ((stoppedAt - start) / 1000));
    };
    const onError = (err: unknown) => {
      outstanding--;
      if (failed === undefined) failed = err ?? new Error('a task was rejected without a reason');
      if (stoppedAt === 0) stoppedAt = performance.now();
      settle();
    };
    const onDone = () => {
      outstanding--;
      if (stoppedAt === 0) {
        completed++;
        const now = performance.now();
        if (now >= deadline) {
          stoppedAt = now;
        } else {
          outstanding++;
          task(input).then(onDone, onError);
        }
      }
      settle();
    };
    for (let i = 0; i < inFlight; i++) {
      outstanding++;
      task(input).then(onDone, onError);
    }
  });
}

/** What the CPU task returns, computed here once, to check every pool's answer. */
const CPU_EXPECTED = cpu(CPU_ITERATIONS);

function check(what: string, got: unknown, expected: number): void {
  if (got !== expected) throw new Error(`${what} returned ${String(got)}, expected ${expected}`);
}

export interface WarmUpPlan {
  tinySequential: number;
  tinyBurst: number;
  tinyBursts: number;
  cpuSequential: number;
  /** CPU tasks per worker in the burst. */
  cpuBurstPerWorker: number;
}

/**
 * Exercises both workloads and both ways of submitting, on every worker, before anything is
 * measured (lets the JIT compile both sides and every worker finish starting), and checks the answers.
 */
export async function warmUp(runner: Runner, workers: number, plan: WarmUpPlan): Promise<void> {
  for (let i = 0; i < plan.tinySequential; i++) check('tiny', await runner.tiny(i), i + 1);
  for (let b = 0; b < plan.tinyBursts; b++) {
    const burst = Array.from({ length: plan.tinyBurst }, (_, i) => runner.tiny(i));
    const results = await Promise.all(burst);
    for (const [i, r] of results.entries()) check('tiny', r, i + 1);
  }
  for (let i = 0; i < plan.cpuSequential; i++) check('cpu', await runner.cpu(CPU_ITERATIONS), CPU_EXPECTED);
  const cpuBurst = Array.from({ length: plan.cpuBurstPerWorker * workers }, () => runner.cpu(CPU_ITERATIONS));
  for (const r of await Promise.all(cpuBurst)) check('cpu', r, CPU_EXPECTED);
}

/**
 * A short re-warm before each round of a pool, since other pools ran in between: wakes its workers
 * and brings its code paths back into the caches.
 */
export async function touch(runner: Runner): Promise<void> {
  for (let i = 0; i < 100; i++) check('tiny', await runner.tiny(i), i + 1);
  check('cpu', await runner.cpu(CPU_ITERATIONS), CPU_EXPECTED);
}

/** The median time of the CPU task in this thread, in milliseconds. */
export function cpuTaskMs(): number {
  for (let i = 0; i < 20; i++) cpu(CPU_ITERATIONS);
  const times: number[] = [];
  for (let i = 0; i < 31; i++) {
    const t0 = performance.now();
    cpu(CPU_ITERATIONS);
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[15]!;
}

export class TimeoutError extends Error {
  override name = 'TimeoutError';
}

/**
 * Rejects with `TimeoutError` if `promise` has not settled within `ms`, and with the pool's own
 * error if `failed` rejects first.
 */
export function guard<T>(promise: Promise<T>, ms: number, what: string, failed?: Promise<never>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`${what} did not finish within ${ms} ms`)), ms);
  });
  const racers = failed ? [promise, timeout, failed] : [promise, timeout];
  return Promise.race(racers).finally(() => clearTimeout(timer));
}
