import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { heartbeatCheck } from '../src/supervisor/heartbeat.js';
import {
  backoffDelay,
  endQuarantine,
  initialSupervisorState,
  isQuarantined,
  onCrash,
  type RestartPolicy,
  type SupervisorState,
} from '../src/supervisor/policy.js';

const policy: RestartPolicy = {
  backoff: { initialMs: 10, maxMs: 100, factor: 2 },
  intensity: { maxRestarts: 3, withinMs: 1_000 },
  stableAfterMs: 500,
};

/** A fake clock: crashes at given times, each after the given uptime. */
function replay(events: { at: number; uptime: number }[]) {
  let state: SupervisorState = initialSupervisorState;
  const decisions = [];
  for (const e of events) {
    const out = onCrash(policy, state, e.at, e.uptime);
    state = out.state;
    decisions.push(out.decision);
  }
  return { state, decisions };
}

describe('supervisor policy', () => {
  test('backoff doubles from initialMs and is capped at maxMs', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6].map((n) => backoffDelay(policy, n)),
      [10, 20, 40, 80, 100, 100],
    );
    assert.equal(backoffDelay(policy, 0), 0);
  });

  test('crashes of short-lived workers back off; a stable worker resets the backoff', () => {
    const { decisions } = replay([
      { at: 0, uptime: 10 },
      { at: 2_000, uptime: 10 },
      { at: 4_000, uptime: 10 },
      { at: 6_000, uptime: 600 }, // ran past stableAfterMs
    ]);
    assert.deepEqual(decisions, [
      { action: 'restart', delayMs: 10 },
      { action: 'restart', delayMs: 20 },
      { action: 'restart', delayMs: 40 },
      { action: 'restart', delayMs: 10 },
    ]);
  });

  test('more than maxRestarts within withinMs quarantines until a full window has passed', () => {
    const { state, decisions } = replay([
      { at: 100, uptime: 1 },
      { at: 200, uptime: 1 },
      { at: 300, uptime: 1 },
      { at: 400, uptime: 1 },
    ]);
    assert.deepEqual(decisions.at(-1), { action: 'quarantine', until: 1_400 });
    assert.equal(isQuarantined(state, 1_399), true);
    assert.equal(isQuarantined(state, 1_400), false);
    assert.equal(endQuarantine(state, 1_399), state, 'a quarantine does not end early');
    assert.deepEqual(endQuarantine(state, 1_400), initialSupervisorState);
  });

  test('crashes spread wider than the window never quarantine', () => {
    const events = Array.from({ length: 50 }, (_, i) => ({ at: i * 400, uptime: 1 }));
    const { decisions } = replay(events);
    assert.ok(decisions.every((d) => d.action === 'restart'));
  });

  test('the window slides: old crashes fall out of it', () => {
    const { state } = replay([
      { at: 0, uptime: 1 },
      { at: 100, uptime: 1 },
      { at: 1_050, uptime: 1 },
    ]);
    assert.deepEqual(state.crashTimes, [100, 1_050]);
  });

  test('maxRestarts 0 quarantines on the first crash', () => {
    const out = onCrash(
      { ...policy, intensity: { maxRestarts: 0, withinMs: 50 } },
      initialSupervisorState,
      7,
      1,
    );
    assert.deepEqual(out.decision, { action: 'quarantine', until: 57 });
  });
});

describe('heartbeat check', () => {
  test('pings when nothing is pending, waits, then declares the worker hung after two intervals', () => {
    assert.equal(heartbeatCheck(undefined, 1_000, 100, 0), 'ping');
    assert.equal(heartbeatCheck(1_000, 1_100, 100, 0), 'wait');
    assert.equal(heartbeatCheck(1_000, 1_199, 100, 0), 'wait');
    assert.equal(heartbeatCheck(1_000, 1_200, 100, 0), 'hung');
  });

  test('a tick that fired late (the pool itself stalled) gives grace instead of a verdict', () => {
    assert.equal(heartbeatCheck(1_000, 5_000, 100, 3_900), 'grace');
    assert.equal(heartbeatCheck(undefined, 5_000, 100, 101), 'grace');
    assert.equal(heartbeatCheck(1_000, 1_250, 100, 100), 'hung');
  });
});
