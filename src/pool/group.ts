import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { TransferListItem } from 'node:worker_threads';
import {
  decodeResult,
  encodeRun,
  type FromWorker,
  type TaskResult,
  tooHeavyToBatch,
} from '../channel/protocol.js';
import {
  AbortError,
  type CrashCause,
  describeCause,
  InvalidOptionError,
  PoolClosedError,
  QuarantinedError,
  QueueFullError,
  SerializationError,
  serializeError,
  TaskError,
  TaskTimeoutError,
  TenantLimitError,
  UnknownHandlerError,
  WorkerCrashedError,
  WorkerStartError,
} from '../errors.js';
import { heartbeatCheck } from '../supervisor/heartbeat.js';
import {
  endQuarantine,
  initialSupervisorState,
  isQuarantined,
  onCrash,
  type SupervisorState,
} from '../supervisor/policy.js';
import { FairQueue } from '../tenancy/fair-queue.js';
import { inlineTier } from '../tiers/inline.js';
import { processTier } from '../tiers/process.js';
import { threadTier } from '../tiers/thread.js';
import type { Isolation, Tier, WorkerExit, WorkerHandle, WorkerSandbox } from '../tiers/tier.js';
import type { Channel } from './channel-choice.js';
import { classifyExit, type KillReason } from './crash.js';
import { AUTO_QUEUE_BUDGET_MS, milliseconds, type ResolvedOptions } from './options.js';
import type { LatencyRecorder, LatencySummary } from './stats.js';

export interface RunOptions {
  signal?: AbortSignal;
  /** Overrides the pool's `timeoutMs` for this task. */
  timeoutMs?: number;
  /** Safe to run again if its worker crashes: it is retried up to `retry.attempts` tries. */
  idempotent?: boolean;
  /** Objects to move rather than copy (thread tier; ignored elsewhere). */
  transfer?: readonly TransferListItem[];
  /** Whose task this is: tenants are served in turn, and with `tenancy: 'dedicated'` only by their own workers. */
  tenant?: string;
}

export interface CrashEvent {
  workerId: number;
  pid?: number;
  threadId?: number;
  cause: CrashCause;
  /** Unsettled tasks on the worker when it died. */
  inFlight: number;
  /** Of those, how many were sent to another try. */
  retried: number;
  /** Of those, how many were rejected with `WorkerCrashedError`. */
  failed: number;
  /** The tenants whose tasks it hit ('' for tasks without a tenant). */
  tenants: string[];
  /** With `tenancy: 'dedicated'`: the tenant whose worker it was. */
  tenant?: string;
}

export interface RestartEvent {
  workerId: number;
  delayMs: number;
  /** How many times this worker slot has been restarted. */
  restarts: number;
}

export interface RecoverEvent {
  /** The worker that now serves in place of the crashed one. */
  workerId: number;
  /** How long the pool ran with one worker fewer: 0 when a ready spare took over. */
  downMs: number;
  via: 'spare' | 'respawn';
}

export interface QuarantineEvent {
  until: number;
  lastCrash: CrashCause;
  /** Tasks rejected with `QuarantinedError` when the quarantine began. */
  rejected: number;
}

export interface WorkerStartEvent {
  workerId: number;
  pid?: number;
  threadId?: number;
}

export interface WorkerExitEvent extends WorkerStartEvent {
  exitCode: number | null;
  signal: string | null;
  /** True when the pool asked the worker to stop (close, destroy); false for a crash. */
  expected: boolean;
}

export type WorkerState = 'starting' | 'ready' | 'stopping' | 'down';
export type PoolState = 'open' | 'closing' | 'closed' | 'destroyed' | 'failed' | 'quarantined';

export interface WorkerStats {
  id: number;
  /** Active workers take tasks; spares wait, started, to replace one that dies. */
  role: 'active' | 'spare';
  /** With `tenancy: 'dedicated'`: whose worker it is. */
  tenant?: string;
  pid?: number;
  threadId?: number;
  state: WorkerState;
  running: number;
  completed: number;
  crashes: number;
  restarts: number;
}

export interface PoolStats {
  isolation: Isolation;
  /** How batches travel: 'direct' (inline calls), 'message' (postMessage or IPC) or 'ring' (shared memory). */
  channel: Channel;
  state: PoolState;
  workers: WorkerStats[];
  queued: number;
  running: number;
  completed: number;
  failed: number;
  retried: number;
  crashes: number;
  restarts: number;
  /** From dispatch to a worker until the result came back. */
  runTime: LatencySummary;
  /** From `run()` until dispatch to a worker. */
  queueWait: LatencySummary;
  /** How well the communication is amortized: messages and the tasks or results they carried. */
  batches: { toWorkers: BatchStats; fromWorkers: BatchStats };
}

export interface BatchStats {
  messages: number;
  /** Tasks (to workers) or results (from workers) carried. */
  items: number;
  /** items / messages. */
  mean: number;
  max: number;
}

export interface PoolEvents {
  crash: [CrashEvent];
  restart: [RestartEvent];
  recover: [RecoverEvent];
  quarantine: [QuarantineEvent];
  workerStart: [WorkerStartEvent];
  workerExit: [WorkerExitEvent];
}

/** What a group shares with the pool around it. */
export interface GroupContext {
  runTime: LatencyRecorder;
  queueWait: LatencyRecorder;
  /** With `tenancy: 'dedicated'`: the tenant this group serves. */
  tenant?: string;
  /** Process tier: the sandbox each worker of this group starts in. */
  sandbox?: WorkerSandbox;
}

interface Task {
  id: number;
  name: string;
  tenant: string;
  input: unknown;
  transfer: readonly TransferListItem[] | undefined;
  idempotent: boolean;
  timeoutMs: number | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  resolve: (value: any) => void;
  reject: (error: Error) => void;
  attempt: number;
  enqueuedAt: number;
  dispatchedAt: number;
  /** With `concurrency: 'auto'`: the synchronous time this task was expected to hold its worker. */
  expectedMs: number;
  /** With `concurrency: 'auto'`: its handler had not been measured when it was dispatched. */
  unmeasured: boolean;
  slot: Slot | undefined;
  timer: NodeJS.Timeout | undefined;
  settled: boolean;
}

interface Slot {
  id: number;
  role: 'active' | 'spare';
  /** When it crashed, until its capacity is back (for the `recover` event). */
  downSince: number | undefined;
  /** When the oldest unanswered heartbeat ping was sent. */
  pingSentAt: number | undefined;
  handle: WorkerHandle | undefined;
  state: WorkerState;
  startedAt: number;
  inFlight: Map<number, Task>;
  /** Sum of the in-flight tasks' expected synchronous time (`concurrency: 'auto'`). */
  expectedMs: number;
  /** In-flight tasks of handlers not yet measured (`concurrency: 'auto'`). */
  unmeasured: number;
  outbox: Task[];
  completed: number;
  crashes: number;
  restarts: number;
  killedBy: KillReason;
  respawnTimer: NodeJS.Timeout | undefined;
}

/** The options of a `run()` called without any (shared: nothing to check, nothing to allocate). */
export const NO_RUN_OPTIONS: RunOptions = Object.freeze({});

/** With `concurrency: 'auto'`: the longest measured task a worker may hold one more task behind. */
const PREFETCH_MAX_MS = 20;

const TIERS: Record<Isolation, Tier> = { inline: inlineTier, thread: threadTier, process: processTier };
/** How long a worker asked to stop may take before it is killed. */
const STOP_GRACE_MS = 2_000;

/**
 * A pool of workers at one isolation level. Every `run()` settles exactly once; see the crash
 * contract in the README.
 */
export class WorkerGroup extends EventEmitter<PoolEvents> {
  readonly isolation: Isolation;
  private readonly options: ResolvedOptions;
  private readonly tier: Tier;
  private readonly slots: Slot[] = [];
  private readonly queue = new FairQueue<Task>();
  /** Live queued and running tasks per tenant, for fairness limits. */
  private readonly tenantQueued = new Map<string, number>();
  private readonly tenantRunning = new Map<string, number>();
  private readonly canServe = (tenant: string) => {
    const max = this.options.tenantLimits.maxRunning;
    return max === undefined || (this.tenantRunning.get(tenant) ?? 0) < max;
  };
  private queuedCount = 0;
  private runningCount = 0;
  private nextTaskId = 1;
  private state: 'open' | 'closing' | 'closed' | 'destroyed' | 'failed' = 'open';
  private supervisor: SupervisorState = initialSupervisorState;
  private quarantineTimer: NodeJS.Timeout | undefined;
  private lastCrash: CrashCause | undefined;
  private handlerNames: Set<string> | undefined;
  /** Handler name → its index in the workers' `ready` list (every worker loads the same module). */
  private handlerIndex: ReadonlyMap<string, number> = new Map();
  private startError: WorkerStartError | undefined;
  private everReady = false;
  private referenced = true;
  private flushScheduled = false;
  private readonly closeWaiters: (() => void)[] = [];
  private readyWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private readonly counters = { completed: 0, failed: 0, retried: 0, crashes: 0, restarts: 0 };
  private readonly sentBatches = { messages: 0, items: 0, max: 0 };
  private readonly receivedBatches = { messages: 0, items: 0, max: 0 };
  private readonly runTime: LatencyRecorder;
  private readonly queueWait: LatencyRecorder;
  private readonly flushAll = () => this.flushOutboxes();
  /** With `concurrency: 'auto'`: each handler's synchronous run time, smoothed (ms). */
  private readonly syncMs = new Map<string, number>();
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private lastBeat = 0;

  constructor(
    options: ResolvedOptions,
    private readonly context: GroupContext,
  ) {
    super();
    this.options = options;
    this.runTime = context.runTime;
    this.queueWait = context.queueWait;
    this.isolation = this.options.isolation;
    this.tier = TIERS[this.isolation];
    for (let id = 0; id < this.options.workers + this.options.spares; id++) {
      const slot: Slot = {
        id,
        role: id < this.options.workers ? 'active' : 'spare',
        downSince: undefined,
        pingSentAt: undefined,
        handle: undefined,
        state: 'down',
        startedAt: 0,
        inFlight: new Map(),
        expectedMs: 0,
        unmeasured: 0,
        outbox: [],
        completed: 0,
        crashes: 0,
        restarts: 0,
        killedBy: undefined,
        respawnTimer: undefined,
      };
      this.slots.push(slot);
      this.spawn(slot);
    }
    if (this.options.heartbeatMs && this.isolation !== 'inline')
      this.startHeartbeat(this.options.heartbeatMs);
    this.updateRefs();
  }

  /** Resolves once every worker has started; rejects with `WorkerStartError` if the handler module fails to load. */
  ready(): Promise<void> {
    if (this.startError) return Promise.reject(this.startError);
    if (this.slots.every((s) => s.state === 'ready')) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.readyWaiters.push({ resolve, reject });
      this.updateRefs();
    });
  }

  run(name: string, input?: unknown, options: RunOptions = NO_RUN_OPTIONS): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const refusal = this.refuse(name, options);
      if (refusal) {
        this.counters.failed++;
        reject(refusal);
        return;
      }
      const task: Task = {
        id: this.nextTaskId++,
        name,
        tenant: options.tenant ?? '',
        input,
        transfer: options.transfer,
        idempotent: options.idempotent === true,
        timeoutMs: options.timeoutMs ?? this.options.timeoutMs,
        signal: options.signal,
        onAbort: undefined,
        resolve,
        reject,
        attempt: 1,
        enqueuedAt: 0,
        dispatchedAt: 0,
        expectedMs: 0,
        unmeasured: false,
        slot: undefined,
        timer: undefined,
        settled: false,
      };
      if (task.signal) {
        task.onAbort = () => this.abort(task);
        task.signal.addEventListener('abort', task.onAbort, { once: true });
      }
      const now = performance.now();
      task.enqueuedAt = now;
      this.queue.push(task);
      this.queuedCount++;
      this.tenantCount(this.tenantQueued, task.tenant, 1);
      this.pump(now);
      // maxQueue bounds the tasks that wait: one that went to a worker at once never counts against it.
      if (task.slot === undefined && !task.settled && this.queuedCount > this.options.maxQueue) {
        this.dropQueued(task);
        this.settleError(task, new QueueFullError(this.options.maxQueue));
      }
      this.updateRefs();
    });
  }

  /** Why a new task cannot be accepted, if it cannot. */
  private refuse(name: unknown, options: RunOptions): Error | undefined {
    if (this.state === 'closing' || this.state === 'closed') return new PoolClosedError('closed');
    if (this.state === 'destroyed') return new PoolClosedError('destroyed');
    if (this.startError) return this.startError;
    if (
      this.supervisor.quarantinedUntil !== null &&
      isQuarantined(this.supervisor, Date.now()) &&
      this.lastCrash
    ) {
      return new QuarantinedError(this.lastCrash, this.supervisor.quarantinedUntil!);
    }
    if (typeof name !== 'string' || name === '') {
      return new InvalidOptionError(
        'name',
        `must be a non-empty string naming a handler; got ${typeof name}`,
      );
    }
    if (options !== NO_RUN_OPTIONS) {
      const optionError = checkRunOptions(options);
      if (optionError) return optionError;
    }
    if (options.signal?.aborted) return new AbortError(name, options.signal.reason);
    if (this.handlerNames && !this.handlerNames.has(name))
      return new UnknownHandlerError(name, [...this.handlerNames]);
    const maxQueued = this.options.tenantLimits.maxQueued;
    if (maxQueued !== undefined && (this.tenantQueued.get(options.tenant ?? '') ?? 0) >= maxQueued) {
      return new TenantLimitError(options.tenant ?? '', 'maxQueued', maxQueued);
    }
    return undefined;
  }

  stats(): PoolStats {
    return {
      isolation: this.isolation,
      channel: this.options.channel,
      state: this.poolState(),
      workers: this.slots.map((s) => ({
        id: s.id,
        role: s.role,
        ...(this.context.tenant !== undefined ? { tenant: this.context.tenant } : {}),
        ...(s.handle?.pid !== undefined ? { pid: s.handle.pid } : {}),
        ...(s.handle?.threadId !== undefined ? { threadId: s.handle.threadId } : {}),
        state: s.state,
        running: s.inFlight.size,
        completed: s.completed,
        crashes: s.crashes,
        restarts: s.restarts,
      })),
      queued: this.queuedCount,
      running: this.runningCount,
      ...this.counters,
      runTime: this.runTime.summary(),
      queueWait: this.queueWait.summary(),
      batches: { toWorkers: batchStats(this.sentBatches), fromWorkers: batchStats(this.receivedBatches) },
    };
  }

  /** A queued task leaves the count now; it stays in the queue, to be settled and skipped by pump(). */
  private dropQueued(task: Task): void {
    this.queuedCount--;
    this.tenantCount(this.tenantQueued, task.tenant, -1);
    if (this.queuedCount === 0) this.queue.drain();
  }

  private tenantCount(counts: Map<string, number>, tenant: string, delta: number): void {
    const limits = this.options.tenantLimits;
    if (limits.maxQueued === undefined && limits.maxRunning === undefined) return; // nothing reads them
    const n = (counts.get(tenant) ?? 0) + delta;
    if (n <= 0) counts.delete(tenant);
    else counts.set(tenant, n);
  }

  private poolState(): PoolState {
    if (this.state === 'open' && isQuarantined(this.supervisor, Date.now())) return 'quarantined';
    return this.state;
  }

  /** Graceful: refuses new tasks, finishes queued and running ones, then stops the workers. */
  async close(): Promise<void> {
    if (this.state === 'open' || this.state === 'failed') this.state = 'closing';
    if (this.state === 'closing') this.maybeFinishClose();
    await this.allStopped();
  }

  /** Now: rejects queued and running tasks with `PoolClosedError` and kills the workers. */
  async destroy(): Promise<void> {
    if (this.state !== 'closed' && this.state !== 'destroyed') {
      this.state = 'destroyed';
      this.rejectQueued(() => new PoolClosedError('destroyed'));
      clearTimeout(this.quarantineTimer);
      clearInterval(this.heartbeatTimer);
      for (const slot of this.slots) {
        clearTimeout(slot.respawnTimer);
        slot.respawnTimer = undefined;
        for (const task of slot.inFlight.values()) this.settleError(task, new PoolClosedError('destroyed'));
        if (slot.handle && slot.state !== 'down') {
          slot.state = 'stopping';
          slot.handle.kill();
        }
      }
      this.rejectReadyWaiters(new PoolClosedError('destroyed'));
      this.updateRefs();
    }
    await this.allStopped();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ---- dispatch ----

  /** `now`: the clock if the caller just read it (tasks dispatched in one go share one reading). */
  private pump(now = -1): void {
    while (this.queuedCount > 0) {
      const head = this.queue.peek(this.canServe);
      if (!head) break;
      if (head.settled) {
        this.queue.shift(this.canServe);
        continue;
      }
      const slot = this.pickSlot(head);
      if (!slot) return;
      const task = this.queue.shift(this.canServe)!;
      this.queuedCount--;
      this.tenantCount(this.tenantQueued, task.tenant, -1);
      if (this.handlerNames && !this.handlerNames.has(task.name)) {
        this.settleError(task, new UnknownHandlerError(task.name, [...this.handlerNames]));
        continue;
      }
      if (now < 0) now = performance.now();
      this.dispatch(task, slot, now);
    }
    if (this.state === 'closing') this.maybeFinishClose();
  }

  /**
   * The ready active worker that can take `task` with the least work on it. With a fixed
   * `concurrency` a worker takes tasks while it holds fewer than that. With `'auto'` an idle worker
   * takes any task, and a busy one only while the synchronous time already on it plus this task's
   * stays within the queueing budget (a handler not yet measured counts as the whole budget), so
   * nothing waits long behind others, and a slow or unknown task never has others piled behind it.
   * One more task may wait behind a single measured task of up to PREFETCH_MAX_MS, so that a worker
   * busy with millisecond tasks finds its next one already there instead of paying a round trip.
   */
  private pickSlot(task: Task): Slot | undefined {
    const adaptive = this.options.adaptive;
    const cost = adaptive ? this.expectedSyncMs(task.name) : 0;
    let best: Slot | undefined;
    for (const slot of this.slots) {
      if (slot.state !== 'ready' || slot.role !== 'active') continue;
      const held = slot.inFlight.size;
      if (held >= this.options.concurrency) continue;
      if (adaptive && held > 0) {
        // Refill a busy worker's pipeline in bulk: start only once it is half drained, then fill it
        // in the same turn, so that tasks travel in few large messages rather than many small ones.
        const fits = slot.expectedMs + cost <= AUTO_QUEUE_BUDGET_MS;
        const refilling = slot.outbox.length > 0;
        const lowWater = held <= this.options.concurrency / 2 && slot.expectedMs <= AUTO_QUEUE_BUDGET_MS / 2;
        const prefetch =
          held === 1 &&
          slot.unmeasured === 0 &&
          this.syncMs.has(task.name) &&
          slot.expectedMs <= PREFETCH_MAX_MS;
        if (!(fits && (refilling || lowWater)) && !prefetch) continue;
      }
      if (!best || (adaptive ? slot.expectedMs < best.expectedMs : held < best.inFlight.size)) best = slot;
      if (held === 0) break;
    }
    return best;
  }

  private expectedSyncMs(name: string): number {
    return this.syncMs.get(name) ?? AUTO_QUEUE_BUDGET_MS;
  }

  private recordSyncTime(name: string, ms: number | undefined): void {
    if (ms === undefined || !this.options.adaptive) return;
    const previous = this.syncMs.get(name);
    this.syncMs.set(name, previous === undefined ? ms : previous + 0.2 * (ms - previous));
  }

  private dispatch(task: Task, slot: Slot, now: number): void {
    task.slot = slot;
    task.dispatchedAt = now;
    this.queueWait.recordMs(now - task.enqueuedAt);
    slot.inFlight.set(task.id, task);
    this.tenantCount(this.tenantRunning, task.tenant, 1);
    if (this.options.adaptive) {
      task.expectedMs = this.expectedSyncMs(task.name);
      task.unmeasured = !this.syncMs.has(task.name);
      slot.expectedMs += task.expectedMs;
      if (task.unmeasured) slot.unmeasured++;
    }
    this.runningCount++;
    if (task.timeoutMs !== undefined) {
      task.timer = setTimeout(() => this.timeout(task), task.timeoutMs);
    }
    slot.outbox.push(task);
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      queueMicrotask(this.flushAll);
    }
  }

  /** Sends each worker the tasks dispatched to it in this turn, as one message. */
  private flushOutboxes(): void {
    this.flushScheduled = false;
    for (const slot of this.slots) {
      if (slot.outbox.length > 0) this.flushSlot(slot);
    }
  }

  private flushSlot(slot: Slot): void {
    const tasks = slot.outbox.filter((t) => !t.settled);
    slot.outbox = [];
    if (tasks.length === 0 || !slot.handle) return;
    const transfer = tasks.some((t) => t.transfer) ? tasks.flatMap((t) => t.transfer ?? []) : undefined;
    if (this.isolation !== 'inline' && tasks.length > 1 && tooHeavyToBatch(tasks, taskInput)) {
      this.sendEach(slot, tasks);
      return;
    }
    try {
      // A Task carries the fields of a RunRequest: no copy per task.
      slot.handle.send(encodeRun(tasks, this.handlerIndex), transfer);
      countBatch(this.sentBatches, tasks.length);
    } catch {
      // Something in the batch cannot be cloned: send them one by one so only the culprits fail.
      this.sendEach(slot, tasks);
    }
  }

  private sendEach(slot: Slot, tasks: readonly Task[]): void {
    let failed = false;
    for (const task of tasks) {
      try {
        slot.handle!.send(encodeRun([task], this.handlerIndex), task.transfer);
        countBatch(this.sentBatches, 1);
      } catch (err) {
        failed = true;
        this.release(slot, task);
        this.settleError(task, new SerializationError(task.name, 'input', serializeError(err).message));
      }
    }
    if (failed) this.pump();
  }

  // ---- results ----

  private onMessage(slot: Slot, handle: WorkerHandle, msg: FromWorker): void {
    if (slot.handle !== handle) return;
    switch (msg.t) {
      case 'results':
        countBatch(this.receivedBatches, msg.ids.length);
        {
          const now = performance.now(); // the results of one batch arrived together
          for (let i = 0; i < msg.ids.length; i++) {
            const sync = msg.sync[i]!;
            if (msg.ok[i] === 1)
              this.onValue(slot, msg.ids[i]!, msg.values[i], Number.isNaN(sync) ? undefined : sync, now);
            else this.onResult(slot, decodeResult(msg, i));
          }
          this.pump(now);
        }
        this.updateRefs();
        return;
      case 'ready':
        this.onReady(slot, msg.handlers);
        return;
      case 'start-error':
        this.fail(new WorkerStartError(this.options.handlers, msg.error));
        return;
      case 'pong':
        slot.pingSentAt = undefined;
        return;
      case 'fatal':
        return;
    }
  }

  /** A task succeeded (the common case, read straight from the batch's columns). */
  private onValue(slot: Slot, id: number, value: unknown, syncMs: number | undefined, now: number): void {
    const task = slot.inFlight.get(id);
    if (!task) return;
    this.release(slot, task);
    slot.completed++;
    this.recordSyncTime(task.name, syncMs);
    if (task.settled) return;
    this.runTime.recordMs(now - task.dispatchedAt);
    this.settleValue(task, value);
  }

  private onResult(slot: Slot, result: TaskResult): void {
    const task = slot.inFlight.get(result.id);
    if (!task) return;
    this.release(slot, task);
    slot.completed++;
    this.recordSyncTime(task.name, result.s);
    if (task.settled) return;
    if (result.ok) {
      this.runTime.recordMs(performance.now() - task.dispatchedAt);
      this.settleValue(task, result.value);
    } else if (result.kind === 'unknown-handler') {
      this.settleError(
        task,
        new UnknownHandlerError(task.name, result.error.message.split(',').filter(Boolean)),
      );
    } else if (result.kind === 'not-cloneable') {
      this.settleError(task, new SerializationError(task.name, 'result', result.error.message));
    } else {
      this.runTime.recordMs(performance.now() - task.dispatchedAt);
      this.settleError(task, new TaskError(task.name, result.error));
    }
  }

  private onReady(slot: Slot, handlers: string[]): void {
    slot.state = 'ready';
    slot.pingSentAt = undefined;
    this.everReady = true;
    if (!this.handlerNames) {
      this.handlerNames = new Set(handlers);
      this.handlerIndex = new Map(handlers.map((name, i) => [name, i]));
    }
    this.emit('workerStart', { workerId: slot.id, ...ids(slot.handle!) });
    this.restoreCapacity(slot);
    if (this.readyWaiters.length > 0 && this.slots.every((s) => s.state === 'ready')) {
      const waiters = this.readyWaiters;
      this.readyWaiters = [];
      for (const w of waiters) w.resolve();
    }
    this.pump();
    this.updateRefs();
  }

  // ---- settling: the only places a task's promise is resolved or rejected ----

  private settleValue(task: Task, value: unknown): void {
    if (task.settled) return;
    this.finishTask(task);
    this.counters.completed++;
    task.resolve(value);
  }

  private settleError(task: Task, error: Error): void {
    if (task.settled) return;
    this.finishTask(task);
    this.counters.failed++;
    task.reject(error);
  }

  private finishTask(task: Task): void {
    task.settled = true;
    clearTimeout(task.timer);
    if (task.onAbort) task.signal!.removeEventListener('abort', task.onAbort);
  }

  /** The task no longer occupies its worker. */
  private release(slot: Slot, task: Task): void {
    if (slot.inFlight.delete(task.id)) {
      this.runningCount--;
      this.tenantCount(this.tenantRunning, task.tenant, -1);
      slot.expectedMs = slot.inFlight.size === 0 ? 0 : slot.expectedMs - task.expectedMs;
      if (task.unmeasured) slot.unmeasured--;
    }
    task.slot = undefined;
  }

  private abort(task: Task): void {
    if (task.settled) return;
    const slot = task.slot;
    this.settleError(task, new AbortError(task.name, task.signal?.reason));
    if (slot?.handle) {
      if (slot.outbox.includes(task)) {
        this.release(slot, task); // never sent: nothing to tell the worker
        this.pump();
      } else {
        slot.handle.send({ t: 'abort', id: task.id });
        // Inline handlers cannot be stopped; free the slot so the pool keeps moving.
        if (this.isolation === 'inline') this.release(slot, task);
      }
    } else {
      this.dropQueued(task);
      if (this.state === 'closing') this.maybeFinishClose();
    }
    this.updateRefs();
  }

  private timeout(task: Task): void {
    const slot = task.slot;
    if (task.settled || !slot) return;
    this.settleError(task, new TaskTimeoutError(task.name, task.timeoutMs!));
    if (this.isolation === 'inline') {
      // Synchronous code cannot be stopped in the caller's thread: the handler is only told, via its signal.
      slot.handle?.send({ t: 'abort', id: task.id });
      this.release(slot, task);
      this.pump();
    } else if (slot.state === 'ready' || slot.state === 'starting') {
      slot.killedBy = 'timeout';
      slot.handle?.kill();
    }
  }

  // ---- workers: start, exit, crash ----

  private spawn(slot: Slot): void {
    slot.state = 'starting';
    slot.startedAt = performance.now();
    slot.killedBy = undefined;
    let handle: WorkerHandle | undefined;
    try {
      handle = this.tier.spawn(
        {
          handlers: this.options.handlers,
          maxHeapMb: this.options.maxHeapMb,
          channel: this.options.channel === 'ring' ? 'ring' : 'message',
          spinUs: this.options.spinUs,
          ...(this.context.sandbox ? { sandbox: this.context.sandbox } : {}),
        },
        {
          message: (msg) => this.onMessage(slot, handle!, msg),
          exit: (info) => this.onExit(slot, handle!, info),
        },
      );
    } catch (err) {
      slot.state = 'down';
      this.fail(new WorkerStartError(this.options.handlers, serializeError(err)));
      return;
    }
    slot.handle = handle;
    if (!this.referenced) handle.unref();
  }

  private onExit(slot: Slot, handle: WorkerHandle, info: WorkerExit): void {
    if (slot.handle !== handle) return;
    const wasStopping = slot.state === 'stopping';
    const wasReady = slot.state === 'ready';
    slot.state = 'down';
    slot.handle = undefined;
    slot.outbox = [];
    const workerIds = { workerId: slot.id, ...ids(handle) };
    const expected = wasStopping || this.state === 'destroyed' || this.state === 'closed';
    this.emit('workerExit', { ...workerIds, exitCode: info.exitCode, signal: info.signal, expected });

    if (expected) {
      for (const task of slot.inFlight.values()) {
        this.release(slot, task);
        this.settleError(
          task,
          this.startError ?? new PoolClosedError(this.state === 'destroyed' ? 'destroyed' : 'closed'),
        );
      }
      this.notifyStopped();
      return;
    }

    const cause = classifyExit(info, slot.killedBy, workerIds);
    if (!wasReady && !this.everReady && !slot.killedBy) {
      // The very first workers die while loading the handler module: that is a start failure, not a crash loop.
      this.fail(
        new WorkerStartError(this.options.handlers, {
          name: 'WorkerExit',
          message: `the worker ${describeCause(cause)} before it was ready`,
          ...(info.error?.stack ? { stack: info.error.stack } : {}),
        }),
      );
      this.notifyStopped();
      return;
    }
    this.onCrash(slot, cause);
  }

  private onCrash(slot: Slot, cause: CrashCause): void {
    this.counters.crashes++;
    slot.crashes++;
    this.lastCrash = cause;
    let retried = 0;
    let failed = 0;
    const tenants = new Set<string>();
    // Backwards, so that retried tasks keep their order at the head of the queue.
    const hit = [...slot.inFlight.values()].reverse();
    for (const task of hit) {
      this.release(slot, task);
      if (task.settled) continue;
      tenants.add(task.tenant);
      clearTimeout(task.timer);
      task.timer = undefined;
      if (task.idempotent && task.attempt < this.options.retryAttempts && this.state !== 'destroyed') {
        task.attempt++;
        retried++;
        this.counters.retried++;
        this.queue.unshift(task);
        this.queuedCount++;
        this.tenantCount(this.tenantQueued, task.tenant, 1);
      } else {
        failed++;
        this.settleError(task, new WorkerCrashedError(task.name, cause, task.attempt));
      }
    }
    slot.downSince = performance.now();
    const now = Date.now();
    const uptimeMs = performance.now() - slot.startedAt;
    const { state, decision } = onCrash(this.options.restart, this.supervisor, now, uptimeMs);
    this.supervisor = state;
    this.emit('crash', {
      workerId: slot.id,
      ...ids(cause),
      cause,
      inFlight: retried + failed,
      retried,
      failed,
      tenants: [...tenants],
    });
    if (slot.role === 'active') this.promoteSpare(slot);

    if (decision.action === 'quarantine') {
      this.enterQuarantine(decision.until, cause);
    } else if (this.state === 'open' || this.state === 'closing') {
      this.scheduleRespawn(slot, decision.delayMs);
    }
    this.pump();
    this.updateRefs();
  }

  /** A ready spare takes the place of the crashed active worker at once. */
  private promoteSpare(crashed: Slot): void {
    const spare = this.slots.find((s) => s.role === 'spare' && s.state === 'ready');
    if (!spare) return;
    spare.role = 'active';
    crashed.role = 'spare';
    this.emit('recover', { workerId: spare.id, downMs: 0, via: 'spare' });
  }

  /**
   * A worker became ready. If it is a spare and an active worker is down, it takes that one's place;
   * if it is an active worker coming back from a crash, capacity is back.
   */
  private restoreCapacity(slot: Slot): void {
    const now = performance.now();
    if (slot.role === 'spare') {
      const down = this.slots.find(
        (s) => s.role === 'active' && s.state !== 'ready' && s.downSince !== undefined,
      );
      if (down) {
        down.role = 'spare';
        slot.role = 'active';
        this.emit('recover', { workerId: slot.id, downMs: now - down.downSince!, via: 'spare' });
        down.downSince = undefined;
      }
    } else if (slot.downSince !== undefined) {
      this.emit('recover', { workerId: slot.id, downMs: now - slot.downSince, via: 'respawn' });
    }
    slot.downSince = undefined;
  }

  // ---- heartbeats ----

  private startHeartbeat(heartbeatMs: number): void {
    this.lastBeat = performance.now();
    this.heartbeatTimer = setInterval(() => this.beat(heartbeatMs), heartbeatMs);
    this.heartbeatTimer.unref();
  }

  private beat(heartbeatMs: number): void {
    const now = performance.now();
    const lag = now - this.lastBeat - heartbeatMs;
    this.lastBeat = now;
    for (const slot of this.slots) {
      if (slot.state !== 'ready' || !slot.handle) continue;
      switch (heartbeatCheck(slot.pingSentAt, now, heartbeatMs, lag)) {
        case 'ping':
          slot.pingSentAt = now;
          slot.handle.send({ t: 'ping', seq: 0 });
          break;
        case 'grace':
          slot.pingSentAt = undefined;
          break;
        case 'hung':
          slot.killedBy = 'hang';
          slot.handle.kill();
          break;
        case 'wait':
          break;
      }
    }
  }

  private scheduleRespawn(slot: Slot, delayMs: number): void {
    const respawn = () => {
      slot.respawnTimer = undefined;
      if (this.state !== 'open' && this.state !== 'closing') return;
      if (this.state === 'closing' && this.queuedCount === 0) return this.maybeFinishClose();
      slot.restarts++;
      this.counters.restarts++;
      this.emit('restart', { workerId: slot.id, delayMs, restarts: slot.restarts });
      this.spawn(slot);
    };
    slot.respawnTimer = setTimeout(respawn, delayMs);
    if (!this.referenced) slot.respawnTimer.unref();
  }

  private enterQuarantine(until: number, lastCrash: CrashCause): void {
    const rejected = this.rejectQueued(() => new QuarantinedError(lastCrash, until));
    this.emit('quarantine', { until, lastCrash, rejected });
    clearTimeout(this.quarantineTimer);
    this.quarantineTimer = setTimeout(() => this.leaveQuarantine(), Math.max(0, until - Date.now()));
    this.quarantineTimer.unref();
    if (this.state === 'closing') this.maybeFinishClose();
  }

  private leaveQuarantine(): void {
    this.quarantineTimer = undefined;
    this.supervisor = endQuarantine(this.supervisor, Date.now());
    if (this.state !== 'open') return;
    for (const slot of this.slots) {
      if (slot.state === 'down' && !slot.respawnTimer) this.scheduleRespawn(slot, 0);
    }
  }

  /** The handler module cannot be loaded: reject everything waiting, start nothing more. */
  private fail(error: WorkerStartError): void {
    if (this.startError) return;
    this.startError = error;
    if (this.state === 'open') this.state = 'failed';
    this.rejectQueued(() => error);
    this.rejectReadyWaiters(error);
    for (const slot of this.slots) {
      clearTimeout(slot.respawnTimer);
      slot.respawnTimer = undefined;
      if (slot.handle && slot.state !== 'down' && slot.state !== 'stopping') {
        slot.state = 'stopping';
        slot.handle.kill();
      }
    }
  }

  private rejectQueued(makeError: () => Error): number {
    let rejected = 0;
    for (const task of this.queue.drain()) {
      if (task.settled) continue;
      rejected++;
      this.settleError(task, makeError());
    }
    this.queuedCount = 0;
    this.tenantQueued.clear();
    return rejected;
  }

  private rejectReadyWaiters(error: Error): void {
    const waiters = this.readyWaiters;
    this.readyWaiters = [];
    for (const w of waiters) w.reject(error);
  }

  // ---- closing ----

  private maybeFinishClose(): void {
    if (this.state !== 'closing' || this.queuedCount > 0 || this.runningCount > 0) return;
    this.state = 'closed';
    clearTimeout(this.quarantineTimer);
    clearInterval(this.heartbeatTimer);
    for (const slot of this.slots) {
      clearTimeout(slot.respawnTimer);
      slot.respawnTimer = undefined;
      if (slot.handle && slot.state !== 'down') {
        slot.state = 'stopping';
        slot.handle.stop(STOP_GRACE_MS);
      }
    }
    this.rejectReadyWaiters(new PoolClosedError('closed'));
    this.updateRefs();
    this.notifyStopped();
  }

  private allStopped(): Promise<void> {
    if (this.slots.every((s) => s.state === 'down')) return Promise.resolve();
    return new Promise((resolve) => this.closeWaiters.push(resolve));
  }

  private notifyStopped(): void {
    if (!this.slots.every((s) => s.state === 'down')) return;
    for (const resolve of this.closeWaiters.splice(0)) resolve();
  }

  // ---- keeping the caller's process alive only while there is work ----

  private updateRefs(): void {
    // While closing or destroying, the workers keep the process alive until they have exited.
    const busy =
      this.queuedCount + this.runningCount + this.readyWaiters.length > 0 ||
      (this.state !== 'open' && this.state !== 'failed');
    if (busy === this.referenced) return;
    this.referenced = busy;
    for (const slot of this.slots) {
      if (busy) {
        slot.handle?.ref();
        slot.respawnTimer?.ref();
      } else {
        slot.handle?.unref();
        slot.respawnTimer?.unref();
      }
    }
  }
}

function countBatch(counter: { messages: number; items: number; max: number }, items: number): void {
  counter.messages++;
  counter.items += items;
  if (items > counter.max) counter.max = items;
}

function batchStats(counter: { messages: number; items: number; max: number }): BatchStats {
  return { ...counter, mean: counter.messages === 0 ? 0 : counter.items / counter.messages };
}

function taskInput(task: Task): unknown {
  return task.input;
}

function ids(source: { pid?: number; threadId?: number }): { pid?: number; threadId?: number } {
  return {
    ...(source.pid !== undefined ? { pid: source.pid } : {}),
    ...(source.threadId !== undefined ? { threadId: source.threadId } : {}),
  };
}

const RUN_OPTIONS = ['signal', 'timeoutMs', 'idempotent', 'transfer', 'tenant'];

function checkRunOptions(options: unknown): InvalidOptionError | undefined {
  if (options === null || typeof options !== 'object') {
    return new InvalidOptionError('run options', `must be an object; got ${typeof options}`);
  }
  try {
    for (const key of Object.keys(options)) {
      if (!RUN_OPTIONS.includes(key)) {
        return new InvalidOptionError(key, `is not a known run() option; allowed: ${RUN_OPTIONS.join(', ')}`);
      }
    }
    const o = options as RunOptions;
    if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) {
      return new InvalidOptionError('signal', 'must be an AbortSignal');
    }
    milliseconds('timeoutMs', o.timeoutMs);
    if (o.idempotent !== undefined && typeof o.idempotent !== 'boolean') {
      return new InvalidOptionError('idempotent', `must be a boolean; got ${typeof o.idempotent}`);
    }
    if (o.transfer !== undefined && !Array.isArray(o.transfer)) {
      return new InvalidOptionError('transfer', 'must be an array of transferable objects');
    }
    if (
      o.tenant !== undefined &&
      (typeof o.tenant !== 'string' || o.tenant === '' || o.tenant.length > 128)
    ) {
      return new InvalidOptionError(
        'tenant',
        `must be a non-empty string of at most 128 characters; got ${JSON.stringify(o.tenant)}`,
      );
    }
  } catch (err) {
    if (err instanceof InvalidOptionError) return err;
    throw err;
  }
  return undefined;
}
