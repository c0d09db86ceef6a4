/**
 * A level's memory budget: a cgroup around its harness (and everything the harness starts) that
 * stands for the host's memory, so that a memory bomb above it shows what the kernel does when a
 * machine runs out, without running this machine out. Where no cgroup can be made, there is no
 * budget, and the report says so.
 */
import { readdirSync, readFileSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { cgroupSupport, WorkerCgroup } from '../../sandbox/cgroup.js';

export interface Budget {
  /** The cgroup.procs file the harness joins. */
  procs: string;
  /** OOM kills in the budget so far. */
  oomKills(): number;
  /** Removes the cgroup (and any left inside it); the processes in it must be gone. */
  remove(): void;
}

export function budgetSupport(): { ok: boolean; why: string } {
  const s = cgroupSupport();
  return s.memory ? { ok: true, why: '' } : { ok: false, why: `no memory budget: needs ${s.why}` };
}

function removeTree(dir: string): void {
  let entries: string[] = [];
  try {
    entries = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of entries) {
    const child = join(dir, name);
    try {
      if (statSync(child).isDirectory()) removeTree(child);
    } catch {
      // gone already
    }
  }
  for (let i = 0; i < 50; i++) {
    try {
      rmdirSync(dir);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
    }
  }
}

export function makeBudget(name: string, memoryMb: number): Budget | undefined {
  if (!budgetSupport().ok) return undefined;
  let cgroup: WorkerCgroup;
  try {
    cgroup = new WorkerCgroup(name, { memoryMb });
  } catch {
    return undefined;
  }
  const procs = cgroup.procsFiles()[0];
  if (!procs) return undefined;
  const dir = procs.slice(0, -'/cgroup.procs'.length);
  return {
    procs,
    oomKills() {
      try {
        return Number(/oom_kill (\d+)/.exec(readFileSync(join(dir, 'memory.oom_control'), 'utf8'))?.[1] ?? 0);
      } catch {
        return 0;
      }
    },
    remove() {
      removeTree(dir);
    },
  };
}
