/**
 * CPU time spent around a measure, both sides of the pool: every thread of this process (the
 * caller, the worker threads, V8's and libuv's helpers) and every thread of its child processes,
 * from the nanosecond counters in /proc/PID/task/TID/schedstat (Linux; elsewhere: not measured).
 *
 * Every other pool is alive but idle meanwhile and is counted too; an idle pool costs about
 * nothing (isolane's ring pools poll for ~50 µs after their last activity, then sleep).
 */
import { existsSync, readFileSync } from 'node:fs';
import { childPids as childPidsOnLinux, currentTid, processCpuNs } from '../src/lab/cpu.js';

export const CPU_TIME_AVAILABLE = process.platform === 'linux' && existsSync('/proc/self/task');

/** This module is loaded by the benchmark's main thread: the caller of every pool. */
const CALLER_TID = CPU_TIME_AVAILABLE ? currentTid() : 0;

export interface CpuSnapshot {
  selfNs: number;
  callerNs: number;
  children: Map<number, number>;
}

export interface CpuSpent {
  /** This process and its children, every thread. */
  totalNs: number;
  /** The caller's (main) thread alone. */
  callerNs: number;
}

/** Live child processes of this process (Linux; elsewhere undefined). */
export function childPids(): number[] | undefined {
  return process.platform === 'linux' ? childPidsOnLinux() : undefined;
}

function callerNs(): number {
  try {
    return Number(readFileSync(`/proc/self/task/${CALLER_TID}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return 0;
  }
}

/**
 * The counters now. The children are listed first, so that the scan of /proc (the slow part) is
 * not counted; their counters are read last going in and first coming out, for the same reason.
 */
export function cpuSnapshot(): CpuSnapshot | undefined {
  if (!CPU_TIME_AVAILABLE) return undefined;
  const children = new Map((childPids() ?? []).map((pid) => [pid, processCpuNs(pid)]));
  return { children, selfNs: processCpuNs('self'), callerNs: callerNs() };
}

/** CPU time spent since `before` by this process and by the children that were alive then. */
export function cpuSince(before: CpuSnapshot | undefined): CpuSpent | undefined {
  if (!before) return undefined;
  const selfNs = processCpuNs('self');
  const caller = callerNs();
  let childrenNs = 0;
  // A child that ended meanwhile reads 0: its share is lost rather than counted negative.
  for (const [pid, ns] of before.children) childrenNs += Math.max(0, processCpuNs(pid) - ns);
  return { totalNs: selfNs - before.selfNs + childrenNs, callerNs: caller - before.callerNs };
}
