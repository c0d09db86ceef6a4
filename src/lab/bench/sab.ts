/**
 * Shared-memory transports between two threads: a ping-pong cell and a single-producer,
 * single-consumer ring, each either busy-polling or sleeping in Atomics.wait (woken by notify).
 * The main side blocks its event loop while it measures; that is the point of the experiment.
 */
import { performance } from 'node:perf_hooks';
import type { Size } from './messages.js';

const PING = 0;
const PONG = 1;
const STOP = 2;
const HEAD = 3;
const TAIL = 4;
const END = 5;
const FINAL = 6;
const CTRL_INTS = 8;
export const RING_SLOTS = 1024;

export interface SabPeerData {
  ctrl: SharedArrayBuffer;
  data: SharedArrayBuffer;
  slotBytes: number;
  sleep: boolean;
  phase: 'pingpong' | 'stream';
  /** A peer that may outlive its caller (another process) gives up after this long. */
  maxMs?: number;
}

export function ctrlBytes(): number {
  return CTRL_INTS * 4;
}

export function dataBytes(size: Size): number {
  return slotBytes(size) * Math.max(2, RING_SLOTS);
}

export function slotBytes(size: Size): number {
  return size === '4k' ? 4096 : 4;
}

export function createSab(size: Size, sleep: boolean, phase: SabPeerData['phase']): SabPeerData {
  return {
    ctrl: new SharedArrayBuffer(ctrlBytes()),
    data: new SharedArrayBuffer(dataBytes(size)),
    slotBytes: slotBytes(size),
    sleep,
    phase,
  };
}

/** Runs in the worker thread until the main side sets STOP (ping-pong) or ends the stream. */
export class SabPeer {
  private readonly ctrl: Int32Array;
  private readonly data: Uint8Array;
  private readonly local: Uint8Array;
  private readonly deadline: number;
  private spins = 0;

  constructor(private readonly d: SabPeerData) {
    this.ctrl = new Int32Array(d.ctrl);
    this.data = new Uint8Array(d.data);
    this.local = new Uint8Array(d.slotBytes);
    this.deadline = d.maxMs === undefined ? Number.POSITIVE_INFINITY : performance.now() + d.maxMs;
  }

  /** Checked now and then while waiting: past the deadline, the caller is presumed gone. */
  private expired(): boolean {
    return (++this.spins & 0xfff) === 0 && performance.now() > this.deadline;
  }

  run(): void {
    if (this.d.phase === 'pingpong') this.echo();
    else this.consume();
  }

  private echo(): void {
    const { ctrl, data, local } = this;
    const slot = this.d.slotBytes;
    let last = 0;
    for (;;) {
      let seq = Atomics.load(ctrl, PING);
      while (seq === last) {
        if (Atomics.load(ctrl, STOP) || this.expired()) return;
        if (this.d.sleep) Atomics.wait(ctrl, PING, last, 100);
        seq = Atomics.load(ctrl, PING);
      }
      last = seq;
      local.set(data.subarray(0, slot));
      data.set(local, slot);
      Atomics.store(ctrl, PONG, seq);
      if (this.d.sleep) Atomics.notify(ctrl, PONG);
    }
  }

  private consume(): void {
    const { ctrl, data, local } = this;
    const slot = this.d.slotBytes;
    let tail = 0;
    let checksum = 0;
    for (;;) {
      const head = Atomics.load(ctrl, HEAD);
      if (head === tail) {
        if ((Atomics.load(ctrl, END) && tail >= Atomics.load(ctrl, FINAL)) || this.expired()) break;
        if (this.d.sleep) Atomics.wait(ctrl, HEAD, tail, 100);
        continue;
      }
      for (; tail < head; tail++) {
        const offset = (tail % RING_SLOTS) * slot;
        local.set(data.subarray(offset, offset + slot));
        checksum ^= local[0]!;
      }
      Atomics.store(ctrl, TAIL, tail);
      if (this.d.sleep) Atomics.notify(ctrl, TAIL);
    }
    Atomics.store(ctrl, PONG, checksum | 1);
  }
}

/** How long the caller waits for a peer that stopped answering (it died) before it gives up. */
const PEER_SILENCE_MS = 10_000;

function giveUpIfSilent(since: number): void {
  if (performance.now() - since > PEER_SILENCE_MS) {
    throw new Error(`the shared-memory peer stopped answering for ${PEER_SILENCE_MS / 1000} s`);
  }
}

/** The main side of the ping-pong cell. */
export class SabPinger {
  private readonly ctrl: Int32Array;
  private readonly data: Uint8Array;
  private readonly message: Uint8Array;
  private readonly reply: Uint8Array;
  private seq = 0;
  private since = performance.now();

  constructor(private readonly d: SabPeerData) {
    this.ctrl = new Int32Array(d.ctrl);
    this.data = new Uint8Array(d.data);
    this.message = new Uint8Array(d.slotBytes).fill(7);
    this.reply = new Uint8Array(d.slotBytes);
  }

  roundTrip(): void {
    const { ctrl, d } = this;
    const seq = ++this.seq;
    this.data.set(this.message, 0);
    Atomics.store(ctrl, PING, seq);
    if (d.sleep) Atomics.notify(ctrl, PING);
    let spins = 0;
    for (let got = Atomics.load(ctrl, PONG); got !== seq; got = Atomics.load(ctrl, PONG)) {
      if (d.sleep) Atomics.wait(ctrl, PONG, got, 1_000);
      if ((++spins & 0xffff) === 0) giveUpIfSilent(this.since);
    }
    this.since = performance.now();
    this.reply.set(this.data.subarray(d.slotBytes, 2 * d.slotBytes));
  }

  stop(): void {
    Atomics.store(this.ctrl, STOP, 1);
    Atomics.notify(this.ctrl, PING);
  }
}

/** The producer side of the ring: streams for `durationMs`, publishing every `batch` messages. */
export function produce(
  d: SabPeerData,
  durationMs: number,
  batch: number,
): { messages: number; elapsedMs: number } {
  const ctrl = new Int32Array(d.ctrl);
  const data = new Uint8Array(d.data);
  const message = new Uint8Array(d.slotBytes).fill(9);
  const slot = d.slotBytes;
  const started = performance.now();
  const deadline = started + durationMs;
  let head = 0;
  let spins = 0;
  for (;;) {
    if ((head & 1023) === 0 && performance.now() >= deadline) break;
    for (let tail = Atomics.load(ctrl, TAIL); head - tail >= RING_SLOTS; tail = Atomics.load(ctrl, TAIL)) {
      if (d.sleep) Atomics.wait(ctrl, TAIL, tail, 1_000);
      if ((++spins & 0xffff) === 0) giveUpIfSilent(deadline);
    }
    data.set(message, (head % RING_SLOTS) * slot);
    head++;
    if (head % batch === 0) {
      Atomics.store(ctrl, HEAD, head);
      if (d.sleep) Atomics.notify(ctrl, HEAD);
    }
  }
  Atomics.store(ctrl, HEAD, head);
  Atomics.store(ctrl, FINAL, head);
  Atomics.store(ctrl, END, 1);
  Atomics.notify(ctrl, HEAD);
  const ended = performance.now();
  for (let tail = Atomics.load(ctrl, TAIL); tail < head; tail = Atomics.load(ctrl, TAIL)) {
    if (d.sleep) Atomics.wait(ctrl, TAIL, tail, 1_000);
    if ((++spins & 0xffff) === 0) giveUpIfSilent(ended);
  }
  return { messages: head, elapsedMs: performance.now() - started };
}
