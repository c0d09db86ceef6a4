import type { SerializedError } from '../errors.js';

/**
 * The messages between the pool and a worker runtime. The same shapes travel over every tier:
 * a direct call (inline), `postMessage` (thread) and the IPC channel (process).
 * Tasks and results travel in batches: one message per flush, not one per task.
 */

export interface RunRequest {
  id: number;
  name: string;
  input: unknown;
  attempt: number;
}

export type ToWorker =
  | { t: 'run'; tasks: RunRequest[] }
  | { t: 'abort'; id: number }
  | { t: 'ping'; seq: number }
  | { t: 'close' };

/** `s`: milliseconds the handler's synchronous part held the worker's thread. */
export type TaskResult =
  | { id: number; ok: true; value: unknown; s?: number }
  | {
      id: number;
      ok: false;
      error: SerializedError;
      kind: 'threw' | 'unknown-handler' | 'not-cloneable';
      s?: number;
    };

export type FromWorker =
  | { t: 'ready'; handlers: string[] }
  | { t: 'start-error'; error: SerializedError }
  | { t: 'results'; results: TaskResult[] }
  | { t: 'pong'; seq: number }
  | { t: 'fatal'; error: SerializedError };

/** The data a thread or process worker is started with. */
export interface WorkerData {
  handlers: string;
  /** Sandboxed process workers: the only environment variables tenant code may see. */
  env?: string[];
}
