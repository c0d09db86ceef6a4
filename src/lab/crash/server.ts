// The threads topology's server: one process whose worker threads serve every request. The lab runs
// it as the only worker of a process pool, so that it is started, killed and restarted like any
// worker, and so that a fault that takes down the whole process (a thread's SIGKILL of its own
// process) takes down this server and not the lab. Its configuration is in the module URL's query.
import type { TaskContext } from '../../worker/runtime.js';
import { CRASH_HANDLERS, createBackend, type Policy, type TimelineEvent } from './backend.js';
import type { WorkInput } from './handlers.js';
import type { CrashKind } from './schedule.js';

export interface ServerConfig {
  policy: Policy;
  threads: number;
  restartDelayMs: number;
  spares: number;
  concurrency: number;
  maxHeapMb?: number;
}

const config = JSON.parse(
  new URL(import.meta.url).searchParams.get('config') ?? 'null',
) as ServerConfig | null;
if (!config) throw new Error('crash lab server: the module URL has no ?config=');

const timeline: TimelineEvent[] = [];
const backend = createBackend({
  policy: config.policy,
  isolation: 'thread',
  workers: config.threads,
  handlers: new URL('./handlers.js', import.meta.url),
  restartDelayMs: config.restartDelayMs,
  spares: config.spares,
  concurrency: config.concurrency,
  ...(config.maxHeapMb ? { maxHeapMb: config.maxHeapMb } : {}),
  prefix: 'inner ',
  timeline,
  crashTask: (kind) => ({ name: CRASH_HANDLERS[kind]!, input: null }),
});
// The server is ready when its threads are.
await backend.ready();

/** One request, served by one of the threads. */
export async function serve(input: WorkInput, ctx: TaskContext): Promise<{ attempts: number }> {
  const outcome = await backend.send('work', input);
  const attempts = ctx.attempt + outcome.attempts - 1;
  if (outcome.ok) return { attempts };
  const err = new Error(`${outcome.code} after ${attempts} tries`) as Error & { code: string };
  err.code = outcome.code;
  throw err;
}

/** Crashes one of the threads the way `kind` says ('fatal': the thread kills this whole process). */
export function trigger(kind: CrashKind): { t: number; scope: string } {
  return backend.inject(kind);
}

/** What the threads' pools reported, with wall-clock times. */
export function report(): { pid: number; timeline: TimelineEvent[] } {
  return { pid: process.pid, timeline };
}
