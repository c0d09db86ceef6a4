/**
 * The supervisor's decisions, as pure functions of its state, an event and the time. No timers and
 * no I/O here: the pool applies the decisions, and tests drive them with a fake clock.
 */

export interface RestartPolicy {
  backoff: { initialMs: number; maxMs: number; factor: number };
  /** More than `maxRestarts` crashes within `withinMs` quarantines the pool. */
  intensity: { maxRestarts: number; withinMs: number };
  /** A worker that ran this long before crashing was stable: the backoff starts over. */
  stableAfterMs: number;
}

export interface SupervisorState {
  /** Times of the crashes still inside the intensity window, oldest first. */
  readonly crashTimes: readonly number[];
  /** Crashes in a row of workers that died before they were stable. */
  readonly consecutive: number;
  /** While set and in the future, nothing is respawned. */
  readonly quarantinedUntil: number | null;
}

export type Decision = { action: 'restart'; delayMs: number } | { action: 'quarantine'; until: number };

export const initialSupervisorState: SupervisorState = {
  crashTimes: [],
  consecutive: 0,
  quarantinedUntil: null,
};

export function backoffDelay(policy: RestartPolicy, consecutive: number): number {
  if (consecutive <= 0) return 0;
  const { initialMs, maxMs, factor } = policy.backoff;
  return Math.min(maxMs, initialMs * factor ** (consecutive - 1));
}

/** A worker crashed at `now` after running `uptimeMs`: restart it (after a delay) or quarantine. */
export function onCrash(
  policy: RestartPolicy,
  state: SupervisorState,
  now: number,
  uptimeMs: number,
): { state: SupervisorState; decision: Decision } {
  const windowStart = now - policy.intensity.withinMs;
  const crashTimes = [...state.crashTimes.filter((t) => t > windowStart), now];
  const consecutive = uptimeMs >= policy.stableAfterMs ? 1 : state.consecutive + 1;
  if (crashTimes.length > policy.intensity.maxRestarts) {
    const until = now + policy.intensity.withinMs;
    return {
      state: { crashTimes, consecutive, quarantinedUntil: until },
      decision: { action: 'quarantine', until },
    };
  }
  return {
    state: { crashTimes, consecutive, quarantinedUntil: state.quarantinedUntil },
    decision: { action: 'restart', delayMs: backoffDelay(policy, consecutive) },
  };
}

export function isQuarantined(state: SupervisorState, now: number): boolean {
  return state.quarantinedUntil !== null && now < state.quarantinedUntil;
}

/** The quarantine is over: the crash history it was built on is forgotten. */
export function endQuarantine(state: SupervisorState, now: number): SupervisorState {
  if (state.quarantinedUntil === null || now < state.quarantinedUntil) return state;
  return initialSupervisorState;
}
