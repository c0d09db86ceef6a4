/** The escape lab's report as text: the probe × level matrix, then the evidence for every cell. */
import Table from 'cli-table3';
import { machineLine } from '../machine.js';
import { LEVELS } from './levels.js';
import { PROBES } from './probes.js';
import type { EscapeReport } from './runner.js';
import type { Verdict } from './verdict.js';

const WORD: Record<Verdict, string> = {
  blocked: 'blocked',
  allowed: 'ALLOWED',
  'took everyone down': 'ALL DOWN',
  skipped: 'skipped',
  error: 'lab error',
};

function clip(s: string, n: number): string {
  return s.length <= n ? s : `${s.slice(0, n - 1)}…`;
}

function yesNo(met: boolean | null): string {
  return met === null ? 'not run' : met ? 'yes' : 'NO';
}

export function renderEscape(report: EscapeReport): string {
  const out: string[] = [];
  const { plan } = report;
  const b = plan.bounds;
  out.push(
    `isolane escape — what one tenant can do to another, level by level, on ${machineLine(report.machine)}`,
  );
  out.push(
    "A victim and an attacker are two tenants of one pool (tenancy 'dedicated', a worker each). The victim plants a heap string, a Buffer, an environment variable, its process title, an open descriptor of an unlinked file, a 0600 file and a loopback listener; the attacker knows their SHA-256 only.",
  );
  out.push(
    `Bounds: scans ≤ ${b.scanBytes / 1048576} MiB / ${b.scanMs} ms; fork bomb ≤ ${b.forkCap} processes of ${b.forkChildSeconds} s; memory bomb ≤ ${b.bombCapMb} MiB in ${b.bombStepMb} MiB steps; CPU hog ${b.hogSpinners} threads × ${b.hogMs} ms; network: 127.0.0.1, the victim's port, only.`,
  );
  out.push(
    plan.hostBudget.enforced
      ? `Each level runs in its own process with a ${plan.hostBudget.mb} MiB memory budget (a cgroup) standing for the host's memory.`
      : `Each level runs in its own process; ${plan.hostBudget.why ?? 'no memory budget'}: a memory bomb meets no host limit below its cap.`,
  );
  out.push('');

  const levels = report.levels;
  const matrix = new Table({
    head: ['probe', ...levels.map((l) => LEVELS[l.id].short)],
    style: { head: [], border: [] },
  });
  for (const p of report.probes) {
    matrix.push([
      PROBES[p.id].title,
      ...levels.map((l) => {
        const c = report.cells.find((x) => x.level === l.id && x.probe === p.id);
        if (!c) return '';
        return c.verdict === 'skipped' ? WORD.skipped : `${WORD[c.verdict]}\n${clip(c.short, 16)}`;
      }),
    ]);
  }
  out.push('What the attacker could do (blocked / ALLOWED / ALL DOWN = took everyone down):');
  out.push(matrix.toString());
  out.push('');

  out.push('The bar:');
  out.push(
    `  top level (dedicated, own uid per tenant, namespaces, limits): every probe blocked: ${yesNo(report.bar.top.met)}` +
      (report.bar.top.notBlocked.length ? ` (not blocked: ${report.bar.top.notBlocked.join(', ')})` : ''),
  );
  out.push(
    `  thread level: the memory, environment and fd probes succeed: ${yesNo(report.bar.thread.met)}` +
      (report.bar.thread.notAllowed.length ? ` (not: ${report.bar.thread.notAllowed.join(', ')})` : ''),
  );
  const t = plan.hogThreshold;
  out.push(
    `  CPU hog threshold: blocked when the victim's round trip p50 stays within ×${t.p50Ratio} and its p90 within ×${t.p90Ratio} of its baseline (or within ${t.slackMs} ms of it).`,
  );
  out.push('');

  out.push('Evidence:');
  for (const l of levels) {
    const who =
      l.victim && l.attacker
        ? ` — victim pid ${l.victim.pid} uid ${l.victim.uid}${l.victim.threadId !== undefined ? ` thread ${l.victim.threadId}` : ''}, attacker pid ${l.attacker.pid} uid ${l.attacker.uid}${l.attacker.threadId !== undefined ? ` thread ${l.attacker.threadId}` : ''}`
        : '';
    out.push(`${l.title}${who}`);
    if (l.note) out.push(`  note: ${l.note}`);
    const notPlanted = Object.entries(l.notPlanted ?? {});
    if (notPlanted.length) out.push(`  not planted: ${notPlanted.map(([k, v]) => `${k} (${v})`).join(', ')}`);
    if (l.harnesses > 1)
      out.push(`  ${l.harnesses} harness processes: a new one after each probe that took one down`);
    if (l.leftovers > 0) out.push(`  WARNING: ${l.leftovers} processes of this level outlived the cleanup`);
    for (const c of report.cells.filter((x) => x.level === l.id)) {
      out.push(`  ${PROBES[c.probe].title.padEnd(26)} ${WORD[c.verdict].padEnd(9)} ${c.summary}`);
    }
  }
  out.push('');
  out.push(`${report.cells.length} cells in ${(report.durationMs / 1000).toFixed(1)} s.`);
  return out.join('\n');
}
