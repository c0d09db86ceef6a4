/** Number formatting shared by the labs' tables. */

/** Microseconds, with precision that suits the magnitude: 0.004 µs, 0.15 µs, 12.3 µs, 250 µs. */
export function micros(us: number): string {
  if (!Number.isFinite(us)) return '-';
  if (us < 0.01) return `${us.toFixed(4)} µs`;
  if (us < 1) return `${us.toFixed(3)} µs`;
  if (us < 100) return `${us.toFixed(1)} µs`;
  return `${Math.round(us).toLocaleString('en-US')} µs`;
}

/** A rate per second: 950/s, 12.5k/s, 1.40M/s. */
export function rate(perSec: number): string {
  if (!Number.isFinite(perSec)) return '∞';
  if (perSec >= 1e9) return `${(perSec / 1e9).toFixed(2)}G/s`;
  if (perSec >= 1e6) return `${(perSec / 1e6).toFixed(2)}M/s`;
  if (perSec >= 1e3) return `${(perSec / 1e3).toFixed(perSec >= 1e5 ? 0 : 1)}k/s`;
  return `${Math.round(perSec)}/s`;
}

/** A share of one core: 0.4%, 36%, 360%. */
export function share(fraction: number): string {
  const pct = fraction * 100;
  if (pct < 1) return `${pct.toFixed(2)}%`;
  if (pct < 10) return `${pct.toFixed(1)}%`;
  return `${Math.round(pct)}%`;
}
