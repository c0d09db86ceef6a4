/**
 * The escape lab's handler module: the victim's handlers and the attacker's, in one module, as a
 * pool's tenants would share one codebase. Every named function export is a handler.
 */
import { threadId } from 'node:worker_threads';

export { attack } from './attacker.js';
export { allocate, cleanup, ping, plant, status } from './victim.js';

/** Who runs this tenant's code: pid (as the tenant sees it), uid, thread. */
export function whoami(): { pid: number; uid: number; threadId: number } {
  return { pid: process.pid, uid: process.getuid?.() ?? -1, threadId };
}
