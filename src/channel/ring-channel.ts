/**
 * One side of a duplex channel made of two shared-memory rings (one each way) and a doorbell each.
 *
 * Neither side ever blocks its event loop. After it has sent or received something, a side polls
 * its incoming ring on every turn of its event loop (setImmediate) for `spinUs`, so that a reply
 * arriving within microseconds is read within microseconds and costs no wake-up; then it raises its
 * sleeping flag and waits for its doorbell, which the other side rings only when it sees the flag.
 * Timers, I/O and promises keep running throughout, on both sides.
 *
 * A side learns how long replies take: when they keep arriving only after it has gone to sleep, it
 * stops polling after a send (a worker busy with millisecond tasks is not polled for nothing), and
 * starts again as soon as a reply comes quicker than the polling window.
 */
import { performance } from 'node:perf_hooks';
import type { ViewMode } from './clone.js';
import { CONSUMER_SLEEPING, READER_CPU, type RingMemory, RingReader, RingWriter } from './ring.js';
import { FrameEncoder } from './ring-codec.js';

export interface RingChannelOptions<In> {
  /** The ring this side writes, and the one it reads. */
  outgoing: RingMemory;
  incoming: RingMemory;
  /** Rings the other side's doorbell. Called only when the other side sleeps or waits for space. */
  ringPeer: () => void;
  /** Turns a frame into a message; throws on a malformed one. */
  decode: (frame: Uint8Array) => In;
  onMessage: (msg: In) => void;
  /** The other side broke the protocol (a corrupt ring or frame): the channel is closed. */
  onBroken: (error: Error) => void;
  /** How long to keep polling after activity, in microseconds; 0 polls only once, then sleeps. */
  spinUs: number;
  /**
   * Where this thread runs, and how to give the core away for a moment (sched_getcpu and
   * sched_yield, native addon). With them, a side that polls in vain while the other side is on the
   * same core yields to it: polling would otherwise keep it from running until the time slice ends.
   */
  cpu?: { current: () => number; yield: () => void };
  /**
   * Whether anything sent is still unanswered. Given, a side polls only while it is: the pool,
   * which knows its tasks, stops polling as soon as every reply is in. A worker cannot know when
   * the next task comes, so it polls for `spinUs` after its last activity.
   */
  awaitingReply?: () => boolean;
  /** How typed arrays must arrive: as postMessage (`'exact'`) or Node's IPC (`'bytes'`) delivers them. */
  views?: ViewMode;
}

/** Polls every spinning channel of this thread, once per turn of the event loop. */
const spinning = new Set<RingChannel<unknown>>();
let scheduled = false;

function pollAll(): void {
  scheduled = false;
  const now = performance.now();
  for (const channel of spinning) {
    if (!channel.poll(now)) spinning.delete(channel);
  }
  if (spinning.size > 0) schedule();
}

function schedule(): void {
  if (scheduled) return;
  scheduled = true;
  setImmediate(pollAll);
}

/**
 * Frames handled per turn of the event loop. One: what a frame sets off (promises settled, the
 * tasks they submit, the batch those make) goes out before the next frame is read, so that the two
 * sides overlap instead of taking turns, one reading everything while the other waits.
 */
const FRAMES_PER_TURN = 1;

/** Replies slower than this many polling windows (smoothed) stop the polling after a send. */
const SLOW_REPLY_WINDOWS = 10;

export class RingChannel<In> {
  private readonly writer: RingWriter;
  private readonly reader: RingReader;
  private readonly encoder: FrameEncoder;
  private readonly spinMs: number;
  private lastActivity = 0;
  private closed = false;
  /** When the last send went out with nothing received since (for the reply-time estimate). */
  private sentAt: number | undefined;
  /** Smoothed time from a send to the first frame back, ms. */
  private replyMs = 0;

  constructor(private readonly options: RingChannelOptions<In>) {
    this.spinMs = options.spinUs / 1000;
    this.encoder = new FrameEncoder(options.views ?? 'exact');
    this.writer = new RingWriter(options.outgoing, options.ringPeer);
    this.reader = new RingReader(options.incoming, (frame) => this.deliver(frame), options.ringPeer);
    // Start asleep: the flag is up, so the first frame the other side writes rings the doorbell.
    this.sleep();
  }

  /**
   * Sends a message, unless its frame would be larger than `maxBytes`: then nothing is sent and
   * the answer is false (the caller may have a better way for it). Throws, like postMessage, if a
   * value cannot be cloned; then nothing was sent.
   */
  post(msg: unknown, maxBytes = Number.POSITIVE_INFINITY): boolean {
    if (this.closed) return true;
    const frame = this.encoder.encodeSegments(msg as never);
    if (maxBytes !== Number.POSITIVE_INFINITY) {
      let bytes = 0;
      for (const piece of frame) bytes += piece.length;
      if (bytes > maxBytes) return false;
    }
    try {
      this.writer.sendv(frame);
    } catch (error) {
      this.broken(error as Error);
      return true;
    }
    const now = performance.now();
    this.sentAt ??= now;
    if (this.replyMs < SLOW_REPLY_WINDOWS * this.spinMs) this.spin(now);
    return true;
  }

  /** The doorbell rang: read what came, write what waited for space, and poll for a while. */
  wake(): void {
    if (this.closed) return;
    const now = performance.now();
    if (this.poll(now)) {
      spinning.add(this as RingChannel<unknown>);
      schedule();
    }
  }

  /** Reads every complete frame already in the ring (e.g. what a worker wrote just before it died). */
  drainNow(): void {
    if (this.closed) return;
    try {
      // Bounded: the writer is gone, so the ring empties; a frame it left half-written is dropped.
      for (let i = 0; i < 64 && this.reader.hasData() && !this.closed; i++) this.reader.drain();
    } catch (error) {
      this.broken(error as Error);
    }
  }

  /** Bytes written but still waiting for space in the ring. */
  get pendingBytes(): number {
    return this.writer.pendingBytes;
  }

  close(): void {
    this.closed = true;
    spinning.delete(this as RingChannel<unknown>);
  }

  /** One turn: read, write what is pending, and say whether to keep polling. */
  poll(now: number): boolean {
    if (this.closed) return false;
    try {
      if (this.reader.hasData()) {
        this.reader.drain(FRAMES_PER_TURN);
        this.lastActivity = now;
      }
      if (this.writer.pendingBytes > 0) this.writer.flush();
      if (this.closed) return false;
      if (this.reader.hasData()) return true;
      if (now - this.lastActivity < this.spinMs && this.options.awaitingReply?.() !== false) {
        this.yieldIfSharingCore();
        return true;
      }
      return !this.sleep();
    } catch (error) {
      this.broken(error as Error);
      return false;
    }
  }

  /** Publishes this side's CPU; yields when the other side last polled from the same one. */
  private yieldIfSharingCore(): void {
    const cpu = this.options.cpu;
    if (!cpu) return;
    const mine = cpu.current() + 1;
    Atomics.store(this.options.incoming.header, READER_CPU, mine);
    if (mine > 0 && Atomics.load(this.options.outgoing.header, READER_CPU) === mine) cpu.yield();
  }

  private spin(now: number): void {
    this.lastActivity = now;
    // Awake now: the other side need not ring while we poll.
    Atomics.store(this.options.incoming.header, CONSUMER_SLEEPING, 0);
    spinning.add(this as RingChannel<unknown>);
    schedule();
  }

  /** Raises the sleeping flag unless data arrived meanwhile; true if now asleep. */
  private sleep(): boolean {
    return this.reader.prepareToSleep() !== undefined;
  }

  private deliver(frame: Uint8Array): void {
    if (this.closed) return;
    if (this.sentAt !== undefined) {
      const took = performance.now() - this.sentAt;
      this.replyMs += 0.25 * (took - this.replyMs);
      this.sentAt = undefined;
    }
    // A frame that does not decode is the other side's fault: it throws out of drain() into broken().
    const msg = this.options.decode(frame);
    this.options.onMessage(msg);
  }

  private broken(error: Error): void {
    if (this.closed) return;
    this.close();
    this.options.onBroken(error);
  }
}
