import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { nativeLoadError, nativeShm } from '../src/channel/native.js';
import { createPool, InvalidOptionError } from '../src/index.js';
import { chooseChannel } from '../src/pool/channel-choice.js';
import { HANDLERS, withPool } from './helpers.js';

const LOADED = { loaded: true } as const;
const MISSING = { loaded: false, reason: 'not built' } as const;

describe('channel choice (pure)', () => {
  test('auto takes the fastest the level and the machine allow', () => {
    const cases: [Parameters<typeof chooseChannel>[1], string][] = [
      [{ isolation: 'inline', addon: LOADED, permission: false }, 'direct'],
      [{ isolation: 'thread', addon: LOADED, permission: false }, 'ring'],
      [{ isolation: 'thread', addon: MISSING, permission: false }, 'ring'],
      [{ isolation: 'process', addon: LOADED, permission: false }, 'ring'],
      [{ isolation: 'process', addon: MISSING, permission: false }, 'message'],
      [{ isolation: 'process', addon: LOADED, permission: true }, 'message'],
    ];
    for (const [facts, expected] of cases) {
      for (const requested of [undefined, 'auto']) {
        const choice = chooseChannel(requested, facts);
        assert.equal(choice.channel, expected, JSON.stringify(facts));
        assert.equal(choice.warning, undefined, 'auto never warns');
      }
    }
  });

  test("'message' is always messages; inline is always direct", () => {
    assert.deepEqual(chooseChannel('message', { isolation: 'process', addon: LOADED, permission: false }), {
      channel: 'message',
    });
    assert.deepEqual(chooseChannel('ring', { isolation: 'inline', addon: MISSING, permission: false }), {
      channel: 'direct',
    });
  });

  test("'ring' without the addon falls back to messages with a warning that says why and what to do", () => {
    const choice = chooseChannel('ring', { isolation: 'process', addon: MISSING, permission: false });
    assert.equal(choice.channel, 'message');
    assert.match(choice.warning ?? '', /native addon \(not built\).*IPC channel.*npm rebuild isolane/);
  });

  test("'ring' under the permission model is refused, naming the option", () => {
    assert.throws(
      () => chooseChannel('ring', { isolation: 'process', addon: LOADED, permission: true }),
      (err: unknown) =>
        err instanceof InvalidOptionError &&
        err.option === 'channel' &&
        /sandbox\.permission/.test(err.message),
    );
  });

  test('a value that is not a channel is refused, listing the allowed ones', () => {
    for (const bad of ['shm', 1, null, {}]) {
      assert.throws(
        () => chooseChannel(bad, { isolation: 'thread', addon: LOADED, permission: false }),
        (err: unknown) => err instanceof InvalidOptionError && /'message', 'ring', 'auto'/.test(err.message),
      );
    }
  });
});

describe('channel and spinUs options', () => {
  test('createPool refuses bad channel and spinUs values, naming the option', () => {
    for (const [options, option] of [
      [{ channel: 'fast' }, 'channel'],
      [{ spinUs: -1 }, 'spinUs'],
      [{ spinUs: 10_001 }, 'spinUs'],
      [{ spinUs: 1.5 }, 'spinUs'],
      [{ spinUs: '50' }, 'spinUs'],
    ] as const) {
      assert.throws(
        () => createPool({ handlers: HANDLERS, isolation: 'thread', ...(options as object) }),
        (err: unknown) => err instanceof InvalidOptionError && err.option === option,
        JSON.stringify(options),
      );
    }
  });

  test('in CI the native addon loads (the process ring depends on it)', () => {
    assert.ok(nativeShm, `the native addon did not load: ${nativeLoadError?.message}`);
  });

  for (const isolation of ['inline', 'thread', 'process'] as const) {
    test(`${isolation}: the default channel is the fastest there is, and stats() says which`, () =>
      withPool({ isolation, workers: 1 }, async (pool) => {
        assert.equal(await pool.run('inc', 1), 2);
        assert.equal(pool.stats().channel, isolation === 'inline' ? 'direct' : 'ring');
      }));
  }

  test('spinUs 0 (never poll, always sleep) still delivers everything', () =>
    withPool({ isolation: 'thread', workers: 1, spinUs: 0 }, async (pool) => {
      for (let i = 0; i < 200; i++) assert.equal(await pool.run('inc', i), i + 1);
      const out = await Promise.all(Array.from({ length: 2_000 }, (_, i) => pool.run('inc', i)));
      assert.deepEqual(
        out,
        Array.from({ length: 2_000 }, (_, i) => i + 1),
      );
    }));
});

describe('many producers through the pool', () => {
  for (const isolation of ['thread', 'process'] as const) {
    test(`${isolation} ring: 40 concurrent producers with random pauses, both sides often asleep (bounded in time)`, () =>
      withPool({ isolation, channel: 'ring', workers: 2, spinUs: 0 }, async (pool) => {
        let seed = 7;
        const random = () => {
          seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
          return seed / 2 ** 32;
        };
        const deadline = Date.now() + 8_000;
        let checked = 0;
        const producer = async (p: number) => {
          for (let i = 0; i < 150 && Date.now() < deadline; i++) {
            const x = p * 1_000 + i;
            // Some tasks one at a time, some in bursts; pauses let both sides fall asleep between them.
            const burst = random() < 0.2 ? 20 : 1;
            const out = await Promise.all(
              Array.from({ length: burst }, (_, k) => pool.run('inc', x * 100 + k)),
            );
            for (const [k, v] of out.entries()) assert.equal(v, x * 100 + k + 1);
            checked += burst;
            if (random() < 0.3) await new Promise((r) => setTimeout(r, random() * 2));
          }
        };
        await Promise.all(Array.from({ length: 40 }, (_, p) => producer(p)));
        assert.ok(checked > 1_000, `only ${checked} tasks checked`);
        const stats = pool.stats();
        assert.equal(stats.completed, checked);
        assert.equal(stats.running + stats.queued, 0);
      }));
  }
});

describe('an idle pool lets the process exit', () => {
  for (const isolation of ['thread', 'process'] as const) {
    for (const channel of ['message', 'ring'] as const) {
      test(`${isolation} tier (${channel}): a script that never closes its pool still ends`, () => {
        const script = fileURLToPath(new URL('./fixtures/idle-exit.js', import.meta.url));
        const started = Date.now();
        const child = spawnSync(process.execPath, [script, isolation, channel], {
          encoding: 'utf8',
          timeout: 30_000,
        });
        assert.equal(
          child.signal,
          null,
          `still running after ${Date.now() - started} ms: killed by the timeout`,
        );
        assert.equal(child.status, 0, child.stderr);
        assert.deepEqual(JSON.parse(child.stdout), { results: [2, 3, 4], channel });
      });
    }
  }
});

describe('without the native addon', () => {
  test("the process tier falls back to IPC with one warning for 'ring', silently for 'auto'", () => {
    const script = fileURLToPath(new URL('./fixtures/no-addon.js', import.meta.url));
    const child = spawnSync(process.execPath, [script], {
      env: { ...process.env, ISOLANE_NO_NATIVE: '1' },
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(child.status, 0, child.stderr);
    const report = JSON.parse(child.stdout) as { channels: string[]; results: number[]; warnings: string[] };
    assert.deepEqual(report.channels, ['message', 'message', 'message', 'ring']);
    assert.deepEqual(report.results, [2, 3, 4, 5]);
    assert.equal(report.warnings.length, 1, 'one warning per process');
    assert.match(report.warnings[0]!, /ISOLANE_NO_NATIVE.*falling back to the IPC channel/);
  });
});
