import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const HARNESS = fileURLToPath(new URL('./fixtures/harness.js', import.meta.url));

/** Runs the harness in its own process: a fault there cannot touch the test runner. */
function runHarness(isolation: string, fault: string, arg: string) {
  const child = spawnSync(process.execPath, [HARNESS, isolation, fault, arg], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  const line = child.stdout.trim().split('\n').pop() ?? '';
  return { status: child.status, signal: child.signal, result: line ? JSON.parse(line) : undefined };
}

describe('what a fault in one task takes down, per level (each in a child harness)', () => {
  test('thread: process.kill(process.pid, "SIGKILL") from a worker kills the whole process', () => {
    const run = runHarness('thread', 'killSelf', 'SIGKILL');
    assert.equal(run.signal, 'SIGKILL');
    assert.equal(run.result, undefined, 'nothing after the fault ran: the bystander task was lost too');
  });

  test('process: the same fault is contained; the bystander task finishes', () => {
    const run = runHarness('process', 'killSelf', 'SIGKILL');
    assert.equal(run.status, 0);
    assert.deepEqual(run.result, {
      fault: 'WorkerCrashedError:signal',
      bystander: 'bystander done',
      survived: true,
    });
  });

  test('inline: process.exit in a handler ends the caller', () => {
    const run = runHarness('inline', 'exit', '42');
    assert.equal(run.status, 42);
    assert.equal(run.result, undefined);
  });

  test('thread: process.exit in a handler is contained', () => {
    const run = runHarness('thread', 'exit', '42');
    assert.equal(run.status, 0);
    assert.deepEqual(run.result, {
      fault: 'WorkerCrashedError:exit',
      bystander: 'bystander done',
      survived: true,
    });
  });
});
