/**
 * Every rejection of `pool.run()` is one of these classes, each with a stable `code`.
 * `instanceof` works for callers; `code` works across realms and serialization.
 */

/** Why a worker died. Carried as `cause` by {@link WorkerCrashedError} and in `crash` events. */
export interface CrashCause {
  /**
   * - `exit`: the worker exited on its own (e.g. `process.exit`)
   * - `signal`: the process was killed by a signal (SIGKILL from outside, `process.abort()`)
   * - `uncaught`: an uncaught exception or unhandled rejection in the worker
   * - `oom`: the worker ran out of heap (`maxHeapMb`)
   * - `timeout`: the pool killed it because a task ran past its timeout
   * - `hang`: the pool killed it because its event loop stopped answering heartbeats
   * - `limit`: a sandbox limit ended it (`limit` says which)
   * - `protocol`: the pool killed it because it broke the channel's protocol (it corrupted the
   *   shared-memory ring or wrote a malformed frame); `error` says what was wrong
   */
  reason: 'exit' | 'signal' | 'uncaught' | 'oom' | 'timeout' | 'hang' | 'limit' | 'protocol';
  /** For `limit`: which one. */
  limit?: 'memory' | 'cpu';
  exitCode: number | null;
  signal: string | null;
  /** The uncaught error, when there was one. */
  error?: SerializedError;
  workerId: number;
  pid?: number;
  threadId?: number;
}

export interface SerializedError {
  name: string;
  message: string;
  stack?: string;
  code?: string;
}

export abstract class IsolaneError extends Error {
  abstract readonly code: string;
}

/** The handler threw (or its promise rejected). The remote error's name, message and stack are kept. */
export class TaskError extends IsolaneError {
  readonly code = 'ERR_ISOLANE_TASK';
  readonly handler: string;
  readonly remoteName: string;
  readonly remoteStack: string | undefined;
  readonly remoteCode: string | undefined;
  constructor(handler: string, remote: SerializedError) {
    super(remote.message);
    this.name = 'TaskError';
    this.handler = handler;
    this.remoteName = remote.name;
    this.remoteStack = remote.stack;
    this.remoteCode = remote.code;
    if (remote.stack) this.stack = `${this.stack}\n--- thrown by handler '${handler}' ---\n${remote.stack}`;
  }
}

/** The worker died while the task was running, and the task was not (or no longer) retried. */
export class WorkerCrashedError extends IsolaneError {
  readonly code = 'ERR_ISOLANE_WORKER_CRASHED';
  override readonly cause: CrashCause;
  /** How many times the task was tried. */
  readonly attempts: number;
  constructor(handler: string, cause: CrashCause, attempts: number) {
    super(
      `worker ${cause.workerId} died (${describeCause(cause)}) while running '${handler}' (attempt ${attempts})`,
    );
    this.name = 'WorkerCrashedError';
    this.cause = cause;
    this.attempts = attempts;
  }
}

export class TaskTimeoutError extends IsolaneError {
  readonly code = 'ERR_ISOLANE_TIMEOUT';
  readonly timeoutMs: number;
  constructor(handler: string, timeoutMs: number) {
    super(`task '${handler}' did not finish within ${timeoutMs} ms`);
    this.name = 'TaskTimeoutError';
    this.timeoutMs = timeoutMs;
  }
}

/** Named `AbortError`, as the platform's own abort errors are. */
export class AbortError extends IsolaneError {
  readonly code = 'ABORT_ERR';
  constructor(handler: string, reason?: unknown) {
    super(`task '${handler}' was aborted`, reason === undefined ? undefined : { cause: reason });
    this.name = 'AbortError';
  }
}

export class QueueFullError extends IsolaneError {
  readonly code = 'ERR_ISOLANE_QUEUE_FULL';
  constructor(maxQueue: number) {
    super(`the queue is full (maxQueue: ${maxQueue})`);
    this.name = 'QueueFullError';
  }
}

export class PoolClosedError extends IsolaneError {
  readonly code = 'ERR_ISOLANE_POOL_CLOSED';
  constructor(how: 'closed' | 'destroyed') {
    super(`the pool was ${how}`);
    this.name = 'PoolClosedError';
  }
}

/** Workers crashed more than `restart.intensity.maxRestarts` times within `withinMs`; the pool stopped respawning. */
export class QuarantinedError extends IsolaneError {
  readonly code = 'ERR_ISOLANE_QUARANTINED';
  readonly lastCrash: CrashCause;
  readonly until: number;
  constructor(lastCrash: CrashCause, until: number) {
    super(
      `the pool is quarantined after too many crashes until ${new Date(until).toISOString()}; ` +
        `last crash: worker ${lastCrash.workerId}, ${describeCause(lastCrash)}`,
      { cause: lastCrash },
    );
    this.name = 'QuarantinedError';
    this.lastCrash = lastCrash;
    this.until = until;
  }
}

/** The handler module could not be loaded. The pool fails fast instead of crash-looping. */
export class WorkerStartError extends IsolaneError {
  readonly code = 'ERR_ISOLANE_WORKER_START';
  readonly handlers: string;
  readonly remote: SerializedError;
  constructor(handlers: string, remote: SerializedError) {
    super(`the handler module ${handlers} failed to load: ${remote.name}: ${remote.message}`);
    this.name = 'WorkerStartError';
    this.handlers = handlers;
    this.remote = remote;
    if (remote.stack) this.stack = `${this.stack}\n--- in the worker ---\n${remote.stack}`;
  }
}

export class UnknownHandlerError extends IsolaneError {
  readonly code = 'ERR_ISOLANE_UNKNOWN_HANDLER';
  readonly handler: string;
  readonly available: readonly string[];
  constructor(handler: string, available: readonly string[]) {
    super(
      `no handler named '${handler}'; the module exports: ${available.length ? available.join(', ') : '(no functions)'}`,
    );
    this.name = 'UnknownHandlerError';
    this.handler = handler;
    this.available = available;
  }
}

/** A task's input or a handler's result could not be copied between threads or processes. */
export class SerializationError extends IsolaneError {
  readonly code = 'ERR_ISOLANE_NOT_CLONEABLE';
  readonly handler: string;
  readonly direction: 'input' | 'result';
  constructor(handler: string, direction: 'input' | 'result', detail: string) {
    super(
      `the ${direction} of task '${handler}' cannot be cloned (${detail}); ` +
        'use values the structured clone algorithm accepts: no functions, symbols, class instances with private state',
    );
    this.name = 'SerializationError';
    this.handler = handler;
    this.direction = direction;
  }
}

/** Thrown synchronously by `createPool` and `run` for bad options. */
export class InvalidOptionError extends TypeError {
  readonly code = 'ERR_ISOLANE_INVALID_OPTION';
  readonly option: string;
  constructor(option: string, message: string) {
    super(`isolane: option '${option}' ${message}`);
    this.name = 'InvalidOptionError';
    this.option = option;
  }
}

export function describeCause(cause: CrashCause): string {
  switch (cause.reason) {
    case 'exit':
      return `exited with code ${cause.exitCode}`;
    case 'signal':
      return `killed by ${cause.signal}`;
    case 'uncaught':
      return `uncaught ${cause.error ? `${cause.error.name}: ${cause.error.message}` : 'exception'}`;
    case 'oom':
      return 'out of memory';
    case 'timeout':
      return 'killed after a task timed out';
    case 'hang':
      return 'killed after its event loop stopped answering';
    case 'limit':
      return `stopped by its sandbox's ${cause.limit ?? ''} limit`;
    case 'protocol':
      return `killed for breaking the channel protocol${cause.error ? ` (${cause.error.message})` : ''}`;
  }
}

export function serializeError(value: unknown): SerializedError {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return {
      name: value.name,
      message: value.message,
      stack: value.stack,
      ...(typeof code === 'string' ? { code } : {}),
    };
  }
  let message: string;
  try {
    message = typeof value === 'string' ? value : (JSON.stringify(value) ?? String(value));
  } catch {
    message = String(value);
  }
  return { name: 'NonError', message: `a non-Error value was thrown: ${message}` };
}

/** A tenant reached one of its limits (`tenantLimits`, or the sandbox's uid range). */
export class TenantLimitError extends IsolaneError {
  readonly code = 'ERR_ISOLANE_TENANT_LIMIT';
  readonly tenant: string;
  readonly limit: string;
  constructor(tenant: string, limit: string, value: number, detail?: string) {
    super(detail ?? `tenant '${tenant}' reached its limit ${limit} (${value})`);
    this.name = 'TenantLimitError';
    this.tenant = tenant;
    this.limit = limit;
  }
}
