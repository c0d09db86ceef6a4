// Short crash runs of every topology, naive and with isolane's policies. Each run sends 180
// requests over 0.9 s (200/s) to 2 workers, crashes one at 300 ms, and restarts it in 150 ms.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Policy } from '../src/lab/crash/backend.js';
import { type RunConfig, type RunResult, runOnce } from '../src/lab/crash/runner.js';
import type { CrashKind } from '../src/lab/crash/schedule.js';
import type { TopologyId } from '../src/lab/crash/topologies.js';
import { childPids, eventually, threadCount } from './helpers.js';

const RUN_TIMEOUT_MS = 30_000;
let threadsBefore = 0;

before(() => {
  threadsBefore = threadCount();
});

after(async () => {
  assert.ok(await eventually(() => childPids().length === 0), `child processes left: ${childPids()}`);
  assert.ok(await eventually(() => threadCount() <= threadsBefore), 'worker threads left behind');
});

function config(topology: TopologyId, policy: Policy, crashKind: CrashKind): RunConfig {
  return {
    id: `${topology}/${policy}/${crashKind}`,
    topology,
    policy,
    crashKind,
    workers: 2,
    ratePerSec: 200,
    arrivals: 'fixed',
    seed: 1,
    durationMs: 900,
    serviceMs: 5,
    serviceKind: 'wait',
    crashAtMs: [300],
    restartMs: 150,
    spares: 1,
  };
}

/** The invariants of every run: every request counted once, the crash seen and recovered from. */
function checkCounts(r: RunResult, reasons: readonly string[]): void {
  const a = r.accounting;
  // Everything needed to tell what happened, should an assertion fail.
  const info = `${r.id}: ${JSON.stringify({ crashes: r.crashes, failedBy: a.failedBy, retried: a.retried, restart: r.restart })}`;
  assert.deepEqual(r.errors, [], info);
  assert.equal(a.sent, 180, info);
  assert.equal(a.unsettled, 0, info);
  assert.equal(a.sent, a.completed + a.failed, `sent = completed + failed; ${info}`);
  assert.ok(a.balanced, info);
  assert.equal(
    a.failed,
    Object.values(a.failedBy).reduce((x, y) => x + y, 0),
    `every failure has one kind; ${info}`,
  );
  assert.ok(a.retried <= a.sent, `a retried request is counted once; ${info}`);
  const w = a.windows;
  assert.equal(w.before.sent + w.during.sent + w.after.sent, a.sent, info);
  assert.equal(r.crashes.length, 1, info);
  const c = r.crashes[0]!;
  assert.ok(
    reasons.includes(c.reason ?? ''),
    `crash reason ${c.reason}, expected one of ${reasons.join(', ')}; ${info}`,
  );
  assert.ok(c.detectedMs !== null && c.detectedMs >= c.atMs, info);
  assert.ok(c.backMs !== null && c.backMs > c.atMs, `the crashed unit came back; ${info}`);
  assert.ok(r.restart.unitStartupMs > 0, info);
}

/** With isolane's defaults, nothing fails. */
function checkNothingLost(r: RunResult): void {
  assert.equal(
    r.accounting.failed,
    0,
    `${r.id}: ${JSON.stringify({ crashes: r.crashes, failedBy: r.accounting.failedBy })}`,
  );
  assert.equal(r.accounting.completed, r.accounting.sent);
}

const DEFAULT_KIND: Record<TopologyId, CrashKind> = {
  'one-process': 'sigkill',
  processes: 'sigkill',
  threads: 'fatal',
};

describe('crash lab: a short crash run of each topology', () => {
  for (const topology of ['one-process', 'processes', 'threads'] as const) {
    const kind = DEFAULT_KIND[topology];
    test(`${topology}, ${kind}, naive: the counts add up, and requests are lost`, {
      timeout: RUN_TIMEOUT_MS,
    }, async () => {
      const r = await runOnce(config(topology, 'naive', kind));
      checkCounts(r, ['signal']);
      assert.ok(r.accounting.failed > 0, 'without retries or routing around, a crash loses requests');
      assert.equal(r.accounting.retried, 0);
      assert.ok(r.accounting.failedBy.refused > 0, 'requests sent to the dead unit are refused');
    });

    test(`${topology}, ${kind}, isolane's defaults: the counts add up, and nothing fails`, {
      timeout: RUN_TIMEOUT_MS,
    }, async () => {
      const r = await runOnce(config(topology, 'isolane', kind));
      checkCounts(r, ['signal']);
      checkNothingLost(r);
      assert.equal(r.model.refined.dropped, 0);
    });
  }
});

describe('crash lab: other ways to die, with isolane\u2019s defaults nothing fails', () => {
  const cases: [TopologyId, CrashKind, string[]][] = [
    ['processes', 'uncaught', ['uncaught']],
    ['processes', 'hang', ['hang']],
    // A worker near its heap limit spends a while in garbage collection before V8 gives up; the
    // heartbeat may notice first.
    ['threads', 'oom', ['oom', 'hang']],
    ['one-process', 'hang', ['hang']],
  ];
  for (const [topology, kind, reasons] of cases) {
    test(`${topology}, ${kind}`, { timeout: RUN_TIMEOUT_MS }, async () => {
      const r = await runOnce(config(topology, 'isolane', kind));
      checkCounts(r, reasons);
      checkNothingLost(r);
    });
  }

  test('threads, uncaught, naive: only the thread dies; the server and the other thread go on', {
    timeout: RUN_TIMEOUT_MS,
  }, async () => {
    const r = await runOnce(config('threads', 'naive', 'uncaught'));
    checkCounts(r, ['uncaught']);
    assert.equal(r.crashes[0]!.scope, 'inner unit 0');
    assert.equal(r.restart.unit, 'thread');
    // Half the requests go to the other thread, which never stopped: far fewer lost than the whole run.
    assert.ok(r.accounting.failed > 0 && r.accounting.failed < r.accounting.sent / 2);
  });
});
