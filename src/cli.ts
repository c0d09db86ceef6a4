#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { BENCH_USAGE, benchCommand } from './cli/bench.js';
import { CRASH_USAGE, crashCommand } from './cli/crash.js';
import { ESCAPE_USAGE, escapeCommand } from './cli/escape.js';
import { UsageError } from './cli/usage.js';

const USAGE = `usage: isolane <command> [options]

commands:
  bench      the communication tax of every transport, and the seed's claims put to the test
  crash      what one crash costs: requests dropped, measured against the seed's arithmetic
  escape     what one tenant can do to another at each isolation level: probe × level, with evidence
  help       show this text
  version    print the version

${BENCH_USAGE}
${CRASH_USAGE}
${ESCAPE_USAGE}`;

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  bench: benchCommand,
  crash: crashCommand,
  escape: escapeCommand,
};

function version(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return manifest.version;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'version' || command === '--version' || command === '-v') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    process.stdout.write(USAGE);
    return 0;
  }
  const run = COMMANDS[command];
  try {
    if (!run) throw new UsageError(`unknown command '${command}'`);
    return await run(rest);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`isolane: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }
}

process.exitCode = await main(process.argv.slice(2));
