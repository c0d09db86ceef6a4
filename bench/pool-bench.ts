/**
 * isolane against its peers, side by side, in one run: `npm run bench [-- --quick | --duration <ms> | --json]`.
 *
 * A pool is started for every contender at each pool size (1 worker, os.availableParallelism()
 * workers) and warmed up; then a few rounds visit the pools in turn (one busy at a time), each pool
 * running both workloads sequentially (round-trip latency) and with many tasks in flight
 * (throughput); then every pool is closed. No assertion is made on any time: this is a benchmark,
 * not a test.
 */
import { readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CONTENDERS, type Contender, type Runner } from './contenders.js';
import {
  cpuTaskMs,
  guard,
  median,
  sequential,
  summarize,
  type Task,
  throughput,
  touch,
  type WarmUpPlan,
  warmUp,
} from './measure.js';
import {
  computeRatios,
  type LifecycleRow,
  type Machine,
  type Report,
  type ResultRow,
  renderHeader,
  renderTables,
  rounded,
  type Settings,
  WORKLOADS,
  type Workload,
} from './report.js';
import { CPU_ITERATIONS } from './workload.cjs';

const DEFAULT_DURATION_MS = 750;
const DEFAULT_ROUNDS = 3;
const QUICK_DURATION_MS = 100;
const QUICK_ROUNDS = 1;

const USAGE = `usage: npm run bench -- [options]
       node dist/bench/pool-bench.js [options]

Runs a tiny task (x => x + 1) and a ~1 ms CPU task on isolane (inline, thread, process) and on
Piscina, Tinypool, workerpool and Poolifier, with 1 worker and with os.availableParallelism()
workers; measures the sequential round trip (p50, p99) and the throughput with many tasks in flight.

A cell is one contender, workload and pool size; it has two measures (sequential, throughput).

options:
  --duration <ms>  time per measure of each cell, split evenly over the rounds (default ${DEFAULT_DURATION_MS})
  --rounds <n>     rounds, each visiting every pool in turn, from 1 to 20 (default ${DEFAULT_ROUNDS})
  --quick          a smoke test: --duration ${QUICK_DURATION_MS} --rounds ${QUICK_ROUNDS} unless given
  --json           print the results as JSON instead of tables
  --only <text>    run only the contenders whose name contains <text> (e.g. 'piscina', 'process');
                   the isolane rows they are compared with run too
  -h, --help       print this help and exit`;

/**
 * Tasks kept in flight for the throughput measure. For the CPU task a few per worker are enough to
 * keep every worker busy, and a small window drains fast at the end of each measure.
 */
const IN_FLIGHT: Record<Workload, number> = { tiny: 1_000, cpu: 32 };
const WARM_UP: WarmUpPlan = {
  tinySequential: 300,
  tinyBurst: 1_000,
  tinyBursts: 2,
  cpuSequential: 20,
  cpuBurstPerWorker: 10,
};
/** --quick: still a few hundred tasks of each kind, but less of everything. */
const QUICK_WARM_UP: WarmUpPlan = {
  tinySequential: 200,
  tinyBurst: 1_000,
  tinyBursts: 1,
  cpuSequential: 10,
  cpuBurstPerWorker: 5,
};
/** A pool that takes longer than this to start or stop is reported as failed. */
const LIFECYCLE_TIMEOUT_MS = 30_000;
/** How long the process may stay alive after the last pool was closed before it is reported as stuck. */
const EXIT_WATCHDOG_MS = 10_000;

interface Options {
  json: boolean;
  quick: boolean;
  durationMs: number;
  rounds: number;
  warmUp: WarmUpPlan;
  contenders: readonly Contender[];
}

class UsageError extends Error {}

function parseOptions(argv: string[]): Options | 'help' {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      duration: { type: 'string' },
      rounds: { type: 'string' },
      only: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (values.help) return 'help';
  const durationMs =
    values.duration === undefined
      ? values.quick
        ? QUICK_DURATION_MS
        : DEFAULT_DURATION_MS
      : wholeNumber('--duration', values.duration, 10, 600_000, 'milliseconds');
  const rounds =
    values.rounds === undefined
      ? values.quick
        ? QUICK_ROUNDS
        : DEFAULT_ROUNDS
      : wholeNumber('--rounds', values.rounds, 1, 20, 'rounds');
  let contenders = CONTENDERS;
  if (values.only !== undefined) {
    const only = values.only.toLowerCase();
    const picked = CONTENDERS.filter((c) => c.name.toLowerCase().includes(only));
    if (picked.length === 0) {
      throw new UsageError(
        `--only '${values.only}' matches no contender; they are: ${CONTENDERS.map((c) => c.name).join(', ')}`,
      );
    }
    const bases = CONTENDERS.filter((c) => c.baseline && picked.some((p) => p.tier === c.tier));
    contenders = CONTENDERS.filter((c) => picked.includes(c) || bases.includes(c));
  }
  const warmUp = values.quick ? QUICK_WARM_UP : WARM_UP;
  return { json: values.json, quick: values.quick, durationMs, rounds, warmUp, contenders };
}

function wholeNumber(flag: string, text: string, min: number, max: number, unit: string): number {
  const value = /^\s*\d+\s*$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(`${flag} must be a whole number of ${unit} from ${min} to ${max}; got '${text}'`);
  }
  return value;
}

function seconds(since: number): string {
  return `${((performance.now() - since) / 1000).toFixed(1)} s`;
}

function machine(): Machine {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    availableParallelism: os.availableParallelism(),
    platform: os.platform(),
    arch: os.arch(),
    node: process.version,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
  };
}

/** The installed version of a package: the package.json above its resolved entry point. */
function packageVersion(name: string): string {
  try {
    let dir = dirname(fileURLToPath(import.meta.resolve(name)));
    for (;;) {
      try {
        const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
          name?: string;
          version?: string;
        };
        if (pkg.name === name && pkg.version) return pkg.version;
      } catch {
        // no package.json here: keep going up
      }
      const parent = dirname(dir);
      if (parent === dir) return 'unknown';
      dir = parent;
    }
  } catch {
    return 'unknown';
  }
}

function versions(): Record<string, string> {
  const own = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return {
    isolane: own.version,
    ...Object.fromEntries(
      ['piscina', 'tinypool', 'workerpool', 'poolifier'].map((name) => [name, packageVersion(name)]),
    ),
  };
}

function describe(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

function progress(message: string): void {
  process.stderr.write(`${message}\n`);
}

/** One pool (one contender at one pool size), from start to close. */
interface Live {
  contender: Contender;
  workers: number;
  runner: Runner | undefined;
  startMs: number | null;
  closeMs: number | null;
  error: string | undefined;
  cells: Record<Workload, { histogram: RecordableHistogram; rates: number[] }>;
}

/** Starts a pool and warms it up; on failure the pool is marked failed (and stopped, if it started). */
async function startPool(c: Contender, workers: number, options: Options): Promise<Live> {
  const live: Live = {
    contender: c,
    workers,
    runner: undefined,
    startMs: null,
    closeMs: null,
    error: undefined,
    cells: {
      tiny: { histogram: createHistogram(), rates: [] },
      cpu: { histogram: createHistogram(), rates: [] },
    },
  };
  try {
    const t0 = performance.now();
    const runner = await guard(c.start(workers), LIFECYCLE_TIMEOUT_MS, 'starting the pool');
    live.runner = runner;
    const first = await guard(runner.tiny(41), LIFECYCLE_TIMEOUT_MS, 'the first task', runner.failed);
    live.startMs = performance.now() - t0;
    if (first !== 42) throw new Error(`tiny(41) returned ${String(first)}, expected 42`);
    await guard(warmUp(runner, workers, options.warmUp), LIFECYCLE_TIMEOUT_MS, 'the warm-up', runner.failed);
  } catch (err) {
    await failPool(live, err);
  }
  return live;
}

/** One round of every measure of this pool: `sliceMs` for each. */
async function measureRound(live: Live, sliceMs: number): Promise<void> {
  const runner = live.runner;
  if (!runner || live.error) return;
  // Generous: a measure takes `sliceMs` plus draining what is still in flight.
  const limit = 10 * sliceMs + 30_000;
  const tasks: Record<Workload, [Task, number]> = {
    tiny: [runner.tiny, 41],
    cpu: [runner.cpu, CPU_ITERATIONS],
  };
  try {
    await guard(touch(runner), limit, 'the re-warm', runner.failed);
    for (const workload of WORKLOADS) {
      const [task, input] = tasks[workload];
      const cell = live.cells[workload];
      await guard(
        sequential(task, input, sliceMs, cell.histogram),
        limit,
        `${workload}: sequential`,
        runner.failed,
      );
      cell.rates.push(
        await guard(
          throughput(task, input, IN_FLIGHT[workload], sliceMs),
          limit,
          `${workload}: throughput`,
          runner.failed,
        ),
      );
    }
  } catch (err) {
    await failPool(live, err);
  }
}

async function closePool(live: Live, force: boolean): Promise<void> {
  const runner = live.runner;
  if (!runner) return;
  live.runner = undefined;
  const t0 = performance.now();
  try {
    await guard(runner.close(force), LIFECYCLE_TIMEOUT_MS, 'closing the pool');
    if (!force) live.closeMs = performance.now() - t0;
  } catch (err) {
    live.error = live.error ? `${live.error}; then ${describe(err)}` : describe(err);
  }
}

/** Records the error and stops the pool at once: its results are dropped. */
async function failPool(live: Live, err: unknown): Promise<void> {
  live.error = describe(err);
  progress(`  ${live.contender.name}, ${workersLabel(live.workers)}: FAILED: ${live.error}`);
  await closePool(live, true);
}

function results(live: Live): ResultRow[] {
  const c = live.contender;
  return WORKLOADS.map((workload) => {
    const cell = live.cells[workload];
    const ok = live.error === undefined && cell.rates.length > 0;
    return {
      contender: c.name,
      id: c.id,
      library: c.library,
      tier: c.tier,
      workload,
      workers: live.workers,
      sequential: ok ? summarize(cell.histogram) : null,
      throughput: ok
        ? { tasksPerSec: median(cell.rates), rounds: cell.rates, inFlight: IN_FLIGHT[workload] }
        : null,
      ...(live.error ? { error: live.error } : {}),
    };
  });
}

function lifecycleRow(live: Live): LifecycleRow {
  return {
    contender: live.contender.name,
    tier: live.contender.tier,
    workers: live.workers,
    startMs: live.startMs,
    closeMs: live.closeMs,
    ...(live.error ? { error: live.error } : {}),
  };
}

function workersLabel(workers: number): string {
  return workers === 1 ? '1 worker' : `${workers} workers`;
}

/** `items` rotated left by `by`, so that each round runs the contenders from a different start. */
function rotate<T>(items: readonly T[], by: number): T[] {
  const k = items.length === 0 ? 0 : by % items.length;
  return [...items.slice(k), ...items.slice(0, k)];
}

/** The machine's CPU time so far, in ticks: steal (taken by the hypervisor) and total (Linux only). */
function cpuTicks(): { steal: number; total: number } | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
    const fields = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already in user.
    const total = fields.slice(0, 8).reduce((a, b) => a + b, 0);
    return { steal: fields[7] ?? 0, total };
  } catch {
    return undefined;
  }
}

/** Live child processes of this process (Linux; elsewhere the check is skipped). */
function childPids(): number[] | undefined {
  if (process.platform !== 'linux') return undefined;
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[1]) === process.pid && fields[0] !== 'Z') pids.push(Number(entry));
    } catch {
      // it ended while we looked
    }
  }
  return pids;
}

/** Waits a moment for stopped workers to be reaped, then reports any child process still alive. */
async function checkNoChildren(): Promise<boolean> {
  for (let i = 0; i < 20; i++) {
    const pids = childPids();
    if (pids === undefined || pids.length === 0) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  progress(
    `pool-bench: child processes still running after every pool was closed: ${childPids()?.join(', ')}`,
  );
  return false;
}

async function main(argv: string[]): Promise<number> {
  let options: Options | 'help';
  try {
    options = parseOptions(argv);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`pool-bench: ${message}\n\n${USAGE}\n`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }

  const workerCounts = [...new Set([1, os.availableParallelism()])];
  const settings: Settings = {
    durationMs: options.durationMs,
    quick: options.quick,
    rounds: options.rounds,
    workerCounts,
    inFlight: IN_FLIGHT,
    cpuIterations: CPU_ITERATIONS,
    cpuTaskMs: cpuTaskMs(),
    warmUp: options.warmUp,
  };
  const head = { machine: machine(), versions: versions(), settings };
  if (!options.json) process.stdout.write(`${renderHeader(head)}\n\n`);

  // Each worker thread's stdout and stderr is piped into this process's (adding listeners to them),
  // and so is each of Tinypool's child processes'. With every pool alive at once that is more than
  // the default limit of 10: Node's own pipes step around it, but Tinypool's plain pipe() then
  // prints a (false) memory-leak warning.
  const maxThreads = workerCounts.reduce((a, b) => a + b, 0) * options.contenders.length;
  for (const stream of [process.stdout, process.stderr]) {
    stream.setMaxListeners(Math.max(stream.getMaxListeners(), maxThreads + 10));
  }

  const rows: ResultRow[] = [];
  const lifecycle: LifecycleRow[] = [];
  const began = performance.now();
  const ticks0 = cpuTicks();
  const sliceMs = Math.max(1, Math.round(options.durationMs / options.rounds));
  // Every pool (every contender at every size) is started and warmed up first. Then each round
  // visits the pools in turn, one busy at a time while the others sit idle (an idle pool costs no
  // CPU), from a different starting point each round, so that a slow spell of the machine is shared
  // out between contenders and sizes instead of landing on one of them. Then they are all closed.
  const t0 = performance.now();
  const live: Live[] = [];
  for (const workers of workerCounts) {
    for (const c of options.contenders) live.push(await startPool(c, workers, options));
  }
  progress(`started ${live.length} pools (${seconds(t0)})`);
  for (let round = 0; round < options.rounds; round++) {
    const t1 = performance.now();
    for (const l of rotate(live, Math.round((round * live.length) / options.rounds))) {
      await measureRound(l, sliceMs);
    }
    progress(`round ${round + 1}/${options.rounds} (${seconds(t1)})`);
  }
  for (const l of live) await closePool(l, false);
  for (const l of live) {
    rows.push(...results(l));
    lifecycle.push(lifecycleRow(l));
  }
  const ticks1 = cpuTicks();
  const run = {
    seconds: Number(((performance.now() - began) / 1000).toFixed(1)),
    cpuStealPercent:
      ticks0 && ticks1 && ticks1.total > ticks0.total
        ? Number(((100 * (ticks1.steal - ticks0.steal)) / (ticks1.total - ticks0.total)).toFixed(1))
        : null,
  };
  progress(`done in ${run.seconds} s`);

  const report: Report = {
    ...head,
    run,
    results: rows,
    ratios: computeRatios(options.contenders, rows),
    lifecycle,
  };
  if (options.json) process.stdout.write(`${JSON.stringify(rounded(report), null, 2)}\n`);
  else process.stdout.write(`${renderTables(report, options.contenders)}\n`);

  const clean = await checkNoChildren();
  return lifecycle.some((l) => l.error) || !clean ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
// Every pool has been closed, so the process should now exit by itself. If something still holds
// the event loop open (a worker, a child, a handle a pool forgot), say what, and exit anyway.
setTimeout(() => {
  progress(
    `pool-bench: still running ${EXIT_WATCHDOG_MS / 1000} s after the last pool was closed; ` +
      `active resources: ${process.getActiveResourcesInfo().join(', ')}`,
  );
  process.exit(1);
}, EXIT_WATCHDOG_MS).unref();
