/**
 * Counting what happened to every request of a run. Pure: records in, counts out.
 *
 * Every request sent ends in exactly one of completed or failed (or, if the run gave up waiting,
 * unsettled, which is an error of the run). "Retried" is not a third outcome: it counts requests
 * that took more than one try, each once however many tries it took, whether it then completed or
 * failed.
 */
import { percentile } from '../math.js';

export type Outcome = { ok: true; attempts: number } | { ok: false; attempts: number; code: string };

/** Why a request failed. */
export type FailureKind = 'refused' | 'crashed' | 'timeout' | 'other';
export const FAILURE_KINDS: readonly FailureKind[] = ['refused', 'crashed', 'timeout', 'other'];

/** Error code of a request refused at the door because the unit it was sent to was down. */
export const DOWN_CODE = 'ERR_CRASH_LAB_DOWN';

export interface RequestRecord {
  /** When the schedule said to send it, ms from the start of the run. Latency is counted from here. */
  intendedMs: number;
  /** When it settled, ms from the start of the run; undefined if it never did. */
  settledMs: number | undefined;
  outcome: Outcome | undefined;
}

/** One crash: when it was injected and when the crashed unit's replacement was ready. */
export interface CrashSpan {
  atMs: number;
  untilMs: number;
}

export type WindowName = 'before' | 'during' | 'after';
export const WINDOWS: readonly WindowName[] = ['before', 'during', 'after'];

export interface WindowStats {
  sent: number;
  completed: number;
  failed: number;
  /** Latency of the completed requests, from the intended send time to the result (ms); null if none. */
  p50Ms: number | null;
  p99Ms: number | null;
  meanMs: number | null;
}

export interface Accounting {
  sent: number;
  completed: number;
  failed: number;
  retried: number;
  unsettled: number;
  failedBy: Record<FailureKind, number>;
  /** sent = completed + failed, and nothing left unsettled. */
  balanced: boolean;
  windows: Record<WindowName, WindowStats>;
}

export function classifyFailure(code: string): FailureKind {
  if (code === DOWN_CODE || code === 'ERR_ISOLANE_QUEUE_FULL' || code === 'ERR_ISOLANE_QUARANTINED')
    return 'refused';
  if (code === 'ERR_ISOLANE_WORKER_CRASHED') return 'crashed';
  if (code === 'ERR_ISOLANE_TIMEOUT') return 'timeout';
  return 'other';
}

/**
 * Which window a request belongs to, by the time it was meant to be sent: before the first crash,
 * during a crash (from its injection until its unit's replacement is ready), or after.
 */
export function windowOf(intendedMs: number, crashes: readonly CrashSpan[]): WindowName {
  if (crashes.length === 0 || intendedMs < crashes[0]!.atMs) return 'before';
  for (const c of crashes) if (intendedMs >= c.atMs && intendedMs < c.untilMs) return 'during';
  return 'after';
}

function windowStats(records: readonly RequestRecord[]): WindowStats {
  const latencies: number[] = [];
  let completed = 0;
  let failed = 0;
  for (const r of records) {
    if (!r.outcome) continue;
    if (r.outcome.ok) {
      completed++;
      latencies.push(r.settledMs! - r.intendedMs);
    } else failed++;
  }
  const has = latencies.length > 0;
  return {
    sent: records.length,
    completed,
    failed,
    p50Ms: has ? percentile(latencies, 50) : null,
    p99Ms: has ? percentile(latencies, 99) : null,
    meanMs: has ? latencies.reduce((a, b) => a + b, 0) / latencies.length : null,
  };
}

export function account(records: readonly RequestRecord[], crashes: readonly CrashSpan[]): Accounting {
  const failedBy: Record<FailureKind, number> = { refused: 0, crashed: 0, timeout: 0, other: 0 };
  let completed = 0;
  let failed = 0;
  let retried = 0;
  let unsettled = 0;
  const byWindow: Record<WindowName, RequestRecord[]> = { before: [], during: [], after: [] };
  for (const r of records) {
    byWindow[windowOf(r.intendedMs, crashes)].push(r);
    const o = r.outcome;
    if (!o) {
      unsettled++;
      continue;
    }
    if (o.attempts > 1) retried++;
    if (o.ok) completed++;
    else {
      failed++;
      failedBy[classifyFailure(o.code)]++;
    }
  }
  return {
    sent: records.length,
    completed,
    failed,
    retried,
    unsettled,
    failedBy,
    balanced: unsettled === 0 && completed + failed === records.length,
    windows: {
      before: windowStats(byWindow.before),
      during: windowStats(byWindow.during),
      after: windowStats(byWindow.after),
    },
  };
}
