import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { crashCommand, parseCrashArgs } from '../src/cli/crash.js';
import { UsageError } from '../src/cli/usage.js';
import {
  account,
  classifyFailure,
  DOWN_CODE,
  type Outcome,
  type RequestRecord,
  windowOf,
} from '../src/lab/crash/accounting.js';
import { planLab } from '../src/lab/crash/lab.js';
import { crashedShare, near, refinedModel, seedModel } from '../src/lab/crash/model.js';
import {
  actions,
  arrivals,
  crashSchedule,
  expectedRequests,
  seededRandom,
} from '../src/lab/crash/schedule.js';

describe('crash lab: the load generator schedule', () => {
  test('fixed arrivals: one every 1000/rate ms from 0, all inside the run', () => {
    const times = arrivals({ ratePerSec: 1000, durationMs: 2000, process: 'fixed' });
    assert.equal(times.length, 2000);
    assert.equal(times[0], 0);
    assert.equal(times.at(-1), 1999);
    for (let i = 1; i < times.length; i++) assert.equal(times[i]! - times[i - 1]!, 1);
    assert.deepEqual(
      arrivals({ ratePerSec: 3, durationMs: 1000, process: 'fixed' }).map((t) => Math.round(t)),
      [0, 333, 667],
    );
  });

  test('Poisson arrivals: the right rate on average, ascending, inside the run, the same for the same seed', () => {
    const plan = { ratePerSec: 1000, durationMs: 10_000, process: 'poisson' as const, seed: 7 };
    const times = arrivals(plan);
    const mean = expectedRequests(plan);
    assert.ok(
      Math.abs(times.length - mean) < 4 * Math.sqrt(mean),
      `${times.length} arrivals, expected about ${mean}`,
    );
    for (let i = 1; i < times.length; i++) assert.ok(times[i]! >= times[i - 1]!);
    assert.ok(times[0]! >= 0 && times.at(-1)! < plan.durationMs);
    assert.deepEqual(arrivals(plan), times);
    assert.notDeepEqual(arrivals({ ...plan, seed: 8 }).slice(0, 10), times.slice(0, 10));
    // Exponential gaps: about as many gaps above the mean as e^-1 of them.
    const above = times.slice(1).filter((t, i) => t - times[i]! > 1).length / (times.length - 1);
    assert.ok(Math.abs(above - Math.exp(-1)) < 0.03, `share of gaps above the mean: ${above}`);
  });

  test('the seeded generator is uniform in [0, 1)', () => {
    const random = seededRandom(1);
    const draws = Array.from({ length: 10_000 }, random);
    assert.ok(draws.every((x) => x >= 0 && x < 1));
    const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
    assert.ok(Math.abs(mean - 0.5) < 0.02);
  });

  test('load is bounded: a plan beyond the request limit, or with no rate, is refused', () => {
    assert.throws(
      () => arrivals({ ratePerSec: 1000, durationMs: 10_000, process: 'fixed', maxRequests: 5000 }),
      RangeError,
    );
    assert.throws(() => arrivals({ ratePerSec: 0, durationMs: 1000, process: 'fixed' }), RangeError);
    assert.throws(() => arrivals({ ratePerSec: 10, durationMs: -1, process: 'poisson' }), RangeError);
  });

  test('crashes are sorted, inside the run, and come before a request sent at the same time', () => {
    const crashes = crashSchedule([300, 100], 'sigkill', 1000);
    assert.deepEqual(
      crashes.map((c) => c.atMs),
      [100, 300],
    );
    assert.throws(() => crashSchedule([1000], 'sigkill', 1000), RangeError);
    assert.throws(() => crashSchedule([0], 'sigkill', 1000), RangeError);
    const plan = actions([0, 100, 200], crashSchedule([100, 900], 'hang', 1000));
    assert.deepEqual(
      plan.map((a) => (a.type === 'crash' ? `crash@${a.atMs}` : `req${a.index}@${a.atMs}`)),
      ['req0@0', 'crash@100', 'req1@100', 'req2@200', 'crash@900'],
    );
  });
});

describe("crash lab: the model's arithmetic", () => {
  test("the seed's two numbers: 1000/s × 500 ms = 500, and 100/s each of 10 workers × 500 ms = 50", () => {
    assert.equal(seedModel({ ratePerSec: 1000, share: crashedShare(1, true), restartMs: 500 }), 500);
    assert.equal(seedModel({ ratePerSec: 1000, share: crashedShare(10, false), restartMs: 500 }), 50);
    // A thread fault that kills the process takes all ten threads: the share is all of it.
    assert.equal(crashedShare(10, true), 1);
    assert.throws(() => crashedShare(0, false), RangeError);
  });

  test('refined, naive: in flight (Little) + sent before it was noticed + arrivals until it is back', () => {
    const m = refinedModel({
      ratePerSec: 1000,
      share: 1,
      inSystemMs: 10,
      detectMs: 20,
      downMs: 520,
      retries: false,
      holdsArrivals: false,
    });
    assert.deepEqual(m, {
      unitRatePerSec: 1000,
      inFlight: 10,
      unnoticed: 20,
      arrivalsWhileDown: 500,
      retried: 0,
      dropped: 530,
    });
  });

  test('refined, with retries and routing around: nothing dropped, the hit ones retried', () => {
    const input = { ratePerSec: 1000, share: 0.1, inSystemMs: 10, detectMs: 10, downMs: 510 };
    const both = refinedModel({ ...input, retries: true, holdsArrivals: true });
    assert.equal(both.dropped, 0);
    assert.ok(Math.abs(both.retried - 2) < 1e-9);
    const retriesOnly = refinedModel({ ...input, retries: true, holdsArrivals: false });
    assert.ok(Math.abs(retriesOnly.dropped - 50) < 1e-9);
    const routingOnly = refinedModel({ ...input, retries: false, holdsArrivals: true });
    assert.ok(Math.abs(routingOnly.dropped - 2) < 1e-9);
    assert.throws(
      () => refinedModel({ ...input, downMs: Number.NaN, retries: false, holdsArrivals: false }),
      RangeError,
    );
  });

  test('near: within 20% or 2 requests; Poisson counts get three standard deviations', () => {
    assert.ok(near(52, 50));
    assert.ok(!near(70, 50));
    assert.ok(near(70, 50, 0.2, true));
    assert.ok(near(2, 0));
    assert.ok(!near(3, 0));
  });

  test('the seed scenario plans its two cases, each naive and with isolane', () => {
    const { cases, runs } = planLab({
      scenario: 'seed',
      topology: 'processes',
      crashKind: 'sigkill',
      policies: ['naive', 'isolane'],
      ratePerSec: 1000,
      arrivals: 'fixed',
      seed: 1,
      workers: 10,
      restartMs: 500,
      serviceMs: 10,
      serviceKind: 'wait',
      spares: 1,
      durationMs: 2000,
      crashAtMs: [600],
      quick: true,
    });
    assert.deepEqual(
      cases.map((c) => [c.topology, c.crashKind, c.seedModel]),
      [
        ['threads', 'fatal', 500],
        ['processes', 'sigkill', 50],
      ],
    );
    assert.equal(runs.length, 4);
    assert.deepEqual(
      runs.map((r) => r.policy),
      ['naive', 'isolane', 'naive', 'isolane'],
    );
  });
});

describe('crash lab: the accounting', () => {
  const ok = (attempts = 1): Outcome => ({ ok: true, attempts });
  const failed = (code: string, attempts = 1): Outcome => ({ ok: false, attempts, code });
  const record = (intendedMs: number, outcome: Outcome | undefined, latencyMs = 10): RequestRecord => ({
    intendedMs,
    settledMs: outcome ? intendedMs + latencyMs : undefined,
    outcome,
  });

  test('windows by scheduled send time: before the crash, until the unit is back, after', () => {
    const crashes = [{ atMs: 100, untilMs: 200 }];
    assert.equal(windowOf(99.9, crashes), 'before');
    assert.equal(windowOf(100, crashes), 'during');
    assert.equal(windowOf(199, crashes), 'during');
    assert.equal(windowOf(200, crashes), 'after');
    assert.equal(windowOf(5000, []), 'before');
  });

  test('sent = completed + failed; retried counts each request once, whatever its outcome', () => {
    const records = [
      record(0, ok()),
      record(10, ok(2)),
      record(20, ok(3)),
      record(150, failed(DOWN_CODE)),
      record(160, failed('ERR_ISOLANE_WORKER_CRASHED', 2)),
      record(170, failed('ERR_ISOLANE_TIMEOUT')),
      record(300, failed('ERR_SOMETHING')),
    ];
    const a = account(records, [{ atMs: 100, untilMs: 200 }]);
    assert.equal(a.sent, 7);
    assert.equal(a.completed, 3);
    assert.equal(a.failed, 4);
    assert.equal(a.retried, 3);
    assert.equal(a.unsettled, 0);
    assert.ok(a.balanced);
    assert.deepEqual(a.failedBy, { refused: 1, crashed: 1, timeout: 1, other: 1 });
    assert.deepEqual([a.windows.before.sent, a.windows.during.sent, a.windows.after.sent], [3, 3, 1]);
    assert.equal(a.windows.during.completed, 0);
    assert.equal(a.windows.during.p50Ms, null);
  });

  test('an unsettled request breaks the balance', () => {
    const a = account([record(0, ok()), record(1, undefined)], []);
    assert.equal(a.unsettled, 1);
    assert.ok(!a.balanced);
  });

  test('latency is counted from the scheduled send time, completed requests only', () => {
    const records = Array.from({ length: 101 }, (_, i) => record(i, ok(), i));
    records.push(record(200, failed(DOWN_CODE), 1000));
    const w = account(records, []).windows.before;
    assert.equal(w.p50Ms, 50);
    assert.equal(w.p99Ms, 99);
    assert.equal(w.meanMs, 50);
  });

  test('failure kinds', () => {
    assert.equal(classifyFailure(DOWN_CODE), 'refused');
    assert.equal(classifyFailure('ERR_ISOLANE_QUEUE_FULL'), 'refused');
    assert.equal(classifyFailure('ERR_ISOLANE_QUARANTINED'), 'refused');
    assert.equal(classifyFailure('ERR_ISOLANE_WORKER_CRASHED'), 'crashed');
    assert.equal(classifyFailure('ERR_ISOLANE_TIMEOUT'), 'timeout');
    assert.equal(classifyFailure('ERR_ISOLANE_TASK'), 'other');
  });
});

describe('crash lab: the command line', () => {
  test('defaults: the seed scenario at the seed\u2019s numbers', () => {
    const options = parseCrashArgs([]);
    assert.ok(options !== 'help');
    assert.equal(options.scenario, 'seed');
    assert.deepEqual(
      [options.ratePerSec, options.workers, options.restartMs, options.spares, options.durationMs],
      [1000, 10, 500, 1, 5000],
    );
    const quick = parseCrashArgs(['--quick']);
    assert.ok(quick !== 'help' && quick.durationMs === 2000 && quick.crashAtMs[0] === 600);
  });

  test('a topology or a crash kind means a custom scenario; threads crash fatally by default', () => {
    const options = parseCrashArgs(['--topology', 'threads', '--policy', 'isolane', '--arrivals', 'poisson']);
    assert.ok(options !== 'help');
    assert.deepEqual(
      [options.scenario, options.topology, options.crashKind, options.policies, options.arrivals],
      ['custom', 'threads', 'fatal', ['isolane'], 'poisson'],
    );
  });

  for (const [args, pattern] of [
    [['--scenario', 'seed', '--crash', 'oom'], /--crash applies to --scenario custom/],
    [['--topology', 'processes', '--crash', 'process'], /does not apply to --topology processes/],
    [['--topology', 'threads', '--crash', 'sigkill'], /does not apply to --topology threads/],
    [['--crash', 'meteor'], /--crash: unknown value 'meteor'/],
    [['--rate', '20000', '--duration', '600000'], /the limit is 200000/],
    [['--crash-at', '5000', '--duration', '2000'], /--crash-at must be an integer from 1 to 1999/],
    [['--workers', '0'], /--workers must be an integer from 1 to 64/],
    [['--service-kind', 'gpu'], /--service-kind: unknown value 'gpu'/],
    [['--frobnicate'], /Unknown option '--frobnicate'/],
  ] as const) {
    test(`bad flags: ${args.join(' ')}`, async () => {
      assert.throws(
        () => parseCrashArgs([...args]),
        (err: Error) => err instanceof UsageError && pattern.test(err.message),
      );
      await assert.rejects(crashCommand([...args]), UsageError);
    });
  }
});
