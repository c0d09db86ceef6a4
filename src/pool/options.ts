import { availableParallelism } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { nativeLoadError, nativeShm } from '../channel/native.js';
import { InvalidOptionError } from '../errors.js';
import { type ResolvedSandbox, resolveSandbox, type SandboxOptions } from '../sandbox/options.js';
import type { RestartPolicy } from '../supervisor/policy.js';
import type { Isolation } from '../tiers/tier.js';
import { type Channel, type ChannelOption, chooseChannel } from './channel-choice.js';

export interface PoolOptions {
  /** The handler module: a `URL`, a `file:` URL string, or a path (relative to the working directory). Its named function exports are the handlers. */
  handlers: string | URL;
  /** Where tasks run. Default `'thread'`. */
  isolation?: Isolation;
  /** Number of workers. Default `os.availableParallelism()`. */
  workers?: number;
  /**
   * Tasks one worker holds at once (pipelining; async handlers run concurrently). A number fixes it;
   * `'auto'` (the default) pipelines up to 64 tasks of a handler whose synchronous run time is short,
   * so that a task waits at most about 4 ms behind others in its worker, and one at a time otherwise.
   */
  concurrency?: number | 'auto';
  /** Tasks that may wait for a worker; beyond this `run()` rejects with `QueueFullError`. Default unbounded. */
  maxQueue?: number;
  /** Default per-task timeout, from dispatch to result. Default none. */
  timeoutMs?: number;
  retry?: {
    /** Total tries of an idempotent task whose worker crashed under it. Default 2. */
    attempts?: number;
  };
  restart?: {
    backoff?: { initialMs?: number; maxMs?: number; factor?: number };
    intensity?: { maxRestarts?: number; withinMs?: number };
    /** Uptime after which a crashed worker counts as having been stable (backoff starts over). Default 5000. */
    stableAfterMs?: number;
    /** Pre-started workers that take a dead worker's place at once; the dead one is respawned as a spare. Default 0. */
    spares?: number;
  };
  /** Ping each worker this often; one that does not answer for two intervals is killed as hung. Default off. */
  heartbeatMs?: number;
  /** Heap limit per worker in MiB (thread: `resourceLimits`; process: `--max-old-space-size`). */
  maxHeapMb?: number;
  /** `'shared'` (default): any worker serves any tenant, tenants served in turn. `'dedicated'`: each tenant has its own workers. */
  tenancy?: 'shared' | 'dedicated';
  /** With `'dedicated'`: workers per tenant. Default 1. */
  perTenant?: number;
  /** With `'dedicated'`: a tenant's workers stop after this long without tasks. Default 60000. */
  idleMs?: number;
  /** With `'dedicated'`: the most tenants with workers at once; a new one evicts the least recently used. Default 64. */
  maxTenants?: number;
  /** Per tenant: tasks waiting (beyond: `TenantLimitError`) and tasks running at once (beyond: they wait their turn). */
  tenantLimits?: { maxQueued?: number; maxRunning?: number };
  /** Process tier: how each worker is confined (own uid, namespaces, limits, environment). */
  sandbox?: SandboxOptions;
  /**
   * How task and result batches travel between the pool and its workers. `'auto'` (the default):
   * the fastest the level and the machine allow. `'ring'`: shared-memory rings (thread tier; process
   * tier with the native addon, else the IPC channel and a warning). `'message'`: `postMessage` or
   * the IPC channel. Inline calls handlers directly whatever this says. `stats().channel` tells.
   */
  channel?: ChannelOption;
  /**
   * Ring channel: how long each side keeps polling after it sent or received, before it sleeps
   * until woken (microseconds, 0 to 10000). Higher: lower latency for chatty work, more CPU spent
   * waiting. Default 50 (about twice what waking a sleeping thread costs).
   */
  spinUs?: number;
}

export interface ResolvedOptions {
  handlers: string;
  isolation: Isolation;
  workers: number;
  /** The most tasks one worker holds at once. */
  concurrency: number;
  /** Whether the depth adapts to each handler's synchronous run time (`concurrency: 'auto'`). */
  adaptive: boolean;
  maxQueue: number;
  timeoutMs: number | undefined;
  retryAttempts: number;
  restart: RestartPolicy;
  spares: number;
  heartbeatMs: number | undefined;
  maxHeapMb: number | undefined;
  tenancy: 'shared' | 'dedicated';
  perTenant: number;
  idleMs: number;
  maxTenants: number;
  tenantLimits: { maxQueued?: number; maxRunning?: number };
  sandbox: ResolvedSandbox | undefined;
  channel: Channel;
  spinUs: number;
}

let ringWarningShown = false;

/** The channel, warning once per process when a ring asked for cannot be had. */
function channel(value: unknown, isolation: Isolation, sandbox: ResolvedSandbox | undefined): Channel {
  const choice = chooseChannel(value, {
    isolation,
    addon: nativeShm ? { loaded: true } : { loaded: false, reason: nativeLoadError?.message ?? 'not built' },
    permission: sandbox?.permission === true,
  });
  if (choice.warning && !ringWarningShown) {
    ringWarningShown = true;
    process.emitWarning(choice.warning, { code: 'ISOLANE_NO_RING' });
  }
  return choice.channel;
}

/** With `concurrency: 'auto'`: the deepest pipeline, and the wait behind other tasks it aims to stay under. */
export const AUTO_MAX_IN_FLIGHT = 64;
export const AUTO_QUEUE_BUDGET_MS = 4;

const ISOLATIONS: readonly Isolation[] = ['inline', 'thread', 'process'];
const TOP_LEVEL = [
  'handlers',
  'isolation',
  'workers',
  'concurrency',
  'maxQueue',
  'timeoutMs',
  'retry',
  'restart',
  'maxHeapMb',
  'heartbeatMs',
  'tenancy',
  'perTenant',
  'idleMs',
  'maxTenants',
  'tenantLimits',
  'sandbox',
  'channel',
  'spinUs',
] as const;

function fail(option: string, message: string): never {
  throw new InvalidOptionError(option, message);
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value);
  return `a value of type ${Array.isArray(value) ? 'array' : typeof value}`;
}

function checkKeys(option: string, value: object, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      const name = option ? `${option}.${key}` : key;
      fail(name, `is not a known option; allowed${option ? ` in '${option}'` : ''}: ${allowed.join(', ')}`);
    }
  }
}

function object(option: string, value: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    fail(option, `must be an object with keys ${allowed.join(', ')}; got ${describe(value)}`);
  }
  checkKeys(option, value, allowed);
  return value as Record<string, unknown>;
}

/** An integer within [min, max], or the default when undefined. */
export function integer(option: string, value: unknown, min: number, max: number, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    fail(option, `must be an integer ${range}; got ${describe(value)}`);
  }
  return value;
}

/** A positive finite number of milliseconds, or undefined. */
export function milliseconds(option: string, value: unknown): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    fail(option, `must be a positive number of milliseconds; got ${describe(value)}`);
  }
  return value;
}

function handlersUrl(value: unknown): string {
  if (value instanceof URL) {
    if (value.protocol !== 'file:') fail('handlers', `must be a file: URL; got ${value.href}`);
    return value.href;
  }
  if (typeof value !== 'string' || value === '') {
    fail('handlers', `is required: a URL or a path to the handler module; got ${describe(value)}`);
  }
  if (value.startsWith('file:')) return new URL(value).href;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(value))
    fail('handlers', `must be a file path or file: URL; got ${value}`);
  return pathToFileURL(isAbsolute(value) ? value : resolve(value)).href;
}

function concurrency(value: unknown): number {
  if (value === undefined || value === 'auto') return AUTO_MAX_IN_FLIGHT;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 10_000) {
    fail('concurrency', `must be 'auto' or an integer from 1 to 10000; got ${describe(value)}`);
  }
  return value;
}

export function resolveOptions(options: unknown): ResolvedOptions {
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    fail('options', `must be an object with at least 'handlers'; got ${describe(options)}`);
  }
  checkKeys('', options, TOP_LEVEL);
  const o = options as Record<string, unknown>;

  const isolation = o.isolation ?? 'thread';
  if (!ISOLATIONS.includes(isolation as Isolation)) {
    fail(
      'isolation',
      `must be one of ${ISOLATIONS.map((i) => `'${i}'`).join(', ')}; got ${describe(isolation)}`,
    );
  }

  const retry = object('retry', o.retry, ['attempts']);
  const restart = object('restart', o.restart, ['backoff', 'intensity', 'stableAfterMs', 'spares']);
  const backoff = object('restart.backoff', restart.backoff, ['initialMs', 'maxMs', 'factor']);
  const intensity = object('restart.intensity', restart.intensity, ['maxRestarts', 'withinMs']);

  const initialMs = integer('restart.backoff.initialMs', backoff.initialMs, 0, 3_600_000, 10);
  const maxMs = integer('restart.backoff.maxMs', backoff.maxMs, 0, 3_600_000, 5_000);
  if (maxMs < initialMs)
    fail('restart.backoff.maxMs', `must be >= restart.backoff.initialMs (${initialMs}); got ${maxMs}`);
  const factor = backoff.factor ?? 2;
  if (typeof factor !== 'number' || !Number.isFinite(factor) || factor < 1) {
    fail('restart.backoff.factor', `must be a number >= 1; got ${describe(factor)}`);
  }

  const timeoutMs = milliseconds('timeoutMs', o.timeoutMs);
  const tenancy = o.tenancy ?? 'shared';
  if (tenancy !== 'shared' && tenancy !== 'dedicated') {
    fail('tenancy', `must be 'shared' or 'dedicated'; got ${describe(tenancy)}`);
  }
  const tenantLimits = object('tenantLimits', o.tenantLimits, ['maxQueued', 'maxRunning']);
  const sandbox = resolveSandbox(o.sandbox, String(isolation), tenancy);
  return {
    tenancy,
    perTenant: integer('perTenant', o.perTenant, 1, 64, 1),
    idleMs: integer('idleMs', o.idleMs, 1, 86_400_000, 60_000),
    maxTenants: integer('maxTenants', o.maxTenants, 1, 100_000, 64),
    tenantLimits: {
      ...(tenantLimits.maxQueued !== undefined
        ? {
            maxQueued: integer(
              'tenantLimits.maxQueued',
              tenantLimits.maxQueued,
              0,
              Number.MAX_SAFE_INTEGER,
              0,
            ),
          }
        : {}),
      ...(tenantLimits.maxRunning !== undefined
        ? {
            maxRunning: integer(
              'tenantLimits.maxRunning',
              tenantLimits.maxRunning,
              1,
              Number.MAX_SAFE_INTEGER,
              1,
            ),
          }
        : {}),
    },
    sandbox,
    channel: channel(o.channel, isolation as Isolation, sandbox),
    spinUs: integer('spinUs', o.spinUs, 0, 10_000, 50),
    handlers: handlersUrl(o.handlers),
    isolation: isolation as Isolation,
    workers: integer('workers', o.workers, 1, 1024, availableParallelism()),
    concurrency: concurrency(o.concurrency),
    adaptive: o.concurrency === 'auto' || o.concurrency === undefined,
    maxQueue:
      o.maxQueue === Number.POSITIVE_INFINITY
        ? Infinity
        : integer('maxQueue', o.maxQueue, 0, Number.MAX_SAFE_INTEGER, Infinity),
    timeoutMs,
    retryAttempts: integer('retry.attempts', retry.attempts, 1, 100, 2),
    restart: {
      backoff: { initialMs, maxMs, factor },
      intensity: {
        maxRestarts: integer('restart.intensity.maxRestarts', intensity.maxRestarts, 0, 1_000_000, 10),
        withinMs: integer('restart.intensity.withinMs', intensity.withinMs, 1, 86_400_000, 10_000),
      },
      stableAfterMs: integer('restart.stableAfterMs', restart.stableAfterMs, 0, 86_400_000, 5_000),
    },
    spares: integer('restart.spares', restart.spares, 0, 64, 0),
    heartbeatMs:
      o.heartbeatMs === undefined ? undefined : integer('heartbeatMs', o.heartbeatMs, 10, 3_600_000, 0),
    maxHeapMb: o.maxHeapMb === undefined ? undefined : integer('maxHeapMb', o.maxHeapMb, 16, 1_048_576, 0),
  };
}
