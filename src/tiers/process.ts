import { fork } from 'node:child_process';
import type { Socket } from 'node:net';
import type { FromWorker, ToWorker, WorkerData } from '../channel/protocol.js';
import type { SerializedError } from '../errors.js';
import { workerEntry } from './entry.js';
import type { SpawnOptions, Tier, WorkerEvents, WorkerHandle } from './tier.js';

const entry = workerEntry('process-entry');

/** What V8 prints when a process runs out of heap. */
const OOM_PATTERN = /heap out of memory|Reached heap limit|Allocation failed/;
const STDERR_TAIL_BYTES = 8192;
/** After the process exits, how long to wait for the IPC channel to deliver what is still in it. */
const DRAIN_AFTER_EXIT_MS = 200;

/**
 * Flags of the parent that must not reach a worker: the test runner's and the inspector's own, and
 * a heap limit that `maxHeapMb` replaces. Loaders (`--import`, `--require`, `--loader`) are kept, so
 * a worker runs TypeScript handlers when its parent runs under tsx.
 */
function inheritedExecArgv(maxHeapMb: number | undefined): string[] {
  const dropped = /^--(test|inspect|debug|max-old-space-size)/;
  const args = process.execArgv.filter((arg) => !dropped.test(arg));
  if (maxHeapMb) args.push(`--max-old-space-size=${maxHeapMb}`);
  return args;
}

/** A child process per worker, talking over Node's IPC channel with structured-clone serialization. */
export const processTier: Tier = {
  isolation: 'process',
  spawn(options: SpawnOptions, events: WorkerEvents): WorkerHandle {
    const child = fork(entry, [], {
      serialization: 'advanced',
      execArgv: inheritedExecArgv(options.maxHeapMb),
      env: {
        ...process.env,
        ISOLANE_WORKER_DATA: JSON.stringify({ handlers: options.handlers } satisfies WorkerData),
      },
      stdio: ['inherit', 'inherit', 'pipe', 'ipc'],
    });
    let stderrTail = '';
    let fatal: SerializedError | undefined;
    let stopTimer: NodeJS.Timeout | undefined;
    let exited = false;

    child.stderr?.on('data', (chunk: Buffer) => {
      process.stderr.write(chunk);
      stderrTail = (stderrTail + chunk.toString('latin1')).slice(-STDERR_TAIL_BYTES);
    });
    child.on('message', (msg: FromWorker) => {
      if (msg.t === 'fatal') fatal = msg.error;
      else events.message(msg);
    });
    // A failed spawn (e.g. EAGAIN) emits 'error' and then, usually, 'exit'; make sure exit is reported once.
    child.on('error', (err) => {
      if (child.exitCode === null && child.signalCode === null && child.pid === undefined) {
        fatal = { name: err.name, message: err.message, stack: err.stack };
        finish(null, null);
      }
    });
    const finish = (exitCode: number | null, signal: NodeJS.Signals | null) => {
      if (exited) return;
      exited = true;
      if (stopTimer) clearTimeout(stopTimer);
      child.removeAllListeners('message');
      const oom = OOM_PATTERN.test(stderrTail);
      events.exit({ exitCode, signal, oom, ...(fatal ? { error: fatal } : {}) });
    };
    child.once('exit', (code, signal) => {
      // Messages sent just before the exit may still be in the channel: let 'close' deliver them first.
      setTimeout(() => finish(code, signal), DRAIN_AFTER_EXIT_MS);
    });
    child.once('close', (code, signal) => finish(code, signal));

    const killNow = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    return {
      pid: child.pid,
      send(msg: ToWorker) {
        if (child.connected) child.send(msg);
      },
      kill: killNow,
      stop(graceMs: number) {
        if (child.connected) child.send({ t: 'close' } satisfies ToWorker);
        stopTimer = setTimeout(killNow, graceMs);
        stopTimer.unref();
      },
      ref() {
        child.ref();
        child.channel?.ref();
        (child.stderr as Socket | null)?.ref();
      },
      unref() {
        child.unref();
        child.channel?.unref();
        (child.stderr as Socket | null)?.unref();
      },
    };
  },
};
