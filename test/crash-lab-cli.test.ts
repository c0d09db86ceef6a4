import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { CrashReport } from '../src/lab/crash/lab.js';
import { childPids, eventually } from './helpers.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const SCHEMA = JSON.parse(readFileSync(new URL('../../docs/crash.schema.json', import.meta.url), 'utf8'));

function cli(args: string[], timeout = 60_000) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout });
}

after(async () => {
  assert.ok(await eventually(() => childPids().length === 0), `child processes left: ${childPids()}`);
});

/** Small enough to run in a few seconds: 200 requests per run at 200/s, 3 workers, a 200 ms restart. */
const SMALL = [
  '--quick',
  '--rate',
  '200',
  '--workers',
  '3',
  '--restart-ms',
  '200',
  '--duration',
  '1000',
  '--crash-at',
  '300',
];

describe('isolane crash', () => {
  test('--scenario seed --json: both cases, naive and isolane, matching the documented schema', () => {
    const run = cli(['crash', '--scenario', 'seed', '--json', ...SMALL]);
    assert.equal(run.status, 0, run.stderr);
    const report = JSON.parse(run.stdout) as CrashReport;
    const validate = new Ajv2020({ allErrors: true, strict: false }).compile(SCHEMA);
    assert.ok(validate(report), JSON.stringify(validate.errors, null, 2));
    assert.deepEqual(report.errors, []);
    assert.deepEqual(
      report.cases.map((c) => [c.topology, c.crashKind, Math.round(c.seedModel * 1000) / 1000]),
      [
        ['threads', 'fatal', 40],
        ['processes', 'sigkill', 13.333],
      ],
    );
    assert.equal(report.runs.length, 4);
    for (const r of report.runs) {
      const a = r.accounting;
      assert.equal(a.sent, 200, r.id);
      assert.equal(a.completed + a.failed, a.sent, `${r.id}: sent = completed + failed`);
      assert.ok(a.balanced, r.id);
      assert.ok(r.why.length > 0);
      if (r.config.policy === 'isolane') assert.equal(a.failed, 0, `${r.id} lost requests: ${r.why}`);
      else assert.ok(a.failed > 0, `${r.id} lost nothing without isolane's policies`);
    }
  });

  test('the table: the model beside the measurements, naive and with isolane, and why', () => {
    const run = cli([
      'crash',
      '--topology',
      'one-process',
      '--quick',
      '--rate',
      '100',
      '--duration',
      '600',
      '--crash-at',
      '200',
      '--restart-ms',
      '100',
    ]);
    assert.equal(run.status, 0, run.stderr);
    for (const heading of [
      'model (seed)',
      'model (refined)',
      'measured naive: lost',
      'measured with isolane: lost',
    ])
      assert.ok(run.stdout.includes(heading), heading);
    assert.match(run.stdout, /1 process doing everything at 100\/s; crash: sigkill/);
    assert.match(run.stdout, /custom\/naive: \d+ lost against the seed's 10/);
    assert.match(run.stdout, /custom\/isolane: Nothing lost\./);
    assert.match(run.stdout, /The seed’s model:\n {2}- Right:/);
    assert.match(run.stdout, /Node v20/);
  });

  for (const [args, pattern] of [
    [['crash', '--rate', 'lots'], /--rate must be an integer/],
    [
      ['crash', '--topology', 'threads', '--crash', 'sigkill'],
      /--crash sigkill does not apply to --topology threads/,
    ],
    [['crash', '--scenario', 'seed', '--topology', 'threads'], /--topology applies to --scenario custom/],
    [['crash', '--arrivals', 'bursty'], /--arrivals: unknown value 'bursty'/],
  ] as const) {
    test(`bad input: ${args.join(' ')} exits 2 with the error and the usage`, () => {
      const run = cli([...args], 20_000);
      assert.equal(run.status, 2);
      assert.match(run.stderr, pattern);
      assert.match(run.stderr, /usage: isolane/);
      assert.match(run.stderr, /isolane crash \[options\]/);
    });
  }

  test('help', () => {
    const help = cli(['crash', '--help']);
    assert.equal(help.status, 0);
    assert.match(help.stdout, /--restart-ms <ms>/);
    assert.match(cli(['help']).stdout, /crash {6}what one crash costs/);
  });
});
