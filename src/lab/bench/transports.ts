/** Every transport the communication-tax lab measures, behind one `measure` function each. */
import { fork } from 'node:child_process';
import { once } from 'node:events';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { nativeLoadError, nativeShm } from '../../channel/native.js';
import { createPool } from '../../index.js';
import { pin, unpin } from '../affinity.js';
import { currentTid, lastCpu, processCpuNs } from '../cpu.js';
import { percentile } from '../math.js';
import { ipcLink, type Link, pipeLink, postMessageLink, socketLink } from './links.js';
import { linkIdleRoundTrips, linkRoundTrips, linkStream } from './measure.js';
import { messageBytes, type Size } from './messages.js';
import { createSab, ctrlBytes, dataBytes, produce, type SabPeerData, SabPinger, slotBytes } from './sab.js';

export type TransportKind = 'in-thread' | 'thread' | 'process' | 'pool';
export type CorePlacement = 'cross' | 'same' | 'free';

export interface Plan {
  rttMs: number;
  streamMs: number;
  idleCount: number;
  idleGapMs: number;
  batch: number;
  cores: CorePlacement;
}

export interface Throughput {
  /** Messages per send. */
  batch: number;
  messagesPerSec: number;
  /** CPU time of both ends per message, µs. */
  cpuUsPerMessage: number;
}

export interface TransportResult {
  transport: string;
  kind: TransportKind;
  size: Size;
  bytes: number;
  rtt: { p50Us: number; p99Us: number; samples: number; block: number };
  /** Round trip after the receiver sat idle (it has to be woken). */
  idleRtt: { p50Us: number; samples: number } | null;
  oneWay: Throughput[];
  cores: { placement: CorePlacement; caller?: number; peer?: number; sameCore?: boolean };
}

export interface Transport {
  id: string;
  kind: TransportKind;
  description: string;
  measure(size: Size, plan: Plan): Promise<TransportResult>;
}

const mainTid = currentTid();

function cpusFor(plan: Plan): { caller: number; peer: number } | undefined {
  if (plan.cores === 'free' || cpus().length < (plan.cores === 'cross' ? 2 : 1)) return undefined;
  return { caller: 0, peer: plan.cores === 'cross' ? 1 : 0 };
}

function summarize(samplesUs: number[], block: number): TransportResult['rtt'] {
  return {
    p50Us: percentile(samplesUs, 50),
    p99Us: percentile(samplesUs, 99),
    samples: samplesUs.length,
    block,
  };
}

function placement(plan: Plan, peerTid: number | undefined): TransportResult['cores'] {
  const caller = lastCpu(mainTid);
  const peer = peerTid === undefined ? undefined : lastCpu(peerTid);
  return {
    placement: plan.cores,
    ...(caller !== undefined ? { caller } : {}),
    ...(peer !== undefined ? { peer } : {}),
    ...(caller !== undefined && peer !== undefined ? { sameCore: caller === peer } : {}),
  };
}

/** Times `fn` over blocks of calls, so that the clock's own cost does not swamp nanosecond round trips. */
async function blockedSamples(
  fn: () => unknown,
  durationMs: number,
  blockNs = 20_000,
): Promise<{ samplesUs: number[]; block: number }> {
  let block = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < block; i++) await fn();
    if ((performance.now() - t0) * 1e6 >= blockNs || block >= 1 << 24) break;
    block *= 2;
  }
  const samplesUs: number[] = [];
  const deadline = performance.now() + durationMs;
  while (performance.now() < deadline && samplesUs.length < 100_000) {
    const t0 = performance.now();
    for (let i = 0; i < block; i++) await fn();
    samplesUs.push(((performance.now() - t0) * 1000) / block);
  }
  return { samplesUs, block };
}

function blockedSamplesSync(
  fn: () => void,
  durationMs: number,
  blockNs = 20_000,
): { samplesUs: number[]; block: number } {
  let block = 1;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < block; i++) fn();
    if ((performance.now() - t0) * 1e6 >= blockNs || block >= 1 << 24) break;
    block *= 2;
  }
  const samplesUs: number[] = [];
  const deadline = performance.now() + durationMs;
  while (performance.now() < deadline && samplesUs.length < 100_000) {
    const t0 = performance.now();
    for (let i = 0; i < block; i++) fn();
    samplesUs.push(((performance.now() - t0) * 1000) / block);
  }
  return { samplesUs, block };
}

function inThreadThroughput(rtt: TransportResult['rtt']): Throughput[] {
  // In one thread a "message" is the call itself: its rate is 1/latency, its CPU is its latency.
  return [{ batch: 1, messagesPerSec: 1e6 / rtt.p50Us, cpuUsPerMessage: rtt.p50Us }];
}

let sink = 0;
function direct(x: number): number {
  return x + 1;
}

const directCall: Transport = {
  id: 'direct',
  kind: 'in-thread',
  description: 'a function call in the same thread',
  async measure(size, plan) {
    const cpus = cpusFor(plan);
    if (cpus) pin(mainTid, cpus.caller);
    const obj = size === '4k' ? { p: 'x'.repeat(4072) } : undefined;
    const { samplesUs, block } = blockedSamplesSync(() => {
      sink = direct(sink) + (obj ? obj.p.length & 1 : 0);
    }, plan.rttMs);
    const rtt = summarize(samplesUs, block);
    return {
      transport: 'direct',
      kind: 'in-thread',
      size,
      bytes: messageBytes(size),
      rtt,
      idleRtt: null,
      oneWay: inThreadThroughput(rtt),
      cores: placement(plan, undefined),
    };
  },
};

const microtask: Transport = {
  id: 'microtask',
  kind: 'in-thread',
  description: 'a hop through the microtask queue (await of a resolved promise)',
  async measure(size, plan) {
    const value = size === '4k' ? { p: 'x'.repeat(4072) } : 1;
    const { samplesUs, block } = await blockedSamples(() => Promise.resolve(value), plan.rttMs);
    const rtt = summarize(samplesUs, block);
    return {
      transport: 'microtask',
      kind: 'in-thread',
      size,
      bytes: messageBytes(size),
      rtt,
      idleRtt: null,
      oneWay: inThreadThroughput(rtt),
      cores: placement(plan, undefined),
    };
  },
};

function linkTransport(
  id: string,
  kind: 'thread' | 'process',
  description: string,
  open: () => Promise<Link>,
): Transport {
  return {
    id,
    kind,
    description,
    async measure(size, plan) {
      const link = await open();
      const cpus = cpusFor(plan);
      const peerId = link.peer.tid ?? link.peer.pid;
      try {
        if (cpus) {
          pin(mainTid, cpus.caller);
          if (peerId !== undefined) pin(peerId, cpus.peer, link.peer.pid !== undefined);
        }
        await linkRoundTrips(link, size, Math.min(100, plan.rttMs / 4)); // warm-up
        const { samplesUs } = await linkRoundTrips(link, size, plan.rttMs);
        const idle = await linkIdleRoundTrips(link, size, plan.idleCount, plan.idleGapMs);
        const window = size === '4k' ? 2_048 : 8_192;
        const oneWay: Throughput[] = [];
        for (const batch of [1, plan.batch]) {
          const r = await linkStream(link, size, plan.streamMs, batch, window);
          oneWay.push({
            batch,
            messagesPerSec: r.messages / (r.elapsedMs / 1000),
            cpuUsPerMessage: r.cpuNs / 1000 / r.messages,
          });
        }
        return {
          transport: id,
          kind,
          size,
          bytes: messageBytes(size),
          rtt: summarize(samplesUs, 1),
          idleRtt: { p50Us: percentile(idle, 50), samples: idle.length },
          oneWay,
          cores: placement(plan, link.peer.tid ?? link.peer.pid),
        };
      } finally {
        await link.close();
      }
    },
  };
}

const SAB_PEER = new URL('./peer-thread.js', import.meta.url);

async function sabWorker(data: ReturnType<typeof createSab>): Promise<{ worker: Worker; tid: number }> {
  const worker = new Worker(SAB_PEER, { workerData: { mode: 'sab', ...data } });
  const [{ tid }] = (await once(worker, 'message')) as [{ tid: number }];
  return { worker, tid };
}

/** A started shared-memory peer: the cell it shares, where it runs, and how to stop it. */
interface SharedMemoryPeer {
  cell: SabPeerData;
  /** The thread (or, with `process`, the process) to pin and to read the placement of. */
  id: number;
  /** A peer process: pinned with all its threads, and its CPU counted besides this process's. */
  process: boolean;
  stop(): Promise<unknown>;
}

/**
 * A shared-memory transport, measured the same way whoever is at the far end: ping-pong on the
 * control cell, then one way through the ring, one and `plan.batch` messages per publish.
 */
function sharedMemoryTransport(
  id: string,
  kind: 'thread' | 'process',
  description: string,
  start: (size: Size, phase: SabPeerData['phase']) => Promise<SharedMemoryPeer>,
): Transport {
  return {
    id,
    kind,
    description,
    async measure(size, plan) {
      const cpus = cpusFor(plan);
      if (cpus) pin(mainTid, cpus.caller);
      const place = (peer: SharedMemoryPeer) => {
        if (cpus) pin(peer.id, cpus.peer, peer.process);
      };
      const cpuNs = (peer: SharedMemoryPeer) =>
        processCpuNs('self') + (peer.process ? processCpuNs(peer.id) : 0);
      let rtt: TransportResult['rtt'];
      const idle: number[] = [];
      let cores: TransportResult['cores'];
      const ping = await start(size, 'pingpong');
      try {
        place(ping);
        const pinger = new SabPinger(ping.cell);
        blockedSamplesSync(() => pinger.roundTrip(), Math.min(100, plan.rttMs / 4)); // warm-up
        const s = blockedSamplesSync(() => pinger.roundTrip(), plan.rttMs, 2_000);
        rtt = summarize(s.samplesUs, s.block);
        for (let i = 0; i < plan.idleCount; i++) {
          await new Promise((r) => setTimeout(r, plan.idleGapMs));
          const t0 = performance.now();
          pinger.roundTrip();
          idle.push((performance.now() - t0) * 1000);
        }
        cores = placement(plan, ping.id);
        pinger.stop();
      } finally {
        await ping.stop();
      }
      const oneWay: Throughput[] = [];
      for (const batch of [1, plan.batch]) {
        const peer = await start(size, 'stream');
        try {
          place(peer);
          const cpu0 = cpuNs(peer);
          const r = produce(peer.cell, plan.streamMs, batch);
          oneWay.push({
            batch,
            messagesPerSec: r.messages / (r.elapsedMs / 1000),
            cpuUsPerMessage: (cpuNs(peer) - cpu0) / 1000 / r.messages,
          });
        } finally {
          await peer.stop();
        }
      }
      return {
        transport: id,
        kind,
        size,
        bytes: slotBytes(size),
        rtt,
        idleRtt: idle.length ? { p50Us: percentile(idle, 50), samples: idle.length } : null,
        oneWay,
        cores,
      };
    },
  };
}

function sabTransport(id: string, sleep: boolean, description: string): Transport {
  return sharedMemoryTransport(id, 'thread', description, async (size, phase) => {
    const cell = createSab(size, sleep, phase);
    const { worker, tid } = await sabWorker(cell);
    return { cell, id: tid, process: false, stop: () => worker.terminate() };
  });
}

const SHM_PEER = new URL('./peer-shm.js', import.meta.url);
/** A shared-memory peer process gives up after this long, in case this process dies first. */
const SHM_PEER_MAX_MS = 60_000;

/**
 * A child process sharing memory with this one (two memfds: the control cell and the data area),
 * running the same busy-polling peer as the thread transport. Resolves once it is polling.
 */
async function shmPeer(size: Size, phase: SabPeerData['phase']) {
  const shm = nativeShm;
  if (!shm) throw new Error(`the native addon did not load: ${nativeLoadError?.message}`);
  const ctrl = shm.create(ctrlBytes());
  const data = shm.create(dataBytes(size));
  const options = {
    slotBytes: slotBytes(size),
    phase,
    ctrlBytes: ctrlBytes(),
    dataBytes: dataBytes(size),
    maxMs: SHM_PEER_MAX_MS,
  };
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--test'));
  const child = fork(SHM_PEER, [JSON.stringify(options)], {
    execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc', ctrl.fd, data.fd],
  });
  shm.close(ctrl.fd);
  shm.close(data.fd);
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = once(child, 'exit');
      child.kill('SIGKILL');
      await gone;
    }
  };
  try {
    const [{ pid }] = (await once(child, 'message')) as [{ pid: number }];
    const cell: SabPeerData = {
      ctrl: ctrl.buffer,
      data: data.buffer,
      slotBytes: slotBytes(size),
      sleep: false,
      phase,
    };
    return { cell, pid, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

const shmTransport = sharedMemoryTransport(
  'shm-poll',
  'process',
  'shared memory between two processes (memfd mapped by both, native addon), both ends spin',
  async (size, phase) => {
    const peer = await shmPeer(size, phase);
    return { cell: peer.cell, id: peer.pid, process: true, stop: peer.stop };
  },
);

const POOL_HANDLERS = new URL('./pool-handlers.js', import.meta.url);

function poolTransport(
  isolation: 'inline' | 'thread' | 'process',
  channel: 'message' | 'ring' = 'message',
): Transport {
  const id = channel === 'ring' ? `pool-${isolation}-ring` : `pool-${isolation}`;
  const over =
    isolation === 'inline'
      ? 'direct calls'
      : channel === 'ring'
        ? isolation === 'thread'
          ? 'shared-memory rings'
          : 'shared-memory rings over memfd (native addon)'
        : isolation === 'thread'
          ? 'postMessage'
          : 'the IPC channel';
  return {
    id,
    kind: 'pool',
    description: `isolane's own ${isolation} tier over ${over}, end to end (pool.run of an echo handler)`,
    async measure(size, plan) {
      const cpus = cpusFor(plan);
      const input = size === '4k' ? { p: 'x'.repeat(4072) } : 1;
      const sequential = createPool({ handlers: POOL_HANDLERS, isolation, channel, workers: 1 });
      let rtt: TransportResult['rtt'];
      const idle: number[] = [];
      let cores: TransportResult['cores'];
      try {
        await sequential.ready();
        const worker = sequential.stats().workers[0]!;
        const peerId = worker.pid ?? (isolation === 'thread' ? await sequential.run('tid', null) : undefined);
        if (cpus) {
          pin(mainTid, cpus.caller);
          if (typeof peerId === 'number') pin(peerId, cpus.peer, worker.pid !== undefined);
        }
        const run = () => sequential.run('echo', input);
        await blockedSamples(run, Math.min(100, plan.rttMs / 4));
        const s = await blockedSamples(run, plan.rttMs, isolation === 'inline' ? 20_000 : 1);
        rtt = summarize(s.samplesUs, s.block);
        if (isolation !== 'inline') {
          for (let i = 0; i < plan.idleCount; i++) {
            await new Promise((r) => setTimeout(r, plan.idleGapMs));
            const t0 = performance.now();
            await run();
            idle.push((performance.now() - t0) * 1000);
          }
        }
        cores = placement(plan, typeof peerId === 'number' ? peerId : undefined);
      } finally {
        await sequential.destroy();
      }
      const oneWay: Throughput[] = [];
      for (const concurrency of [1, plan.batch]) {
        const pool = createPool({ handlers: POOL_HANDLERS, isolation, channel, workers: 1, concurrency });
        try {
          await pool.ready();
          const pid = pool.stats().workers[0]!.pid;
          // A worker thread starts with its creator's affinity (the caller's core): move it to the peer's.
          const tid = isolation === 'thread' ? ((await pool.run('tid', null)) as number) : undefined;
          if (cpus && pid) pin(pid, cpus.peer, true);
          if (cpus && tid) pin(tid, cpus.peer);
          const cpu0 = processCpuNs('self') + (pid ? processCpuNs(pid) : 0);
          const t0 = performance.now();
          const deadline = t0 + plan.streamMs;
          let done = 0;
          const outstanding = Math.max(concurrency * 4, 64);
          await new Promise<void>((resolve, reject) => {
            let inFlight = 0;
            const next = () => {
              while (inFlight < outstanding && performance.now() < deadline) {
                inFlight++;
                pool.run('echo', input).then(() => {
                  inFlight--;
                  done++;
                  if (performance.now() < deadline) next();
                  else if (inFlight === 0) resolve();
                }, reject);
              }
              if (inFlight === 0) resolve();
            };
            next();
          });
          const elapsedMs = performance.now() - t0;
          const cpuNs = processCpuNs('self') + (pid ? processCpuNs(pid) : 0) - cpu0;
          oneWay.push({
            batch: concurrency,
            messagesPerSec: done / (elapsedMs / 1000),
            cpuUsPerMessage: cpuNs / 1000 / done,
          });
        } finally {
          await pool.destroy();
        }
      }
      return {
        transport: id,
        kind: 'pool',
        size,
        bytes: messageBytes(size),
        rtt,
        idleRtt: idle.length ? { p50Us: percentile(idle, 50), samples: idle.length } : null,
        oneWay,
        cores,
      };
    },
  };
}

export const TRANSPORTS: readonly Transport[] = [
  directCall,
  microtask,
  linkTransport('postMessage', 'thread', 'worker_threads postMessage (structured clone)', postMessageLink),
  sabTransport(
    'atomics-wait',
    true,
    'SharedArrayBuffer, receiver sleeps in Atomics.wait and is woken by Atomics.notify',
  ),
  sabTransport(
    'busy-poll',
    false,
    'SharedArrayBuffer, both ends spin on Atomics.load (no sleeping, no wake-up)',
  ),
  linkTransport('ipc-json', 'process', 'child_process.fork IPC, json serialization', () => ipcLink('json')),
  linkTransport(
    'ipc-advanced',
    'process',
    'child_process.fork IPC, advanced (structured clone) serialization',
    () => ipcLink('advanced'),
  ),
  linkTransport('unix', 'process', 'Unix domain socket, newline-delimited JSON', () => socketLink('unix')),
  linkTransport('tcp', 'process', 'TCP on 127.0.0.1, newline-delimited JSON, Nagle off', () =>
    socketLink('tcp'),
  ),
  linkTransport('pipe', 'process', "the child's stdin/stdout pipes, newline-delimited JSON", pipeLink),
  shmTransport,
  poolTransport('inline'),
  poolTransport('thread'),
  poolTransport('thread', 'ring'),
  poolTransport('process'),
  poolTransport('process', 'ring'),
];

export function restoreAffinity(): void {
  unpin(mainTid);
}

export { sink as _sink };
