import { readFileSync } from 'node:fs';
import { createRequire, register } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

/**
 * Node 20 runs the parent's `--import` preloads again in a worker thread, but tsx's preload does
 * nothing there (it takes any non-main thread for its own hooks thread), so a thread would not
 * load TypeScript handlers. When the caller runs under tsx, register tsx's hooks in this thread
 * through its public API. Child processes need none of this: they inherit `--import tsx` and run
 * it on their main thread.
 */
export async function inheritTsxInThread(execArgv: readonly string[]): Promise<void> {
  const specifier = tsxPreload(execArgv);
  if (!specifier) return;
  const api = tsxApiUrl(specifier);
  if (!api) return;
  const { register: registerTsx } = (await import(api)) as { register?: () => unknown };
  if (typeof registerTsx === 'function') registerTsx();
  else register(api); // unexpected tsx layout: fail loudly at handler load rather than silently here
}

function tsxPreload(execArgv: readonly string[]): string | undefined {
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i]!;
    const value =
      arg === '--import' ? execArgv[i + 1] : arg.startsWith('--import=') ? arg.slice(9) : undefined;
    if (value && /(^|[/\\])tsx([/\\]|$)|^tsx$/.test(value)) return value;
  }
  return undefined;
}

/** The URL of `tsx/esm/api`, found from the preload tsx was started with. */
function tsxApiUrl(specifier: string): string | undefined {
  try {
    const from =
      specifier.startsWith('file:') || specifier.startsWith('/') ? specifier : join(process.cwd(), 'noop.js');
    const require = createRequire(from);
    const packageJson = require.resolve('tsx/package.json');
    const manifest = JSON.parse(readFileSync(packageJson, 'utf8')) as {
      exports?: Record<string, { import?: { default?: string } }>;
    };
    const entry = manifest.exports?.['./esm/api']?.import?.default;
    return entry ? pathToFileURL(join(dirname(packageJson), entry)).href : undefined;
  } catch {
    return undefined;
  }
}
