import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

/**
 * CPU time from the kernel's scheduler statistics (`/proc/PID/task/TID/schedstat`, nanoseconds on
 * CPU), summed over every thread of a process. Unlike `process.cpuUsage()` it can be read for
 * another process, and its resolution is the nanosecond, not the 10 ms clock tick.
 */
export function processCpuNs(pid: number | 'self' = 'self'): number {
  let total = 0;
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return 0;
  }
  for (const tid of tids) total += threadCpuNs(pid, tid);
  return total;
}

function threadCpuNs(pid: number | 'self', tid: string): number {
  try {
    return Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
  } catch {
    return 0; // the thread ended
  }
}

/** The kernel id of the calling thread (main thread or worker thread). */
export function currentTid(): number {
  const link = readlinkSync('/proc/thread-self'); // "PID/task/TID"
  return Number(link.split('/').pop());
}

/** The CPU the thread last ran on, from /proc (field 39 of stat). */
export function lastCpu(tid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${tid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[36]);
  } catch {
    return undefined;
  }
}

/** Live (not zombie) child processes of this process, from /proc. */
export function childPids(): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command name, which is in parentheses and may contain spaces.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === process.pid && fields[0] !== 'Z') pids.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return pids;
}
