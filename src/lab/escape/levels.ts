/**
 * The isolation levels the escape lab puts to the test, each a pool configuration. The victim and
 * the attacker are two tenants of one pool with `tenancy: 'dedicated'`: each has its own worker,
 * and at the inline and thread levels those workers share one process anyway.
 */
import type { PoolOptions } from '../../index.js';

export const LEVEL_IDS = [
  'inline',
  'thread',
  'process',
  'process-uid',
  'process-ns',
  'process-limits',
] as const;
export type LevelId = (typeof LEVEL_IDS)[number];

export interface Level {
  id: LevelId;
  /** Column header. */
  short: string;
  title: string;
  options: Omit<PoolOptions, 'handlers'>;
}

/** The limits of the top level: enough for a Node worker, far below the bombs' caps. */
export const TENANT_LIMITS = { memoryMb: 256, cpuSeconds: 30, openFiles: 256, processes: 64 };

const dedicated = { tenancy: 'dedicated', perTenant: 1, idleMs: 600_000 } as const;

export const LEVELS: Record<LevelId, Level> = {
  inline: {
    id: 'inline',
    short: 'inline',
    title: "inline: both tenants in the caller's thread",
    options: { isolation: 'inline', ...dedicated },
  },
  thread: {
    id: 'thread',
    short: 'thread',
    title: 'thread: a worker thread per tenant, one process',
    options: { isolation: 'thread', ...dedicated },
  },
  process: {
    id: 'process',
    short: 'process',
    title: 'process: a process per tenant, same uid as the caller',
    options: { isolation: 'process', ...dedicated },
  },
  'process-uid': {
    id: 'process-uid',
    short: '+ own uid',
    title: "process + own uid: sandbox { uid: 'per-tenant' }",
    options: { isolation: 'process', ...dedicated, sandbox: { uid: 'per-tenant' } },
  },
  'process-ns': {
    id: 'process-ns',
    short: '+ namespaces',
    title: "+ namespaces: sandbox { uid: 'per-tenant', namespaces: true }",
    options: { isolation: 'process', ...dedicated, sandbox: { uid: 'per-tenant', namespaces: true } },
  },
  'process-limits': {
    id: 'process-limits',
    short: '+ limits',
    title: `+ limits: memory ${TENANT_LIMITS.memoryMb} MiB, CPU ${TENANT_LIMITS.cpuSeconds} s, ${TENANT_LIMITS.openFiles} files, ${TENANT_LIMITS.processes} processes`,
    options: {
      isolation: 'process',
      ...dedicated,
      sandbox: { uid: 'per-tenant', namespaces: true, limits: TENANT_LIMITS },
    },
  },
};

/** Levels whose probes can take down the process that runs the pool. */
export function sharesProcess(level: LevelId): boolean {
  return level === 'inline' || level === 'thread';
}
