/** Runs the communication-tax lab: every chosen transport, every chosen size, and the derivations. */
import { describeMachine, type Machine } from '../machine.js';
import { allCosts, type ClaimResult, type CostAtRates, checkClaims, wakeUpCost } from './derive.js';
import type { Size } from './messages.js';
import {
  type CorePlacement,
  type Plan,
  restoreAffinity,
  TRANSPORTS,
  type TransportResult,
} from './transports.js';

export const BENCH_SCHEMA_VERSION = 1;

export interface BenchOptions {
  transports: readonly string[];
  sizes: readonly Size[];
  /** Time spent measuring each of round trip and each one-way run, per transport and size. */
  durationMs: number;
  cores: CorePlacement;
  quick: boolean;
}

export interface BenchReport {
  schemaVersion: number;
  kind: 'isolane-bench';
  createdAt: string;
  machine: Machine;
  plan: Plan & { transports: string[]; sizes: Size[] };
  results: TransportResult[];
  costs: CostAtRates[];
  claims: ClaimResult[];
  /** One wake-up of a sleeping receiver, derived from the two shared-memory ping-pongs. */
  wakeUp: { us: number; size: Size } | null;
  /** Transports that failed to measure, with why. */
  errors: { transport: string; size: Size; message: string }[];
}

export const TRANSPORT_IDS = TRANSPORTS.map((t) => t.id);

export function planFor(options: BenchOptions): Plan {
  return {
    rttMs: options.durationMs,
    streamMs: options.durationMs,
    idleCount: options.quick ? 5 : 20,
    idleGapMs: 5,
    batch: 64,
    cores: options.cores,
  };
}

export async function runBench(
  options: BenchOptions,
  onProgress: (done: number, total: number, label: string) => void = () => {},
): Promise<BenchReport> {
  const plan = planFor(options);
  const chosen = TRANSPORTS.filter((t) => options.transports.includes(t.id));
  const results: TransportResult[] = [];
  const errors: BenchReport['errors'] = [];
  const total = chosen.length * options.sizes.length;
  let done = 0;
  try {
    for (const transport of chosen) {
      for (const size of options.sizes) {
        onProgress(done, total, `${transport.id} ${size}`);
        try {
          results.push(await transport.measure(size, plan));
        } catch (err) {
          errors.push({ transport: transport.id, size, message: (err as Error).message });
        }
        done++;
      }
    }
  } finally {
    restoreAffinity();
  }
  onProgress(done, total, 'done');
  return {
    schemaVersion: BENCH_SCHEMA_VERSION,
    kind: 'isolane-bench',
    createdAt: new Date().toISOString(),
    machine: describeMachine(),
    plan: { ...plan, transports: chosen.map((t) => t.id), sizes: [...options.sizes] },
    results,
    costs: allCosts(results),
    claims: checkClaims(results),
    wakeUp: wakeUpCost(results),
    errors,
  };
}
