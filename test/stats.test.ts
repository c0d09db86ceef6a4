import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LatencyRecorder } from '../src/pool/stats.js';

function exactPercentile(sorted: number[], p: number): number {
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

test('latency percentiles: exact below 256 µs, within 0.4% above, max and count exact', () => {
  let seed = 99;
  const random = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  for (const spread of [100, 5_000, 2_000_000]) {
    const recorder = new LatencyRecorder();
    const samplesUs: number[] = [];
    for (let i = 0; i < 20_000; i++) {
      const us = 1 + Math.floor(random() ** 3 * spread);
      samplesUs.push(us);
      recorder.recordMs(us / 1000);
    }
    samplesUs.sort((a, b) => a - b);
    for (const p of [1, 50, 90, 99, 99.9, 100]) {
      const exact = exactPercentile(samplesUs, p);
      const got = recorder.percentileUs(p);
      if (exact < 256) assert.equal(got, exact, `p${p} of spread ${spread}`);
      else assert.ok(Math.abs(got - exact) / exact <= 0.004, `p${p} of spread ${spread}: ${got} vs ${exact}`);
    }
    const summary = recorder.summary();
    assert.equal(summary.count, 20_000);
    assert.equal(summary.max, samplesUs.at(-1)! / 1000);
  }
});

test('latency edge cases: empty, sub-microsecond, and beyond the last bucket', () => {
  const recorder = new LatencyRecorder();
  assert.deepEqual(recorder.summary(), { p50: 0, p99: 0, max: 0, count: 0 });
  recorder.recordMs(0);
  recorder.recordMs(0.0004);
  assert.equal(recorder.percentileUs(100), 1, 'below 1 µs counts as 1 µs');
  recorder.recordMs(3 * 3_600_000); // three hours: beyond the last bucket
  assert.equal(recorder.summary().max, 3 * 3_600_000);
  assert.ok(recorder.percentileUs(100) >= 2 ** 30, 'it lands in the last bucket, not a low one');
  assert.equal(recorder.summary().count, 3);
});
