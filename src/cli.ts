#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const USAGE = `usage: isolane <command> [options]

commands:
  help       show this text
  version    print the version

The measuring commands (bench, crash, escape, advise, report) are listed here as they land.
`;

function version(): string {
  const manifest = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return manifest.version;
}

function main(argv: string[]): number {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: { help: { type: 'boolean', short: 'h' }, version: { type: 'boolean', short: 'v' } },
    });
  } catch (err) {
    process.stderr.write(`isolane: ${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const [command] = parsed.positionals;
  if (parsed.values.version || command === 'version') {
    process.stdout.write(`${version()}\n`);
    return 0;
  }
  if (parsed.values.help || command === undefined || command === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  process.stderr.write(`isolane: unknown command '${command}'\n\n${USAGE}`);
  return 2;
}

process.exitCode = main(process.argv.slice(2));
