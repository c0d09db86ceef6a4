// The crash lab's handlers, run by the workers: the work each request does, and the ways to die.
import type { TaskContext } from '../../worker/runtime.js';

export interface WorkInput {
  serviceMs: number;
  /** 'wait': an async wait (the worker is idle meanwhile); 'cpu': the worker spins. */
  kind: 'wait' | 'cpu';
}

/** One request: takes `serviceMs`, reports which try it was. */
export function work(
  input: WorkInput,
  ctx: TaskContext,
): { attempts: number } | Promise<{ attempts: number }> {
  if (input.kind === 'cpu') {
    const end = performance.now() + input.serviceMs;
    while (performance.now() < end) {
      // busy
    }
    return { attempts: ctx.attempt };
  }
  return new Promise((resolve) => setTimeout(() => resolve({ attempts: ctx.attempt }), input.serviceMs));
}

/** An uncaught exception in a timer: the worker dies with cause 'uncaught'. */
export function crashUncaught(): Promise<never> {
  setTimeout(() => {
    throw new Error('crash lab: an uncaught exception');
  }, 0);
  return new Promise(() => {});
}

/** Allocates until the heap limit (`maxHeapMb`) is reached: cause 'oom'. */
export function crashOom(): never {
  const hoard: number[][] = [];
  for (;;) hoard.push(new Array(250_000).fill(1.5));
}

/** Never returns and never yields: the event loop stops answering. */
export function crashHang(): never {
  for (;;) {
    // hung
  }
}

/**
 * SIGKILLs its own process. In a child process that is the worker; in a worker thread it is the
 * whole process the thread lives in, every other thread with it.
 */
export function crashFatal(): Promise<never> {
  process.kill(process.pid, 'SIGKILL');
  return new Promise(() => {});
}
