// The escape lab end to end: each level runs in its own harness process, so these tests survive the
// probes that take a level down. Sandboxed levels need root; without it they are skipped.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { describe, test } from 'node:test';
import { FORK_MARK } from '../src/lab/escape/attacker.js';
import type { LevelId } from '../src/lab/escape/levels.js';
import { PROBE_IDS, type ProbeId } from '../src/lab/escape/probes.js';
import { type EscapeReport, runEscape } from '../src/lab/escape/runner.js';
import { childPids } from './helpers.js';

function run(levels: LevelId[], probes: readonly ProbeId[]): Promise<EscapeReport> {
  return runEscape({ levels, probes, quick: true });
}

function verdicts(report: EscapeReport, level: LevelId): Record<string, string> {
  return Object.fromEntries(report.cells.filter((c) => c.level === level).map((c) => [c.probe, c.verdict]));
}

function explain(report: EscapeReport, level: LevelId): string {
  return report.cells
    .filter((c) => c.level === level)
    .map((c) => `${c.probe}: ${c.verdict}: ${c.summary}`)
    .join('\n');
}

/** Why a sandboxed level did not run here (not root, no cgroups…), or undefined if it ran. */
function unavailable(report: EscapeReport, level: LevelId): string | undefined {
  const l = report.levels.find((x) => x.id === level);
  return l && !l.ran && report.cells.every((c) => c.level !== level || c.verdict === 'skipped')
    ? (l.note ?? 'skipped')
    : undefined;
}

/** Everything a run could leave behind, found from outside the lab: ps, /proc, cgroups, files. */
function leftovers(runId: string): string[] {
  const found: string[] = [];
  const ps = spawnSync('ps', ['-e', '-o', 'pid=,stat=,args='], { encoding: 'utf8' });
  for (const line of ps.stdout.split('\n')) {
    const [pid, stat] = line.trim().split(/\s+/);
    if (line.includes(runId) && !stat?.startsWith('Z')) found.push(`ps: ${line.trim()} (${pid})`);
  }
  for (const pid of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      if (readFileSync(`/proc/${pid}/environ`, 'latin1').includes(`${FORK_MARK}=${runId}`)) {
        found.push(`a process a probe started: ${pid}`);
      }
    } catch {
      // gone, or not ours to read
    }
  }
  for (const name of readdirSync(tmpdir())) {
    if (name.startsWith(`isolane-escape-${runId}-`)) found.push(`file: ${name}`);
  }
  const cgroup = /\d+:memory:(.*)/.exec(readFileSync('/proc/self/cgroup', 'utf8'))?.[1];
  if (cgroup !== undefined) {
    try {
      for (const name of readdirSync(`/sys/fs/cgroup/memory${cgroup}`)) {
        if (name.startsWith(`isolane-escape-${runId}-`)) found.push(`cgroup: ${name}`);
      }
    } catch {
      // no v1 memory hierarchy
    }
  }
  return found;
}

const SECRETS: ProbeId[] = [
  'memory-self',
  'memory-victim',
  'memory-write',
  'environ',
  'fd',
  'file',
  'connect',
];

describe('the escape lab, level by level', () => {
  test('thread: the memory, environment and fd probes succeed (the probes can succeed); kill and crash take everyone down', async () => {
    const report = await run(['thread'], [...SECRETS, 'signal', 'kill', 'crash']);
    const v = verdicts(report, 'thread');
    for (const p of SECRETS) assert.equal(v[p], 'allowed', explain(report, 'thread'));
    assert.equal(v.signal, 'allowed');
    assert.equal(v.kill, 'took everyone down');
    assert.equal(v.crash, 'took everyone down');
    assert.equal(report.bar.thread.met, true);
    const write = report.cells.find((c) => c.probe === 'memory-write')!;
    assert.equal(write.outcome?.victimAfter?.bufferIntact, false, 'the victim saw its Buffer change');
    assert.equal(
      report.levels[0]!.harnesses,
      2,
      'the crash ran in a new harness after the kill took the first down',
    );
    assert.deepEqual(leftovers(report.plan.runId), []);
  });

  test('process, same uid: another process, yet its memory, environment and fd are readable', async () => {
    const report = await run(['process'], ['memory-self', 'memory-victim', 'environ', 'fd', 'crash']);
    const v = verdicts(report, 'process');
    assert.deepEqual(
      v,
      {
        'memory-self': 'blocked',
        'memory-victim': 'allowed',
        environ: 'allowed',
        fd: 'allowed',
        crash: 'blocked',
      },
      explain(report, 'process'),
    );
    assert.deepEqual(leftovers(report.plan.runId), []);
  });

  test('process + own uid: memory, environment, fds, files and signals are blocked', async (t) => {
    const probes: ProbeId[] = ['memory-victim', 'memory-write', 'environ', 'fd', 'file', 'signal', 'kill'];
    const report = await run(['process-uid'], probes);
    const why = unavailable(report, 'process-uid');
    if (why) return t.skip(why);
    const v = verdicts(report, 'process-uid');
    for (const p of probes) assert.equal(v[p], 'blocked', explain(report, 'process-uid'));
    const memory = report.cells.find((c) => c.probe === 'memory-victim')!;
    assert.match(memory.short, /EACCES/);
    assert.deepEqual(leftovers(report.plan.runId), []);
  });

  test('top level (dedicated, own uid, namespaces, limits): every probe but the CPU hog is blocked (that one is a latency measurement, not asserted)', async (t) => {
    const report = await run(['process-limits'], PROBE_IDS);
    const why = unavailable(report, 'process-limits');
    if (why) return t.skip(why);
    const v = verdicts(report, 'process-limits');
    for (const p of PROBE_IDS.filter((p) => p !== 'cpu-hog')) {
      assert.equal(v[p], 'blocked', `${p}\n${explain(report, 'process-limits')}`);
    }
    assert.ok(v['cpu-hog'] === 'blocked' || v['cpu-hog'] === 'allowed', 'the hog was measured');
    assert.deepEqual(leftovers(report.plan.runId), []);
    assert.equal(report.levels[0]!.leftovers, 0);
  });

  test('the bombs are bounded and leave nothing behind, whether they take the level down or not', async () => {
    const levels: LevelId[] = ['thread', 'process-limits'];
    const report = await run(levels, ['fork-bomb', 'memory-bomb']);
    const thread = report.cells.filter((c) => c.level === 'thread');
    assert.equal(thread.length, 2);
    const fork = thread.find((c) => c.probe === 'fork-bomb')!;
    assert.equal(fork.verdict, 'allowed', fork.summary);
    assert.ok((fork.outcome?.attack?.spawned ?? 0) <= report.plan.bounds.forkCap);
    const memory = thread.find((c) => c.probe === 'memory-bomb')!;
    if (report.plan.hostBudget.enforced) assert.equal(memory.verdict, 'took everyone down', memory.summary);
    else assert.equal(memory.verdict, 'allowed', memory.summary);
    if (!unavailable(report, 'process-limits')) {
      const v = verdicts(report, 'process-limits');
      assert.deepEqual(
        v,
        { 'fork-bomb': 'blocked', 'memory-bomb': 'blocked' },
        explain(report, 'process-limits'),
      );
    }
    for (const l of report.levels) assert.equal(l.leftovers, 0, l.id);
    assert.deepEqual(leftovers(report.plan.runId), []);
    assert.deepEqual(childPids(), [], 'no child of the test process is left');
  });
});
