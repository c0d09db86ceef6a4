import { type TransferListItem, Worker } from 'node:worker_threads';
import { type FromWorker, forMessageChannel, type ToWorker, type WorkerData } from '../channel/protocol.js';
import { offerToRing, threadRing } from '../channel/ring-link.js';
import { serializeError } from '../errors.js';
import { workerEntry } from './entry.js';
import type { SpawnOptions, Tier, WorkerEvents, WorkerExit, WorkerHandle } from './tier.js';

const entry = workerEntry('thread-entry');

/**
 * A `worker_threads` Worker per worker: its own V8 isolate and event loop, the caller's process.
 * Batches travel by `postMessage`, or with `channel: 'ring'` through two shared-memory rings (a
 * batch that moves objects with a transfer list still goes by `postMessage`, which can move them).
 */
export const threadTier: Tier = {
  isolation: 'thread',
  spawn(options: SpawnOptions, events: WorkerEvents): WorkerHandle {
    let exit: Pick<WorkerExit, 'error' | 'oom' | 'protocol'> = { oom: false };
    let worker: Worker | undefined;
    const ring =
      options.channel === 'ring'
        ? threadRing(() => worker?.postMessage({ t: 'bell' } satisfies ToWorker), {
            spinUs: options.spinUs ?? 0,
            onMessage: (msg) => events.message(msg),
            onBroken: (error) => {
              exit = { ...exit, protocol: serializeError(error) };
              void worker?.terminate();
            },
          })
        : undefined;
    const end = ring?.end;
    try {
      worker = new Worker(entry, {
        workerData: {
          handlers: options.handlers,
          ...(ring ? { ring: ring.setup } : {}),
        } satisfies WorkerData,
        ...(options.maxHeapMb ? { resourceLimits: { maxOldGenerationSizeMb: options.maxHeapMb } } : {}),
      });
    } catch (err) {
      end?.close();
      throw err;
    }
    const w = worker;
    let stopTimer: NodeJS.Timeout | undefined;
    w.on('message', (msg: FromWorker) => {
      if (msg.t === 'bell') end?.wake();
      else events.message(msg);
    });
    w.on('error', (err) => {
      const code = (err as { code?: string }).code;
      exit = { ...exit, error: serializeError(err), oom: code === 'ERR_WORKER_OUT_OF_MEMORY' };
    });
    w.once('exit', (exitCode) => {
      // Results the worker wrote just before it ended are read first, then the memory is let go.
      end?.close();
      if (stopTimer) clearTimeout(stopTimer);
      events.exit({ exitCode, signal: null, ...exit });
    });
    return {
      threadId: w.threadId,
      send(msg: ToWorker, transfer?: readonly TransferListItem[]) {
        if (!end) return w.postMessage(forMessageChannel(msg), transfer);
        switch (msg.t) {
          case 'run':
            // A ring can only copy, and postMessage copies large payloads in fewer passes, and can
            // clone what V8's serializer cannot (SharedArrayBuffers): those batches go by postMessage.
            if (transfer?.length || !offerToRing(end.post, msg))
              w.postMessage(forMessageChannel(msg), transfer);
            return;
          case 'abort':
            // The task may have gone either way, and an abort must not overtake it: send it both ways.
            end.post(msg);
            w.postMessage(msg);
            return;
          case 'ping':
            end.post(msg);
            return;
          default:
            w.postMessage(msg);
        }
      },
      kill() {
        void w.terminate();
      },
      stop(graceMs: number) {
        w.postMessage({ t: 'close' } satisfies ToWorker);
        stopTimer = setTimeout(() => void w.terminate(), graceMs);
        stopTimer.unref();
      },
      ref() {
        w.ref();
        end?.ref();
      },
      unref() {
        w.unref();
        end?.unref();
      },
    };
  },
};
