export type { CrashCause, SerializedError } from './errors.js';
export {
  AbortError,
  InvalidOptionError,
  IsolaneError,
  PoolClosedError,
  QuarantinedError,
  QueueFullError,
  SerializationError,
  TaskError,
  TaskTimeoutError,
  TenantLimitError,
  UnknownHandlerError,
  WorkerCrashedError,
  WorkerStartError,
} from './errors.js';
export type { PoolOptions } from './pool/options.js';
export type {
  BatchStats,
  CrashEvent,
  PoolEvents,
  PoolState,
  PoolStats,
  QuarantineEvent,
  RecoverEvent,
  RestartEvent,
  RunOptions,
  WorkerExitEvent,
  WorkerStartEvent,
  WorkerState,
  WorkerStats,
} from './pool/pool.js';
export { Pool } from './pool/pool.js';
export type { LatencySummary } from './pool/stats.js';
export type { Boundary, IsolationReport } from './sandbox/describe.js';
export type { SandboxOptions } from './sandbox/options.js';
export type { Isolation } from './tiers/tier.js';
export { move } from './worker/move.js';
export type { Handler, TaskContext } from './worker/runtime.js';

import type { PoolOptions } from './pool/options.js';
import { Pool } from './pool/pool.js';

/**
 * Creates a pool. Options are checked synchronously: a bad one throws `InvalidOptionError`
 * naming the option and what it allows. Pass the handler module's type to get typed `run()`:
 * `createPool<typeof import('./handlers.js')>({ handlers: ... })`.
 */
export function createPool<H extends object = Record<string, (input: any, ctx: any) => any>>(
  options: PoolOptions,
): Pool<H> {
  return new Pool<H>(options);
}
