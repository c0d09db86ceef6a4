/** The arithmetic of the labs: pure functions, unit-tested on fixed inputs. */

/** The p-th percentile (0..100) of samples, by linear interpolation between closest ranks. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new RangeError('percentile of no samples');
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile must be within 0..100; got ${p}`);
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = (p / 100) * (sorted.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (rank - lo);
}

/** Share of one core (1 = 100%) that `cpuPerMessageUs` of CPU per message costs at `ratePerSec`. */
export function coreShare(cpuPerMessageUs: number, ratePerSec: number): number {
  return (cpuPerMessageUs * ratePerSec) / 1e6;
}

/** The message rate at which the communication alone takes `share` of one core. */
export function crossoverRate(cpuPerMessageUs: number, share: number): number {
  if (cpuPerMessageUs <= 0) return Number.POSITIVE_INFINITY;
  return (share * 1e6) / cpuPerMessageUs;
}

export type Verdict = 'holds' | 'off' | 'does not hold';

export interface ClaimCheck {
  verdict: Verdict;
  /** measured / claimed (>1: the claim is too optimistic about the cost). */
  factor: number;
  /** "holds", "off by 16x" or "does not hold". */
  label: string;
}

/**
 * Compares a claimed figure with a measured one. Within `tolerance`× either way the claim holds;
 * beyond it the claim is off by the factor, unless `directionMatters` says the claim's side of a
 * threshold was wrong, which makes it not hold at all.
 */
export function compareFigure(claimed: number, measured: number, tolerance = 2): ClaimCheck {
  if (!(claimed > 0) || !(measured > 0)) throw new RangeError('figures to compare must be positive');
  const factor = measured / claimed;
  const off = Math.max(factor, 1 / factor);
  if (off <= tolerance) return { verdict: 'holds', factor, label: 'holds' };
  return { verdict: 'off', factor, label: `off by ${formatFactor(off)}` };
}

/** A threshold claim ("below R, under S of a core"): holds or not, with the measured share. */
export function checkThreshold(measuredShare: number, limit: number, below: boolean): ClaimCheck {
  const factor = measuredShare / limit;
  const ok = below ? measuredShare < limit : measuredShare >= limit;
  return { verdict: ok ? 'holds' : 'does not hold', factor, label: ok ? 'holds' : 'does not hold' };
}

export function formatFactor(x: number): string {
  if (x >= 100) return `${Math.round(x)}x`;
  if (x >= 10) return `${x.toFixed(0)}x`;
  return `${x.toFixed(1)}x`;
}
