/**
 * From what happened in one probe to its verdict and a line of evidence. Pure.
 *
 * - blocked: the attempt failed, and the evidence says why (EACCES, ENOENT, ESRCH, ENETUNREACH,
 *   a limit, the victim's latency barely moved).
 * - allowed: the probe reached its aim against the victim: read a secret, wrote its memory,
 *   signalled or killed it, slowed it beyond the threshold, or a bomb met no bound below its cap.
 * - took everyone down: the process that runs the pool, and so every tenant, died or froze.
 */
import type { AttackEvidence, Attempt } from './attacker.js';
import { type Bounds, HOG_THRESHOLD } from './bounds.js';
import type { ProbeId } from './probes.js';
import type { VictimStatus } from './victim.js';

export const VERDICTS = ['blocked', 'allowed', 'took everyone down', 'skipped', 'error'] as const;
export type Verdict = (typeof VERDICTS)[number];

export interface Latency {
  count: number;
  p50Ms: number;
  p90Ms: number;
  p99Ms: number;
  maxMs: number;
}

export interface HogMeasure {
  baseline: Latency;
  /** Round trips that started after the hog was up and before it ended. */
  during: Latency;
  /** The slowest round trip that overlapped the hog at all. */
  worstMs: number;
  hogMs: number;
}

export interface BombHealth {
  /** Victim round trips tried while the bomb ran, and how many failed. */
  pings: number;
  failed: number;
  worstMs: number;
  /** After the bomb: could the victim still allocate? */
  allocate?: { ok: boolean; error?: string };
}

/** What the harness saw of one probe. */
export interface ProbeOutcome {
  probe: ProbeId;
  attack?: AttackEvidence;
  /** The attacker's task failed instead of returning evidence: how. */
  attackFailed?: {
    error: string;
    /** The crash cause the pool reported (WorkerCrashedError), if the attacker's worker died. */
    reason?: string;
    signal?: string | null;
    limit?: string;
    /** The uncaught error that ended the worker, if that is how it died. */
    message?: string;
    /** The kernel's OOM killer acted in the level's memory budget meanwhile. */
    oomKilled?: boolean;
  };
  /** The victim's worker before the probe (host pid). */
  victimPid: number;
  /** After the probe: the victim's state, and its worker's host pid (changed if it died and was restarted). */
  victimAfter?: VictimStatus & { hostPid: number };
  victimAfterError?: string;
  hog?: HogMeasure;
  bomb?: BombHealth;
}

/** The process running the pool died during the probe (seen by the lab, outside it). */
export interface HostDeath {
  exitCode: number | null;
  signal: string | null;
  /** The level's memory budget ran out (the kernel's OOM killer acted in its cgroup). */
  budgetExceeded: boolean;
  stderrTail?: string;
}

export interface Judgement {
  verdict: Verdict;
  /** A few characters for the matrix. */
  short: string;
  /** One sentence of evidence. */
  summary: string;
}

function failures(attempts: Attempt[]): string {
  const codes = attempts.filter((a) => a.error).map((a) => `${a.error} (${a.via})`);
  return codes.length > 0
    ? codes.join('; ')
    : attempts.map((a) => `${a.via}: ${a.detail ?? 'nothing'}`).join('; ');
}

function mainError(attempts: Attempt[]): string {
  const codes = [...new Set(attempts.filter((a) => a.error).map((a) => a.error!))];
  return codes.length > 0 ? codes.join('/') : 'not found';
}

function foundVia(attempts: Attempt[]): string {
  return attempts
    .filter((a) => a.found)
    .map((a) => (a.detail ? `${a.via} (${a.detail})` : a.via))
    .join('; ');
}

function victimDied(o: ProbeOutcome): boolean {
  return o.victimAfter !== undefined ? o.victimAfter.hostPid !== o.victimPid : false;
}

function crashText(o: ProbeOutcome): string {
  const f = o.attackFailed;
  if (!f) return '';
  const how = f.signal ? `signal ${f.signal}` : `${f.reason ?? f.error}${f.message ? `: ${f.message}` : ''}`;
  if (f.limit) return `its sandbox's ${f.limit} limit (${how})`;
  if (f.oomKilled) return `the kernel's OOM killer, when the level's memory budget ran out (${how})`;
  return how;
}

function crashShort(o: ProbeOutcome): string {
  const f = o.attackFailed;
  if (!f) return '';
  return f.limit ? `${f.limit} limit` : f.oomKilled ? 'OOM-killed' : (f.signal ?? f.reason ?? f.error);
}

export function hostDown(death: HostDeath): Judgement {
  const how = death.signal ? `killed by ${death.signal}` : `exited with code ${death.exitCode}`;
  return {
    verdict: 'took everyone down',
    short: death.budgetExceeded
      ? 'OOM killer'
      : death.signal
        ? `by ${death.signal}`
        : `exit ${death.exitCode}`,
    summary: `the process that runs the pool and every tenant was ${how}${death.budgetExceeded ? ', by the kernel\u2019s OOM killer when the level\u2019s memory budget ran out' : ''}`,
  };
}

function ratio(during: number, baseline: number): number {
  return baseline > 0 ? during / baseline : Number.POSITIVE_INFINITY;
}

export function judgeHog(h: HogMeasure): Judgement {
  if (h.during.count === 0) {
    return {
      verdict: 'took everyone down',
      short: 'froze everyone',
      summary: `no round trip of the victim even started while the hog ran: the process froze for ${Math.round(h.worstMs)} ms (baseline p50 ${h.baseline.p50Ms.toFixed(2)} ms)`,
    };
  }
  const t = HOG_THRESHOLD;
  const p50 = ratio(h.during.p50Ms, h.baseline.p50Ms);
  const p90 = ratio(h.during.p90Ms, h.baseline.p90Ms);
  const p99 = ratio(h.during.p99Ms, h.baseline.p99Ms);
  const ok =
    (p50 <= t.p50Ratio || h.during.p50Ms - h.baseline.p50Ms <= t.slackMs) &&
    (p90 <= t.p90Ratio || h.during.p90Ms - h.baseline.p90Ms <= t.slackMs);
  const ms = (n: number) => n.toFixed(2);
  const x = (r: number) => (r < 10 ? r.toFixed(1) : String(Math.round(r)));
  const figures =
    `victim round trip p50 ${ms(h.baseline.p50Ms)} → ${ms(h.during.p50Ms)} ms (×${x(p50)}), ` +
    `p90 ${ms(h.baseline.p90Ms)} → ${ms(h.during.p90Ms)} ms (×${x(p90)}), ` +
    `p99 ${ms(h.baseline.p99Ms)} → ${ms(h.during.p99Ms)} ms (×${x(p99)}); ` +
    `${h.during.count} round trips during the hog, the longest wait ${Math.round(h.worstMs)} ms`;
  return {
    verdict: ok ? 'blocked' : 'allowed',
    short: `p90 ×${x(p90)}`,
    summary: ok ? `barely affected: ${figures}` : `slowed: ${figures}`,
  };
}

export function judge(o: ProbeOutcome, bounds: Bounds): Judgement {
  const a = o.attack;
  const attempts = a?.attempts ?? [];
  switch (o.probe) {
    case 'memory-self':
    case 'memory-victim':
    case 'environ':
    case 'fd':
    case 'file':
    case 'connect':
    case 'cmdline': {
      if (!a) return attackerFailed(o);
      if (a.succeeded) {
        const kinds = a.scan ? Object.keys(a.scan.found).join('+') : '';
        return {
          verdict: 'allowed',
          short: kinds
            ? `read ${kinds}`
            : o.probe === 'cmdline' && !attempts[0]?.found
              ? 'read'
              : 'read secret',
          summary: foundVia(attempts) || failures(attempts),
        };
      }
      return { verdict: 'blocked', short: mainError(attempts), summary: failures(attempts) };
    }
    case 'memory-write': {
      if (!a) return attackerFailed(o);
      if (o.victimAfter && !o.victimAfter.bufferIntact) {
        return {
          verdict: 'allowed',
          short: 'overwrote it',
          summary: `${foundVia(attempts)}; wrote ${a.written?.length ?? 0} copies; the victim's Buffer now reads "${o.victimAfter.bufferNow ?? '?'}"`,
        };
      }
      return { verdict: 'blocked', short: mainError(attempts), summary: failures(attempts) };
    }
    case 'signal':
    case 'kill': {
      if (!a) return attackerFailed(o);
      if (a.succeeded) {
        const after =
          o.probe === 'kill'
            ? victimDied(o)
              ? `; the victim's worker ${o.victimPid} died and the pool restarted it as ${o.victimAfter!.hostPid}`
              : "; the victim's worker has not been seen to die"
            : o.victimAfter?.signals
              ? `; the victim counted ${o.victimAfter.signals} SIGWINCH`
              : '';
        return {
          verdict: 'allowed',
          short: o.probe === 'kill' ? 'killed it' : 'delivered',
          summary: `${attempts[0]!.via}: delivered${after}`,
        };
      }
      return { verdict: 'blocked', short: mainError(attempts), summary: failures(attempts) };
    }
    case 'crash': {
      if (victimDied(o)) {
        return {
          verdict: 'allowed',
          short: 'victim died too',
          summary: `the victim's worker ${o.victimPid} died with the attacker's`,
        };
      }
      if (o.attackFailed) {
        return {
          verdict: 'blocked',
          short: 'only itself',
          summary: `the attacker's own worker died (${crashText(o)}); the victim's worker ${o.victimPid} still answers${o.victimAfter?.bufferIntact ? ' with its secrets intact' : ''}`,
        };
      }
      return {
        verdict: 'blocked',
        short: 'survived',
        summary: 'the attacker could not even end its own process',
      };
    }
    case 'fork-bomb': {
      if (victimDied(o)) return victimTakenDown(o);
      if (!a && o.attackFailed) {
        return {
          verdict: 'blocked',
          short: 'attacker died',
          summary: `the attacker's worker died trying (${crashText(o)}); the victim's worker ${o.victimPid} still answers`,
        };
      }
      if (!a) return attackerFailed(o);
      if (a.succeeded) {
        return {
          verdict: 'allowed',
          short: `${a.spawned}/${bounds.forkCap} started`,
          summary: `nothing bounded it: ${a.spawned} of ${bounds.forkCap} processes started (the cap), then all killed`,
        };
      }
      return {
        verdict: 'blocked',
        short: `${a.spawned} then ${mainError(attempts)}`,
        summary: `refused after ${a.spawned} processes: ${failures(attempts)}`,
      };
    }
    case 'memory-bomb': {
      if (victimDied(o)) return victimTakenDown(o);
      const health = o.bomb
        ? `; the victim answered ${o.bomb.pings - o.bomb.failed} of ${o.bomb.pings} round trips meanwhile${o.bomb.allocate ? `, and afterwards ${o.bomb.allocate.ok ? 'could' : `could not (${o.bomb.allocate.error})`} allocate` : ''}`
        : '';
      if (!a) {
        if (!o.attackFailed) return attackerFailed(o);
        return {
          verdict: 'blocked',
          short: crashShort(o),
          summary: `the attacker's worker was stopped by ${crashText(o)}${health}`,
        };
      }
      if (a.succeeded) {
        return {
          verdict: 'allowed',
          short: `${a.allocatedMb} MiB (cap)`,
          summary: `nothing bounded it: ${a.allocatedMb} MiB held, the cap${health}`,
        };
      }
      return {
        verdict: 'blocked',
        short: `${a.allocatedMb} MiB, ${mainError(attempts)}`,
        summary: `stopped at ${a.allocatedMb} MiB: ${failures(attempts)}${health}`,
      };
    }
    case 'cpu-hog': {
      if (!o.hog) return attackerFailed(o);
      const j = judgeHog(o.hog);
      if (o.attackFailed) j.summary += `; the hog itself was stopped by ${crashText(o)}`;
      return j;
    }
  }
}

function victimTakenDown(o: ProbeOutcome): Judgement {
  return {
    verdict: 'allowed',
    short: 'victim died',
    summary: `the victim's worker ${o.victimPid} died (restarted as ${o.victimAfter?.hostPid})`,
  };
}

/** The attacker's task failed where the probe should have returned evidence: the lab could not tell. */
function attackerFailed(o: ProbeOutcome): Judgement {
  if (o.attackFailed) {
    return {
      verdict: 'error',
      short: crashShort(o),
      summary: `the attacker's task failed: ${o.attackFailed.error}${crashText(o) ? ` (${crashText(o)})` : ''}`,
    };
  }
  return { verdict: 'error', short: 'no evidence', summary: 'the probe returned no evidence' };
}
