/**
 * Runs one crash experiment: builds the topology, warms it up, sends the schedule open-loop
 * (requests go out on time whatever the system is doing), injects the crashes, waits until every
 * request has settled, and counts. Latency is measured from the scheduled send time, so a request
 * held up behind a crash is charged for all of its wait.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type Accounting, account, type RequestRecord } from './accounting.js';
import { type Policy, type TimelineEvent, wallNow } from './backend.js';
import type { WorkInput } from './handlers.js';
import { crashedShare, type RefinedModel, refinedModel, seedModel } from './model.js';
import { type ArrivalProcess, actions, arrivals, type CrashKind, crashSchedule } from './schedule.js';
import {
  crashedUnit,
  createTopology,
  describePolicy,
  type Topology,
  type TopologyId,
  unitStartupMs,
} from './topologies.js';

export interface RunConfig {
  id: string;
  topology: TopologyId;
  policy: Policy;
  workers: number;
  ratePerSec: number;
  arrivals: ArrivalProcess;
  seed: number;
  durationMs: number;
  serviceMs: number;
  serviceKind: WorkInput['kind'];
  crashKind: CrashKind;
  crashAtMs: number[];
  /**
   * How long a restart takes, as the seed counts it: from the crash until the unit serves again.
   * The pools wait this long less the unit's start-up before they respawn it (0: at once).
   */
  restartMs: number;
  spares: number;
}

export interface RestartPlan {
  /** What restarts: a worker process, a worker thread, or the server process with its threads. */
  unit: 'process' | 'thread' | 'server';
  targetMs: number;
  /** One idle unit's start-up, spawn to ready, measured before the run. */
  unitStartupMs: number;
  /** The respawn delay given to the pools: target less start-up, at least 0. */
  delayMs: number;
}

export interface CrashRecord {
  kind: CrashKind;
  /** When it was injected, ms from the start of the schedule. */
  atMs: number;
  /** The pool whose events tell when the crashed unit is back. */
  scope: string;
  /** What the pool said killed the worker. */
  reason: string | null;
  /** When the pool noticed the crash. */
  detectedMs: number | null;
  /** When the crashed unit's replacement was ready (the restart delay plus its start-up). */
  backMs: number | null;
  /** The pool's own `recover` event, when it has one. */
  recover: { atMs: number; via: string; downMs: number } | null;
  /** From the injection to `backMs` (or to the end of the run, if it never came back). */
  downMs: number;
}

export interface RunModel {
  /** The fraction of the requests the crashed unit was getting. */
  share: number;
  /** W: mean latency before the crash, the time a request spends in the system. */
  inSystemMs: number;
  /** The seed's arithmetic: arrivals to the unit during the nominal restart, per crash, summed. */
  seed: number;
  /** In flight at the crash + sent before it was noticed + arrivals until it was back (measured times), less what retries and routing save. */
  refined: RefinedModel;
  /** The refined model from the inputs alone: W = service time, no detection time, down = restart time. */
  nominal: RefinedModel;
}

export interface RunResult {
  id: string;
  config: RunConfig;
  topology: string;
  policy: string;
  restart: RestartPlan;
  /** From creating the topology until every worker was ready. */
  startupMs: number;
  crashes: CrashRecord[];
  accounting: Accounting;
  model: RunModel;
  errors: string[];
}

const READY_TIMEOUT_MS = 30_000;
const BACK_TIMEOUT_MS = 10_000;
const WARMUP_PER_UNIT = 3;

function drainTimeoutMs(config: RunConfig): number {
  return 10_000 + 2 * config.restartMs;
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function runOnce(config: RunConfig): Promise<RunResult> {
  const sendTimes = arrivals({
    ratePerSec: config.ratePerSec,
    durationMs: config.durationMs,
    process: config.arrivals,
    seed: config.seed,
  });
  const crashes = crashSchedule(config.crashAtMs, config.crashKind, config.durationMs);
  const errors: string[] = [];
  const startup = await unitStartupMs(config);
  const restart: RestartPlan = {
    unit: crashedUnit(config),
    targetMs: config.restartMs,
    unitStartupMs: startup,
    delayMs: Math.max(0, Math.round(config.restartMs - startup)),
  };
  const created = wallNow();
  const topology = createTopology({ ...config, restartDelayMs: restart.delayMs });
  const records: RequestRecord[] = sendTimes.map((ms) => ({
    intendedMs: ms,
    settledMs: undefined,
    outcome: undefined,
  }));
  const injections: { kind: CrashKind; atMs: number; t: number; scope: string }[] = [];
  let startupMs = 0;
  let t0 = 0;
  let timeline: TimelineEvent[] = [];
  let endMs = config.durationMs;
  try {
    await withTimeout(topology.ready(), READY_TIMEOUT_MS, 'starting the workers');
    startupMs = wallNow() - created;
    const input: WorkInput = { serviceMs: config.serviceMs, kind: config.serviceKind };
    await Promise.all(Array.from({ length: topology.units * WARMUP_PER_UNIT }, () => topology.send(input)));

    let pending = 0;
    t0 = wallNow();
    const plan = actions(sendTimes, crashes);
    let next = 0;
    await new Promise<void>((resolve) => {
      const tick = () => {
        const now = wallNow() - t0;
        while (next < plan.length && plan[next]!.atMs <= now) {
          const action = plan[next++]!;
          if (action.type === 'request') {
            const record = records[action.index]!;
            pending++;
            void topology.send(input).then((outcome) => {
              record.outcome = outcome;
              record.settledMs = wallNow() - t0;
              pending--;
            });
          } else {
            try {
              const injected = topology.inject(action.crash.kind);
              injections.push({ kind: action.crash.kind, atMs: injected.t - t0, ...injected });
            } catch (err) {
              errors.push(
                `the crash at ${action.crash.atMs} ms could not be injected: ${(err as Error).message}`,
              );
            }
          }
        }
        if (next < plan.length) setTimeout(tick, Math.max(0, plan[next]!.atMs - (wallNow() - t0)));
        else resolve();
      };
      tick();
    });
    const deadline = wallNow() + drainTimeoutMs(config);
    while (pending > 0 && wallNow() < deadline) await sleep(5);
    if (pending > 0)
      errors.push(`${pending} requests had not settled ${drainTimeoutMs(config)} ms after the last was sent`);
    endMs = Math.max(config.durationMs, wallNow() - t0);
    // Wait (bounded) until every crashed unit is back, so that each crash has an end.
    const backBy = wallNow() + BACK_TIMEOUT_MS + config.restartMs;
    for (;;) {
      timeline = await topology.timeline();
      const allBack = injections.every((i) =>
        timeline.some((e) => e.scope === i.scope && e.type === 'start' && e.t >= i.t),
      );
      if (allBack || wallNow() > backBy) break;
      await sleep(50);
    }
  } catch (err) {
    errors.push((err as Error).message);
  } finally {
    await destroy(topology, errors);
  }

  const crashRecords = injections.map((injection) => crashRecord(injection, timeline, t0, endMs));
  for (const c of crashRecords) {
    if (c.backMs === null)
      errors.push(`the unit that crashed at ${Math.round(c.atMs)} ms was not back by the end of the run`);
  }
  const accounting = account(
    records,
    crashRecords.map((c) => ({ atMs: c.atMs, untilMs: c.atMs + c.downMs })),
  );
  if (!accounting.balanced) {
    errors.push(
      `the counts do not add up: sent ${accounting.sent}, completed ${accounting.completed}, failed ${accounting.failed}, unsettled ${accounting.unsettled}`,
    );
  }
  return {
    id: config.id,
    config,
    topology: topology.description,
    policy: describePolicy(config.policy, config.spares),
    restart,
    startupMs,
    crashes: crashRecords,
    accounting,
    model: modelOf(config, topology, accounting, crashRecords),
    errors,
  };
}

async function destroy(topology: Topology, errors: string[]): Promise<void> {
  try {
    await withTimeout(topology.destroy(), 10_000, 'stopping the workers');
  } catch (err) {
    errors.push((err as Error).message);
  }
}

export function crashRecord(
  injection: { kind: CrashKind; atMs: number; t: number; scope: string },
  timeline: readonly TimelineEvent[],
  t0: number,
  endMs: number,
): CrashRecord {
  const after = timeline.filter((e) => e.scope === injection.scope && e.t >= injection.t);
  const crash = after.find((e) => e.type === 'crash');
  const start = after.find((e) => e.type === 'start');
  const recover = after.find((e) => e.type === 'recover');
  const backMs = start ? start.t - t0 : null;
  return {
    kind: injection.kind,
    atMs: injection.atMs,
    scope: injection.scope,
    reason: crash?.reason ?? null,
    detectedMs: crash ? crash.t - t0 : null,
    backMs,
    recover: recover
      ? { atMs: recover.t - t0, via: recover.via ?? 'unknown', downMs: recover.downMs ?? 0 }
      : null,
    downMs: (backMs ?? endMs) - injection.atMs,
  };
}

function modelOf(
  config: RunConfig,
  topology: Topology,
  accounting: Accounting,
  crashes: CrashRecord[],
): RunModel {
  const share = crashedShare(topology.units, topology.wholeSystem);
  const inSystemMs = accounting.windows.before.meanMs ?? config.serviceMs;
  const isolane = config.policy === 'isolane';
  const model = (w: number, detect: number, down: number) =>
    refinedModel({
      ratePerSec: config.ratePerSec,
      share,
      inSystemMs: w,
      detectMs: detect,
      downMs: down,
      retries: isolane,
      holdsArrivals: isolane,
    });
  const measured = crashes.map((c) =>
    model(inSystemMs, c.detectedMs === null ? 0 : c.detectedMs - c.atMs, c.downMs),
  );
  const count = Math.max(crashes.length, 1);
  const nominal = model(config.serviceMs, 0, config.restartMs);
  return {
    share,
    inSystemMs,
    seed: count * seedModel({ ratePerSec: config.ratePerSec, share, restartMs: config.restartMs }),
    refined: measured.length > 0 ? sumModels(measured) : nominal,
    nominal: sumModels(Array.from({ length: count }, () => nominal)),
  };
}

function sumModels(models: RefinedModel[]): RefinedModel {
  const total = (key: Exclude<keyof RefinedModel, 'unitRatePerSec'>) =>
    models.reduce((a, m) => a + m[key], 0);
  return {
    unitRatePerSec: models[0]!.unitRatePerSec,
    inFlight: total('inFlight'),
    unnoticed: total('unnoticed'),
    arrivalsWhileDown: total('arrivalsWhileDown'),
    retried: total('retried'),
    dropped: total('dropped'),
  };
}
