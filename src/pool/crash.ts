import type { CrashCause } from '../errors.js';
import type { WorkerExit } from '../tiers/tier.js';

/** What the pool itself did to the worker before it exited, if anything. */
export type KillReason = 'timeout' | 'hang' | undefined;

/** Turns how a worker ended into the cause reported to callers and in `crash` events. Pure. */
export function classifyExit(
  exit: WorkerExit,
  killedBy: KillReason,
  ids: { workerId: number; pid?: number; threadId?: number },
): CrashCause {
  const base = {
    exitCode: exit.exitCode,
    signal: exit.signal,
    workerId: ids.workerId,
    ...(ids.pid !== undefined ? { pid: ids.pid } : {}),
    ...(ids.threadId !== undefined ? { threadId: ids.threadId } : {}),
    ...(exit.error ? { error: exit.error } : {}),
  };
  if (killedBy) return { reason: killedBy, ...base };
  if (exit.protocol) return { reason: 'protocol', ...base, error: exit.protocol };
  if (exit.limit) return { reason: 'limit', limit: exit.limit, ...base };
  if (exit.oom) return { reason: 'oom', ...base };
  if (exit.error) return { reason: 'uncaught', ...base };
  if (exit.signal) return { reason: 'signal', ...base };
  return { reason: 'exit', ...base };
}
