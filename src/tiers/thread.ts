import { type TransferListItem, Worker } from 'node:worker_threads';
import type { FromWorker, ToWorker, WorkerData } from '../channel/protocol.js';
import { serializeError } from '../errors.js';
import { workerEntry } from './entry.js';
import type { SpawnOptions, Tier, WorkerEvents, WorkerExit, WorkerHandle } from './tier.js';

const entry = workerEntry('thread-entry');

/** A `worker_threads` Worker per worker: its own V8 isolate and event loop, the caller's process. */
export const threadTier: Tier = {
  isolation: 'thread',
  spawn(options: SpawnOptions, events: WorkerEvents): WorkerHandle {
    const worker = new Worker(entry, {
      workerData: { handlers: options.handlers } satisfies WorkerData,
      ...(options.maxHeapMb ? { resourceLimits: { maxOldGenerationSizeMb: options.maxHeapMb } } : {}),
    });
    let error: Pick<WorkerExit, 'error' | 'oom'> = { oom: false };
    let stopTimer: NodeJS.Timeout | undefined;
    worker.on('message', (msg: FromWorker) => events.message(msg));
    worker.on('error', (err) => {
      const code = (err as { code?: string }).code;
      error = { error: serializeError(err), oom: code === 'ERR_WORKER_OUT_OF_MEMORY' };
    });
    worker.once('exit', (exitCode) => {
      if (stopTimer) clearTimeout(stopTimer);
      events.exit({ exitCode, signal: null, ...error });
    });
    return {
      threadId: worker.threadId,
      send(msg: ToWorker, transfer?: readonly TransferListItem[]) {
        worker.postMessage(msg, transfer);
      },
      kill() {
        void worker.terminate();
      },
      stop(graceMs: number) {
        worker.postMessage({ t: 'close' } satisfies ToWorker);
        stopTimer = setTimeout(() => void worker.terminate(), graceMs);
        stopTimer.unref();
      },
      ref: () => worker.ref(),
      unref: () => worker.unref(),
    };
  },
};
