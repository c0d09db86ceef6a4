// isolane's handler module for the benchmark: its named function exports are the handlers.
import { move } from '../src/index.js';

export { cpu, echoBytes, tiny } from './workload.cjs';

/** The payload echo of the 'transfer' row: the bytes are moved back (thread tier), not copied. */
export function echoBytesMoved(bytes: Uint8Array): Uint8Array {
  return move(bytes);
}
