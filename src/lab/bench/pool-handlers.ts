// Handlers for the lab's end-to-end pool measurements.
import { currentTid } from '../cpu.js';

export function echo<T>(input: T): T {
  return input;
}

/** The kernel thread id of the worker running this, so the lab can pin it to a core. */
export function tid(): number {
  return currentTid();
}
