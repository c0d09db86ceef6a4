/** The crash lab's report as text tables. */
import Table from 'cli-table3';
import { machineLine } from '../machine.js';
import type { WindowStats } from './accounting.js';
import { count, meanDownMs, modelVerdict } from './explain.js';
import type { CrashReport, ExplainedRun } from './lab.js';

function table(head: string[]): Table.Table {
  return new Table({
    head,
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
}

function ms(x: number | null): string {
  if (x === null) return '-';
  return x < 10 ? `${x.toFixed(1)} ms` : `${Math.round(x)} ms`;
}

function latency(w: WindowStats): string {
  if (w.completed === 0) return `- (${w.sent} sent)`;
  // Few samples: say how few.
  return `${ms(w.p50Ms)} / ${ms(w.p99Ms)}${w.completed < 20 ? ` (${w.completed} done)` : ''}`;
}

function lost(run: ExplainedRun | undefined): string {
  if (!run) return 'not run';
  const a = run.accounting;
  return `${a.failed} of ${a.sent}`;
}

export function renderCrash(report: CrashReport): string {
  const out: string[] = [];
  const p = report.plan;
  out.push(`isolane crash — what one crash costs, measured on ${machineLine(report.machine)}`);
  out.push(
    `${p.ratePerSec} requests/s (${p.arrivals} arrivals, open loop), ${p.serviceMs} ms of ${p.serviceKind === 'wait' ? 'async wait' : 'CPU'} each, ` +
      `${p.durationMs} ms per run, crash at ${p.crashAtMs.join(', ')} ms; restart ${p.restartMs} ms from crash to serving again; ` +
      `isolane: idempotent tasks, ${p.spares} hot spare${p.spares === 1 ? '' : 's'}, heartbeat, routing around`,
  );
  out.push('');
  const byId = new Map(report.runs.map((r) => [r.id, r]));

  const main = table([
    'case',
    'model (seed)',
    'model (refined)',
    'measured naive: lost',
    'outage',
    'measured with isolane: lost',
    'retried',
  ]);
  for (const c of report.cases) {
    const naive = c.naive ? byId.get(c.naive) : undefined;
    const isolane = c.isolane ? byId.get(c.isolane) : undefined;
    main.push([
      c.title,
      count(c.seedModel),
      naive ? count(naive.model.refined.dropped) : '-',
      lost(naive),
      naive?.crashes[0]
        ? `${ms(meanDownMs(naive))}${naive.crashes.length > 1 ? ` ×${naive.crashes.length}` : ''}`
        : '-',
      lost(isolane),
      isolane ? String(isolane.accounting.retried) : '-',
    ]);
  }
  out.push(
    'Requests lost to one crash: the seed\u2019s model, measured without isolane\u2019s policies, and with them:',
  );
  out.push(main.toString());
  out.push('');

  const runs = table([
    'run',
    'sent',
    'completed',
    'failed',
    'retried',
    'refused / crashed',
    'p50 / p99 before',
    'during',
    'after',
  ]);
  for (const r of report.runs) {
    const a = r.accounting;
    runs.push([
      r.id,
      String(a.sent),
      String(a.completed),
      String(a.failed),
      String(a.retried),
      `${a.failedBy.refused} / ${a.failedBy.crashed + a.failedBy.timeout + a.failedBy.other}`,
      latency(a.windows.before),
      latency(a.windows.during),
      latency(a.windows.after),
    ]);
  }
  out.push(
    'Every run (latency from the scheduled send time; "during" = from the crash until the crashed unit\u2019s replacement is ready):',
  );
  out.push(runs.toString());
  out.push('');
  out.push('Why:');
  for (const r of report.runs) out.push(`  - ${r.id}: ${r.why}`);
  const verdict = modelVerdict(report.runs);
  if (verdict.length > 0) {
    out.push('');
    out.push('The seed\u2019s model:');
    for (const line of verdict) out.push(`  - ${line}`);
  }
  for (const e of report.errors) out.push(`! ${e}`);
  return out.join('\n');
}
