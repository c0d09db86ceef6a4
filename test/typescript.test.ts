import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test('a TypeScript program under tsx runs TypeScript handlers at every level', () => {
  const child = spawnSync(process.execPath, ['--import', 'tsx', 'test/fixtures/ts/main.ts'], {
    cwd: ROOT,
    encoding: 'utf8',
    timeout: 60_000,
  });
  assert.equal(child.status, 0, child.stderr);
  const results = JSON.parse(child.stdout.trim().split('\n').pop() ?? '{}');
  assert.deepEqual(results, {
    inline: { area: 9, samePid: true },
    thread: { area: 9, samePid: true },
    process: { area: 9, samePid: false },
  });
});
