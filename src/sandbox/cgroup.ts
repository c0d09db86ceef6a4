/**
 * Per-worker cgroups (v1 memory and pids controllers, or the unified v2 hierarchy) for memory and
 * process limits. A cgroup is made under the caller's own cgroup, the worker joins it before any
 * tenant code runs (see launch.ts), and it is removed when the worker has exited.
 */
import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface CgroupLimits {
  memoryMb?: number;
  processes?: number;
  /** Not enforced here (RLIMIT_CPU does that): accounted, so that a worker killed at the limit can be told apart. */
  cpuSeconds?: number;
  /** A CPU cgroup of its own with the default weight: under contention each worker gets an equal share, however many threads it spins. */
  cpuShare?: boolean;
}

interface Controller {
  name: 'memory' | 'pids' | 'cpuacct' | 'cpu';
  /** The caller's own cgroup folder in this controller's hierarchy. */
  base: string;
}

function ownCgroup(controller: string): string | undefined {
  try {
    for (const line of readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n')) {
      const [, controllers, path] = line.split(':') as [string, string, string];
      if (controllers.split(',').includes(controller)) return join('/sys/fs/cgroup', controller, path);
    }
  } catch {
    // no /proc/self/cgroup
  }
  return undefined;
}

/** Whether cgroups can be made in `dir`; probed once per folder, not at every worker start. */
const writableCache = new Map<string, boolean>();

function writable(dir: string): boolean {
  let known = writableCache.get(dir);
  if (known === undefined) {
    known = probeWritable(dir);
    writableCache.set(dir, known);
  }
  return known;
}

function probeWritable(dir: string): boolean {
  const probe = join(dir, `isolane-probe-${process.pid}`);
  try {
    mkdirSync(probe);
    rmdirSync(probe);
    return true;
  } catch {
    return false;
  }
}

/** Where memory and pids cgroups can be made, or why not. */
export function cgroupSupport(): { memory?: string; pids?: string; why: string } {
  const memory = ownCgroup('memory');
  const pids = ownCgroup('pids');
  const out: { memory?: string; pids?: string; why: string } = { why: '' };
  if (memory && existsSync(join(memory, 'memory.limit_in_bytes')) && writable(memory)) out.memory = memory;
  if (pids && existsSync(pids) && writable(pids)) out.pids = pids;
  if (!out.memory || !out.pids) {
    out.why =
      'a writable cgroup v1 memory or pids hierarchy (run as root with /sys/fs/cgroup mounted read-write)';
  }
  return out;
}

/** A worker's cgroups: the folders it joins (their cgroup.procs files) and how to read and remove them. */
export class WorkerCgroup {
  private readonly dirs: Controller[] = [];

  constructor(name: string, limits: CgroupLimits) {
    const support = cgroupSupport();
    if (limits.memoryMb !== undefined && support.memory) {
      const dir = join(support.memory, name);
      mkdirSync(dir, { recursive: true });
      const bytes = String(limits.memoryMb * 1024 * 1024);
      writeFileSync(join(dir, 'memory.limit_in_bytes'), bytes);
      try {
        writeFileSync(join(dir, 'memory.memsw.limit_in_bytes'), bytes); // no swap either, where accounted
      } catch {
        // swap accounting is off
      }
      this.dirs.push({ name: 'memory', base: dir });
    }
    if (limits.processes !== undefined && support.pids) {
      const dir = join(support.pids, name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'pids.max'), String(limits.processes));
      this.dirs.push({ name: 'pids', base: dir });
    }
    const cpu = ownCgroup('cpu');
    if (limits.cpuShare && cpu && existsSync(join(cpu, 'cpu.shares')) && writable(cpu)) {
      const dir = join(cpu, name);
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'cpu.shares'), '1024');
      this.dirs.push({ name: 'cpu', base: dir });
    }
    const cpuacct = ownCgroup('cpuacct');
    if (limits.cpuSeconds !== undefined && cpuacct && writable(cpuacct)) {
      const dir = join(cpuacct, name);
      mkdirSync(dir, { recursive: true });
      this.dirs.push({ name: 'cpuacct', base: dir });
    }
  }

  /** Whether the worker's processes used at least this much CPU time. */
  cpuUsedAtLeast(seconds: number): boolean {
    const cpuacct = this.dirs.find((d) => d.name === 'cpuacct');
    if (!cpuacct) return false;
    try {
      return Number(readFileSync(join(cpuacct.base, 'cpuacct.usage'), 'utf8')) >= seconds * 1e9 * 0.98;
    } catch {
      return false;
    }
  }

  /** The cgroup.procs files the worker writes its pid to before exec-ing anything else. */
  procsFiles(): string[] {
    return this.dirs.map((d) => join(d.base, 'cgroup.procs'));
  }

  /** Whether the kernel killed a process of this cgroup for exceeding its memory limit. */
  memoryExceeded(): boolean {
    const memory = this.dirs.find((d) => d.name === 'memory');
    if (!memory) return false;
    try {
      const control = readFileSync(join(memory.base, 'memory.oom_control'), 'utf8');
      const kills = /oom_kill (\d+)/.exec(control);
      if (kills && Number(kills[1]) > 0) return true;
      return Number(readFileSync(join(memory.base, 'memory.failcnt'), 'utf8')) > 0;
    } catch {
      return false;
    }
  }

  /**
   * Removes the folders. The kernel frees a cgroup a moment after its last process is reaped, and
   * the worker at the end of a launch chain may die a little after the chain's head: what cannot be
   * removed yet is retried every 20 ms for up to 10 s, without blocking the event loop.
   */
  remove(): void {
    let left = this.dirs.map((d) => d.base);
    const attempt = (tries: number) => {
      left = left.filter((dir) => {
        try {
          rmdirSync(dir);
          return false;
        } catch (err) {
          return (err as NodeJS.ErrnoException).code !== 'ENOENT';
        }
      });
      if (left.length > 0 && tries < 500) setTimeout(() => attempt(tries + 1), 20);
    };
    attempt(0);
  }
}
