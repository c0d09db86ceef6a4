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

/**
 * A column of numbers: a plain array where the batch is handed over or written into a ring (a typed
 * array of more than a few elements costs far more to allocate), a typed array where it is cloned
 * (postMessage, IPC), which clones several times faster. See `forMessageChannel`.
 */
export type Column<T extends Float64Array | Uint16Array | Uint8Array> = number[] | T;

/**
 * A batch of tasks, column by column: typed arrays and flat arrays clone several times faster than
 * an array of small objects, and cloning is most of what a batch costs.
 */
export interface RunBatch {
  t: 'run';
  ids: Column<Float64Array>;
  /** Index of each task's handler in the list the worker sent with `ready` (strings clone slowly). */
  handlers: Column<Uint16Array>;
  inputs: unknown[];
  attempts: Column<Uint8Array>;
}

export function encodeRun(tasks: readonly RunRequest[], handlerIndex: ReadonlyMap<string, number>): RunBatch {
  const n = tasks.length;
  const batch: RunBatch = {
    t: 'run',
    ids: new Array<number>(n),
    handlers: new Array<number>(n),
    inputs: new Array(n),
    attempts: new Array<number>(n),
  };
  for (let i = 0; i < n; i++) {
    const task = tasks[i]!;
    batch.ids[i] = task.id;
    batch.handlers[i] = handlerIndex.get(task.name) ?? 0xffff;
    batch.inputs[i] = task.input;
    batch.attempts[i] = task.attempt;
  }
  return batch;
}

export type ToWorker =
  | RunBatch
  | { t: 'abort'; id: number }
  | { t: 'ping'; seq: number }
  | { t: 'close' }
  /** Ring channel between threads without the native addon: the doorbell, rung over the port. */
  | { t: 'bell' };

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

/** Results, column by column (see RunBatch). A failed task's value is `{ error, kind }`. */
export interface ResultBatch {
  t: 'results';
  ids: Column<Float64Array>;
  ok: Column<Uint8Array>;
  values: unknown[];
  /** Milliseconds each handler's synchronous part held the worker's thread (NaN: not measured). */
  sync: Column<Float64Array>;
}

export function encodeResults(results: readonly TaskResult[]): ResultBatch {
  const n = results.length;
  const batch: ResultBatch = {
    t: 'results',
    ids: new Array<number>(n),
    ok: new Array<number>(n),
    values: new Array(n),
    sync: new Array<number>(n),
  };
  for (let i = 0; i < n; i++) {
    const r = results[i]!;
    batch.ids[i] = r.id;
    batch.ok[i] = r.ok ? 1 : 0;
    batch.values[i] = r.ok ? r.value : { error: r.error, kind: r.kind };
    batch.sync[i] = r.s ?? Number.NaN;
  }
  return batch;
}

/** Bytes a value holds at its top level (a byte array, an ArrayBuffer, a string): what makes a batch heavy. */
function shallowBytes(v: unknown): number {
  if (typeof v === 'string') return v.length;
  if (ArrayBuffer.isView(v) || v instanceof ArrayBuffer) return v.byteLength;
  return 0;
}

/** Frames above this size go by the message channel rather than a ring (see ring-link.ts). */
export const HEAVY_BATCH_BYTES = 64 * 1024;

/**
 * Whether a batch should go one task (or result) per message: when it is heavy and so are its
 * tasks, on average over 16 KiB each. Then the other side starts on the first while the rest are
 * still being copied, and IPC need not reassemble one huge message (it does so slowly). A batch of
 * many small payloads stays whole: one message for all of them is cheaper.
 */
export function tooHeavyToBatch<T>(items: readonly T[], payloadOf: (item: T) => unknown): boolean {
  if (items.length < 2) return false;
  let bytes = 0;
  for (const item of items) bytes += shallowBytes(payloadOf(item));
  return bytes > HEAVY_BATCH_BYTES && bytes / items.length > 16 * 1024;
}

/** A message as it should go over postMessage or IPC: batch columns as typed arrays. */
export function forMessageChannel<M extends ToWorker | FromWorker>(msg: M): M {
  if (msg.t === 'run' && Array.isArray(msg.ids)) {
    return {
      ...msg,
      ids: Float64Array.from(msg.ids),
      handlers: Uint16Array.from(msg.handlers),
      attempts: Uint8Array.from(msg.attempts),
    };
  }
  if (msg.t === 'results' && Array.isArray(msg.ids)) {
    return {
      ...msg,
      ids: Float64Array.from(msg.ids),
      ok: Uint8Array.from(msg.ok),
      sync: Float64Array.from(msg.sync),
    };
  }
  return msg;
}

export function decodeResult(batch: ResultBatch, i: number): TaskResult {
  const s = batch.sync[i]!;
  const sync = Number.isNaN(s) ? {} : { s };
  if (batch.ok[i]) return { id: batch.ids[i]!, ok: true, value: batch.values[i], ...sync };
  const failure = batch.values[i] as { error?: Partial<SerializedError>; kind?: unknown } | null;
  // A worker may be untrusted (a sandboxed tenant): a failure of the wrong shape becomes a plain one.
  const kind =
    failure?.kind === 'unknown-handler' || failure?.kind === 'not-cloneable' ? failure.kind : 'threw';
  const e = failure?.error;
  const error: SerializedError = {
    name: typeof e?.name === 'string' ? e.name : 'Error',
    message:
      typeof e?.message === 'string' ? e.message : String(e?.message ?? 'the worker sent a malformed error'),
    ...(typeof e?.stack === 'string' ? { stack: e.stack } : {}),
    ...(typeof e?.code === 'string' ? { code: e.code } : {}),
  };
  return { id: batch.ids[i]!, ok: false, error, kind, ...sync };
}

export type FromWorker =
  | { t: 'ready'; handlers: string[] }
  | { t: 'start-error'; error: SerializedError }
  | ResultBatch
  | { t: 'pong'; seq: number }
  | { t: 'fatal'; error: SerializedError }
  | { t: 'bell' };

/** The data a thread or process worker is started with. */
export interface WorkerData {
  handlers: string;
  /** Sandboxed process workers: the only environment variables tenant code may see. */
  env?: string[];
  /** Workers on `channel: 'ring'`: where the rings and doorbells are. */
  ring?: RingSetup;
}

/**
 * The worker's side of a ring channel. Threads get the memory itself; processes get file
 * descriptors (a memfd holding both rings, one after the other, and two eventfds).
 */
export type RingSetup = {
  /** Bytes of each ring (header included). */
  bytes: number;
  spinUs: number;
} & (
  | {
      kind: 'thread';
      toWorker: SharedArrayBuffer;
      toPool: SharedArrayBuffer;
      /** eventfd doorbells (native addon); without them the doorbell is a message on the port. */
      bells?: { toWorker: number; toPool: number };
    }
  | { kind: 'process'; fds: { memory: number; toWorker: number; toPool: number } }
);
