// The escape lab's pieces that need no harness: memory layout and scanning, secrets, verdicts,
// the command line and the JSON schema.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parseEscapeArgs } from '../src/cli/escape.js';
import { UsageError } from '../src/cli/usage.js';
import type { AttackEvidence } from '../src/lab/escape/attacker.js';
import { defaultBounds } from '../src/lab/escape/bounds.js';
import { overwrite, parseMaps, scanMemory, scanOrder } from '../src/lab/escape/memscan.js';
import { PROBE_IDS } from '../src/lab/escape/probes.js';
import { bar, runEscape } from '../src/lab/escape/runner.js';
import { findSecret, newSecret, PREFIXES, redact, SECRET_LENGTH, sha256 } from '../src/lab/escape/secrets.js';
import { type HogMeasure, judge, judgeHog, type ProbeOutcome } from '../src/lab/escape/verdict.js';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));
const SCHEMA = JSON.parse(readFileSync(new URL('../../docs/escape.schema.json', import.meta.url), 'utf8'));
const bounds = defaultBounds(true, 2);

describe('secrets', () => {
  test('a secret is its marker and 24 hex digits; findSecret knows it only by its hash', () => {
    const secret = newSecret('buffer');
    assert.equal(secret.length, SECRET_LENGTH);
    assert.match(secret.toString('latin1'), /^ISLB:[0-9a-f]{24}$/);
    const decoy = Buffer.from(`${PREFIXES.buffer}${'0'.repeat(24)}`, 'latin1');
    const haystack = Buffer.concat([Buffer.alloc(100), decoy, Buffer.alloc(7), secret, Buffer.alloc(3)]);
    const hits = findSecret(haystack, 'buffer', sha256(secret));
    assert.deepEqual(
      hits.map((h) => h.offset),
      [100 + decoy.length + 7],
    );
    assert.equal(hits[0]!.preview, redact(secret));
    assert.equal(redact(secret).length, 10, 'marker and four hex digits, never the whole secret');
  });
});

describe('memory scanning', () => {
  test('parseMaps and scanOrder: writable regions only, the malloc heap first, kernel mappings skipped', () => {
    const regions = parseMaps(
      [
        '55fc1defe000-55fc1df00000 r--p 00000000 fe:00 260131                     /usr/bin/node',
        '55fc1df09000-55fc1df0a000 rw-p 0000a000 fe:00 260131                     /usr/bin/node',
        '55fc1e000000-55fc1e100000 rw-p 00000000 00:00 0                          [heap]',
        '7f0000000000-7f0000100000 rw-p 00000000 00:00 0 ',
        '7ffd00000000-7ffd00002000 r--p 00000000 00:00 0                          [vvar]',
        '7ffd00010000-7ffd00020000 rw-p 00000000 00:00 0                          [stack]',
      ].join('\n'),
    );
    assert.equal(regions.length, 6);
    assert.equal(regions[2]!.start, 0x55fc1e000000);
    assert.deepEqual(
      scanOrder(regions).map((r) => r.path),
      ['[heap]', '', '/usr/bin/node', '[stack]'],
    );
  });

  test('finds a Buffer in this process by its hash, bounded, and overwrites it in place', () => {
    const secret = newSecret('buffer');
    const hash = sha256(secret);
    const scan = scanMemory('self', [{ kind: 'buffer', hash }], { maxBytes: 1 << 30, maxMs: 10_000 }, 4);
    assert.equal(scan.error, undefined);
    assert.ok((scan.hits.buffer?.length ?? 0) > 0, `not found in ${scan.bytesScanned} bytes`);
    const replacement = Buffer.from(`ISLB:${'x'.repeat(24)}`, 'latin1');
    const w = overwrite('self', scan.hits.buffer!, hash, replacement);
    assert.ok(w.written.length > 0);
    assert.equal(secret.toString('latin1'), replacement.toString('latin1'));
  });

  test('stops at its byte bound', () => {
    const scan = scanMemory('self', [{ kind: 'heap', hash: '0'.repeat(64) }], { maxBytes: 1, maxMs: 10_000 });
    assert.equal(scan.stoppedBy, 'bytes');
    assert.ok(scan.bytesScanned <= 4 * 1024 * 1024);
  });

  test('a process that does not exist: ENOENT, not a throw', () => {
    const scan = scanMemory(2 ** 22 + 12345, [{ kind: 'heap', hash: '0'.repeat(64) }], {
      maxBytes: bounds.scanBytes,
      maxMs: bounds.scanMs,
    });
    assert.equal(scan.error, 'ENOENT');
    assert.equal(scan.stoppedBy, 'error');
  });
});

function evidence(probe: AttackEvidence['probe'], over: Partial<AttackEvidence>): AttackEvidence {
  return { probe, attacker: { pid: 2, uid: 0 }, attempts: [], succeeded: false, ...over };
}

describe('verdicts', () => {
  const base: Omit<ProbeOutcome, 'probe'> = { victimPid: 10 };

  test('a read that found the secret is allowed; one that failed is blocked with its errno', () => {
    const allowed = judge(
      {
        ...base,
        probe: 'file',
        attack: evidence('file', { succeeded: true, attempts: [{ via: 'read /x', found: true }] }),
      },
      bounds,
    );
    assert.equal(allowed.verdict, 'allowed');
    const blocked = judge(
      {
        ...base,
        probe: 'file',
        attack: evidence('file', { attempts: [{ via: 'read /x', error: 'EACCES', found: false }] }),
      },
      bounds,
    );
    assert.deepEqual([blocked.verdict, blocked.short], ['blocked', 'EACCES']);
  });

  test('memory-write is allowed only when the victim reports its Buffer changed', () => {
    const attack = evidence('memory-write', { succeeded: true, written: ['0x1'] });
    const victim = { pid: 1, threadId: 0, planted: true, heapIntact: true, signals: null, hostPid: 10 };
    const changed = judge(
      {
        ...base,
        probe: 'memory-write',
        attack,
        victimAfter: { ...victim, bufferIntact: false, bufferNow: 'ISLB:x' },
      },
      bounds,
    );
    assert.equal(changed.verdict, 'allowed');
    const intact = judge(
      { ...base, probe: 'memory-write', attack, victimAfter: { ...victim, bufferIntact: true } },
      bounds,
    );
    assert.equal(intact.verdict, 'blocked');
  });

  test('bombs: the cap reached is allowed, stopped by a limit is blocked, a dead victim is allowed', () => {
    const capped = judge(
      {
        ...base,
        probe: 'memory-bomb',
        attack: evidence('memory-bomb', { succeeded: true, allocatedMb: bounds.bombCapMb }),
      },
      bounds,
    );
    assert.equal(capped.verdict, 'allowed');
    const limited = judge(
      {
        ...base,
        probe: 'memory-bomb',
        attackFailed: { error: 'WorkerCrashedError', reason: 'limit', limit: 'memory', signal: 'SIGKILL' },
      },
      bounds,
    );
    assert.deepEqual([limited.verdict, limited.short], ['blocked', 'memory limit']);
    const refused = judge(
      {
        ...base,
        probe: 'fork-bomb',
        attack: evidence('fork-bomb', { spawned: 12, attempts: [{ via: 'spawn', error: 'EAGAIN' }] }),
      },
      bounds,
    );
    assert.equal(refused.verdict, 'blocked');
    const victimDead = judge(
      {
        ...base,
        probe: 'fork-bomb',
        attack: evidence('fork-bomb', { spawned: 1 }),
        victimAfter: {
          pid: 1,
          threadId: 0,
          planted: false,
          bufferIntact: false,
          heapIntact: false,
          signals: 0,
          hostPid: 11,
        },
      },
      bounds,
    );
    assert.equal(victimDead.verdict, 'allowed');
  });

  test('CPU hog: starved is took everyone down, within the threshold blocked, beyond it allowed', () => {
    const lat = (p50Ms: number, p90Ms: number, count = 100) => ({
      count,
      p50Ms,
      p90Ms,
      p99Ms: p90Ms * 2,
      maxMs: p90Ms * 3,
    });
    const h = (during: HogMeasure['during']): HogMeasure => ({
      baseline: lat(0.3, 0.5),
      during,
      worstMs: 10,
      hogMs: 800,
    });
    assert.equal(judgeHog(h(lat(0, 0, 0))).verdict, 'took everyone down');
    assert.equal(judgeHog(h(lat(0.4, 1.2))).verdict, 'blocked');
    assert.equal(judgeHog(h(lat(0.4, 1.4))).verdict, 'blocked', 'within the 1 ms slack');
    assert.equal(judgeHog(h(lat(0.4, 6))).verdict, 'allowed');
    assert.equal(judgeHog(h(lat(3, 1))).verdict, 'allowed');
  });

  test('the bar: the top level all blocked, the thread level readable', () => {
    const cell = (
      level: 'thread' | 'process-limits',
      probe: (typeof PROBE_IDS)[number],
      verdict: 'blocked' | 'allowed',
    ) => ({
      level,
      probe,
      verdict,
      short: '',
      summary: '',
      ms: 0,
    });
    const b = bar([
      cell('process-limits', 'environ', 'blocked'),
      cell('process-limits', 'cpu-hog', 'allowed'),
      cell('thread', 'environ', 'allowed'),
      cell('thread', 'fd', 'allowed'),
    ]);
    assert.deepEqual(b.top, { level: 'process-limits', met: false, notBlocked: ['cpu-hog'] });
    assert.deepEqual(b.thread, { level: 'thread', met: true, notAllowed: [] });
    assert.equal(bar([]).top.met, null);
  });
});

describe('isolane escape: the command line', () => {
  test('flags: defaults, lists, and bad values are usage errors', () => {
    const all = parseEscapeArgs([]);
    assert.notEqual(all, 'help');
    if (all !== 'help') {
      assert.equal(all.levels.length, 6);
      assert.deepEqual(all.probes, [...PROBE_IDS]);
      assert.equal(all.quick, false);
    }
    const some = parseEscapeArgs(['--quick', '--json', '--levels', 'thread,process', '--probes', 'fd']);
    assert.deepEqual(some, { quick: true, json: true, levels: ['thread', 'process'], probes: ['fd'] });
    assert.equal(parseEscapeArgs(['-h']), 'help');
    assert.throws(() => parseEscapeArgs(['--levels', 'vm']), UsageError);
    assert.throws(() => parseEscapeArgs(['--probes', '']), UsageError);
    assert.throws(() => parseEscapeArgs(['--frobnicate']), UsageError);
  });

  test('a bad flag prints the error and the usage, and exits 2', () => {
    const run = spawnSync(process.execPath, [CLI, 'escape', '--levels', 'vm'], {
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(run.status, 2);
    assert.match(run.stderr, /--levels: unknown value 'vm'/);
    assert.match(run.stderr, /isolane escape \[options\]/);
  });

  test('--json matches docs/escape.schema.json', () => {
    const run = spawnSync(
      process.execPath,
      [
        CLI,
        'escape',
        '--quick',
        '--json',
        '--levels',
        'thread,process-limits',
        '--probes',
        'environ,fd,crash',
      ],
      { encoding: 'utf8', timeout: 60_000 },
    );
    assert.equal(run.status, 0, run.stderr);
    const report: { cells: unknown[] } = JSON.parse(run.stdout);
    const validate = new Ajv2020({ allErrors: true, strict: false }).compile(SCHEMA);
    assert.ok(validate(report), JSON.stringify(validate.errors, null, 2));
    assert.equal(report.cells.length, 6);
    assert.ok(!run.stdout.match(/ISL[A-Z]:[0-9a-f]{24}/), 'no secret in the report');
  });

  test('the report of a run in this process also matches the schema', async () => {
    const report = await runEscape({
      levels: ['inline'],
      probes: ['environ', 'cmdline', 'cpu-hog'],
      quick: true,
    });
    const validate = new Ajv2020({ allErrors: true, strict: false }).compile(SCHEMA);
    assert.ok(validate(JSON.parse(JSON.stringify(report))), JSON.stringify(validate.errors, null, 2));
  });
});
