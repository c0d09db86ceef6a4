import { parseArgs } from 'node:util';
import { SingleBar } from 'cli-progress';
import type { Policy } from '../lab/crash/backend.js';
import {
  type CrashReport,
  defaultTiming,
  type LabOptions,
  POLICIES,
  runCrashLab,
  SCENARIOS,
} from '../lab/crash/lab.js';
import { renderCrash } from '../lab/crash/render.js';
import {
  type ArrivalProcess,
  CRASH_KINDS,
  type CrashKind,
  expectedRequests,
  MAX_REQUESTS,
} from '../lab/crash/schedule.js';
import { CRASH_KINDS_OF, TOPOLOGIES, type TopologyId } from '../lab/crash/topologies.js';
import { oneOf, positiveInt, UsageError } from './usage.js';

export const CRASH_USAGE = `isolane crash [options]   crash containment: requests one crash drops, against the seed's arithmetic

  --scenario seed|custom  seed (default): the seed's two cases, one process with threads and N processes,
                          each naive and with isolane's policies; custom: the topology and crash below
  --topology t            custom: ${TOPOLOGIES.join(', ')} (default processes)
  --crash kind            custom: ${CRASH_KINDS.join(', ')}
                          (default sigkill; fatal for threads)
  --policy naive|isolane|both  custom: which to run (default both)
  --rate <n>              requests per second, open loop (default 1000)
  --arrivals fixed|poisson     (default fixed)
  --seed <n>              seed of the Poisson arrivals (default 1)
  --workers <n>           workers: processes or threads (default 10)
  --restart-ms <ms>       restart time, crash to serving again, as the seed counts it (default 500)
  --service-ms <ms>       time each request takes (default 10)
  --service-kind wait|cpu an async wait or busy CPU (default wait)
  --spares <n>            isolane's hot spares (default 1)
  --duration <ms>         time per run (default 5000; --quick: 2000)
  --crash-at <ms,...>     when to crash (default 2000; --quick: 600)
  --quick                 short runs, for CI and smoke tests
  --json                  print the results as JSON (schema: docs/crash.schema.json)
`;

function string(values: Record<string, unknown>, key: string): string | undefined {
  return values[key] as string | undefined;
}

export type ParsedCrashArgs = 'help' | (LabOptions & { json: boolean });

export function parseCrashArgs(argv: string[]): ParsedCrashArgs {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        scenario: { type: 'string' },
        topology: { type: 'string' },
        crash: { type: 'string' },
        policy: { type: 'string' },
        rate: { type: 'string' },
        arrivals: { type: 'string' },
        seed: { type: 'string' },
        workers: { type: 'string' },
        'restart-ms': { type: 'string' },
        'service-ms': { type: 'string' },
        'service-kind': { type: 'string' },
        spares: { type: 'string' },
        duration: { type: 'string' },
        'crash-at': { type: 'string' },
        quick: { type: 'boolean' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return 'help';
  const customOnly = ['topology', 'crash', 'policy'].filter((k) => values[k] !== undefined);
  const scenario =
    oneOf(string(values, 'scenario'), '--scenario', SCENARIOS) ?? (customOnly.length > 0 ? 'custom' : 'seed');
  if (scenario === 'seed' && customOnly.length > 0) {
    throw new UsageError(
      `--${customOnly[0]} applies to --scenario custom; the seed scenario runs its own two cases`,
    );
  }
  const topology: TopologyId = oneOf(string(values, 'topology'), '--topology', TOPOLOGIES) ?? 'processes';
  const crashKind: CrashKind =
    oneOf(string(values, 'crash'), '--crash', CRASH_KINDS) ?? (topology === 'threads' ? 'fatal' : 'sigkill');
  if (!CRASH_KINDS_OF[topology].includes(crashKind)) {
    throw new UsageError(
      `--crash ${crashKind} does not apply to --topology ${topology}; it can: ${CRASH_KINDS_OF[topology].join(', ')}`,
    );
  }
  const policy = oneOf(string(values, 'policy'), '--policy', [...POLICIES, 'both'] as const) ?? 'both';
  const quick = values.quick === true;
  const timing = defaultTiming(quick);
  const durationMs = positiveInt(string(values, 'duration'), '--duration', 100, 600_000) ?? timing.durationMs;
  const crashAtList = string(values, 'crash-at')
    ?.split(',')
    .map((v) => v.trim())
    .filter(Boolean);
  if (crashAtList?.length === 0) throw new UsageError('--crash-at needs at least one time in ms');
  const crashAtMs = crashAtList
    ? crashAtList.map((v) => positiveInt(v, '--crash-at', 1, durationMs - 1)!)
    : timing.crashAtMs.filter((at) => at < durationMs);
  if (crashAtMs.length === 0)
    throw new UsageError(`--duration ${durationMs} leaves no time for the default crash`);
  const options: LabOptions = {
    scenario,
    topology,
    crashKind,
    policies: policy === 'both' ? [...POLICIES] : [policy as Policy],
    ratePerSec: positiveInt(string(values, 'rate'), '--rate', 1, 20_000) ?? 1000,
    arrivals: (oneOf(string(values, 'arrivals'), '--arrivals', ['fixed', 'poisson'] as const) ??
      'fixed') as ArrivalProcess,
    seed: positiveInt(string(values, 'seed'), '--seed', 0, 2 ** 31 - 1) ?? 1,
    workers: positiveInt(string(values, 'workers'), '--workers', 1, 64) ?? 10,
    restartMs: positiveInt(string(values, 'restart-ms'), '--restart-ms', 0, 60_000) ?? 500,
    serviceMs: positiveInt(string(values, 'service-ms'), '--service-ms', 0, 10_000) ?? 10,
    serviceKind: oneOf(string(values, 'service-kind'), '--service-kind', ['wait', 'cpu'] as const) ?? 'wait',
    spares: positiveInt(string(values, 'spares'), '--spares', 0, 8) ?? 1,
    durationMs,
    crashAtMs,
    quick,
  };
  if (expectedRequests(options) > MAX_REQUESTS) {
    throw new UsageError(
      `--rate ${options.ratePerSec} for --duration ${durationMs} is ${expectedRequests(options)} requests per run; the limit is ${MAX_REQUESTS}`,
    );
  }
  return { ...options, json: values.json === true };
}

export async function crashCommand(argv: string[]): Promise<number> {
  const parsed = parseCrashArgs(argv);
  if (parsed === 'help') {
    process.stdout.write(CRASH_USAGE);
    return 0;
  }
  const { json, ...options } = parsed;
  const bar = process.stderr.isTTY
    ? new SingleBar({ format: '  {bar} {value}/{total} {label}', hideCursor: true }, undefined)
    : undefined;
  bar?.start(1, 0, { label: '' });
  let report: CrashReport;
  try {
    report = await runCrashLab(options, (done, total, label) => {
      bar?.setTotal(total);
      bar?.update(done, { label });
    });
  } finally {
    bar?.stop();
  }
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : `${renderCrash(report)}\n`);
  return report.errors.length > 0 ? 1 : 0;
}
