/** The benchmark's results as data (the `--json` shape) and as plain-text tables. */
import type { Contender, Tier } from './contenders.js';
import type { SequentialResult, ThroughputResult } from './measure.js';

export type Workload = 'tiny' | 'cpu';
export const WORKLOADS: readonly Workload[] = ['tiny', 'cpu'];

export const WORKLOAD_TITLES: Record<Workload, string> = {
  tiny: 'tiny task (x => x + 1)',
  cpu: 'CPU task (fixed sum of square roots, ~1 ms)',
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
  /** How long each measure of each cell runs, in all. */
  durationMs: number;
  /** Rounds the duration is split into; each round visits every pool in turn. */
  rounds: number;
  quick: boolean;
  workerCounts: number[];
  inFlight: Record<Workload, number>;
  cpuIterations: number;
  /** The CPU task's median time in the benchmark's own thread. */
  cpuTaskMs: number;
  warmUp: object;
}

export interface ResultRow {
  contender: string;
  id: string;
  library: string;
  tier: Tier;
  workload: Workload;
  workers: number;
  sequential: SequentialResult | null;
  throughput: ThroughputResult | null;
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
  lifecycle: LifecycleRow[];
}

function ratio(numerator: number | undefined, denominator: number | undefined): number | null {
  if (numerator === undefined || denominator === undefined || !(denominator > 0)) return null;
  return numerator / denominator;
}

export function computeRatios(contenders: readonly Contender[], results: readonly ResultRow[]): RatioRow[] {
  const find = (id: string, workload: Workload, workers: number) =>
    results.find((r) => r.id === id && r.workload === workload && r.workers === workers);
  const ratios: RatioRow[] = [];
  for (const peer of contenders) {
    if (peer.library === 'isolane') continue;
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
    })),
    ratios: report.ratios.map((r) => ({
      ...r,
      sequentialP50: round(r.sequentialP50, 3),
      sequentialP99: round(r.sequentialP99, 3),
      throughput: round(r.throughput, 3),
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
  return [
    'isolane pool benchmark',
    `machine:  ${m.cpu}, ${m.cores} cores (availableParallelism ${m.availableParallelism}), ` +
      `${m.memoryGiB} GiB, ${m.platform}/${m.arch}, Node ${m.node}`,
    `versions: ${Object.entries(v)
      .map(([name, version]) => `${name} ${version}`)
      .join(', ')}`,
    `settings: ${s.durationMs} ms per measure in ${s.rounds} round${s.rounds === 1 ? '' : 's'}` +
      `${s.quick ? ' (--quick)' : ''}; workers ${s.workerCounts.join(' and ')}; ` +
      `in flight for throughput: ${s.inFlight.tiny} (tiny), ${s.inFlight.cpu} (cpu)`,
    `          cpu task = ${s.cpuIterations.toLocaleString('en-US')} iterations, ` +
      `${s.cpuTaskMs.toFixed(2)} ms in the benchmark's own thread`,
  ].join('\n');
}

export function renderTables(report: Report, contenders: readonly Contender[]): string {
  const { settings, results, ratios, lifecycle } = report;
  const sections: string[] = [];
  const groupsFor = (headers: string[]) =>
    settings.workerCounts.map((w) => ({ title: workersTitle(w), headers }));

  for (const workload of WORKLOADS) {
    const rows = contenders.map((c) => [
      c.name,
      c.tier,
      ...settings.workerCounts.flatMap((w) => {
        const r = results.find((x) => x.id === c.id && x.workload === workload && x.workers === w);
        return [
          fmtUs(r?.sequential?.p50Us),
          fmtUs(r?.sequential?.p99Us),
          fmtRate(r?.throughput?.tasksPerSec),
        ];
      }),
    ]);
    sections.push(
      `${WORKLOAD_TITLES[workload]}: sequential round trip (p50, p99) and throughput\n` +
        table(
          ['contender', 'tier'],
          groupsFor(['p50 µs', 'p99 µs', 'tasks/s']),
          rows,
          tierBreaks(contenders.map((c) => c.tier)),
        ),
    );

    const peers = contenders.filter((c) => c.library !== 'isolane');
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
  if (notes.length > 0) sections.push(`non-default options:\n${notes.join('\n')}`);

  const steal = report.run.cpuStealPercent;
  sections.push(
    `run: ${report.run.seconds} s` +
      (steal === null
        ? ''
        : `; CPU steal ${steal}% (CPU time the hypervisor gave to other guests; ` +
          'above a few percent, expect noisy numbers)'),
  );

  const errors = lifecycle.filter((l) => l.error);
  if (errors.length > 0) {
    sections.push(
      `errors (cells marked ${MISSING}):\n` +
        errors.map((l) => `  ${l.contender}, ${workersTitle(l.workers)}: ${l.error}`).join('\n'),
    );
  }
  return sections.join('\n\n');
}
