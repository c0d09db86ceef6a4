/**
 * The arithmetic of a crash, as the seed does it and refined. Pure.
 *
 * The seed: a crashed unit that receives `rate × share` requests per second and takes `restart`
 * to come back drops `rate × share × restart` requests ("1000/s × 500 ms = 500"; "100/s × 500 ms =
 * 50"). That counts the arrivals during the restart, and calls them "in flight".
 *
 * Refined, the requests a crash hits are of three kinds:
 * - in flight at the moment of the crash: by Little's law, `rate × share × W`, where W is the time
 *   a request spends in the system;
 * - sent to the unit after it died but before anyone noticed (`rate × share × detect`): they go
 *   into the dead unit and share the fate of the in-flight ones;
 * these two die with the unit unless they are retried elsewhere;
 * - arrivals after the crash was noticed until the replacement serves (`rate × share × (down −
 *   detect)`, where `down` runs from the crash to the replacement being ready: detection, restart
 *   delay and start-up, not just a restart delay): refused, unless they are routed around the
 *   unit, taken by a spare, or queued.
 */

export interface SeedModelInput {
  ratePerSec: number;
  /** The fraction of all requests that goes to the unit that crashes (1: it is the whole system). */
  share: number;
  restartMs: number;
}

/** Requests dropped by one crash, the seed's way: arrivals to the unit during its restart. */
export function seedModel(input: SeedModelInput): number {
  return (input.ratePerSec * input.share * input.restartMs) / 1000;
}

export interface RefinedModelInput {
  ratePerSec: number;
  share: number;
  /** W: mean time from send to result of a request, in ms. */
  inSystemMs: number;
  /** From the crash until the pool (or the front) noticed it, in ms. */
  detectMs: number;
  /** From the crash until the unit (or its replacement) serves again, in ms (includes `detectMs`). */
  downMs: number;
  /** In-flight requests hit by the crash are tried again elsewhere (idempotent, two or more tries). */
  retries: boolean;
  /** Arrivals while the unit is down are routed around it, taken by a spare, or queued, not refused. */
  holdsArrivals: boolean;
}

export interface RefinedModel {
  /** Requests per second to the unit that crashes. */
  unitRatePerSec: number;
  /** Requests in the unit when it dies (Little's law). */
  inFlight: number;
  /** Requests sent into the dead unit before the crash was noticed. */
  unnoticed: number;
  /** Requests that reach the unit after the crash was noticed, until it is back (0 when they are held elsewhere). */
  arrivalsWhileDown: number;
  /** Requests expected to be tried again (those the crash hit, when retries are on). */
  retried: number;
  /** Requests expected to be lost. */
  dropped: number;
}

export function refinedModel(input: RefinedModelInput): RefinedModel {
  for (const key of ['ratePerSec', 'share', 'inSystemMs', 'detectMs', 'downMs'] as const) {
    if (!(input[key] >= 0) || !Number.isFinite(input[key]))
      throw new RangeError(`${key} must be >= 0; got ${input[key]}`);
  }
  const unitRatePerSec = input.ratePerSec * input.share;
  const detectMs = Math.min(input.detectMs, input.downMs);
  const inFlight = (unitRatePerSec * input.inSystemMs) / 1000;
  const unnoticed = (unitRatePerSec * detectMs) / 1000;
  const arrivalsWhileDown = input.holdsArrivals ? 0 : (unitRatePerSec * (input.downMs - detectMs)) / 1000;
  const hit = inFlight + unnoticed;
  const retried = input.retries ? hit : 0;
  const dropped = (input.retries ? 0 : hit) + arrivalsWhileDown;
  return { unitRatePerSec, inFlight, unnoticed, arrivalsWhileDown, retried, dropped };
}

/** The share of all requests that goes to the crashed unit: all of them if the crash takes every unit down. */
export function crashedShare(units: number, wholeSystem: boolean): number {
  if (!Number.isInteger(units) || units < 1)
    throw new RangeError(`units must be a positive integer; got ${units}`);
  return wholeSystem ? 1 : 1 / units;
}

/**
 * Whether a measured count is near a predicted one: within `relative` of it or within 2 requests.
 * With Poisson arrivals the count itself varies: then within three standard deviations too.
 */
export function near(measured: number, predicted: number, relative = 0.2, poisson = false): boolean {
  const slack = Math.max(relative * predicted, 2, poisson ? 3 * Math.sqrt(predicted) : 0);
  return Math.abs(measured - predicted) <= slack;
}
