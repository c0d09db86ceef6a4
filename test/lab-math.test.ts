import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { allCosts, checkClaims, costAtRates, wakeUpCost } from '../src/lab/bench/derive.js';
import type { TransportResult } from '../src/lab/bench/transports.js';
import { micros, rate, share } from '../src/lab/format.js';
import { checkThreshold, compareFigure, coreShare, crossoverRate, percentile } from '../src/lab/math.js';

describe('lab arithmetic', () => {
  test('percentile interpolates between closest ranks and ignores input order', () => {
    const samples = [5, 1, 4, 2, 3];
    assert.equal(percentile(samples, 0), 1);
    assert.equal(percentile(samples, 50), 3);
    assert.equal(percentile(samples, 100), 5);
    assert.equal(percentile(samples, 25), 2);
    assert.equal(percentile([10, 20], 99), 19.9);
    assert.equal(percentile([7], 99), 7);
    assert.throws(() => percentile([], 50), RangeError);
    assert.throws(() => percentile([1], 101), RangeError);
  });

  test('core share and crossover rates', () => {
    assert.equal(coreShare(5, 1_000_000), 5); // the seed's 5 µs at 1M/s = 500% of a core
    assert.equal(coreShare(0.1, 1_000_000), 0.1);
    assert.equal(coreShare(2, 10_000), 0.02);
    assert.equal(crossoverRate(5, 0.05), 10_000);
    assert.equal(crossoverRate(4, 0.5), 125_000);
    assert.equal(crossoverRate(0, 0.5), Number.POSITIVE_INFINITY);
  });

  test('verdicts: within 2x holds, beyond is off by the factor either way', () => {
    assert.deepEqual(compareFigure(5, 7.5), { verdict: 'holds', factor: 1.5, label: 'holds' });
    assert.deepEqual(compareFigure(0.1, 25), { verdict: 'off', factor: 250, label: 'off by 250x' });
    const low = compareFigure(1000, 5);
    assert.equal(low.label, 'off by 200x');
    assert.equal(low.factor, 0.005);
    assert.equal(compareFigure(1, 2.5).label, 'off by 2.5x');
    assert.equal(compareFigure(1, 12).label, 'off by 12x');
    assert.throws(() => compareFigure(0, 1), RangeError);
  });

  test('threshold claims hold or do not', () => {
    assert.equal(checkThreshold(0.036, 0.05, true).verdict, 'holds');
    assert.equal(checkThreshold(0.078, 0.05, true).verdict, 'does not hold');
    assert.equal(checkThreshold(0.36, 0.25, false).verdict, 'holds');
    assert.equal(checkThreshold(0.1, 0.25, false).verdict, 'does not hold');
  });

  test('formatting', () => {
    assert.equal(micros(0.0031), '0.0031 µs');
    assert.equal(micros(0.15), '0.150 µs');
    assert.equal(micros(52.34), '52.3 µs');
    assert.equal(micros(1234.5), '1,235 µs');
    assert.equal(rate(950), '950/s');
    assert.equal(rate(12_500), '12.5k/s');
    assert.equal(rate(1_400_000), '1.40M/s');
    assert.equal(share(0.004), '0.40%');
    assert.equal(share(0.36), '36%');
    assert.equal(share(3.6), '360%');
  });
});

function result(transport: string, rttUs: number, cpuUs: number, batchedCpuUs: number): TransportResult {
  return {
    transport,
    kind: transport.startsWith('ipc') || transport === 'unix' ? 'process' : 'thread',
    size: 'tiny',
    bytes: 20,
    rtt: { p50Us: rttUs, p99Us: rttUs * 2, samples: 100, block: 1 },
    idleRtt: null,
    oneWay: [
      { batch: 1, messagesPerSec: 1e6 / cpuUs, cpuUsPerMessage: cpuUs },
      { batch: 64, messagesPerSec: 1e6 / batchedCpuUs, cpuUsPerMessage: batchedCpuUs },
    ],
    cores: { placement: 'cross', caller: 0, peer: 1, sameCore: false },
  };
}

// The brief's figures for this machine, as fixed inputs.
const FIXED = [
  result('postMessage', 50, 1.6, 0.35),
  result('atomics-wait', 50.3, 0.5, 0.2),
  result('busy-poll', 0.15, 0.02, 0.02),
  result('unix', 58, 3.6, 0.4),
];

describe('communication-tax derivations on fixed inputs', () => {
  test('shares at the four rates and the 5% / 50% crossings', () => {
    const c = costAtRates(FIXED[3]!, FIXED[3]!.oneWay[0]!);
    assert.deepEqual(
      c.shares.map((s) => Number(s.toFixed(4))),
      [0.0036, 0.036, 0.36, 3.6],
    );
    assert.equal(Math.round(c.fivePercentAt), 13_889);
    assert.equal(Math.round(c.fiftyPercentAt), 138_889);
    assert.equal(allCosts(FIXED).length, 8);
  });

  test('each claim gets the measured figure and a verdict', () => {
    const claims = Object.fromEntries(checkClaims(FIXED).map((c) => [c.id, c]));
    assert.equal(claims['thread-latency']?.label, 'off by 250x'); // 25 µs one way vs 0.1 µs
    assert.equal(claims['process-latency']?.label, 'off by 5.8x'); // 29 µs vs 5 µs
    assert.equal(claims['process-vs-thread']?.label, 'off by 862x'); // 1.16x vs 1000x
    assert.equal(claims['thread-cost-1m']?.label, 'off by 16x'); // 160% vs 10%
    assert.equal(claims['process-cost-1m']?.label, 'holds'); // 360% vs 500%
    assert.equal(claims['below-10k']?.verdict, 'holds'); // 3.6% at 10k/s
    assert.equal(claims['above-100k']?.verdict, 'holds'); // 36% at 100k/s
    for (const c of Object.values(claims)) assert.ok(c.why.length > 20, c.id);
  });

  test('claims whose transports were not measured are left out', () => {
    const claims = checkClaims([FIXED[0]!]);
    assert.deepEqual(
      claims.map((c) => c.id),
      ['thread-latency', 'thread-cost-1m'],
    );
  });

  test('the wake-up cost is half the difference between sleeping and spinning round trips', () => {
    assert.equal(wakeUpCost(FIXED)?.us, (50.3 - 0.15) / 2);
    assert.equal(wakeUpCost([FIXED[0]!]), null);
  });
});
