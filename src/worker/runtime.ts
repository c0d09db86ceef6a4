import { performance } from 'node:perf_hooks';
import type { TransferListItem } from 'node:worker_threads';
import {
  encodeResults,
  type FromWorker,
  type TaskResult,
  type ToWorker,
  tooHeavyToBatch,
} from '../channel/protocol.js';
import { serializeError } from '../errors.js';
import { unwrapMoved } from './move.js';

/** What a handler receives besides its input. */
export interface TaskContext {
  /** Aborted when the caller aborts the task or the pool gives up on it. */
  signal: AbortSignal;
  /** 1 for the first try; higher when an idempotent task is retried after a crash. */
  attempt: number;
}

export type Handler<I = any, O = any> = (input: I, ctx: TaskContext) => O | Promise<O>;

/**
 * `ctx` of one task. The AbortController is made only if the handler reads `signal`: creating one
 * costs several microseconds in Node 20, more than the rest of a task's overhead.
 */
class Context implements TaskContext {
  private controller: AbortController | undefined;
  private aborted = false;
  constructor(readonly attempt: number) {}

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.aborted) this.controller.abort();
    }
    return this.controller.signal;
  }

  abort(): void {
    this.aborted = true;
    this.controller?.abort();
  }
}

/** Results are held back at most this long while a batch of synchronous handlers runs. */
const FLUSH_AFTER_MS = 1;
/**
 * ... and at most this many: the pool can settle (and refill) the first ones while the worker runs
 * the rest of a batch, instead of both sides taking turns.
 */
const FLUSH_AFTER_RESULTS = 32;
/** Every handler's first tasks are timed; after that one in four, or every one once it is slow. */
const MEASURE_FIRST = 16;
const MEASURE_ALWAYS_MS = 0.05;

/**
 * Runs tasks inside a worker (or inline, in the caller's thread). Transport-agnostic: it is given
 * a `post` function and fed messages with `receive`.
 */
export class WorkerRuntime {
  private handlers = new Map<string, Handler>();
  /** The handlers in the order sent with `ready`: batches name them by index. */
  private handlerNames: string[] = [];
  private handlerList: Handler[] = [];
  /** Per handler index: tasks started, and the last synchronous time measured (ms). */
  private started = new Uint32Array(0);
  private lastSyncMs = new Float64Array(0);
  private running = new Map<number, Context>();
  private outbox: TaskResult[] = [];
  /** Objects to move with the outbox's results (`move()`), result by result; empty when none. */
  private outboxTransfer: (readonly TransferListItem[] | undefined)[] = [];
  private outboxSince = 0;
  private flushScheduled = false;
  private readonly flushNow = () => this.flush();

  constructor(
    /** Sends a message to the pool; `transfer` lists what to move rather than copy (results of `move()`). */
    private readonly post: (msg: FromWorker, transfer?: readonly TransferListItem[]) => void,
    private readonly onClose: () => void,
  ) {}

  /** Imports the handler module and reports `ready` (with the handler names) or `start-error`. */
  async load(handlersUrl: string): Promise<boolean> {
    try {
      const mod = (await import(handlersUrl)) as Record<string, unknown>;
      for (const [name, value] of Object.entries(mod)) {
        if (typeof value === 'function' && name !== 'default') this.handlers.set(name, value as Handler);
      }
    } catch (err) {
      this.post({ t: 'start-error', error: serializeError(err) });
      return false;
    }
    this.handlerNames = [...this.handlers.keys()];
    this.handlerList = [...this.handlers.values()];
    this.started = new Uint32Array(this.handlerList.length);
    this.lastSyncMs = new Float64Array(this.handlerList.length);
    this.post({ t: 'ready', handlers: this.handlerNames });
    return true;
  }

  receive(msg: ToWorker): void {
    switch (msg.t) {
      case 'run':
        for (let i = 0; i < msg.ids.length; i++) {
          const now = this.start(msg.ids[i]!, msg.handlers[i]!, msg.inputs[i], msg.attempts[i]!);
          const held = this.outbox.length;
          if (held >= FLUSH_AFTER_RESULTS) {
            this.flush();
          } else if (held > 0 && (now >= 0 || (i & 7) === 7)) {
            // The clock is read only now and then: every task's reading costs more than the rest of it.
            if ((now >= 0 ? now : performance.now()) - this.outboxSince > FLUSH_AFTER_MS) this.flush();
          }
        }
        return;
      case 'abort':
        this.running.get(msg.id)?.abort();
        return;
      case 'ping':
        this.post({ t: 'pong', seq: msg.seq });
        return;
      case 'close':
        this.onClose();
        return;
      case 'bell':
        return;
    }
  }

  /**
   * Runs one task. Its synchronous time is measured for the first tasks of each handler, for slow
   * handlers, and for one task in four otherwise. Returns the clock after the synchronous part when
   * it was read, else -1.
   */
  private start(id: number, index: number, input: unknown, attempt: number): number {
    const handler = this.handlerList[index];
    if (!handler) {
      this.complete({
        id,
        ok: false,
        kind: 'unknown-handler',
        error: { name: 'UnknownHandler', message: this.handlerNames.join(',') },
      });
      return -1;
    }
    const count = this.started[index]!;
    this.started[index] = count + 1;
    const timed = count < MEASURE_FIRST || (count & 3) === 0 || this.lastSyncMs[index]! > MEASURE_ALWAYS_MS;
    const ctx = new Context(attempt);
    let value: unknown;
    const started = timed ? performance.now() : 0;
    try {
      value = handler(input, ctx);
    } catch (err) {
      const now = timed ? performance.now() : -1;
      this.fail(id, err, timed ? this.measured(index, now - started) : undefined);
      return now;
    }
    const now = timed ? performance.now() : -1;
    const syncMs = timed ? this.measured(index, now - started) : undefined;
    if (isThenable(value)) {
      // Only a task still pending can be aborted: only those are looked up.
      this.running.set(id, ctx);
      value.then(
        (v) => this.succeed(id, v, syncMs),
        (err) => this.fail(id, err, syncMs),
      );
    } else {
      this.succeed(id, value, syncMs);
    }
    return now;
  }

  private measured(index: number, ms: number): number {
    this.lastSyncMs[index] = ms;
    return ms;
  }

  private succeed(id: number, result: unknown, s: number | undefined): void {
    this.running.delete(id);
    const { value, transfer } = unwrapMoved(result);
    this.complete(s === undefined ? { id, ok: true, value } : { id, ok: true, value, s }, transfer);
  }

  private fail(id: number, err: unknown, s: number | undefined): void {
    this.running.delete(id);
    const error = serializeError(err);
    this.complete(
      s === undefined ? { id, ok: false, kind: 'threw', error } : { id, ok: false, kind: 'threw', error, s },
    );
  }

  private complete(result: TaskResult, transfer?: readonly TransferListItem[]): void {
    if (this.outbox.length === 0) this.outboxSince = performance.now();
    this.outbox.push(result);
    if (transfer || this.outboxTransfer.length > 0) {
      while (this.outboxTransfer.length < this.outbox.length - 1) this.outboxTransfer.push(undefined);
      this.outboxTransfer.push(transfer);
    }
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(this.flushNow);
    }
  }

  private flush(): void {
    this.flushScheduled = false;
    if (this.outbox.length === 0) return;
    const results = this.outbox;
    const transfers = this.outboxTransfer;
    this.outbox = [];
    this.outboxTransfer = [];
    const transfer = transfers.length > 0 ? transfers.flatMap((t) => t ?? []) : undefined;
    if (results.length > 1 && tooHeavyToBatch(results, resultValue)) {
      for (const [i, result] of results.entries()) this.postOne(result, transfers[i]);
      return;
    }
    try {
      this.post(encodeResults(results), transfer);
    } catch {
      // One result could not be cloned: send them one by one so only that task fails.
      for (const [i, result] of results.entries()) this.postOne(result, transfers[i]);
    }
  }

  private postOne(result: TaskResult, transfer: readonly TransferListItem[] | undefined): void {
    try {
      this.post(encodeResults([result]), transfer);
    } catch (err) {
      this.post(
        encodeResults([{ id: result.id, ok: false, kind: 'not-cloneable', error: serializeError(err) }]),
      );
    }
  }
}

function resultValue(r: TaskResult): unknown {
  return r.ok ? r.value : undefined;
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (
    value !== null &&
    (typeof value === 'object' || typeof value === 'function') &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}
