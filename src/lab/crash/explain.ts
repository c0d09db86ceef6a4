/** Sentences that say why a measurement is where it is, against the seed's model. Pure. */
import { near } from './model.js';
import type { RunResult } from './runner.js';

/** A count of requests: one decimal below 10, whole above. */
export function count(n: number): string {
  return n < 10 ? n.toFixed(1).replace(/\.0$/, '') : String(Math.round(n));
}

function ms(x: number): string {
  return `${Math.round(x)} ms`;
}

function signedPercent(measured: number, predicted: number): string {
  if (predicted === 0) return measured === 0 ? '±0%' : 'n/a';
  const pct = Math.round(((measured - predicted) / predicted) * 100);
  return `${pct >= 0 ? '+' : ''}${pct}%`;
}

const UNIT_NAME = { process: 'worker process', thread: 'worker thread', server: 'server process' } as const;

/** Where the outage went: noticing the crash, the restart delay, starting the replacement. */
function outageParts(r: RunResult): string | undefined {
  const c = r.crashes[0];
  if (!c || c.backMs === null) return undefined;
  const detect = c.detectedMs === null ? 0 : c.detectedMs - c.atMs;
  const start = c.backMs - c.atMs - detect - r.restart.delayMs;
  const noticing =
    c.kind === 'hang'
      ? r.config.policy === 'naive'
        ? 'for its timeout to notice the hang'
        : 'for the heartbeat to notice the hang'
      : 'to notice the crash';
  const unit = UNIT_NAME[r.restart.unit];
  const delay =
    r.restart.delayMs === 0 && r.restart.unitStartupMs >= r.restart.targetMs
      ? `no restart delay (a ${unit} takes ${ms(r.restart.unitStartupMs)} to start even when idle, so a ${ms(r.restart.targetMs)} restart cannot be met)`
      : `${ms(r.restart.delayMs)} of restart delay`;
  return `${ms(detect)} ${noticing}, ${delay} and ${ms(start)} for the new ${unit} to start${delay.startsWith('no') ? '' : ` (${ms(r.restart.unitStartupMs)} when idle)`}`;
}

/** The mean outage of a run's crashes, injection to replacement ready. */
export function meanDownMs(r: RunResult): number {
  return r.crashes.length === 0 ? 0 : r.crashes.reduce((s, c) => s + c.downMs, 0) / r.crashes.length;
}

export function explainRun(r: RunResult): string {
  const a = r.accounting;
  const m = r.model;
  const c = r.crashes[0];
  if (!c) return 'No crash was injected.';
  const n = r.crashes.length;
  const down = meanDownMs(r);
  const hit = m.refined.inFlight + m.refined.unnoticed;
  const rate = `${count(m.refined.unitRatePerSec)}/s`;
  const parts = outageParts(r);
  if (r.config.policy === 'naive') {
    const out: string[] = [];
    out.push(
      `${count(a.failed)} lost against the seed's ${count(m.seed)} (${signedPercent(a.failed, m.seed)})${near(a.failed, m.seed, 0.2, r.config.arrivals === 'poisson') ? ', near it' : ''}.`,
    );
    const reasons: string[] = [];
    if (Math.abs(down - r.config.restartMs) >= Math.max(10, 0.05 * r.config.restartMs)) {
      reasons.push(
        `the unit was down ${ms(down)}${n > 1 ? ` per crash (${n} crashes)` : ''}, not ${ms(r.config.restartMs)}${parts ? ` (${parts})` : ''}, ` +
          `which moves the arrivals to it by ${count((n * m.refined.unitRatePerSec * Math.abs(down - r.config.restartMs)) / 1000)}`,
      );
    } else if (parts) {
      reasons.push(`the unit was down ${ms(down)} (${parts})`);
    }
    reasons.push(
      `${count(hit)} were inside it when it died (${count(m.refined.inFlight)} in flight by Little's law, ` +
        `${rate} × ${ms(m.inSystemMs)}, and ${count(m.refined.unnoticed)} sent before the crash was noticed), a term the seed leaves out`,
    );
    out.push(`${capitalize(reasons.join('; '))}.`);
    const refined = m.refined.dropped;
    out.push(
      `The refined model says ${count(refined)}` +
        (near(a.failed, refined, 0.1, r.config.arrivals === 'poisson')
          ? '.'
          : `; the ${count(Math.abs(a.failed - refined))} between them is ${r.config.arrivals === 'poisson' ? 'the randomness of Poisson arrivals and ' : ''}event-loop lag around the crash.`),
    );
    return out.join(' ');
  }
  const out: string[] = [];
  if (a.failed === 0) out.push('Nothing lost.');
  else {
    const by = Object.entries(a.failedBy)
      .filter(([, n]) => n > 0)
      .map(([k, n]) => `${n} ${k}`)
      .join(', ');
    out.push(`${a.failed} lost (${by}).`);
  }
  out.push(
    `${a.retried} request${a.retried === 1 ? ' was' : 's were'} retried on another ${r.restart.unit === 'server' ? 'server' : 'worker'} ` +
      `(the model: ${count(hit)} hit by the crash, ${count(m.refined.inFlight)} in flight and ${count(m.refined.unnoticed)} sent before it was noticed).`,
  );
  const elsewhere =
    c.recover?.via === 'spare'
      ? 'the spare that took its place at once'
      : r.crashes.length > 0 && m.share < 1
        ? 'the other workers'
        : 'the queue, until the respawn';
  const w = a.windows;
  out.push(
    `Arrivals during the ${ms(down)} outage went to ${elsewhere}; the cost is latency: p99 ` +
      `${w.before.p99Ms === null ? '-' : ms(w.before.p99Ms)} before, ${w.during.p99Ms === null ? '-' : ms(w.during.p99Ms)} during.`,
  );
  return out.join(' ');
}

function capitalize(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** What the runs say about the seed's model: where it is right and where it is wrong. */
export function modelVerdict(runs: readonly RunResult[]): string[] {
  const naive = runs.filter((r) => r.config.policy === 'naive' && r.crashes.length > 0);
  const isolane = runs.filter((r) => r.config.policy === 'isolane' && r.crashes.length > 0);
  const out: string[] = [];
  if (naive.length > 0) {
    const worst = Math.max(
      ...naive.map(
        (r) => Math.abs(r.accounting.failed - r.model.refined.dropped) / Math.max(r.model.refined.dropped, 1),
      ),
    );
    const within = Math.round(worst * 100);
    out.push(
      `Right: a crash drops the requests that reach the crashed unit while it is down, rate × downtime; with the ` +
        `measured downtime the refined model is within ${within < 1 ? '1' : within}% of every naive run.`,
    );
    const units = naive
      .map(
        (r) =>
          `${UNIT_NAME[r.restart.unit]}: start-up ${ms(r.restart.unitStartupMs)}, delay ${ms(r.restart.delayMs)}, outage ${ms(meanDownMs(r))}`,
      )
      .join('; ');
    out.push(
      `Wrong 1: "restart time" is not a setting. The outage is noticing the crash + the restart delay + the ` +
        `replacement's start-up; to make a restart take ${ms(naive[0]!.config.restartMs)} the lab had to cut the ` +
        `delay by the start-up, and nothing restarts faster than it starts (${units}).`,
    );
    const inFlight = naive.map((r) => count(r.model.refined.inFlight)).join(' and ');
    out.push(
      `Wrong 2: the seed calls the dropped requests "in flight". Only rate × time in the system of them are ` +
        `(Little's law: ${inFlight} here); the rest had not been sent yet when the unit died. With long tasks the ` +
        `in-flight term dominates instead, and no restart speed helps it: only retries do.`,
    );
  }
  if (isolane.length > 0) {
    const lost = isolane.reduce((s, r) => s + r.accounting.failed, 0);
    const retried = isolane.reduce((s, r) => s + r.accounting.retried, 0);
    const p99 = isolane
      .map((r) => {
        const w = r.accounting.windows;
        return w.before.p99Ms === null || w.during.p99Ms === null
          ? '-'
          : `${ms(w.before.p99Ms)} → ${ms(w.during.p99Ms)}`;
      })
      .join(', ');
    out.push(
      `Wrong 3: the seed's remedy is fewer requests per unit, so that a crash drops fewer. With retries (idempotent ` +
        `tasks), routing around the dead unit and a hot spare, a crash need drop none: isolane lost ${lost} ` +
        `(${retried} retried). The price moves into latency: p99 before → during the crash ${p99}.`,
    );
  }
  return out;
}
