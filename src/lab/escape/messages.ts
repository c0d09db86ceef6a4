/** What the lab tells a harness, and what the harness reports back over its IPC channel. */
import type { Bounds } from './bounds.js';
import type { LevelId } from './levels.js';
import type { ProbeId } from './probes.js';
import type { ProbeOutcome } from './verdict.js';

export interface HarnessConfig {
  runId: string;
  level: LevelId;
  probes: ProbeId[];
  bounds: Bounds;
  /** cgroup.procs of the level's memory budget: the harness joins it before anything else. */
  budgetProcs?: string;
}

export interface Tenant {
  /** Host pid of the tenant's worker (the harness's own at the inline and thread levels). */
  pid: number;
  uid: number;
  threadId?: number;
}

export type HarnessMessage =
  | { t: 'ready'; hostPid: number; victim: Tenant; attacker: Tenant; notPlanted: Record<string, string> }
  /** The level cannot run here (the pool refused its options): why. */
  | { t: 'unavailable'; reason: string }
  | { t: 'start'; probe: ProbeId }
  | { t: 'outcome'; outcome: ProbeOutcome; ms: number }
  | { t: 'failed'; probe: ProbeId; error: string; ms: number }
  | { t: 'done' };
