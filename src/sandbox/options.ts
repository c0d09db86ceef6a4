import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { InvalidOptionError } from '../errors.js';
import { cgroupSupport } from './cgroup.js';

export interface SandboxOptions {
  /** `'per-tenant'`: a distinct uid/gid for each tenant, from `uidRange` (needs `tenancy: 'dedicated'`); or one fixed uid. */
  uid?: 'per-tenant' | number;
  /** Inclusive range the per-tenant uids come from. Default [100000, 109999]. */
  uidRange?: [number, number];
  /** Own pid, network, IPC, mount and UTS namespaces, with a private /proc. */
  namespaces?: boolean;
  limits?: {
    /** Memory of the worker and everything it starts (cgroup), and its heap (`--max-old-space-size`). */
    memoryMb?: number;
    /** CPU time of the worker process (RLIMIT_CPU). */
    cpuSeconds?: number;
    /** Open file descriptors (RLIMIT_NOFILE). */
    openFiles?: number;
    /** Processes and threads of the worker and its descendants (pids cgroup). */
    processes?: number;
  };
  /** Names of the environment variables that reach tenant code; no others do. Default: PATH, LANG, TZ, NODE_ENV. */
  env?: string[];
  /** Node's permission model as extra hardening (not a boundary): reads only isolane's and the handlers' folders, no writes, no child processes. */
  permission?: boolean;
}

export interface ResolvedSandbox {
  uid: 'per-tenant' | number | undefined;
  uidRange: [number, number];
  namespaces: boolean;
  limits: { memoryMb?: number; cpuSeconds?: number; openFiles?: number; processes?: number };
  env: string[];
  permission: boolean;
}

export const DEFAULT_ENV = ['PATH', 'LANG', 'TZ', 'NODE_ENV'];
const KEYS = ['uid', 'uidRange', 'namespaces', 'limits', 'env', 'permission'];
const LIMIT_KEYS = ['memoryMb', 'cpuSeconds', 'openFiles', 'processes'];

function fail(option: string, message: string): never {
  throw new InvalidOptionError(option, message);
}

export function onPath(program: string): boolean {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(delimiter)) {
    try {
      accessSync(join(dir, program), constants.X_OK);
      return true;
    } catch {
      // not here
    }
  }
  return false;
}

/** Whether this process holds a capability (by number, see capability.h). */
function hasCapability(bit: number): boolean {
  try {
    const line = readFileSync('/proc/self/status', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('CapEff:'));
    return line ? (BigInt(`0x${line.split(':')[1]!.trim()}`) & (1n << BigInt(bit))) !== 0n : false;
  } catch {
    return false;
  }
}

const CAP_SETGID = 6;
const CAP_SETUID = 7;
const CAP_SYS_ADMIN = 21;

function positive(option: string, value: unknown, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    fail(option, `must be an integer from 1 to ${max}; got ${JSON.stringify(value)}`);
  }
  return value;
}

/**
 * Checks the sandbox options and that this machine can provide each one: an option it cannot
 * provide is an error here, never a silently weaker worker.
 */
export function resolveSandbox(
  value: unknown,
  isolation: string,
  tenancy: string,
): ResolvedSandbox | undefined {
  if (value === undefined) return undefined;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    fail('sandbox', `must be an object with keys ${KEYS.join(', ')}`);
  }
  for (const key of Object.keys(value)) {
    if (!KEYS.includes(key))
      fail(`sandbox.${key}`, `is not a known option; allowed in 'sandbox': ${KEYS.join(', ')}`);
  }
  if (isolation !== 'process') {
    fail(
      'sandbox',
      `needs isolation: 'process' (a sandbox is a way to launch a process); got isolation '${isolation}'`,
    );
  }
  const o = value as SandboxOptions;

  let uid: ResolvedSandbox['uid'];
  if (o.uid === 'per-tenant') {
    if (tenancy !== 'dedicated')
      fail('sandbox.uid', "'per-tenant' needs tenancy: 'dedicated' (each tenant its own workers)");
    uid = 'per-tenant';
  } else if (o.uid !== undefined) {
    if (typeof o.uid !== 'number' || !Number.isInteger(o.uid) || o.uid < 1 || o.uid > 4_294_967_294) {
      fail(
        'sandbox.uid',
        `must be 'per-tenant' or a uid from 1 to 4294967294 (not 0: root is no boundary); got ${JSON.stringify(o.uid)}`,
      );
    }
    uid = o.uid;
  }
  const range = o.uidRange ?? [100_000, 109_999];
  if (
    !Array.isArray(range) ||
    range.length !== 2 ||
    !range.every((n) => Number.isInteger(n) && n >= 1 && n <= 4_294_967_294) ||
    range[0] > range[1]
  ) {
    fail(
      'sandbox.uidRange',
      `must be [first, last], integers from 1 to 4294967294 with first <= last; got ${JSON.stringify(range)}`,
    );
  }
  if (uid !== undefined) {
    if (!hasCapability(CAP_SETUID) || !hasCapability(CAP_SETGID)) {
      fail(
        'sandbox.uid',
        'needs root or CAP_SETUID and CAP_SETGID to start workers under another uid; this process has neither',
      );
    }
    if (!onPath('setpriv')) fail('sandbox.uid', "needs util-linux's setpriv on the PATH");
  }

  const namespaces = o.namespaces ?? false;
  if (typeof namespaces !== 'boolean')
    fail('sandbox.namespaces', `must be a boolean; got ${JSON.stringify(namespaces)}`);
  if (namespaces) {
    if (!hasCapability(CAP_SYS_ADMIN))
      fail('sandbox.namespaces', 'needs root or CAP_SYS_ADMIN to create pid, network and mount namespaces');
    if (!onPath('unshare')) fail('sandbox.namespaces', "needs util-linux's unshare on the PATH");
  }

  const limits = o.limits ?? {};
  if (limits === null || typeof limits !== 'object' || Array.isArray(limits)) {
    fail('sandbox.limits', `must be an object with keys ${LIMIT_KEYS.join(', ')}`);
  }
  for (const key of Object.keys(limits)) {
    if (!LIMIT_KEYS.includes(key))
      fail(`sandbox.limits.${key}`, `is not a known limit; allowed: ${LIMIT_KEYS.join(', ')}`);
  }
  const resolvedLimits = {
    memoryMb: positive('sandbox.limits.memoryMb', limits.memoryMb, 1_048_576),
    cpuSeconds: positive('sandbox.limits.cpuSeconds', limits.cpuSeconds, 31_536_000),
    openFiles: positive('sandbox.limits.openFiles', limits.openFiles, 1_048_576),
    processes: positive('sandbox.limits.processes', limits.processes, 4_194_304),
  };
  if (resolvedLimits.memoryMb !== undefined && resolvedLimits.memoryMb < 64) {
    fail(
      'sandbox.limits.memoryMb',
      `must be at least 64 (a Node process needs about 40 MiB to start); got ${resolvedLimits.memoryMb}`,
    );
  }
  if (resolvedLimits.openFiles !== undefined && resolvedLimits.openFiles < 32) {
    fail(
      'sandbox.limits.openFiles',
      `must be at least 32 (Node needs some to start); got ${resolvedLimits.openFiles}`,
    );
  }
  if (resolvedLimits.processes !== undefined && resolvedLimits.processes < 16) {
    fail(
      'sandbox.limits.processes',
      `must be at least 16 (Node's own threads count); got ${resolvedLimits.processes}`,
    );
  }
  const support = cgroupSupport();
  if (resolvedLimits.memoryMb !== undefined && !support.memory)
    fail('sandbox.limits.memoryMb', `needs ${support.why}`);
  if (resolvedLimits.processes !== undefined && !support.pids)
    fail('sandbox.limits.processes', `needs ${support.why}`);
  if (
    (resolvedLimits.cpuSeconds !== undefined || resolvedLimits.openFiles !== undefined) &&
    !onPath('prlimit')
  ) {
    fail('sandbox.limits', "cpuSeconds and openFiles need util-linux's prlimit on the PATH");
  }

  const env = o.env ?? DEFAULT_ENV;
  if (!Array.isArray(env) || !env.every((e) => typeof e === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(e))) {
    fail('sandbox.env', `must be an array of environment variable names; got ${JSON.stringify(env)}`);
  }
  const permission = o.permission ?? false;
  if (typeof permission !== 'boolean')
    fail('sandbox.permission', `must be a boolean; got ${JSON.stringify(permission)}`);

  return {
    uid,
    uidRange: [range[0], range[1]],
    namespaces,
    limits: Object.fromEntries(Object.entries(resolvedLimits).filter(([, v]) => v !== undefined)),
    env: [...env],
    permission,
  };
}
