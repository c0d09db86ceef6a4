/**
 * Runs the escape lab: for each level, a harness process (in its own process group and memory
 * budget) runs the probes; a probe that takes the harness down is recorded as such and the rest
 * run in a new harness. After each harness, its process group is killed and waited for, its
 * budget removed and the victim's files swept, whatever happened.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { onPath } from '../../sandbox/options.js';
import { describeMachine, type Machine } from '../machine.js';
import { type Bounds, defaultBounds, HOG_THRESHOLD } from './bounds.js';
import { type Budget, budgetSupport, makeBudget } from './budget.js';
import { LEVELS, type LevelId } from './levels.js';
import type { HarnessConfig, HarnessMessage, Tenant } from './messages.js';
import { PROBE_IDS, PROBES, type ProbeId } from './probes.js';
import { ENV_NAME, newSecret } from './secrets.js';
import { type HostDeath, hostDown, judge, type ProbeOutcome, type Verdict } from './verdict.js';

export const ESCAPE_SCHEMA_VERSION = 1;

export interface EscapeOptions {
  levels: readonly LevelId[];
  probes: readonly ProbeId[];
  quick: boolean;
}

export interface Cell {
  level: LevelId;
  probe: ProbeId;
  verdict: Verdict;
  short: string;
  summary: string;
  /** What the harness saw (absent when the harness died first, or the level did not run). */
  outcome?: ProbeOutcome;
  /** The process that runs the pool died during this probe. */
  hostDeath?: HostDeath;
  ms: number;
}

export interface LevelReport {
  id: LevelId;
  title: string;
  options: unknown;
  ran: boolean;
  /** Why it did not run, or what went wrong. */
  note?: string;
  hostPid?: number;
  victim?: Tenant;
  attacker?: Tenant;
  /** Secrets the victim could not plant at this level, and why. */
  notPlanted?: Record<string, string>;
  /** Harness processes it took (more than one when a probe took one down). */
  harnesses: number;
  /** Processes of the level's process groups still alive after cleanup (should be 0). */
  leftovers: number;
}

export interface EscapeReport {
  schemaVersion: number;
  kind: 'isolane-escape';
  createdAt: string;
  machine: Machine;
  plan: {
    /** Names this run's files, cgroups and the mark in the environment of every process a probe starts. */
    runId: string;
    quick: boolean;
    levels: LevelId[];
    probes: ProbeId[];
    bounds: Bounds;
    hogThreshold: typeof HOG_THRESHOLD;
    /** The memory every level may use (a cgroup), below the memory bomb's cap. */
    hostBudget: { mb: number; enforced: boolean; why?: string };
    user: { uid: number };
  };
  probes: { id: ProbeId; title: string; tries: string }[];
  levels: LevelReport[];
  cells: Cell[];
  bar: {
    /** With tenancy 'dedicated', a per-tenant uid, namespaces and limits every probe is blocked. */
    top: { level: LevelId; met: boolean | null; notBlocked: ProbeId[] };
    /** At the thread level the memory, environment and fd probes succeed. */
    thread: { level: LevelId; met: boolean | null; notAllowed: ProbeId[] };
  };
  durationMs: number;
}

export type Progress = (done: number, total: number, label: string) => void;

/** Generous per-probe allowances for the harness watchdog (ms). */
function allowanceMs(probe: ProbeId, b: Bounds): number {
  switch (probe) {
    case 'cpu-hog':
      return b.baselineMs + b.hogMs + 20_000;
    case 'memory-bomb':
      return 45_000;
    case 'fork-bomb':
      return b.forkMaxMs + 15_000;
    case 'memory-self':
    case 'memory-victim':
    case 'memory-write':
      return b.scanMs + 15_000;
    default:
      return 15_000;
  }
}

const HARNESS = fileURLToPath(
  new URL(`./harness${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url),
);

/** The parent's loader flags (tsx), without the test runner's and inspector's. */
function execArgv(): string[] {
  return process.execArgv.filter((a) => !/^--(test|inspect|debug)/.test(a));
}

/** Live (not zombie) processes whose process group is `pgid`. */
export function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] !== 'Z' && Number(fields[2]) === pgid) members.push(Number(entry));
    } catch {
      // it ended while we looked
    }
  }
  return members;
}

/** Kills a process group and waits (bounded) until none of it is left; returns how many remain. */
async function killGroup(pgid: number): Promise<number> {
  const deadline = performance.now() + 5_000;
  for (;;) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // no such group: nothing left
    }
    const left = groupMembers(pgid).length;
    if (left === 0 || performance.now() > deadline) return left;
    await sleep(25);
  }
}

function sweepFiles(runId: string): void {
  const base = tmpdir();
  try {
    for (const name of readdirSync(base)) {
      if (name.startsWith(`isolane-escape-${runId}-`))
        rmSync(join(base, name), { recursive: true, force: true });
    }
  } catch {
    // nothing to sweep
  }
}

interface HarnessRun {
  ready?: Extract<HarnessMessage, { t: 'ready' }>;
  unavailable?: string;
  outcomes: { outcome: ProbeOutcome; ms: number }[];
  failed: { probe: ProbeId; error: string; ms: number }[];
  /** The probe that was running when the harness ended without saying done. */
  fatal?: { probe: ProbeId; death: HostDeath; ms: number };
  done: boolean;
  timedOut: boolean;
  leftovers: number;
  stderrTail: string;
}

async function runHarness(
  config: HarnessConfig,
  envSecret: string,
  budget: Budget | undefined,
  onMessage: (msg: HarnessMessage) => void,
): Promise<HarnessRun> {
  const result: HarnessRun = {
    outcomes: [],
    failed: [],
    done: false,
    timedOut: false,
    leftovers: 0,
    stderrTail: '',
  };
  const node = [process.execPath, ...execArgv(), HARNESS, JSON.stringify(config)];
  // No core files, whatever a probe does.
  const [command, ...args] = onPath('prlimit') ? ['prlimit', '--core=0:0', '--', ...node] : node;
  const child: ChildProcess = spawn(command!, args, {
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    env: { ...process.env, [ENV_NAME]: envSecret },
  });
  const pgid = child.pid;
  let current: { probe: ProbeId; started: number } | undefined;
  child.stderr?.on('data', (chunk: Buffer) => {
    result.stderrTail = (result.stderrTail + chunk.toString('latin1')).slice(-4096);
  });
  child.on('message', (msg: HarnessMessage) => {
    switch (msg.t) {
      case 'ready':
        result.ready = msg;
        break;
      case 'unavailable':
        result.unavailable = msg.reason;
        break;
      case 'start':
        current = { probe: msg.probe, started: performance.now() };
        break;
      case 'outcome':
        result.outcomes.push({ outcome: msg.outcome, ms: msg.ms });
        current = undefined;
        break;
      case 'failed':
        result.failed.push({ probe: msg.probe, error: msg.error, ms: msg.ms });
        current = undefined;
        break;
      case 'done':
        result.done = true;
        break;
    }
    onMessage(msg);
  });
  const limitMs = 20_000 + config.probes.reduce((n, p) => n + allowanceMs(p, config.bounds), 0);
  const exit = await new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    const watchdog = setTimeout(() => {
      result.timedOut = true;
      if (pgid) {
        try {
          process.kill(-pgid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }, limitMs);
    child.once('error', () => {
      clearTimeout(watchdog);
      resolve({ code: null, signal: null });
    });
    child.once('close', (code, signal) => {
      clearTimeout(watchdog);
      resolve({ code, signal });
    });
  });
  if (pgid) result.leftovers = await killGroup(pgid);
  if (current && !result.done) {
    result.fatal = {
      probe: current.probe,
      ms: Math.round(performance.now() - current.started),
      death: {
        exitCode: exit.code,
        signal: exit.signal,
        budgetExceeded: (budget?.oomKills() ?? 0) > 0,
        ...(result.stderrTail ? { stderrTail: result.stderrTail.slice(-600) } : {}),
      },
    };
  }
  return result;
}

/** The lines of a stderr tail that say what went wrong (an error and where it was thrown). */
function errorLines(tail: string): string {
  const lines = tail.trim().split('\n');
  const at = lines.findIndex((l) => /Error|error:/.test(l));
  return (at >= 0 ? lines.slice(at, at + 3) : lines.slice(-3)).map((l) => l.trim()).join(' | ');
}

function emptyCell(level: LevelId, probe: ProbeId, verdict: Verdict, short: string, summary: string): Cell {
  return { level, probe, verdict, short, summary, ms: 0 };
}

export async function runEscape(options: EscapeOptions, progress?: Progress): Promise<EscapeReport> {
  const started = performance.now();
  const bounds = defaultBounds(options.quick, availableParallelism());
  const runId = `${process.pid}-${Date.now().toString(36)}`;
  const probes = PROBE_IDS.filter((p) => options.probes.includes(p));
  const support = budgetSupport();
  const envSecret = newSecret('env').toString('latin1');
  const cells: Cell[] = [];
  const levels: LevelReport[] = [];
  const total = options.levels.length * probes.length;
  let finished = 0;

  for (const levelId of options.levels) {
    const level = LEVELS[levelId];
    const report: LevelReport = {
      id: levelId,
      title: level.title,
      options: level.options,
      ran: false,
      harnesses: 0,
      leftovers: 0,
    };
    levels.push(report);
    let remaining = [...probes];
    const note = (cell: Cell) => {
      cells.push(cell);
      finished++;
      progress?.(finished, total, `${level.short}: ${cell.probe}`);
    };
    // One harness after another until every probe has a verdict; each probe starts at most once.
    while (remaining.length > 0 && report.harnesses < probes.length + 1) {
      report.harnesses++;
      const budget = makeBudget(
        `isolane-escape-${runId}-${levelId}-${report.harnesses}`,
        bounds.hostBudgetMb,
      );
      const config: HarnessConfig = {
        runId,
        level: levelId,
        probes: remaining,
        bounds,
        ...(budget ? { budgetProcs: budget.procs } : {}),
      };
      let run: HarnessRun;
      try {
        run = await runHarness(config, envSecret, budget, (msg) => {
          if (msg.t === 'start') progress?.(finished, total, `${level.short}: ${msg.probe}`);
        });
      } finally {
        sweepFiles(runId);
        budget?.remove();
      }
      report.leftovers += run.leftovers;
      if (run.ready) {
        report.ran = true;
        report.hostPid ??= run.ready.hostPid;
        report.victim ??= run.ready.victim;
        report.attacker ??= run.ready.attacker;
        report.notPlanted ??= run.ready.notPlanted;
      }
      for (const { outcome, ms } of run.outcomes) {
        const j = judge(outcome, bounds);
        note({ level: levelId, probe: outcome.probe, ...j, outcome, ms });
      }
      for (const f of run.failed)
        note({ ...emptyCell(levelId, f.probe, 'error', 'lab error', f.error), ms: f.ms });
      if (run.fatal) {
        const j = run.timedOut
          ? {
              verdict: 'error' as const,
              short: 'timed out',
              summary: 'the harness ran past its time and was killed',
            }
          : hostDown(run.fatal.death);
        note({ level: levelId, probe: run.fatal.probe, ...j, hostDeath: run.fatal.death, ms: run.fatal.ms });
      }
      const judged = new Set(cells.filter((c) => c.level === levelId).map((c) => c.probe));
      remaining = remaining.filter((p) => !judged.has(p));
      if (run.unavailable || (!run.ready && !run.fatal)) {
        const why =
          run.unavailable ??
          `the harness ended before the tenants were up (${run.timedOut ? 'timed out' : 'exit'}): ${errorLines(run.stderrTail)}`;
        report.note = why;
        for (const p of remaining)
          note(
            emptyCell(
              levelId,
              p,
              run.unavailable ? 'skipped' : 'error',
              run.unavailable ? 'skipped' : 'lab error',
              why,
            ),
          );
        remaining = [];
      }
    }
    for (const p of remaining) note(emptyCell(levelId, p, 'error', 'lab error', 'no harness could run it'));
  }

  cells.sort(
    (a, b) =>
      options.levels.indexOf(a.level) - options.levels.indexOf(b.level) ||
      PROBE_IDS.indexOf(a.probe) - PROBE_IDS.indexOf(b.probe),
  );
  return {
    schemaVersion: ESCAPE_SCHEMA_VERSION,
    kind: 'isolane-escape',
    createdAt: new Date().toISOString(),
    machine: describeMachine(),
    plan: {
      runId,
      quick: options.quick,
      levels: [...options.levels],
      probes,
      bounds,
      hogThreshold: HOG_THRESHOLD,
      hostBudget: {
        mb: bounds.hostBudgetMb,
        enforced: support.ok,
        ...(support.ok ? {} : { why: support.why }),
      },
      user: { uid: process.getuid?.() ?? -1 },
    },
    probes: probes.map((p) => ({ id: p, title: PROBES[p].title, tries: PROBES[p].tries })),
    levels,
    cells,
    bar: bar(cells),
    durationMs: Math.round(performance.now() - started),
  };
}

/** The bar: everything blocked at the top level; memory, environment and fd readable at the thread level. */
export function bar(cells: Cell[]): EscapeReport['bar'] {
  // A level that was skipped (not root, say) is not run: its bar is null, neither met nor failed.
  const top = cells.filter((c) => c.level === 'process-limits' && c.verdict !== 'skipped');
  const thread = cells.filter((c) => c.level === 'thread' && c.verdict !== 'skipped');
  const mustSucceed: ProbeId[] = ['memory-self', 'memory-victim', 'memory-write', 'environ', 'fd'];
  const threadCells = thread.filter((c) => mustSucceed.includes(c.probe));
  return {
    top: {
      level: 'process-limits',
      met: top.length === 0 ? null : top.every((c) => c.verdict === 'blocked'),
      notBlocked: top.filter((c) => c.verdict !== 'blocked').map((c) => c.probe),
    },
    thread: {
      level: 'thread',
      met: threadCells.length === 0 ? null : threadCells.every((c) => c.verdict === 'allowed'),
      notAllowed: threadCells.filter((c) => c.verdict !== 'allowed').map((c) => c.probe),
    },
  };
}
