/**
 * The native shared-memory addon (native/isolane_shm.cc, built by node-gyp at install into
 * build/Release/isolane_shm.node): a real SharedArrayBuffer shared between processes, and an eventfd
 * doorbell that wakes another process without blocking anyone's event loop.
 *
 * Importing this module never throws: when the addon is missing or fails to load, `nativeShm` is
 * undefined and `nativeLoadError` says why. `ISOLANE_NO_NATIVE=1` in the environment leaves it unloaded.
 *
 * Handing the memory and the bells to a child: pass the fds as extra stdio entries, e.g.
 * `stdio: ['inherit', 'inherit', 'pipe', 'ipc', memfd, bellToChild, bellToParent]`, and the child finds
 * them as fds 4, 5 and 6 (`open(4, bytes)`, `watch(5, …)`, `ring(6)`). Every fd the addon makes is
 * close-on-exec: a child gets only those placed in its stdio, never the ones meant for its siblings.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface DoorbellWatch {
  /** Stops watching; the fd stays open. Idempotent. */
  close(): void;
  /** Keeps the event loop alive while watching (the default). */
  ref(): void;
  /** Lets the event loop exit while the watch stays open. */
  unref(): void;
}

export interface NativeShm {
  /** New shared memory of `bytes` (rounded up to a page): its memfd and a SharedArrayBuffer over it. */
  create(bytes: number): { fd: number; buffer: SharedArrayBuffer };
  /** Maps an inherited memfd: the same memory, as a SharedArrayBuffer in this process. */
  open(fd: number, bytes: number): SharedArrayBuffer;
  /** A new eventfd (non-blocking, close-on-exec: hand it to a child through a stdio slot). */
  doorbell(): number;
  /** Wakes whoever watches or waits on `fd`. Never blocks. */
  ring(fd: number): void;
  /**
   * Calls `onRing` on this thread's event loop each time `fd` was rung (rings that arrive before the
   * call coalesce into one). Never blocks the loop. One watch per fd per process. If the fd fails
   * (closed underneath), the watch stops and `onRing` gets the error.
   */
  watch(fd: number, onRing: (error?: Error) => void): DoorbellWatch;
  /** Blocks this thread until `fd` is rung (true) or `timeoutMs` (may be fractional, or Infinity) passes (false). */
  waitSync(fd: number, timeoutMs: number): boolean;
  /** Closes an fd made by `create` or `doorbell` (or inherited). Refuses an fd that has an open watch. */
  close(fd: number): void;
  /** sched_yield(): lets another thread that is ready to run on this core run first. */
  yieldCpu(): void;
  /** The CPU this thread is running on now (sched_getcpu), or -1 if unknown. */
  currentCpu(): number;
}

/** Where the addon is: `build/Release` at the package root, from src/channel or dist/src/channel. */
function addonPath(): string | undefined {
  for (const up of ['../../', '../../../']) {
    const path = fileURLToPath(new URL(`${up}build/Release/isolane_shm.node`, import.meta.url));
    if (existsSync(path)) return path;
  }
  return undefined;
}

function load(): { shm?: NativeShm; error?: Error } {
  if (process.platform !== 'linux') return { error: new Error('isolane_shm needs Linux') };
  if (process.env.ISOLANE_NO_NATIVE === '1') return { error: new Error('disabled by ISOLANE_NO_NATIVE=1') };
  try {
    const path = addonPath();
    if (!path) {
      return { error: new Error('isolane_shm.node is not built (build/Release); run `npm rebuild isolane`') };
    }
    return { shm: createRequire(import.meta.url)(path) as NativeShm };
  } catch (error) {
    return { error: error instanceof Error ? error : new Error(String(error)) };
  }
}

const loaded = load();

/** The addon, or undefined when it is not built or does not load on this platform. */
export const nativeShm: NativeShm | undefined = loaded.shm;
/** Why `nativeShm` is undefined. */
export const nativeLoadError: Error | undefined = loaded.error;
