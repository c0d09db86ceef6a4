import type { TransferListItem } from 'node:worker_threads';
import type { FromWorker, ToWorker } from '../channel/protocol.js';
import type { SerializedError } from '../errors.js';

export type Isolation = 'inline' | 'thread' | 'process';

/** How a worker ended, as the tier saw it. The pool turns this into a crash cause. */
export interface WorkerExit {
  exitCode: number | null;
  signal: string | null;
  /** The uncaught error that ended the worker, if one was reported. */
  error?: SerializedError;
  /** The worker ran out of heap. */
  oom: boolean;
  /** A sandbox limit ended it. */
  limit?: 'memory' | 'cpu';
  /** The worker broke the channel's protocol (corrupt shared memory, a malformed frame), and was killed for it. */
  protocol?: SerializedError;
}

export interface WorkerEvents {
  message(msg: FromWorker): void;
  /** Called exactly once, after the last `message`. */
  exit(info: WorkerExit): void;
}

export interface SpawnOptions {
  /** URL (href) of the handler module. */
  handlers: string;
  maxHeapMb?: number;
  /** Process tier only: how to confine the worker. */
  sandbox?: WorkerSandbox;
  /** Task and result batches over shared-memory rings instead of postMessage or IPC. */
  channel?: 'message' | 'ring';
  /** Ring channel: how long each side polls after activity before it sleeps (µs). */
  spinUs?: number;
}

/** A sandbox as applied to one worker: the uid is already chosen. */
export interface WorkerSandbox {
  uid?: number;
  namespaces: boolean;
  limits: { memoryMb?: number; cpuSeconds?: number; openFiles?: number; processes?: number };
  env: string[];
  permission: boolean;
}

/** One running worker, whatever it is made of. */
export interface WorkerHandle {
  readonly pid?: number;
  readonly threadId?: number;
  /** Delivers a message; throws synchronously if it cannot be serialized. */
  send(msg: ToWorker, transfer?: readonly TransferListItem[]): void;
  /** Ends the worker now. `exit` follows. */
  kill(): void;
  /** Asks the worker to exit; kills it if it has not after `graceMs`. `exit` follows. */
  stop(graceMs: number): void;
  /** Whether the worker keeps the caller's event loop alive. */
  ref(): void;
  unref(): void;
}

/** An isolation level: knows how to start a worker and talk to it. */
export interface Tier {
  readonly isolation: Isolation;
  spawn(options: SpawnOptions, events: WorkerEvents): WorkerHandle;
}
