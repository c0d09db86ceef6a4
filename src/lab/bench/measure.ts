import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { processCpuNs } from '../cpu.js';
import type { Link } from './links.js';
import { ACK_EVERY, type Msg, payload, type Size } from './messages.js';

/** Round-trip samples in microseconds, each the mean over a block of `block` round trips. */
export interface RttSamples {
  samplesUs: number[];
  block: number;
}

export interface StreamResult {
  messages: number;
  elapsedMs: number;
  /** CPU of both ends: this process (all threads) plus the peer process, if there is one. */
  cpuNs: number;
}

/** Ping-pong over a link until `durationMs` has passed (or `maxSamples` were taken). */
export async function linkRoundTrips(
  link: Link,
  size: Size,
  durationMs: number,
  maxSamples = 100_000,
): Promise<RttSamples> {
  const p = payload(size);
  let waiting: (() => void) | undefined;
  link.onMessage = (m: Msg) => {
    if (m.k === 'pong') waiting?.();
  };
  const ping = (i: number) =>
    new Promise<void>((resolve) => {
      waiting = resolve;
      link.send([p === undefined ? { k: 'ping', i } : { k: 'ping', i, p }]);
    });
  const samplesUs: number[] = [];
  const deadline = performance.now() + durationMs;
  for (let i = 0; samplesUs.length < maxSamples && performance.now() < deadline; i++) {
    const t0 = performance.now();
    await ping(i);
    samplesUs.push((performance.now() - t0) * 1000);
  }
  return { samplesUs, block: 1 };
}

/** Round trips after the peer has been idle for `gapMs`: each one has to wake a sleeping receiver. */
export async function linkIdleRoundTrips(
  link: Link,
  size: Size,
  count: number,
  gapMs: number,
): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    await sleep(gapMs);
    const { samplesUs } = await linkRoundTrips(link, size, 1_000, 1);
    out.push(samplesUs[0]!);
  }
  return out;
}

/**
 * Streams messages one way for `durationMs`, `batch` per send, with flow control (the peer acks
 * every ACK_EVERY messages; at most `window` may be unacknowledged), then waits for the peer's count.
 */
export async function linkStream(
  link: Link,
  size: Size,
  durationMs: number,
  batch: number,
  window: number,
): Promise<StreamResult> {
  const p = payload(size);
  let acked = 0;
  let wake: (() => void) | undefined;
  let done: ((n: number) => void) | undefined;
  link.onMessage = (m: Msg) => {
    if (m.k === 'ack') {
      acked = m.n!;
      wake?.();
    } else if (m.k === 'done') done?.(m.n!);
  };
  link.send([{ k: 'start' }]);
  const msgs: Msg[] = Array.from({ length: batch }, (_, i) =>
    p === undefined ? { k: 'm', i } : { k: 'm', i, p },
  );
  const cpu0 = cpuOfBoth(link);
  const t0 = performance.now();
  const deadline = t0 + durationMs;
  let sent = 0;
  while (performance.now() < deadline) {
    while (sent - acked < window && performance.now() < deadline) {
      const ok = link.send(msgs);
      sent += batch;
      if (!ok) await link.drained();
    }
    await new Promise<void>((resolve) => {
      wake = resolve;
      if (sent - acked < window) resolve();
    });
  }
  const total = await new Promise<number>((resolve) => {
    done = resolve;
    link.send([{ k: 'end' }]);
  });
  const elapsedMs = performance.now() - t0;
  const cpuNs = cpuOfBoth(link) - cpu0;
  if (total !== sent) throw new Error(`the peer counted ${total} messages of ${sent} sent`);
  return { messages: total, elapsedMs, cpuNs };
}

export function cpuOfBoth(link: { peer: { pid?: number } }): number {
  return processCpuNs('self') + (link.peer.pid ? processCpuNs(link.peer.pid) : 0);
}

export { ACK_EVERY };
