import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';

/**
 * Pins one thread (or, with `allThreads`, every thread of a process) to one CPU with util-linux's
 * `taskset`. Node has no binding for sched_setaffinity. Returns false where that is not possible.
 */
export function pin(id: number, cpu: number, allThreads = false): boolean {
  try {
    execFileSync('taskset', [allThreads ? '-apc' : '-pc', String(cpu), String(id)], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Lets the thread run on any CPU again. */
export function unpin(id: number): void {
  try {
    execFileSync('taskset', ['-pc', `0-${cpus().length - 1}`, String(id)], { stdio: 'ignore' });
  } catch {
    // nothing to undo
  }
}
