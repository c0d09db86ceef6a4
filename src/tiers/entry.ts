import { fileURLToPath } from 'node:url';

/** The path of a worker entry module, next to this file's compiled (or, under a loader, source) form. */
export function workerEntry(name: 'thread-entry' | 'process-entry'): string {
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  return fileURLToPath(new URL(`../worker/${name}${ext}`, import.meta.url));
}
