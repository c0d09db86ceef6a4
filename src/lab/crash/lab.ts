/**
 * The crash-containment lab: plans the runs of a scenario (the seed's two cases, or one custom
 * case), runs them one after another, and gathers the report.
 */
import { describeMachine, type Machine } from '../machine.js';
import type { Policy } from './backend.js';
import { explainRun } from './explain.js';
import { crashedShare, seedModel } from './model.js';
import { type RunConfig, type RunResult, runOnce } from './runner.js';
import type { ArrivalProcess, CrashKind } from './schedule.js';
import { describeTopology, type TopologyId } from './topologies.js';

export const CRASH_SCHEMA_VERSION = 1;
export type Scenario = 'seed' | 'custom';
export const SCENARIOS: readonly Scenario[] = ['seed', 'custom'];
export const POLICIES: readonly Policy[] = ['naive', 'isolane'];

export interface LabOptions {
  scenario: Scenario;
  /** custom only */
  topology: TopologyId;
  /** custom only */
  crashKind: CrashKind;
  policies: Policy[];
  ratePerSec: number;
  arrivals: ArrivalProcess;
  seed: number;
  workers: number;
  restartMs: number;
  serviceMs: number;
  serviceKind: 'wait' | 'cpu';
  spares: number;
  durationMs: number;
  crashAtMs: number[];
  quick: boolean;
}

export interface CrashCase {
  id: string;
  title: string;
  topology: TopologyId;
  crashKind: CrashKind;
  /** Requests the seed's arithmetic says one crash drops, per crash, summed. */
  seedModel: number;
  /** Ids of the runs of this case, if they were run. */
  naive: string | null;
  isolane: string | null;
}

export interface ExplainedRun extends RunResult {
  why: string;
}

export interface CrashReport {
  schemaVersion: number;
  kind: 'isolane-crash';
  createdAt: string;
  machine: Machine;
  scenario: Scenario;
  plan: Omit<LabOptions, 'topology' | 'crashKind'> & {
    topology: TopologyId | null;
    crashKind: CrashKind | null;
  };
  cases: CrashCase[];
  runs: ExplainedRun[];
  errors: string[];
}

/** Defaults for the duration and the crash time, by speed. */
export function defaultTiming(quick: boolean): { durationMs: number; crashAtMs: number[] } {
  return quick ? { durationMs: 2_000, crashAtMs: [600] } : { durationMs: 5_000, crashAtMs: [2_000] };
}

interface CaseSpec {
  id: string;
  title: string;
  topology: TopologyId;
  crashKind: CrashKind;
}

function caseSpecs(options: LabOptions): CaseSpec[] {
  const { workers, ratePerSec } = options;
  if (options.scenario === 'seed') {
    return [
      {
        id: 'seed-one-process',
        title: `one process (${workers} threads) at ${ratePerSec}/s; a thread's fatal fault kills it`,
        topology: 'threads',
        crashKind: 'fatal',
      },
      {
        id: 'seed-processes',
        title: `${workers} processes at ${+(ratePerSec / workers).toFixed(1)}/s each; one is SIGKILLed`,
        topology: 'processes',
        crashKind: 'sigkill',
      },
    ];
  }
  return [
    {
      id: 'custom',
      title: `${describeTopology(options.topology, options.workers)} at ${ratePerSec}/s; crash: ${options.crashKind}`,
      topology: options.topology,
      crashKind: options.crashKind,
    },
  ];
}

export function planLab(options: LabOptions): { cases: CrashCase[]; runs: RunConfig[] } {
  const cases: CrashCase[] = [];
  const runs: RunConfig[] = [];
  for (const spec of caseSpecs(options)) {
    const units = spec.topology === 'one-process' ? 1 : options.workers;
    const whole = units === 1 || spec.crashKind === 'fatal' || spec.crashKind === 'process';
    const share = crashedShare(units, spec.topology === 'processes' ? false : whole);
    const ids: Record<Policy, string | null> = { naive: null, isolane: null };
    for (const policy of POLICIES) {
      if (!options.policies.includes(policy)) continue;
      const id = `${spec.id}/${policy}`;
      ids[policy] = id;
      runs.push({
        id,
        topology: spec.topology,
        policy,
        workers: options.workers,
        ratePerSec: options.ratePerSec,
        arrivals: options.arrivals,
        seed: options.seed,
        durationMs: options.durationMs,
        serviceMs: options.serviceMs,
        serviceKind: options.serviceKind,
        crashKind: spec.crashKind,
        crashAtMs: options.crashAtMs,
        restartMs: options.restartMs,
        spares: options.spares,
      });
    }
    cases.push({
      ...spec,
      seedModel:
        options.crashAtMs.length *
        seedModel({ ratePerSec: options.ratePerSec, share, restartMs: options.restartMs }),
      naive: ids.naive,
      isolane: ids.isolane,
    });
  }
  return { cases, runs };
}

export async function runCrashLab(
  options: LabOptions,
  onProgress: (done: number, total: number, label: string) => void = () => {},
): Promise<CrashReport> {
  const { cases, runs } = planLab(options);
  const results: ExplainedRun[] = [];
  const errors: string[] = [];
  for (const [i, config] of runs.entries()) {
    onProgress(i, runs.length, config.id);
    const result = await runOnce(config);
    results.push({ ...result, why: explainRun(result) });
    for (const e of result.errors) errors.push(`${config.id}: ${e}`);
  }
  onProgress(runs.length, runs.length, 'done');
  const custom = options.scenario === 'custom';
  return {
    schemaVersion: CRASH_SCHEMA_VERSION,
    kind: 'isolane-crash',
    createdAt: new Date().toISOString(),
    machine: describeMachine(),
    scenario: options.scenario,
    plan: {
      ...options,
      topology: custom ? options.topology : null,
      crashKind: custom ? options.crashKind : null,
    },
    cases,
    runs: results,
    errors,
  };
}
