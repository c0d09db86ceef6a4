/**
 * Sets up a ring channel between the pool and one worker: the memory, the doorbells, and each
 * side's RingChannel. Between threads the rings are plain SharedArrayBuffers; between processes
 * they live in a memfd mapped by both (native addon). Doorbells are eventfds watched on each side's
 * event loop (native addon); between threads without the addon, a message on the worker's port.
 */

import type { ViewMode } from './clone.js';
import { type DoorbellWatch, type NativeShm, nativeShm } from './native.js';
import { type FromWorker, HEAVY_BATCH_BYTES, type RingSetup, type ToWorker } from './protocol.js';
import { createRing, HEADER_BYTES, type RingMemory, ringOver } from './ring.js';
import { RingChannel } from './ring-channel.js';
import { decodeFromWorker, decodeToWorker } from './ring-codec.js';

/** Bytes of each ring (one each way, per worker): a header and 1 MiB of data. Larger frames stream through. */
export const RING_BYTES = HEADER_BYTES + (1 << 20);

function cpuOps(): { cpu?: { current: () => number; yield: () => void } } {
  const shm = nativeShm;
  return shm ? { cpu: { current: shm.currentCpu, yield: shm.yieldCpu } } : {};
}

/**
 * Frames larger than this go by the message channel (postMessage, IPC) instead: for large payloads
 * it copies in fewer passes and allocates less, and the ring's edge, no wake-up, matters little.
 */
export const LARGE_FRAME_BYTES = HEAVY_BATCH_BYTES;

/**
 * Puts a message on the ring if it belongs there. False when it does not: its frame would be over
 * LARGE_FRAME_BYTES, or it holds what the ring cannot carry exactly; the caller then sends it by
 * the message channel, which clones it or says why it cannot.
 */
export function offerToRing<M>(post: (msg: M, maxBytes: number) => boolean, msg: M): boolean {
  try {
    return post(msg, LARGE_FRAME_BYTES);
  } catch {
    return false;
  }
}

/** The fds a process worker finds its ring at (stdio slots after the IPC channel at 3). */
const CHILD_FDS = { memory: 4, toWorker: 5, toPool: 6 } as const;

export interface PoolRingEnd {
  /** As RingChannel.post: false (nothing sent) when the frame would be larger than `maxBytes`. */
  post(msg: ToWorker, maxBytes?: number): boolean;
  /** The doorbell rang over the port (threads without the addon). */
  wake(): void;
  ref(): void;
  unref(): void;
  /** Reads what the worker left in the ring, then releases the memory and the doorbells. */
  close(): void;
}

interface PoolEndOptions {
  spinUs: number;
  onMessage: (msg: FromWorker) => void;
  onBroken: (error: Error) => void;
}

function poolEnd(
  toWorker: RingMemory,
  toPool: RingMemory,
  ringWorker: () => void,
  watchPool: ((onRing: () => void) => DoorbellWatch) | undefined,
  release: () => void,
  views: ViewMode,
  o: PoolEndOptions,
): PoolRingEnd {
  // Every task and ping sent over the ring gets exactly one result or pong back (unless the worker
  // dies): while none is outstanding, there is nothing to poll for.
  let outstanding = 0;
  const channel = new RingChannel<FromWorker>({
    outgoing: toWorker,
    incoming: toPool,
    ringPeer: ringWorker,
    decode: decodeFromWorker,
    onMessage: (msg) => {
      if (msg.t === 'results') outstanding = Math.max(0, outstanding - msg.ids.length);
      else if (msg.t === 'pong') outstanding = Math.max(0, outstanding - 1);
      o.onMessage(msg);
    },
    onBroken: o.onBroken,
    spinUs: o.spinUs,
    awaitingReply: () => outstanding > 0,
    views,
    ...cpuOps(),
  });
  const watch = watchPool?.(() => channel.wake());
  let closed = false;
  return {
    post(msg, maxBytes) {
      if (!channel.post(msg, maxBytes)) return false;
      if (msg.t === 'run') outstanding += msg.ids.length;
      else if (msg.t === 'ping') outstanding++;
      return true;
    },
    wake: () => channel.wake(),
    ref: () => watch?.ref(),
    unref: () => watch?.unref(),
    close() {
      if (closed) return;
      closed = true;
      channel.drainNow();
      channel.close();
      watch?.close();
      release();
    },
  };
}

/**
 * A ring pair for a worker thread. `postBell` sends the doorbell message over the port; it is used
 * only when the native addon is not there.
 */
export function threadRing(
  postBell: () => void,
  o: PoolEndOptions,
  /** Doorbells: eventfds when the addon is there (faster to ring and to watch), else port messages. */
  doorbells: 'eventfd' | 'port' = nativeShm ? 'eventfd' : 'port',
): { setup: RingSetup; end: PoolRingEnd } {
  const shm = doorbells === 'eventfd' ? nativeShm : undefined;
  if (doorbells === 'eventfd' && !shm) throw new Error('isolane: eventfd doorbells need the native addon');
  const toWorker = createRing(RING_BYTES);
  const toPool = createRing(RING_BYTES);
  const bells = shm ? { toWorker: shm.doorbell(), toPool: shm.doorbell() } : undefined;
  const setup: RingSetup = {
    kind: 'thread',
    bytes: RING_BYTES,
    spinUs: o.spinUs,
    toWorker: toWorker.header.buffer as SharedArrayBuffer,
    toPool: toPool.header.buffer as SharedArrayBuffer,
    ...(bells ? { bells } : {}),
  };
  const end = poolEnd(
    toWorker,
    toPool,
    bells ? () => shm!.ring(bells.toWorker) : postBell,
    bells ? (onRing) => shm!.watch(bells.toPool, onRing) : undefined,
    () => {
      if (!bells) return;
      shm!.close(bells.toWorker);
      shm!.close(bells.toPool);
    },
    'exact',
    o,
  );
  return { setup, end };
}

/**
 * A ring pair for a child process: the memfd and the two eventfds go to the child as stdio slots
 * 4, 5 and 6. Call `spawned()` once the child has them (the parent's copy of the memfd is closed;
 * the mapping stays).
 */
export function processRing(
  o: PoolEndOptions,
  shm: NativeShm,
): { setup: RingSetup; stdio: [number, number, number]; spawned(): void; end: PoolRingEnd } {
  const memory = shm.create(2 * RING_BYTES);
  const toWorkerBell = shm.doorbell();
  const toPoolBell = shm.doorbell();
  const toWorker = ringOver(memory.buffer, 0, RING_BYTES);
  const toPool = ringOver(memory.buffer, RING_BYTES, RING_BYTES);
  let memfd: number | undefined = memory.fd;
  const closeMemfd = () => {
    if (memfd === undefined) return;
    shm.close(memfd);
    memfd = undefined;
  };
  const end = poolEnd(
    toWorker,
    toPool,
    () => shm.ring(toWorkerBell),
    (onRing) => shm.watch(toPoolBell, onRing),
    () => {
      closeMemfd();
      shm.close(toWorkerBell);
      shm.close(toPoolBell);
    },
    'bytes',
    o,
  );
  return {
    setup: { kind: 'process', bytes: RING_BYTES, spinUs: o.spinUs, fds: CHILD_FDS },
    stdio: [memory.fd, toWorkerBell, toPoolBell],
    spawned: closeMemfd,
    end,
  };
}

/** The worker's side: opens what `setup` describes and feeds the runtime. */
export function workerRing(
  setup: RingSetup,
  onMessage: (msg: ToWorker) => void,
  postBell: (() => void) | undefined,
): { post(msg: FromWorker, maxBytes?: number): boolean; wake(): void } {
  let toWorker: RingMemory;
  let toPool: RingMemory;
  let ringPool: () => void;
  let watchWorker: ((onRing: () => void) => DoorbellWatch) | undefined;
  if (setup.kind === 'thread') {
    toWorker = ringOver(setup.toWorker, 0, setup.bytes);
    toPool = ringOver(setup.toPool, 0, setup.bytes);
    const bells = setup.bells;
    const shm = nativeShm;
    if (bells && !shm)
      throw new Error('isolane: the pool rings eventfd doorbells but the native addon does not load here');
    if (bells && shm) {
      ringPool = () => shm.ring(bells.toPool);
      watchWorker = (onRing) => shm.watch(bells.toWorker, onRing);
    } else {
      if (!postBell) throw new Error('isolane: a ring without doorbells needs a port to ring');
      ringPool = postBell;
    }
  } else {
    const shm = nativeShm;
    if (!shm)
      throw new Error('isolane: the ring channel needs the native addon, which does not load in the worker');
    const memory = shm.open(setup.fds.memory, 2 * setup.bytes);
    shm.close(setup.fds.memory);
    toWorker = ringOver(memory, 0, setup.bytes);
    toPool = ringOver(memory, setup.bytes, setup.bytes);
    ringPool = () => shm.ring(setup.fds.toPool);
    watchWorker = (onRing) => shm.watch(setup.fds.toWorker, onRing);
  }
  const channel = new RingChannel<ToWorker>({
    outgoing: toPool,
    incoming: toWorker,
    ringPeer: ringPool,
    decode: decodeToWorker,
    onMessage,
    onBroken: (error) => {
      // The pool's side is trusted: a broken ring here is a bug, and this worker cannot go on.
      process.nextTick(() => {
        throw error;
      });
    },
    spinUs: setup.spinUs,
    views: setup.kind === 'thread' ? 'exact' : 'bytes',
    ...cpuOps(),
  });
  watchWorker?.(() => channel.wake());
  return { post: (msg, maxBytes) => channel.post(msg, maxBytes), wake: () => channel.wake() };
}
