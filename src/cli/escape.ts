import { parseArgs } from 'node:util';
import { SingleBar } from 'cli-progress';
import { LEVEL_IDS, type LevelId } from '../lab/escape/levels.js';
import { PROBE_IDS, type ProbeId } from '../lab/escape/probes.js';
import { renderEscape } from '../lab/escape/render.js';
import { type EscapeOptions, type EscapeReport, runEscape } from '../lab/escape/runner.js';
import { list, UsageError } from './usage.js';

export const ESCAPE_USAGE = `isolane escape [options]   the security boundary: which attacks by one tenant on another each level stops

  --quick                 smaller bounds (about 25 s), for CI and smoke tests
  --json                  print the results as JSON (schema: docs/escape.schema.json)
  --levels a,b            only these: ${LEVEL_IDS.join(', ')}
  --probes a,b            only these: ${PROBE_IDS.join(', ')}
  The sandboxed levels (process-uid, process-ns, process-limits) need root; elsewhere they are skipped.
`;

export type ParsedEscapeArgs = 'help' | (EscapeOptions & { json: boolean });

export function parseEscapeArgs(argv: string[]): ParsedEscapeArgs {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean' },
        json: { type: 'boolean' },
        levels: { type: 'string' },
        probes: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (values.help) return 'help';
  return {
    quick: values.quick === true,
    json: values.json === true,
    levels: (list(values.levels as string | undefined, '--levels', LEVEL_IDS) ?? LEVEL_IDS) as LevelId[],
    probes: (list(values.probes as string | undefined, '--probes', PROBE_IDS) ?? PROBE_IDS) as ProbeId[],
  };
}

export async function escapeCommand(argv: string[]): Promise<number> {
  const parsed = parseEscapeArgs(argv);
  if (parsed === 'help') {
    process.stdout.write(ESCAPE_USAGE);
    return 0;
  }
  const bar = process.stderr.isTTY
    ? new SingleBar({ format: '  {bar} {value}/{total} {label}', hideCursor: true }, undefined)
    : undefined;
  bar?.start(1, 0, { label: '' });
  let report: EscapeReport;
  try {
    report = await runEscape(parsed, (done, total, label) => {
      bar?.setTotal(total);
      bar?.update(done, { label });
    });
  } finally {
    bar?.stop();
  }
  process.stdout.write(parsed.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderEscape(report)}\n`);
  // Verdicts are findings, not failures; a cell the lab could not measure is one.
  return report.cells.some((c) => c.verdict === 'error') ? 1 : 0;
}
