/**
 * The open-loop load generator's schedule: when each request is sent and when each crash is
 * injected, as offsets in milliseconds from the start of the run. Pure: the same plan (and seed)
 * always gives the same schedule. Open loop means the schedule is fixed in advance: a slow or
 * crashed system does not slow the arrivals down.
 */

export type ArrivalProcess = 'fixed' | 'poisson';

/** How a worker (or the whole process) is made to crash. */
export type CrashKind = 'sigkill' | 'uncaught' | 'oom' | 'hang' | 'fatal' | 'process';
export const CRASH_KINDS: readonly CrashKind[] = ['sigkill', 'uncaught', 'oom', 'hang', 'fatal', 'process'];

/** No run sends more requests than this, whatever the flags say. */
export const MAX_REQUESTS = 200_000;

export interface ArrivalPlan {
  ratePerSec: number;
  durationMs: number;
  process: ArrivalProcess;
  /** Seed of the Poisson process's random numbers. */
  seed?: number;
  /** Upper bound on the number of requests; the plan is refused beyond it. Default {@link MAX_REQUESTS}. */
  maxRequests?: number;
}

export interface CrashAt {
  atMs: number;
  kind: CrashKind;
}

export type Action =
  | { atMs: number; type: 'request'; index: number }
  | { atMs: number; type: 'crash'; crash: CrashAt };

/** A small seeded generator (mulberry32): uniform in [0, 1). */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

/** How many requests the plan sends on average. */
export function expectedRequests(plan: Pick<ArrivalPlan, 'ratePerSec' | 'durationMs'>): number {
  return (plan.ratePerSec * plan.durationMs) / 1000;
}

/**
 * The send times, ascending, each within [0, durationMs). Fixed: one request every 1000/rate ms,
 * starting at 0. Poisson: exponential gaps of mean 1000/rate ms, so the count varies by about its
 * square root from run to run (with a given seed, it does not).
 */
export function arrivals(plan: ArrivalPlan): number[] {
  const { ratePerSec, durationMs } = plan;
  const max = plan.maxRequests ?? MAX_REQUESTS;
  if (!(ratePerSec > 0) || !Number.isFinite(ratePerSec))
    throw new RangeError(`rate must be positive; got ${ratePerSec}`);
  if (!(durationMs > 0) || !Number.isFinite(durationMs))
    throw new RangeError(`duration must be positive; got ${durationMs}`);
  if (expectedRequests(plan) > max) {
    throw new RangeError(
      `${ratePerSec}/s for ${durationMs} ms is ${Math.round(expectedRequests(plan))} requests; the limit is ${max}`,
    );
  }
  const gapMs = 1000 / ratePerSec;
  const out: number[] = [];
  if (plan.process === 'fixed') {
    for (let i = 0; i * gapMs < durationMs; i++) out.push(i * gapMs);
    return out;
  }
  const random = seededRandom(plan.seed ?? 1);
  let t = -Math.log(1 - random()) * gapMs;
  // The hard cap keeps an unlucky draw within bounds too (it cannot bind in practice: 2× the mean).
  while (t < durationMs && out.length < max * 2) {
    out.push(t);
    t += -Math.log(1 - random()) * gapMs;
  }
  return out;
}

/** The crashes, sorted, each strictly inside the run. */
export function crashSchedule(atMs: readonly number[], kind: CrashKind, durationMs: number): CrashAt[] {
  for (const at of atMs) {
    if (!(at > 0 && at < durationMs))
      throw new RangeError(`a crash at ${at} ms is outside the run (0, ${durationMs})`);
  }
  return [...atMs].sort((a, b) => a - b).map((at) => ({ atMs: at, kind }));
}

/** Requests and crashes in the order the driver performs them; a crash goes before a request sent at the same time. */
export function actions(sendTimes: readonly number[], crashes: readonly CrashAt[]): Action[] {
  const out: Action[] = [];
  let c = 0;
  for (let i = 0; i < sendTimes.length; i++) {
    const at = sendTimes[i]!;
    while (c < crashes.length && crashes[c]!.atMs <= at) {
      out.push({ atMs: crashes[c]!.atMs, type: 'crash', crash: crashes[c]! });
      c++;
    }
    out.push({ atMs: at, type: 'request', index: i });
  }
  for (; c < crashes.length; c++) out.push({ atMs: crashes[c]!.atMs, type: 'crash', crash: crashes[c]! });
  return out;
}
