import { parseArgs } from 'node:util';
import { SingleBar } from 'cli-progress';
import { SIZES, type Size } from '../lab/bench/messages.js';
import { renderBench } from '../lab/bench/render.js';
import { type BenchReport, runBench, TRANSPORT_IDS } from '../lab/bench/run.js';
import type { CorePlacement } from '../lab/bench/transports.js';
import { calibrationPath, readCalibration, writeCalibration } from '../lab/calibration.js';
import { list, oneOf, positiveInt, UsageError } from './usage.js';

export const BENCH_USAGE = `isolane bench [options]   measure the communication tax of every transport

  --quick                 short run (about 15 s), for CI and smoke tests
  --json                  print the results as JSON (schema: docs/bench.schema.json)
  --transports a,b        only these: ${TRANSPORT_IDS.join(', ')}
  --size tiny,4k          message sizes (default: both)
  --duration <ms>         time per measurement (default 500; --quick: 150)
  --cores cross|same|free pin caller and peer to different cores (default), the same core, or not at all
`;

const CORES: readonly CorePlacement[] = ['cross', 'same', 'free'];

export async function benchCommand(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean' },
        json: { type: 'boolean' },
        transports: { type: 'string' },
        size: { type: 'string' },
        duration: { type: 'string' },
        cores: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) {
    process.stdout.write(BENCH_USAGE);
    return 0;
  }
  const quick = values.quick === true;
  const options = {
    quick,
    transports: list(values.transports as string | undefined, '--transports', TRANSPORT_IDS) ?? TRANSPORT_IDS,
    sizes: (list(values.size as string | undefined, '--size', SIZES) ?? SIZES) as Size[],
    durationMs:
      positiveInt(values.duration as string | undefined, '--duration', 10, 60_000) ?? (quick ? 150 : 500),
    cores: oneOf(values.cores as string | undefined, '--cores', CORES) ?? 'cross',
  };

  const bar = process.stderr.isTTY
    ? new SingleBar({ format: '  {bar} {value}/{total} {label}', hideCursor: true }, undefined)
    : undefined;
  bar?.start(1, 0, { label: '' });
  let report: BenchReport;
  try {
    report = await runBench(options, (done, total, label) => {
      bar?.setTotal(total);
      bar?.update(done, { label });
    });
  } finally {
    bar?.stop();
  }

  const path = saveCalibration(report);
  if (values.json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  } else {
    process.stdout.write(`${renderBench(report)}\ncalibration written to ${path}\n`);
  }
  return report.errors.length > 0 && report.results.length === 0 ? 1 : 0;
}

/** Merges this run into the calibration file: a partial run replaces only what it measured. */
function saveCalibration(report: BenchReport): string {
  const path = calibrationPath();
  const previous = readCalibration<{ bench?: BenchReport }>(path);
  const kept = (previous?.bench?.results ?? []).filter(
    (old) => !report.results.some((r) => r.transport === old.transport && r.size === old.size),
  );
  const bench = { ...report, results: [...kept, ...report.results] };
  writeCalibration({ ...previous, bench }, path);
  return path;
}
