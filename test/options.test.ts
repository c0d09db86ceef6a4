import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createPool, InvalidOptionError, type PoolOptions } from '../src/index.js';
import { HANDLERS } from './helpers.js';

function rejects(options: unknown, option: string, pattern: RegExp) {
  assert.throws(
    () => createPool(options as PoolOptions),
    (err: unknown) => {
      assert.ok(err instanceof InvalidOptionError, `expected InvalidOptionError, got ${err}`);
      assert.equal(err.code, 'ERR_ISOLANE_INVALID_OPTION');
      assert.equal(err.option, option);
      assert.match(err.message, pattern);
      return true;
    },
  );
}

describe('createPool rejects bad options synchronously, naming the option and what is allowed', () => {
  test('options must be an object', () => rejects(undefined, 'options', /must be an object/));
  test('handlers is required', () => rejects({}, 'handlers', /is required/));
  test('handlers must be a file URL', () =>
    rejects({ handlers: 'https://example.invalid/h.js' }, 'handlers', /file/));
  test('unknown option', () =>
    rejects({ handlers: HANDLERS, wokers: 2 }, 'wokers', /not a known option.*workers/));
  test('unknown isolation', () =>
    rejects({ handlers: HANDLERS, isolation: 'vm' }, 'isolation', /'inline', 'thread', 'process'.*"vm"/));
  test('workers < 1', () =>
    rejects({ handlers: HANDLERS, workers: 0 }, 'workers', /integer from 1 to 1024; got 0/));
  test('workers of the wrong type', () =>
    rejects({ handlers: HANDLERS, workers: '4' }, 'workers', /got "4"/));
  test('workers not an integer', () => rejects({ handlers: HANDLERS, workers: 1.5 }, 'workers', /integer/));
  test('negative maxQueue', () => rejects({ handlers: HANDLERS, maxQueue: -1 }, 'maxQueue', />= 0/));
  test('timeoutMs zero', () => rejects({ handlers: HANDLERS, timeoutMs: 0 }, 'timeoutMs', /positive/));
  test('retry.attempts zero', () =>
    rejects({ handlers: HANDLERS, retry: { attempts: 0 } }, 'retry.attempts', /1 to 100/));
  test('unknown nested option', () =>
    rejects({ handlers: HANDLERS, retry: { tries: 3 } }, 'retry.tries', /allowed in 'retry': attempts/));
  test('restart must be an object', () =>
    rejects({ handlers: HANDLERS, restart: 5 }, 'restart', /must be an object/));
  test('backoff max below initial', () =>
    rejects(
      { handlers: HANDLERS, restart: { backoff: { initialMs: 100, maxMs: 10 } } },
      'restart.backoff.maxMs',
      />= restart.backoff.initialMs/,
    ));
  test('intensity.maxRestarts negative', () =>
    rejects(
      { handlers: HANDLERS, restart: { intensity: { maxRestarts: -1 } } },
      'restart.intensity.maxRestarts',
      /integer/,
    ));
  test('maxHeapMb too small', () => rejects({ handlers: HANDLERS, maxHeapMb: 1 }, 'maxHeapMb', /16/));
  test('concurrency zero', () =>
    rejects({ handlers: HANDLERS, concurrency: 0 }, 'concurrency', /'auto' or an integer/));
  test('concurrency of an unknown word', () =>
    rejects({ handlers: HANDLERS, concurrency: 'fast' }, 'concurrency', /'auto' or an integer.*"fast"/));
  test('restart.spares negative', () =>
    rejects({ handlers: HANDLERS, restart: { spares: -1 } }, 'restart.spares', /from 0 to 64/));
  test('heartbeatMs too small', () =>
    rejects({ handlers: HANDLERS, heartbeatMs: 1 }, 'heartbeatMs', /from 10/));
});
