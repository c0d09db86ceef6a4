/**
 * isolane against its peers, side by side, in one run: `npm run bench [-- --quick | --duration <ms> | --json]`.
 *
 * A pool is started for every contender at each pool size (1 worker, os.availableParallelism()
 * workers) and warmed up; then a few rounds visit the pools in turn (one busy at a time), each pool
 * running each of its workloads sequentially (round-trip latency) and with many tasks in flight
 * (throughput, and the CPU time it costs on both sides); then every pool is closed. Raw baselines
 * (postMessage and IPC with no pool around them) run alongside, for the bar at the end. No
 * assertion is made on any time: this is a benchmark, not a test.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { createHistogram, performance, type RecordableHistogram } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CONTENDERS, type Contender, type Runner, type Streamer } from './contenders.js';
import { CPU_TIME_AVAILABLE, type CpuSnapshot, childPids, cpuSince, cpuSnapshot } from './cpu-time.js';
import {
  cpuTaskMs,
  guard,
  median,
  payload,
  sequential,
  summarize,
  TimeoutError,
  throughput,
  touch,
  type WarmUpPlan,
  type WorkloadTask,
  warmUp,
  workloadTasks,
} from './measure.js';
import {
  BAR_ROWS,
  computeBar,
  computeRatios,
  type LifecycleRow,
  type Machine,
  PAYLOAD_BYTES,
  type Report,
  type ResultRow,
  renderHeader,
  renderTables,
  rounded,
  type Settings,
  type Workload,
} from './report.js';
import { CPU_ITERATIONS } from './workload.cjs';

const DEFAULT_DURATION_MS = 750;
const DEFAULT_ROUNDS = 3;
const QUICK_DURATION_MS = 100;
const QUICK_ROUNDS = 1;

const USAGE = `usage: npm run bench -- [options]
       node dist/bench/pool-bench.js [options]

Runs a tiny task (x => x + 1), a ~1 ms CPU task, and a 4 KiB and a 1 MiB payload echoed back, on
isolane (inline; thread and process, over rings and over messages) and on Piscina, Tinypool,
workerpool and Poolifier, with 1 worker and with os.availableParallelism() workers; measures the
sequential round trip (p50, p99), the throughput with many tasks in flight, and the CPU time per
task on both sides. Raw postMessage and IPC baselines run alongside; the bar at the end compares.

A cell is one contender, workload and pool size; it has two measures (sequential, throughput).

options:
  --duration <ms>  time per measure of each cell, split evenly over the rounds (default ${DEFAULT_DURATION_MS});
                   the 1 MiB payload's measures get half of it (see the header)
  --rounds <n>     rounds, each visiting every pool in turn, from 1 to 20 (default ${DEFAULT_ROUNDS})
  --quick          a smoke test: --duration ${QUICK_DURATION_MS} --rounds ${QUICK_ROUNDS} unless given
  --json           print the results as JSON instead of tables
  --only <text>    run only the contenders whose name contains <text> (e.g. 'piscina', 'process');
                   the isolane rows they are compared with run too, and the raw baselines of their
                   tier that the bar reads
  -h, --help       print this help and exit`;

/**
 * Tasks kept in flight for the throughput measure. For the CPU task a few per worker are enough to
 * keep every worker busy, and a small window drains fast at the end of each measure; the 1 MiB
 * payload is held on both sides of every task in flight, so few of them.
 */
const IN_FLIGHT: Record<Workload, number> = { tiny: 1_000, cpu: 32, '4k': 256, '1m': 8 };
/**
 * The share of --duration each workload's measures get. The 1 MiB one gets less, which keeps the
 * whole run within a few minutes (each round visits some thirty pools); even so, each of its
 * measures runs a few hundred tasks.
 */
const MEASURE_SHARE: Record<Workload, number> = { tiny: 1, cpu: 1, '4k': 1, '1m': 0.5 };
const WARM_UP: WarmUpPlan = {
  tiny: { sequential: 300, burstPerWorker: 500, bursts: 2 },
  cpu: { sequential: 20, burstPerWorker: 10, bursts: 1 },
  '4k': { sequential: 100, burstPerWorker: 128, bursts: 1 },
  '1m': { sequential: 5, burstPerWorker: 4, bursts: 1 },
};
/** --quick: still a few hundred tasks of each kind, but less of everything. */
const QUICK_WARM_UP: WarmUpPlan = {
  tiny: { sequential: 200, burstPerWorker: 500, bursts: 1 },
  cpu: { sequential: 10, burstPerWorker: 5, bursts: 1 },
  '4k': { sequential: 50, burstPerWorker: 128, bursts: 1 },
  '1m': { sequential: 3, burstPerWorker: 4, bursts: 1 },
};
/** Tasks of the short re-warm before each workload's measures in each round. */
const TOUCH: Record<Workload, number> = { tiny: 100, cpu: 1, '4k': 20, '1m': 2 };
/** The one-way stream's warm-up, and its re-warm before each measure. */
const STREAM_WARM_UP_MS = { full: 100, quick: 50, touch: 10 };
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
    const tiers = new Set(picked.map((p) => p.tier));
    const pulled = CONTENDERS.filter(
      (c) => tiers.has(c.tier) && (c.baseline || (c.library === 'raw' && BAR_ROWS.has(c.id))),
    );
    contenders = CONTENDERS.filter((c) => picked.includes(c) || pulled.includes(c));
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

/** One workload of one pool: what its measures gathered, or why it failed. */
interface Cell {
  histogram: RecordableHistogram;
  rates: number[];
  /** Summed over the throughput measures; undefined where CPU time cannot be read. */
  cpu: { totalNs: number; callerNs: number; tasks: number } | undefined;
  error: string | undefined;
}

type Handle =
  | { kind: 'pool'; runner: Runner; tasks: Record<Workload, WorkloadTask> }
  | { kind: 'stream'; streamer: Streamer };

/** One pool (one contender at one pool size), from start to close. */
interface Live {
  contender: Contender;
  workers: number;
  handle: Handle | undefined;
  /** Set when the pool reported trouble of its own (not a task's): then the whole pool fails. */
  troubled: boolean;
  startMs: number | null;
  closeMs: number | null;
  /** Why the whole pool failed; a cell's own failure is in the cell. */
  error: string | undefined;
  /** Only the workloads it runs. */
  cells: Partial<Record<Workload, Cell>>;
}

/** The workloads a contender runs: a one-way stream is measured under the tiny task. */
function workloadsOf(c: Contender): readonly Workload[] {
  return c.kind === 'pool' ? c.workloads : ['tiny'];
}

function failedSignal(handle: Handle): Promise<never> {
  return handle.kind === 'pool' ? handle.runner.failed : handle.streamer.failed;
}

/**
 * Starts a pool and warms up each of its workloads. If the pool fails to start or to answer its
 * first task, it is marked failed (and stopped, if it started); if a workload's warm-up fails, only
 * that cell is.
 */
async function startPool(c: Contender, workers: number, options: Options): Promise<Live> {
  const live: Live = {
    contender: c,
    workers,
    handle: undefined,
    troubled: false,
    startMs: null,
    closeMs: null,
    error: undefined,
    cells: Object.fromEntries(
      workloadsOf(c).map((w) => [
        w,
        { histogram: createHistogram(), rates: [], cpu: undefined, error: undefined } satisfies Cell,
      ]),
    ),
  };
  const adopt = (handle: Handle) => {
    live.handle = handle;
    failedSignal(handle).catch(() => {
      live.troubled = true;
    });
  };
  try {
    const t0 = performance.now();
    if (c.kind === 'pool') {
      const runner = await guard(c.start(workers), LIFECYCLE_TIMEOUT_MS, 'starting the pool');
      // Allocated once per pool: as many distinct payloads as tasks in flight, sent in turn. Sending
      // one and the same object every time would flatter batching pools: a structured clone of a
      // batch copies an object that appears in it several times only once.
      const copies = (w: '4k' | '1m') =>
        Array.from({ length: IN_FLIGHT[w] }, () => payload(PAYLOAD_BYTES[w]));
      const payloads = { '4k': copies('4k'), '1m': copies('1m') };
      adopt({ kind: 'pool', runner, tasks: workloadTasks(runner, payloads) });
      const first = await guard(runner.tiny(41), LIFECYCLE_TIMEOUT_MS, 'the first task', runner.failed);
      live.startMs = performance.now() - t0;
      if (first !== 42) throw new Error(`tiny(41) returned ${String(first)}, expected 42`);
    } else {
      const streamer = await guard(c.start(workers), LIFECYCLE_TIMEOUT_MS, 'starting the workers');
      adopt({ kind: 'stream', streamer });
      await guard(streamer.stream(0), LIFECYCLE_TIMEOUT_MS, 'the first message', streamer.failed);
      live.startMs = performance.now() - t0;
    }
  } catch (err) {
    await failPool(live, err);
    return live;
  }
  for (const workload of workloadsOf(c)) {
    await inCell(live, workload, (handle) => {
      if (handle.kind === 'stream') {
        return handle.streamer.stream(options.quick ? STREAM_WARM_UP_MS.quick : STREAM_WARM_UP_MS.full);
      }
      return warmUp(handle.tasks[workload], workers, options.warmUp[workload]);
    });
  }
  return live;
}

/**
 * Runs one step of one cell, guarded. A failure fails the cell only, unless the pool is in trouble
 * (it reported an error of its own, or a step did not finish in time: tasks may be stuck): then
 * the whole pool fails and is stopped.
 */
async function inCell(
  live: Live,
  workload: Workload,
  step: (handle: Handle) => Promise<unknown>,
  limitMs = LIFECYCLE_TIMEOUT_MS,
  what = 'the warm-up',
): Promise<void> {
  const cell = live.cells[workload];
  const handle = live.handle;
  if (!cell || cell.error || !handle || live.error) return;
  try {
    await guard(step(handle), limitMs, `${workload}: ${what}`, failedSignal(handle));
  } catch (err) {
    if (live.troubled || err instanceof TimeoutError) {
      await failPool(live, err);
    } else {
      cell.error = describe(err);
      progress(`  ${live.contender.name}, ${workersLabel(live.workers)}, ${workload}: FAILED: ${cell.error}`);
    }
  }
}

/** Adds the CPU time spent since `before` to the cell's, for `tasks` more tasks. */
function addCpu(cell: Cell, before: CpuSnapshot | undefined, tasks: number): void {
  const spent = cpuSince(before);
  if (!spent) return;
  cell.cpu ??= { totalNs: 0, callerNs: 0, tasks: 0 };
  cell.cpu.totalNs += spent.totalNs;
  cell.cpu.callerNs += spent.callerNs;
  cell.cpu.tasks += tasks;
}

/** One workload's measures in one round: a re-warm, then `sliceMs` sequential and `sliceMs` throughput. */
async function measureCell(live: Live, workload: Workload, handle: Handle, sliceMs: number): Promise<void> {
  const cell = live.cells[workload]!;
  if (handle.kind === 'stream') {
    await handle.streamer.stream(STREAM_WARM_UP_MS.touch);
    const before = cpuSnapshot();
    const round = await handle.streamer.stream(sliceMs);
    addCpu(cell, before, round.messages);
    cell.rates.push(round.messages / round.seconds);
    return;
  }
  const w = handle.tasks[workload];
  await touch(w, TOUCH[workload]);
  await sequential(w.task, w.input, sliceMs, cell.histogram);
  const before = cpuSnapshot();
  const sample = await throughput(w.task, w.input, IN_FLIGHT[workload], sliceMs);
  addCpu(cell, before, sample.tasks);
  cell.rates.push(sample.rate);
}

/** One round of every measure of this pool. */
async function measureRound(live: Live, durationMs: number, rounds: number): Promise<void> {
  for (const workload of workloadsOf(live.contender)) {
    const sliceMs = Math.max(1, Math.round((durationMs * MEASURE_SHARE[workload]) / rounds));
    // Generous: the measures take 2 × `sliceMs` plus the re-warm and draining what is in flight.
    const limit = 20 * sliceMs + 30_000;
    await inCell(
      live,
      workload,
      (handle) => measureCell(live, workload, handle, sliceMs),
      limit,
      'measuring',
    );
  }
}

async function closePool(live: Live, force: boolean): Promise<void> {
  const handle = live.handle;
  if (!handle) return;
  live.handle = undefined;
  const t0 = performance.now();
  try {
    const close = handle.kind === 'pool' ? handle.runner.close(force) : handle.streamer.close(force);
    await guard(close, LIFECYCLE_TIMEOUT_MS, 'closing the pool');
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
  return workloadsOf(c).map((workload) => {
    const cell = live.cells[workload]!;
    const error = live.error ?? cell.error;
    const ok = error === undefined && cell.rates.length > 0;
    const cpu = ok && cell.cpu && cell.cpu.tasks > 0 ? cell.cpu : undefined;
    return {
      contender: c.name,
      id: c.id,
      library: c.library,
      tier: c.tier,
      kind: c.kind,
      workload,
      workers: live.workers,
      sequential: ok && c.kind === 'pool' ? summarize(cell.histogram) : null,
      throughput: ok
        ? {
            tasksPerSec: median(cell.rates),
            rounds: cell.rates,
            inFlight: c.kind === 'pool' ? IN_FLIGHT[workload] : null,
          }
        : null,
      cpu: cpu
        ? {
            totalUsPerTask: cpu.totalNs / cpu.tasks / 1000,
            callerUsPerTask: cpu.callerNs / cpu.tasks / 1000,
            tasks: cpu.tasks,
          }
        : null,
      ...(error ? { error } : {}),
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
    measureShare: MEASURE_SHARE,
    payloadBytes: PAYLOAD_BYTES,
    cpuIterations: CPU_ITERATIONS,
    cpuTaskMs: cpuTaskMs(),
    cpuTime: CPU_TIME_AVAILABLE,
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
      await measureRound(l, options.durationMs, options.rounds);
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
    bar: computeBar(rows, workerCounts),
    lifecycle,
  };
  if (options.json) process.stdout.write(`${JSON.stringify(rounded(report), null, 2)}\n`);
  else process.stdout.write(`${renderTables(report, options.contenders)}\n`);

  const clean = await checkNoChildren();
  // A peer may fail a workload it was not made for (binary payloads over a JSON channel): that is
  // reported, and is not the benchmark's failure; an isolane or raw row failing anything is.
  const ownFailed = rows.some((r) => r.error && (r.library === 'isolane' || r.library === 'raw'));
  return lifecycle.some((l) => l.error) || ownFailed || !clean ? 1 : 0;
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
