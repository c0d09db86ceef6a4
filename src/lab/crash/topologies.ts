/**
 * The three shapes of a service the lab crashes, each built naive or with isolane's policies:
 * - one-process: one process does everything; any crash takes all of it down;
 * - processes: N worker processes; a crash takes down one of them;
 * - threads: one process (the server) with N worker threads; a fault in a thread takes down that
 *   thread, except a fatal one (the thread SIGKILLs its process), which takes down the server and
 *   every thread in it, as does killing the server from outside.
 */
import { createPool } from '../../index.js';
import type { Outcome } from './accounting.js';
import {
  type Backend,
  CRASH_HANDLERS,
  createBackend,
  OOM_HEAP_MB,
  type Policy,
  type TimelineEvent,
  wallNow,
} from './backend.js';
import type { WorkInput } from './handlers.js';
import type { CrashKind } from './schedule.js';
import type { ServerConfig } from './server.js';

export type TopologyId = 'one-process' | 'processes' | 'threads';
export const TOPOLOGIES: readonly TopologyId[] = ['one-process', 'processes', 'threads'];

/** The crash kinds each topology can suffer. */
export const CRASH_KINDS_OF: Record<TopologyId, readonly CrashKind[]> = {
  'one-process': ['sigkill', 'uncaught', 'oom', 'hang', 'fatal', 'process'],
  processes: ['sigkill', 'uncaught', 'oom', 'hang', 'fatal'],
  threads: ['uncaught', 'oom', 'hang', 'fatal', 'process'],
};

export interface TopologyConfig {
  topology: TopologyId;
  policy: Policy;
  workers: number;
  /** How long the pools wait before respawning a crashed worker (or server). */
  restartDelayMs: number;
  spares: number;
  serviceKind: WorkInput['kind'];
  crashKind: CrashKind;
}

export interface Topology {
  /** How many units the requests are spread over. */
  readonly units: number;
  /** Whether a crash of this kind takes every unit down at once. */
  readonly wholeSystem: boolean;
  readonly description: string;
  ready(): Promise<void>;
  send(input: WorkInput): Promise<Outcome>;
  /** Injects a crash now; returns when, and which timeline scope tells when the unit is back. */
  inject(kind: CrashKind): { t: number; scope: string };
  /** The pools' events, with wall-clock times (for threads, the server's own pools' too). */
  timeline(): Promise<TimelineEvent[]>;
  destroy(): Promise<void>;
}

const EXT = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const HANDLERS = new URL(`./handlers${EXT}`, import.meta.url);

/** Tasks one isolane worker holds at once: async waits overlap; CPU work is better queued in the pool. */
function isolaneConcurrency(kind: WorkInput['kind']): number {
  return kind === 'wait' ? 10_000 : 1;
}

export function describeTopology(topology: TopologyId, workers: number): string {
  if (topology === 'one-process') return '1 process doing everything';
  if (topology === 'processes') return `${workers} worker processes`;
  return `1 process with ${workers} worker threads`;
}

export function describePolicy(policy: Policy, spares: number): string {
  return policy === 'naive'
    ? 'naive: round-robin to independent units, refused while down, no retries'
    : `isolane: one pool, idempotent tasks (retried), ${spares} spare${spares === 1 ? '' : 's'}, routing around, queueing`;
}

export function createTopology(config: TopologyConfig): Topology {
  if (!CRASH_KINDS_OF[config.topology].includes(config.crashKind)) {
    throw new RangeError(
      `a ${config.topology} topology cannot suffer a '${config.crashKind}' crash; it can: ${CRASH_KINDS_OF[config.topology].join(', ')}`,
    );
  }
  return config.topology === 'threads' ? threadsTopology(config) : processTopology(config);
}

function serverUrl(
  config: Pick<
    TopologyConfig,
    'policy' | 'workers' | 'restartDelayMs' | 'spares' | 'serviceKind' | 'crashKind'
  >,
): URL {
  const server: ServerConfig = {
    policy: config.policy,
    threads: config.workers,
    restartDelayMs: config.restartDelayMs,
    spares: config.spares,
    concurrency: isolaneConcurrency(config.serviceKind),
    ...(config.crashKind === 'oom' ? { maxHeapMb: OOM_HEAP_MB } : {}),
  };
  const url = new URL(`./server${EXT}`, import.meta.url);
  url.searchParams.set('config', JSON.stringify(server));
  return url;
}

const startups = new Map<string, number>();

/**
 * What restarts after a crash of this kind: a worker process, a worker thread, or the whole server
 * process with its N threads.
 */
export function crashedUnit(
  config: Pick<TopologyConfig, 'topology' | 'crashKind'>,
): 'process' | 'thread' | 'server' {
  if (config.topology !== 'threads') return 'process';
  return config.crashKind === 'fatal' || config.crashKind === 'process' ? 'server' : 'thread';
}

/**
 * How long the unit that crashes takes to start, spawn to ready, measured on one idle unit of that
 * shape (cached per shape). The lab subtracts it from the restart time, so that a restart takes
 * what the seed says it does: from the crash until the unit serves again.
 */
export async function unitStartupMs(
  config: Pick<TopologyConfig, 'topology' | 'workers' | 'crashKind' | 'serviceKind'>,
): Promise<number> {
  const unit = crashedUnit(config);
  const oom = config.crashKind === 'oom';
  const key = `${unit}:${unit === 'server' ? config.workers : 1}:${oom}`;
  const known = startups.get(key);
  if (known !== undefined) return known;
  const pool = createPool({
    handlers:
      unit === 'server' ? serverUrl({ ...config, policy: 'naive', restartDelayMs: 0, spares: 0 }) : HANDLERS,
    isolation: unit === 'thread' ? 'thread' : 'process',
    workers: 1,
    ...(oom && unit !== 'server' ? { maxHeapMb: OOM_HEAP_MB } : {}),
  });
  const started = wallNow();
  try {
    await pool.ready();
    const ms = wallNow() - started;
    startups.set(key, ms);
    return ms;
  } finally {
    await pool.destroy();
  }
}

function processTopology(config: TopologyConfig): Topology {
  const timeline: TimelineEvent[] = [];
  const units = config.topology === 'one-process' ? 1 : config.workers;
  const backend = createBackend({
    policy: config.policy,
    isolation: 'process',
    workers: units,
    handlers: HANDLERS,
    restartDelayMs: config.restartDelayMs,
    spares: config.spares,
    concurrency: isolaneConcurrency(config.serviceKind),
    ...(config.crashKind === 'oom' ? { maxHeapMb: OOM_HEAP_MB } : {}),
    prefix: '',
    timeline,
    crashTask: (kind) => ({ name: CRASH_HANDLERS[kind]!, input: null }),
  });
  return {
    units,
    wholeSystem: units === 1,
    description: describeTopology(config.topology, units),
    ready: () => backend.ready(),
    send: (input) => backend.send('work', input),
    inject: (kind) => backend.inject(kind),
    timeline: async () => timeline,
    destroy: () => backend.destroy(),
  };
}

function threadsTopology(config: TopologyConfig): Topology {
  const timeline: TimelineEvent[] = [];
  const server: ServerConfig = {
    policy: config.policy,
    threads: config.workers,
    restartDelayMs: config.restartDelayMs,
    spares: config.spares,
    concurrency: isolaneConcurrency(config.serviceKind),
    ...(config.crashKind === 'oom' ? { maxHeapMb: OOM_HEAP_MB } : {}),
  };
  const url = new URL(`./server${EXT}`, import.meta.url);
  url.searchParams.set('config', JSON.stringify(server));
  // The server process itself, supervised by the same policy: naive, it is refused while down and
  // restarted after the delay; with isolane, requests to it are idempotent and a spare server waits.
  const outer: Backend = createBackend({
    policy: config.policy,
    isolation: 'process',
    workers: 1,
    handlers: url,
    // The server process comes back after the same delay as a thread would.
    restartDelayMs: config.restartDelayMs,
    spares: config.spares,
    concurrency: 10_000,
    prefix: '',
    timeline,
    crashTask: (kind) => ({ name: 'trigger', input: kind }),
  });
  const wholeProcess = config.crashKind === 'fatal' || config.crashKind === 'process';
  return {
    units: config.workers,
    wholeSystem: wholeProcess,
    description: describeTopology('threads', config.workers),
    ready: () => outer.ready(),
    send: (input) => outer.send('serve', input),
    inject(kind) {
      const injection = outer.inject(kind);
      if (kind === 'fatal' || kind === 'process') return injection;
      return { t: injection.t, scope: config.policy === 'naive' ? 'inner unit 0' : 'inner pool' };
    },
    async timeline() {
      let inner: TimelineEvent[] = [];
      try {
        inner = ((await outer.call('report', null)) as { timeline: TimelineEvent[] }).timeline;
      } catch {
        // the server is down: only the lab's own events are known
      }
      return [...timeline, ...inner].sort((a, b) => a.t - b.t);
    },
    destroy: () => outer.destroy(),
  };
}
