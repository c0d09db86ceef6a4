import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { BenchReport } from '../src/lab/bench/run.js';
import { childPids, eventually } from './helpers.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const SCHEMA = JSON.parse(readFileSync(new URL('../../docs/bench.schema.json', import.meta.url), 'utf8'));
const cache = mkdtempSync(join(tmpdir(), 'isolane-cache-'));

after(() => rmSync(cache, { recursive: true, force: true }));

function cli(args: string[], timeout = 120_000) {
  return spawnSync(process.execPath, [CLI, ...args], {
    encoding: 'utf8',
    timeout,
    env: { ...process.env, XDG_CACHE_HOME: cache },
  });
}

describe('isolane bench', () => {
  test('--quick --json measures every transport, with positive figures, and matches the documented schema', async () => {
    const run = cli(['bench', '--quick', '--json']);
    assert.equal(run.status, 0, run.stderr);
    const report = JSON.parse(run.stdout) as BenchReport;
    const ajv = new Ajv2020({ allErrors: true, strict: false });
    const validate = ajv.compile(SCHEMA);
    assert.ok(validate(report), JSON.stringify(validate.errors, null, 2));
    assert.deepEqual(report.errors, []);
    const measured = new Set(report.results.map((r) => r.transport));
    assert.deepEqual([...measured].sort(), [...report.plan.transports].sort());
    assert.equal(report.results.length, report.plan.transports.length * 2);
    for (const r of report.results) {
      assert.ok(r.rtt.p50Us > 0 && r.rtt.p99Us >= r.rtt.p50Us * 0.99, `${r.transport} ${r.size}`);
      for (const t of r.oneWay)
        assert.ok(t.messagesPerSec > 0 && t.cpuUsPerMessage > 0, `${r.transport} ${r.size}`);
    }
    const rtt = (t: string) => report.results.find((r) => r.transport === t && r.size === 'tiny')!.rtt.p50Us;
    assert.ok(rtt('direct') < rtt('postMessage'), 'a direct call is cheaper than a postMessage round trip');
    assert.ok(report.claims.length >= 6);
    // The calibration file holds what was measured.
    const calibration = JSON.parse(readFileSync(join(cache, 'isolane', 'calibration.json'), 'utf8'));
    assert.equal(calibration.bench.results.length, report.results.length);
    assert.ok(await eventually(() => childPids().length === 0));
  });

  test('the table names the machine, the transports and the verdicts', () => {
    const run = cli([
      'bench',
      '--quick',
      '--transports',
      'direct,postMessage,busy-poll,atomics-wait,unix',
      '--size',
      'tiny',
    ]);
    assert.equal(run.status, 0, run.stderr);
    assert.match(run.stdout, /cores/);
    assert.match(run.stdout, /Node v20/);
    for (const t of ['direct', 'postMessage', 'busy-poll', 'unix'])
      assert.match(run.stdout, new RegExp(`│ ${t}\\s`));
    assert.match(run.stdout, /Threads communicate in about 100 ns/);
    assert.match(run.stdout, /One wake-up of a sleeping receiver costs/);
    assert.match(run.stdout, /calibration written to .*calibration\.json/);
  });

  for (const [args, pattern] of [
    [['bench', '--transports', 'carrier-pigeon'], /unknown value 'carrier-pigeon'; allowed: direct/],
    [['bench', '--size', 'huge'], /--size: unknown value 'huge'/],
    [['bench', '--duration=-3'], /--duration must be an integer/],
    [['bench', '--cores', 'many'], /--cores: unknown value 'many'/],
    [['bench', '--frobnicate'], /Unknown option '--frobnicate'/],
    [['teleport'], /unknown command 'teleport'/],
  ] as const) {
    test(`bad input: ${args.join(' ')} exits 2 with a clear error and the usage`, () => {
      const run = cli([...args], 20_000);
      assert.equal(run.status, 2);
      assert.match(run.stderr, pattern);
      assert.match(run.stderr, /usage: isolane/);
    });
  }

  test('help and version', () => {
    const help = cli(['help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /isolane bench/);
    const version = cli(['--version']);
    assert.match(version.stdout, /^\d+\.\d+\.\d+/);
  });
});
