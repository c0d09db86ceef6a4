/** The two measures, the warm-up, and a guard against a pool that never answers. */
import { performance, type RecordableHistogram } from 'node:perf_hooks';
import type { Runner } from './contenders.js';
import type { Workload } from './report.js';
import { CPU_ITERATIONS, cpu } from './workload.cjs';

export type Task<I = any> = (input: I) => Promise<unknown>;

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
  /** Tasks in flight; null for a one-way stream. */
  inFlight: number | null;
}

/** One throughput measure: its rate, and every task it ran (those still in flight at the end too). */
export interface ThroughputSample {
  rate: number;
  tasks: number;
}

/**
 * One task at a time, awaiting each, for `durationMs`: the round trip of a single task through an
 * otherwise idle pool. Each latency is recorded in nanoseconds into `histogram`, so that the rounds
 * of a cell add up to one distribution. Returns the number of tasks run.
 */
export async function sequential<I>(
  task: Task<I>,
  input: I,
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
 * from an idle pool (they do count in `tasks`, which the CPU time measured around the whole loop is
 * divided by). The clock is read on each completion rather than by a timer, because with the
 * inline tier the whole loop can run in microtasks without ever yielding to the event loop.
 */
export function throughput<I>(
  task: Task<I>,
  input: I,
  inFlight: number,
  durationMs: number,
): Promise<ThroughputSample> {
  return new Promise((resolve, reject) => {
    let outstanding = 0;
    let completed = 0;
    let drained = 0;
    let failed: unknown;
    let stoppedAt = 0;
    const start = performance.now();
    const deadline = start + durationMs;
    const settle = () => {
      if (outstanding > 0) return;
      if (failed !== undefined) reject(failed);
      else resolve({ rate: completed / ((stoppedAt - start) / 1000), tasks: completed + drained });
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
      } else {
        drained++;
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

/** A payload of `bytes` bytes with a pattern that an echo must bring back. */
export function payload(bytes: number): Uint8Array {
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) data[i] = (i * 31 + 7) & 0xff;
  return data;
}

function describeValue(value: unknown): string {
  if (value instanceof Uint8Array) return `a Uint8Array of ${value.length} bytes`;
  if (value === null || typeof value !== 'object') return String(value);
  if (value.constructor === Object && '0' in value) {
    return `a plain object with ${Object.keys(value).length} keys (what JSON makes of a Uint8Array)`;
  }
  return `an object (${value.constructor?.name ?? 'no prototype'})`;
}

/** The echo of `sent` must be a Uint8Array of the same bytes (sampled: first, middle, last). */
function checkBytes(what: string, got: unknown, sent: Uint8Array): void {
  const n = sent.length;
  const same =
    got instanceof Uint8Array && got.length === n && [0, n >> 1, n - 1].every((i) => got[i] === sent[i]);
  if (!same) {
    throw new Error(`${what} returned ${describeValue(got)}, expected a Uint8Array of the ${n} bytes sent`);
  }
}

/** A workload's task, the input it is measured with, and how to check an answer. */
export interface WorkloadTask<I = any> {
  task: Task<I>;
  input: I;
  /** The warm-up's i-th input, if it varies (so that an answer to another task would show). */
  vary?: (i: number) => I;
  check(got: unknown, sent: I): void;
}

/**
 * `payloads`: for each payload workload, distinct byte arrays of the same contents, sent in turn
 * (the task ignores the input it is given and takes the next one).
 */
export function workloadTasks(
  runner: Runner,
  payloads: Record<'4k' | '1m', readonly Uint8Array[]>,
): Record<Workload, WorkloadTask> {
  const bytes = (w: '4k' | '1m'): WorkloadTask<Uint8Array> => {
    const copies = payloads[w];
    let next = 0;
    return {
      task: () => runner.bytes(copies[next++ % copies.length]!),
      input: copies[0]!,
      check: (got, sent) => checkBytes(`echoBytes(${w})`, got, sent),
    };
  };
  return {
    tiny: { task: runner.tiny, input: 41, vary: (i) => i, check: (got, x) => check('tiny', got, x + 1) },
    cpu: { task: runner.cpu, input: CPU_ITERATIONS, check: (got) => check('cpu', got, CPU_EXPECTED) },
    '4k': bytes('4k'),
    '1m': bytes('1m'),
  };
}

export interface WarmUpStep {
  sequential: number;
  /** Tasks per worker in each burst. */
  burstPerWorker: number;
  bursts: number;
}

export type WarmUpPlan = Record<Workload, WarmUpStep>;

/**
 * Exercises one workload both ways of submitting, on every worker, before anything is measured
 * (lets the JIT compile both sides and every worker finish starting), and checks the answers.
 */
export async function warmUp<I>(w: WorkloadTask<I>, workers: number, step: WarmUpStep): Promise<void> {
  const input = (i: number) => (w.vary ? w.vary(i) : w.input);
  for (let i = 0; i < step.sequential; i++) w.check(await w.task(input(i)), input(i));
  for (let b = 0; b < step.bursts; b++) {
    const burst = Array.from({ length: step.burstPerWorker * workers }, (_, i) => w.task(input(i)));
    for (const [i, r] of (await Promise.all(burst)).entries()) w.check(r, input(i));
  }
}

/**
 * A short re-warm of one workload before it is measured, since other pools ran in between: wakes
 * the workers and brings the code paths back into the caches.
 */
export async function touch<I>(w: WorkloadTask<I>, times: number): Promise<void> {
  for (let i = 0; i < times; i++) w.check(await w.task(w.input), w.input);
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

/** A promise to reject when a pool reports trouble; it is raced against every step of the benchmark. */
export function failureSignal(): { failed: Promise<never>; fail: (err: unknown) => void } {
  let fail: (err: unknown) => void = () => {};
  const failed = new Promise<never>((_, reject) => {
    fail = reject;
  });
  // Observed through races; a rejection while no race is running must not count as unhandled.
  failed.catch(() => {});
  return { failed, fail };
}
