import { EventEmitter } from 'node:events';
import { InvalidOptionError, PoolClosedError, TenantLimitError } from '../errors.js';
import { describeIsolation, type IsolationReport } from '../sandbox/describe.js';
import type { Isolation, WorkerSandbox } from '../tiers/tier.js';
import type { Handler } from '../worker/runtime.js';
import {
  type BatchStats,
  NO_RUN_OPTIONS,
  type PoolEvents,
  type PoolStats,
  type RunOptions,
  WorkerGroup,
} from './group.js';
import { type PoolOptions, type ResolvedOptions, resolveOptions } from './options.js';
import { LatencyRecorder } from './stats.js';

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
} from './group.js';

type HandlerMap = Record<string, Handler>;

function mergeBatches(parts: BatchStats[]): BatchStats {
  const messages = parts.reduce((n, p) => n + p.messages, 0);
  const items = parts.reduce((n, p) => n + p.items, 0);
  return {
    messages,
    items,
    mean: messages === 0 ? 0 : items / messages,
    max: Math.max(0, ...parts.map((p) => p.max)),
  };
}
type InputOf<H, K extends keyof H> = H[K] extends (input: infer I, ...rest: any[]) => any ? I : never;
type OutputOf<H, K extends keyof H> = H[K] extends (...args: any[]) => infer O ? Awaited<O> : never;

const EVENTS = ['crash', 'restart', 'recover', 'quarantine', 'workerStart', 'workerExit'] as const;

interface TenantGroup {
  group: WorkerGroup;
  idleTimer: NodeJS.Timeout | undefined;
}

/**
 * A pool of workers at one isolation level. With `tenancy: 'shared'` it is one group of workers
 * that serves every tenant in turn; with `'dedicated'` each tenant gets a group of its own, started
 * on first use, stopped when idle, evicted least-recently-used, and (with a per-tenant sandbox uid)
 * run under its own uid. Every `run()` settles exactly once; see the crash contract in the README.
 */
export class Pool<H extends object = HandlerMap> extends EventEmitter<PoolEvents> {
  readonly isolation: Isolation;
  private readonly options: ResolvedOptions;
  private readonly runTime = new LatencyRecorder();
  private readonly queueWait = new LatencyRecorder();
  private readonly shared: WorkerGroup | undefined;
  /** Dedicated tenancy: tenant → its group, least recently used first. */
  private readonly tenants = new Map<string, TenantGroup>();
  /** Groups evicted or idle, still finishing their tasks. */
  private readonly retiring = new Set<WorkerGroup>();
  /** Counters of groups that are gone, so that totals never go backwards. */
  private readonly retired = { completed: 0, failed: 0, retried: 0, crashes: 0, restarts: 0 };
  private readonly uids = new Map<string, number>();
  private nextUid: number;
  private state: 'open' | 'closing' | 'closed' | 'destroyed' = 'open';

  constructor(options: PoolOptions) {
    super();
    this.options = resolveOptions(options);
    this.isolation = this.options.isolation;
    this.nextUid = this.options.sandbox?.uidRange[0] ?? 0;
    if (this.options.tenancy === 'shared') {
      this.shared = this.makeGroup(undefined);
    }
  }

  /** Resolves once every started worker has loaded the handler module; rejects with `WorkerStartError` if it fails to. */
  async ready(): Promise<void> {
    if (this.shared) return this.shared.ready();
    await Promise.all([...this.tenants.values()].map((t) => t.group.ready()));
  }

  run<K extends keyof H & string>(
    name: K,
    input: InputOf<H, K>,
    options?: RunOptions,
  ): Promise<OutputOf<H, K>>;
  run(name: string, input?: unknown, options: RunOptions = NO_RUN_OPTIONS): Promise<unknown> {
    if (this.shared) return this.shared.run(name, input, options);
    if (this.state !== 'open') {
      return Promise.reject(new PoolClosedError(this.state === 'destroyed' ? 'destroyed' : 'closed'));
    }
    const tenant = options?.tenant;
    if (typeof tenant !== 'string' || tenant === '') {
      return Promise.reject(
        new InvalidOptionError(
          'tenant',
          "is required with tenancy: 'dedicated' (whose workers should run the task?)",
        ),
      );
    }
    let entry: TenantGroup;
    try {
      entry = this.tenantGroup(tenant);
    } catch (err) {
      return Promise.reject(err);
    }
    clearTimeout(entry.idleTimer);
    entry.idleTimer = undefined;
    const result = entry.group.run(name, input, options);
    const settled = () => this.scheduleIdle(tenant, entry);
    result.then(settled, settled);
    return result;
  }

  stats(): PoolStats & { tenants: number } {
    if (this.shared) return { ...this.shared.stats(), tenants: 0 };
    const groups = [...this.tenants.values()].map((t) => t.group);
    const all = [...groups, ...this.retiring].map((g) => g.stats());
    const sum = (key: 'queued' | 'running' | 'completed' | 'failed' | 'retried' | 'crashes' | 'restarts') =>
      all.reduce((n, s) => n + s[key], 0);
    return {
      isolation: this.isolation,
      channel: this.options.channel,
      state: this.state,
      workers: all.flatMap((s) => s.workers),
      queued: sum('queued'),
      running: sum('running'),
      completed: sum('completed') + this.retired.completed,
      failed: sum('failed') + this.retired.failed,
      retried: sum('retried') + this.retired.retried,
      crashes: sum('crashes') + this.retired.crashes,
      restarts: sum('restarts') + this.retired.restarts,
      runTime: this.runTime.summary(),
      queueWait: this.queueWait.summary(),
      batches: {
        toWorkers: mergeBatches(all.map((s) => s.batches.toWorkers)),
        fromWorkers: mergeBatches(all.map((s) => s.batches.fromWorkers)),
      },
      tenants: this.tenants.size,
    };
  }

  /** Which boundaries this pool's configuration holds, and which it does not. */
  describeIsolation(): IsolationReport {
    return describeIsolation(this.options);
  }

  async close(): Promise<void> {
    if (this.state === 'open') this.state = 'closing';
    if (this.shared) {
      await this.shared.close();
    } else {
      await Promise.all(
        [...this.tenants.values()]
          .map((t) => t.group.close())
          .concat([...this.retiring].map((g) => g.close())),
      );
      for (const t of this.tenants.values()) clearTimeout(t.idleTimer);
    }
    if (this.state === 'closing') this.state = 'closed';
  }

  async destroy(): Promise<void> {
    if (this.state !== 'closed') this.state = 'destroyed';
    if (this.shared) {
      await this.shared.destroy();
      return;
    }
    for (const t of this.tenants.values()) clearTimeout(t.idleTimer);
    await Promise.all(
      [...this.tenants.values()]
        .map((t) => t.group.destroy())
        .concat([...this.retiring].map((g) => g.destroy())),
    );
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ---- dedicated tenancy ----

  private tenantGroup(tenant: string): TenantGroup {
    const existing = this.tenants.get(tenant);
    if (existing) {
      this.tenants.delete(tenant); // re-insert: most recently used last
      this.tenants.set(tenant, existing);
      return existing;
    }
    if (this.tenants.size >= this.options.maxTenants) {
      const [lru] = this.tenants.keys();
      if (lru !== undefined) this.retire(lru);
    }
    const entry: TenantGroup = { group: this.makeGroup(tenant), idleTimer: undefined };
    this.tenants.set(tenant, entry);
    return entry;
  }

  private scheduleIdle(tenant: string, entry: TenantGroup): void {
    if (this.tenants.get(tenant) !== entry || this.state !== 'open') return;
    const stats = entry.group.stats();
    if (stats.queued + stats.running > 0) return;
    clearTimeout(entry.idleTimer);
    entry.idleTimer = setTimeout(() => {
      const now = entry.group.stats();
      if (this.tenants.get(tenant) === entry && now.queued + now.running === 0) this.retire(tenant);
    }, this.options.idleMs);
    entry.idleTimer.unref();
  }

  /** Stops a tenant's workers once its tasks are done; a later task of that tenant starts new ones. */
  private retire(tenant: string): void {
    const entry = this.tenants.get(tenant);
    if (!entry) return;
    this.tenants.delete(tenant);
    clearTimeout(entry.idleTimer);
    this.retiring.add(entry.group);
    void entry.group.close().then(() => {
      const s = entry.group.stats();
      this.retired.completed += s.completed;
      this.retired.failed += s.failed;
      this.retired.retried += s.retried;
      this.retired.crashes += s.crashes;
      this.retired.restarts += s.restarts;
      this.retiring.delete(entry.group);
    });
  }

  private makeGroup(tenant: string | undefined): WorkerGroup {
    const sandbox = this.workerSandbox(tenant);
    const group = new WorkerGroup(
      tenant === undefined ? this.options : { ...this.options, workers: this.options.perTenant },
      {
        runTime: this.runTime,
        queueWait: this.queueWait,
        ...(tenant !== undefined ? { tenant } : {}),
        ...(sandbox ? { sandbox } : {}),
      },
    );
    for (const event of EVENTS) {
      group.on(event, (payload: object) => {
        (this.emit as (e: string, p: object) => boolean)(
          event,
          tenant === undefined ? payload : { ...payload, tenant },
        );
      });
    }
    return group;
  }

  /** The sandbox for a tenant's workers, with its uid chosen (a tenant keeps its uid for the pool's life). */
  private workerSandbox(tenant: string | undefined): WorkerSandbox | undefined {
    const sandbox = this.options.sandbox;
    if (!sandbox) return undefined;
    let uid: number | undefined;
    if (sandbox.uid === 'per-tenant' && tenant !== undefined) {
      uid = this.uids.get(tenant);
      if (uid === undefined) {
        if (this.nextUid > sandbox.uidRange[1]) {
          throw new TenantLimitError(
            tenant,
            'sandbox.uidRange',
            sandbox.uidRange[1] - sandbox.uidRange[0] + 1,
            `no uid left for tenant '${tenant}': sandbox.uidRange [${sandbox.uidRange.join(', ')}] is used up (uids are never reused within a pool)`,
          );
        }
        uid = this.nextUid++;
        this.uids.set(tenant, uid);
      }
    } else if (typeof sandbox.uid === 'number') {
      uid = sandbox.uid;
    }
    return {
      ...(uid !== undefined ? { uid } : {}),
      namespaces: sandbox.namespaces,
      limits: sandbox.limits,
      env: sandbox.env,
      permission: sandbox.permission,
    };
  }
}
