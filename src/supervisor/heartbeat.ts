/**
 * Hung-worker detection, as a pure function: the pool calls it on every heartbeat tick for every
 * ready worker, with the time its oldest unanswered ping was sent.
 */
export type HeartbeatAction = 'ping' | 'wait' | 'hung' | 'grace';

/** A worker that has not answered a ping for this many intervals is hung. */
export const MISSED_BEATS = 2;

export function heartbeatCheck(
  pendingSince: number | undefined,
  now: number,
  heartbeatMs: number,
  /** How late this tick fired: if the pool's own event loop stalled, pongs could not be read either. */
  tickLagMs: number,
): HeartbeatAction {
  if (tickLagMs > heartbeatMs) return 'grace';
  if (pendingSince === undefined) return 'ping';
  return now - pendingSince >= MISSED_BEATS * heartbeatMs ? 'hung' : 'wait';
}
