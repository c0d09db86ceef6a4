import type { FromWorker, ToWorker } from '../channel/protocol.js';
import { WorkerRuntime } from '../worker/runtime.js';
import type { SpawnOptions, Tier, WorkerEvents, WorkerHandle } from './tier.js';

/**
 * Runs handlers in the caller's own thread. No copy, no isolation: a handler that blocks, exits or
 * corrupts memory does so to the caller. The worker "dies" only when the pool stops it.
 */
export const inlineTier: Tier = {
  isolation: 'inline',
  spawn(options: SpawnOptions, events: WorkerEvents): WorkerHandle {
    let alive = true;
    const end = () => {
      if (!alive) return;
      alive = false;
      queueMicrotask(() => events.exit({ exitCode: 0, signal: null, oom: false }));
    };
    const runtime = new WorkerRuntime((msg: FromWorker) => {
      if (alive) events.message(msg);
    }, end);
    void runtime.load(options.handlers);
    return {
      send(msg: ToWorker) {
        if (alive) runtime.receive(msg);
      },
      kill: end,
      stop: end,
      ref() {},
      unref() {},
    };
  },
};
