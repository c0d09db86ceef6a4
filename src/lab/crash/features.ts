/**
 * Which of the pool's supervision options this build has. The lab uses `restart.spares` and
 * `heartbeatMs` when the pool accepts them, and says so in its report when it does not.
 */
import { resolveOptions } from '../../pool/options.js';

export interface PoolFeatures {
  /** `restart: { spares: N }`: pre-started workers that take a dead one's place at once. */
  spares: boolean;
  /** `heartbeatMs`: a worker that stops answering pings is killed and replaced (cause 'hang'). */
  heartbeat: boolean;
}

function accepts(extra: Record<string, unknown>): boolean {
  try {
    resolveOptions({ handlers: 'probe.js', workers: 1, ...extra });
    return true;
  } catch {
    return false;
  }
}

let cached: PoolFeatures | undefined;

export function poolFeatures(): PoolFeatures {
  cached ??= { spares: accepts({ restart: { spares: 1 } }), heartbeat: accepts({ heartbeatMs: 100 }) };
  return cached;
}
