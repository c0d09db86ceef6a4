/** The benchmark's results as data (the `--json` shape) and as plain-text tables. */
import type { Contender, Library, Tier } from './contenders.js';
import type { SequentialResult, ThroughputResult } from './measure.js';

export type Workload = 'tiny' | 'cpu' | '4k' | '1m';
export const WORKLOADS: readonly Workload[] = ['tiny', 'cpu', '4k', '1m'];

/** The payload workloads' size: a Uint8Array of this many bytes goes to the worker and comes back. */
export const PAYLOAD_BYTES = { '4k': 4096, '1m': 1_048_576 } as const;

export const WORKLOAD_TITLES: Record<Workload, string> = {
  tiny: 'tiny task (x => x + 1)',
  cpu: 'CPU task (fixed sum of square roots, ~1 ms)',
  '4k': '4 KiB payload (a Uint8Array echoed back: 4 KiB each way)',
  '1m': '1 MiB payload (a Uint8Array echoed back: 1 MiB each way)',
};

export interface Machine {
  cpu: string;
  cores: number;
  availableParallelism: number;
  platform: string;
  arch: string;
  node: string;
  memoryGiB: number;
}

export interface Settings {
  /** How long each measure of each cell runs, in all (before `measureShare`). */
  durationMs: number;
  /** Rounds the duration is split into; each round visits every pool in turn. */
  rounds: number;
  quick: boolean;
  workerCounts: number[];
  inFlight: Record<Workload, number>;
  /** The share of `durationMs` each workload's measures get (the payload ones are slow and need less). */
  measureShare: Record<Workload, number>;
  payloadBytes: typeof PAYLOAD_BYTES;
  cpuIterations: number;
  /** The CPU task's median time in the benchmark's own thread. */
  cpuTaskMs: number;
  /** Whether CPU time per task is measured (Linux: /proc/PID/task/TID/schedstat). */
  cpuTime: boolean;
  warmUp: object;
}

/** CPU time per task during the throughput measure (per message, for a one-way stream). */
export interface CpuResult {
  /** Every thread of this process and of its child processes: both sides of the pool. */
  totalUsPerTask: number;
  /** The caller's (main) thread alone. */
  callerUsPerTask: number;
  /** Tasks (messages) the CPU time was divided by, over all rounds. */
  tasks: number;
}

export interface ResultRow {
  contender: string;
  id: string;
  library: Library;
  tier: Tier;
  /** 'stream': a one-way stream; its throughput is in messages per second and it has no latency. */
  kind: 'pool' | 'stream';
  workload: Workload;
  workers: number;
  sequential: SequentialResult | null;
  throughput: ThroughputResult | null;
  cpu: CpuResult | null;
  error?: string;
}

/** Each ratio is above 1 when isolane is the faster one (lower latency, higher throughput). */
export interface RatioRow {
  peer: string;
  tier: Tier;
  /** The isolane row it is compared with. */
  isolane: string;
  workload: Workload;
  workers: number;
  /** Peer p50 ÷ isolane p50. */
  sequentialP50: number | null;
  /** Peer p99 ÷ isolane p99. */
  sequentialP99: number | null;
  /** isolane tasks/s ÷ peer tasks/s. */
  throughput: number | null;
}

export interface LifecycleRow {
  contender: string;
  tier: Tier;
  workers: number;
  /** From creating the pool until its first task came back (after its ready signal, if it has one). */
  startMs: number | null;
  /** From asking the pool to stop until it said all its workers were gone. */
  closeMs: number | null;
  error?: string;
}

/** One line of the bar, at one pool size: a number from this run, its target, and whether it is met. */
export interface BarLine {
  id: string;
  label: string;
  workers: number;
  value: number | null;
  unit: 'ratio' | 'us';
  /** None for a line that is there for reference. */
  target: { atLeast: number } | { atMost: number } | null;
  met: boolean | null;
  /** The numbers it is computed from: tiny-task throughput (tasks/s, or messages/s) or p50 (µs), by row id. */
  inputs: Record<string, number | null>;
}

export interface Run {
  seconds: number;
  /** Share of the machine's CPU time the hypervisor gave to something else during the run (Linux). */
  cpuStealPercent: number | null;
}

export interface Report {
  machine: Machine;
  versions: Record<string, string>;
  settings: Settings;
  run: Run;
  results: ResultRow[];
  ratios: RatioRow[];
  bar: BarLine[];
  lifecycle: LifecycleRow[];
}

function ratio(numerator: number | undefined | null, denominator: number | undefined | null): number | null {
  if (numerator == null || denominator == null || !(denominator > 0)) return null;
  return numerator / denominator;
}

export function computeRatios(contenders: readonly Contender[], results: readonly ResultRow[]): RatioRow[] {
  const find = (id: string, workload: Workload, workers: number) =>
    results.find((r) => r.id === id && r.workload === workload && r.workers === workers);
  const ratios: RatioRow[] = [];
  for (const peer of contenders) {
    if (peer.library === 'isolane' || peer.library === 'raw') continue;
    const base = contenders.find((c) => c.baseline && c.tier === peer.tier);
    if (!base) continue;
    for (const r of results) {
      if (r.id !== peer.id) continue;
      const b = find(base.id, r.workload, r.workers);
      ratios.push({
        peer: peer.name,
        tier: peer.tier,
        isolane: base.name,
        workload: r.workload,
        workers: r.workers,
        sequentialP50: ratio(r.sequential?.p50Us, b?.sequential?.p50Us),
        sequentialP99: ratio(r.sequential?.p99Us, b?.sequential?.p99Us),
        throughput: ratio(b?.throughput?.tasksPerSec, r.throughput?.tasksPerSec),
      });
    }
  }
  return ratios;
}

/** The most a sequential round trip over the process ring may take, at p50, to count as "a few µs". */
export const FEW_US = 10;

interface BarSpec {
  id: string;
  label: string;
  target: BarLine['target'];
  /** Throughput of the first row ÷ the best throughput of the others (tiny task). */
  rates?: [string, ...string[]];
  /** The p50 of the first row (tiny task); the others are shown alongside. */
  p50?: [string, ...string[]];
}

/** The bar the issue sets, line by line; every number comes from the tiny task of this run. */
const BAR: readonly BarSpec[] = [
  {
    id: 'thread-vs-piscina',
    label: 'isolane thread ÷ best of piscina, piscina ctpw=64',
    target: { atLeast: 5 },
    rates: ['isolane-thread', 'piscina', 'piscina-ctpw64'],
  },
  {
    id: 'thread-vs-raw-one-way',
    label: 'isolane thread ÷ raw postMessage, one-way (tasks/s ÷ messages/s)',
    target: { atLeast: 0.5 },
    rates: ['isolane-thread', 'raw-thread-one-way'],
  },
  {
    id: 'thread-vs-raw-per-task',
    label: 'isolane thread ÷ raw postMessage, per task',
    target: null,
    rates: ['isolane-thread', 'raw-thread'],
  },
  {
    id: 'process-vs-tinypool',
    label: 'isolane process ÷ tinypool child_process',
    target: { atLeast: 5 },
    rates: ['isolane-process', 'tinypool-process'],
  },
  {
    id: 'process-vs-workerpool',
    label: 'isolane process ÷ workerpool process',
    target: { atLeast: 5 },
    rates: ['isolane-process', 'workerpool-process'],
  },
  {
    id: 'process-vs-thread',
    label: 'isolane process ÷ isolane thread (within 2×)',
    target: { atLeast: 0.5 },
    rates: ['isolane-process', 'isolane-thread'],
  },
  {
    id: 'process-vs-raw-ipc',
    label: 'isolane process ÷ raw IPC, per task',
    target: null,
    rates: ['isolane-process', 'raw-process'],
  },
  {
    id: 'process-sequential',
    label: 'isolane process, sequential round trip p50',
    target: { atMost: FEW_US },
    p50: ['isolane-process', 'isolane-thread'],
  },
];

/** The rows the bar reads: `--only` runs the raw ones among them with the tiers it picks. */
export const BAR_ROWS: ReadonlySet<string> = new Set(
  BAR.flatMap((b) => [...(b.rates ?? []), ...(b.p50 ?? [])]),
);

export function computeBar(results: readonly ResultRow[], workerCounts: readonly number[]): BarLine[] {
  const lines: BarLine[] = [];
  for (const workers of workerCounts) {
    const tiny = (id: string) =>
      results.find((r) => r.id === id && r.workload === 'tiny' && r.workers === workers);
    for (const spec of BAR) {
      const inputs: Record<string, number | null> = {};
      let value: number | null;
      if (spec.rates) {
        for (const id of spec.rates) inputs[id] = tiny(id)?.throughput?.tasksPerSec ?? null;
        const [subject, ...others] = spec.rates.map((id) => inputs[id]!);
        const known = others.filter((x): x is number => x !== null);
        value = known.length > 0 ? ratio(subject, Math.max(...known)) : null;
      } else {
        for (const id of spec.p50!) inputs[id] = tiny(id)?.sequential?.p50Us ?? null;
        value = inputs[spec.p50![0]] ?? null;
      }
      const t = spec.target;
      const met =
        t === null || value === null ? null : 'atLeast' in t ? value >= t.atLeast : value <= t.atMost;
      lines.push({
        id: spec.id,
        label: spec.label,
        workers,
        value,
        unit: spec.rates ? 'ratio' : 'us',
        target: t,
        met,
        inputs,
      });
    }
  }
  return lines;
}

/** Rounds the numbers of the report for printing as JSON. */
export function rounded(report: Report): Report {
  const round = (x: number | null, digits: number) => (x === null ? null : Number(x.toFixed(digits)));
  return {
    ...report,
    settings: { ...report.settings, cpuTaskMs: round(report.settings.cpuTaskMs, 3)! },
    results: report.results.map((r) => ({
      ...r,
      sequential: r.sequential && {
        ...r.sequential,
        p50Us: round(r.sequential.p50Us, 2)!,
        p99Us: round(r.sequential.p99Us, 2)!,
      },
      throughput: r.throughput && {
        ...r.throughput,
        tasksPerSec: Math.round(r.throughput.tasksPerSec),
        rounds: r.throughput.rounds.map(Math.round),
      },
      cpu: r.cpu && {
        ...r.cpu,
        totalUsPerTask: round(r.cpu.totalUsPerTask, 3)!,
        callerUsPerTask: round(r.cpu.callerUsPerTask, 3)!,
      },
    })),
    ratios: report.ratios.map((r) => ({
      ...r,
      sequentialP50: round(r.sequentialP50, 3),
      sequentialP99: round(r.sequentialP99, 3),
      throughput: round(r.throughput, 3),
    })),
    bar: report.bar.map((b) => ({
      ...b,
      value: round(b.value, 3),
      inputs: Object.fromEntries(
        Object.entries(b.inputs).map(([id, x]) => [id, round(x, b.unit === 'us' ? 2 : 0)]),
      ),
    })),
    lifecycle: report.lifecycle.map((l) => ({
      ...l,
      startMs: round(l.startMs, 1),
      closeMs: round(l.closeMs, 1),
    })),
  };
}

// ---- text ----

const MISSING = '-';

function fmtUs(us: number | undefined): string {
  if (us === undefined) return MISSING;
  return us < 100 ? us.toFixed(1) : Math.round(us).toLocaleString('en-US');
}

function fmtRate(rate: number | undefined): string {
  return rate === undefined ? MISSING : Math.round(rate).toLocaleString('en-US');
}

function fmtRatio(x: number | null): string {
  return x === null ? MISSING : `${x.toFixed(2)}×`;
}

function fmtMs(ms: number | null): string {
  return ms === null ? MISSING : ms < 10 ? ms.toFixed(1) : Math.round(ms).toLocaleString('en-US');
}

interface Group {
  title: string;
  headers: string[];
}

/**
 * A plain-text table: `lead` left-aligned columns (labels), then groups of right-aligned columns,
 * each group under a centred title and set off by `|`. `separators` are row indexes before which a
 * rule is drawn.
 */
function table(
  leadHeaders: string[],
  groups: Group[],
  rows: string[][],
  separators: ReadonlySet<number> = new Set(),
): string {
  const lead = leadHeaders.length;
  const header = [...leadHeaders, ...groups.flatMap((g) => g.headers)];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  // Widen a group's columns if its title is wider than they are together.
  let col = lead;
  for (const g of groups) {
    const span = g.headers.length;
    const inner = widths.slice(col, col + span).reduce((a, b) => a + b, 0) + 2 * (span - 1);
    if (g.title.length > inner) widths[col + span - 1]! += g.title.length - inner;
    col += span;
  }
  const line = (cells: string[]) => {
    const left = cells
      .slice(0, lead)
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ');
    let out = left;
    let c = lead;
    for (const g of groups) {
      const part = cells
        .slice(c, c + g.headers.length)
        .map((cell, i) => cell.padStart(widths[c + i]!))
        .join('  ');
      out += ` | ${part}`;
      c += g.headers.length;
    }
    return out.trimEnd();
  };
  const leadWidth = widths.slice(0, lead).reduce((a, b) => a + b, 0) + 2 * (lead - 1);
  let titles = ' '.repeat(leadWidth);
  col = lead;
  for (const g of groups) {
    const span = g.headers.length;
    const inner = widths.slice(col, col + span).reduce((a, b) => a + b, 0) + 2 * (span - 1);
    const pad = inner - g.title.length;
    titles += ` | ${' '.repeat(Math.floor(pad / 2))}${g.title}${' '.repeat(Math.ceil(pad / 2))}`;
    col += span;
  }
  const headerLine = line(header);
  const rule = '-'.repeat(Math.max(headerLine.length, titles.trimEnd().length));
  const out = [titles.trimEnd(), headerLine, rule];
  rows.forEach((r, i) => {
    if (separators.has(i) && i > 0) out.push(rule);
    out.push(line(r));
  });
  return out.join('\n');
}

function workersTitle(workers: number): string {
  return workers === 1 ? '1 worker' : `${workers} workers`;
}

/** Row indexes where the tier changes, to draw a rule there. */
function tierBreaks(tiers: Tier[]): Set<number> {
  const breaks = new Set<number>();
  tiers.forEach((t, i) => {
    if (i > 0 && tiers[i - 1] !== t) breaks.add(i);
  });
  return breaks;
}

export function renderHeader(report: Pick<Report, 'machine' | 'versions' | 'settings'>): string {
  const { machine: m, versions: v, settings: s } = report;
  const perWorkload = (f: (w: Workload) => string) => WORKLOADS.map((w) => `${f(w)} (${w})`).join(', ');
  return [
    'isolane pool benchmark',
    `machine:  ${m.cpu}, ${m.cores} cores (availableParallelism ${m.availableParallelism}), ` +
      `${m.memoryGiB} GiB, ${m.platform}/${m.arch}, Node ${m.node}`,
    `versions: ${Object.entries(v)
      .map(([name, version]) => `${name} ${version}`)
      .join(', ')}`,
    `settings: ${s.durationMs} ms per measure in ${s.rounds} round${s.rounds === 1 ? '' : 's'}` +
      `${s.quick ? ' (--quick)' : ''}; workers ${s.workerCounts.join(' and ')}`,
    `          time per measure: ${perWorkload((w) => `${Math.round(s.durationMs * s.measureShare[w])} ms`)}`,
    `          in flight for throughput: ${perWorkload((w) => String(s.inFlight[w]))}`,
    `          cpu task = ${s.cpuIterations.toLocaleString('en-US')} iterations, ` +
      `${s.cpuTaskMs.toFixed(2)} ms in the benchmark's own thread`,
  ].join('\n');
}

function fmtCpu(us: number | undefined): string {
  if (us === undefined) return MISSING;
  return us < 10 ? us.toFixed(2) : us < 100 ? us.toFixed(1) : Math.round(us).toLocaleString('en-US');
}

function fmtTarget(target: BarLine['target'], unit: BarLine['unit']): string {
  if (target === null) return '';
  const [op, x] = 'atLeast' in target ? ['≥', target.atLeast] : ['≤', target.atMost];
  return unit === 'ratio' ? `${op} ${x}×` : `${op} ${x} µs`;
}

function fmtBarValue(line: BarLine | undefined): string {
  if (!line || line.value === null) return MISSING;
  return line.unit === 'ratio' ? fmtRatio(line.value) : `${fmtUs(line.value)} µs`;
}

function fmtMet(line: BarLine | undefined): string {
  if (!line || line.met === null) return line?.target === null ? '' : MISSING;
  return line.met ? '✓' : '✗';
}

/** The rows of a workload's table: the one-way stream has a number under the tiny task only. */
function rowsFor(workload: Workload, contenders: readonly Contender[]): Contender[] {
  return contenders.filter((c) => c.kind === 'pool' || workload === 'tiny');
}

export function renderTables(report: Report, contenders: readonly Contender[]): string {
  const { settings, results, ratios, lifecycle } = report;
  const sections: string[] = [];
  const groupsFor = (headers: string[]) =>
    settings.workerCounts.map((w) => ({ title: workersTitle(w), headers }));

  sections.push(
    'columns: p50 µs, p99 µs: sequential round trip (one task at a time); tasks/s: throughput with many\n' +
      'in flight; CPU µs: CPU time per task during the throughput measure, every thread of this process\n' +
      'and of its child processes (both sides of the pool); caller µs: the calling (main) thread alone.\n' +
      `raw postMessage, one-way: messages/s in the tasks/s column, CPU per message.` +
      (settings.cpuTime ? '' : ' (CPU time is not measured on this platform.)'),
  );

  for (const workload of WORKLOADS) {
    const shown = rowsFor(workload, contenders);
    const rows = shown.map((c) => [
      c.name,
      c.tier,
      ...settings.workerCounts.flatMap((w) => {
        const r = results.find((x) => x.id === c.id && x.workload === workload && x.workers === w);
        return [
          fmtUs(r?.sequential?.p50Us),
          fmtUs(r?.sequential?.p99Us),
          fmtRate(r?.throughput?.tasksPerSec),
          fmtCpu(r?.cpu?.totalUsPerTask),
          fmtCpu(r?.cpu?.callerUsPerTask),
        ];
      }),
    ]);
    sections.push(
      `${WORKLOAD_TITLES[workload]}: sequential round trip, throughput (${settings.inFlight[workload]} ` +
        'in flight), CPU per task\n' +
        table(
          ['contender', 'tier'],
          groupsFor(['p50 µs', 'p99 µs', 'tasks/s', 'CPU µs', 'caller µs']),
          rows,
          tierBreaks(shown.map((c) => c.tier)),
        ),
    );

    const peers = contenders.filter((c) => c.library !== 'isolane' && c.library !== 'raw');
    if (peers.length === 0) continue;
    const ratioRows = peers.map((p) => {
      const base = ratios.find((r) => r.peer === p.name)?.isolane ?? MISSING;
      return [
        p.name,
        base,
        ...settings.workerCounts.flatMap((w) => {
          const r = ratios.find((x) => x.peer === p.name && x.workload === workload && x.workers === w);
          return [
            fmtRatio(r?.sequentialP50 ?? null),
            fmtRatio(r?.sequentialP99 ?? null),
            fmtRatio(r?.throughput ?? null),
          ];
        }),
      ];
    });
    sections.push(
      `${WORKLOAD_TITLES[workload]}: isolane vs each peer (above 1× = isolane faster; ` +
        'latency: peer / isolane, throughput: isolane / peer)\n' +
        table(
          ['peer', 'compared with'],
          groupsFor(['p50', 'p99', 'tasks/s']),
          ratioRows,
          tierBreaks(peers.map((c) => c.tier)),
        ),
    );
  }

  sections.push(renderBar(report));

  const lifeRows = contenders.map((c) => [
    c.name,
    c.tier,
    ...settings.workerCounts.flatMap((w) => {
      const l = lifecycle.find((x) => x.contender === c.name && x.workers === w);
      return [fmtMs(l?.startMs ?? null), fmtMs(l?.closeMs ?? null)];
    }),
  ]);
  sections.push(
    'pool start (until the first task came back) and close, in ms (one sample each, indicative only)\n' +
      table(
        ['contender', 'tier'],
        groupsFor(['start', 'close']),
        lifeRows,
        tierBreaks(contenders.map((c) => c.tier)),
      ),
  );

  const notes = [...new Set(contenders.flatMap((c) => (c.note ? [`  ${c.note}`] : [])))];
  if (notes.length > 0) sections.push(`rows and their options:\n${notes.join('\n')}`);

  const steal = report.run.cpuStealPercent;
  sections.push(
    `run: ${report.run.seconds} s` +
      (steal === null
        ? ''
        : `; CPU steal ${steal}% (CPU time the hypervisor gave to other guests; ` +
          'above a few percent, expect noisy numbers)'),
  );

  const errors = [
    ...lifecycle
      .filter((l) => l.error)
      .map((l) => `  ${l.contender}, ${workersTitle(l.workers)}: ${l.error}`),
    ...results
      .filter(
        (r) =>
          r.error &&
          !lifecycle.some((l) => l.contender === r.contender && l.workers === r.workers && l.error),
      )
      .map((r) => `  ${r.contender}, ${workersTitle(r.workers)}, ${r.workload}: ${r.error}`),
  ];
  if (errors.length > 0) sections.push(`errors (cells marked ${MISSING}):\n${errors.join('\n')}`);
  return sections.join('\n\n');
}

/** The bar: each line's number from this run, its target, and ✓ or ✗. */
function renderBar(report: Report): string {
  const { bar, settings } = report;
  const specs = [...new Map(bar.map((b) => [b.id, b])).values()];
  const rows = specs.map((spec) => [
    spec.label,
    fmtTarget(spec.target, spec.unit),
    ...settings.workerCounts.flatMap((w) => {
      const line = bar.find((b) => b.id === spec.id && b.workers === w);
      return [fmtBarValue(line), fmtMet(line)];
    }),
  ]);
  return (
    'the bar: tiny task, from this run (tasks/s ratios; a line without a target is for reference; ' +
    `${MISSING}: a row it needs did not run or failed)\n` +
    table(
      ['line', 'target'],
      settings.workerCounts.map((w) => ({ title: workersTitle(w), headers: ['value', 'met'] })),
      rows,
    )
  );
}
