/** What the communication-tax lab derives from its measurements: pure functions of the results. */
import {
  type ClaimCheck,
  checkThreshold,
  compareFigure,
  coreShare,
  crossoverRate,
  formatFactor,
} from '../math.js';
import type { Size } from './messages.js';
import type { Throughput, TransportResult } from './transports.js';

export const RATES = [1_000, 10_000, 100_000, 1_000_000] as const;

export interface CostAtRates {
  transport: string;
  size: Size;
  batch: number;
  cpuUsPerMessage: number;
  /** Share of one core (1 = 100%) at each of RATES. */
  shares: number[];
  /** Messages per second at which the communication alone takes 5% and 50% of a core. */
  fivePercentAt: number;
  fiftyPercentAt: number;
}

export function costAtRates(result: TransportResult, t: Throughput): CostAtRates {
  return {
    transport: result.transport,
    size: result.size,
    batch: t.batch,
    cpuUsPerMessage: t.cpuUsPerMessage,
    shares: RATES.map((r) => coreShare(t.cpuUsPerMessage, r)),
    fivePercentAt: crossoverRate(t.cpuUsPerMessage, 0.05),
    fiftyPercentAt: crossoverRate(t.cpuUsPerMessage, 0.5),
  };
}

export function allCosts(results: readonly TransportResult[]): CostAtRates[] {
  return results.filter((r) => r.kind !== 'in-thread').flatMap((r) => r.oneWay.map((t) => costAtRates(r, t)));
}

export interface ClaimResult extends ClaimCheck {
  id: string;
  claim: string;
  claimed: string;
  measured: string;
  why: string;
}

/** Each of the seed's claims with the measured figure beside it and a verdict. */
export function checkClaims(results: readonly TransportResult[]): ClaimResult[] {
  const find = (transport: string) => results.find((r) => r.transport === transport && r.size === 'tiny');
  const post = find('postMessage');
  const poll = find('busy-poll');
  const unix = find('unix');
  const shm = find('shm-poll');
  const out: ClaimResult[] = [];
  const us = (x: number) =>
    x >= 10 ? `${x.toFixed(0)} µs` : x >= 1 ? `${x.toFixed(1)} µs` : `${(x * 1000).toFixed(0)} ns`;
  const pct = (x: number) => `${(x * 100).toFixed(x < 0.1 ? 1 : 0)}% of a core`;
  const oneBySend = (r: TransportResult) => r.oneWay.find((t) => t.batch === 1)!;
  const batched = (r: TransportResult) => r.oneWay.reduce((a, b) => (b.batch > a.batch ? b : a));

  if (post) {
    const measured = post.rtt.p50Us / 2;
    out.push({
      id: 'thread-latency',
      claim: 'Threads communicate in about 100 ns',
      claimed: '0.1 µs one way',
      measured: `${us(measured)} one way (postMessage)${poll ? `; ${us(poll.rtt.p50Us / 2)} over busy-polled shared memory` : ''}`,
      ...compareFigure(0.1, measured),
      why: 'postMessage wakes a sleeping event loop on the other side; only polled shared memory, where nobody sleeps, talks in nanoseconds.',
    });
  }
  if (unix) {
    const measured = unix.rtt.p50Us / 2;
    out.push({
      id: 'process-latency',
      claim: 'Processes talk over sockets in about 5 µs',
      claimed: '5 µs one way',
      measured: `${us(measured)} one way (Unix socket)`,
      ...compareFigure(5, measured),
      why: 'most of a socket round trip is waking the receiver and the event loop around the syscalls, not the copy.',
    });
  }
  if (post && unix) {
    const ratio = unix.rtt.p50Us / post.rtt.p50Us;
    out.push({
      id: 'process-vs-thread',
      claim: 'Process communication is roughly 1000x slower than thread communication',
      claimed: '1000x',
      measured:
        `${formatFactor(ratio)} (Unix socket vs postMessage round trip)` +
        `${poll ? `; ${formatFactor(unix.rtt.p50Us / poll.rtt.p50Us)} vs busy-poll` : ''}` +
        `${shm && poll ? `; processes over polled shared memory ${formatFactor(shm.rtt.p50Us / poll.rtt.p50Us)} threads over it` : ''}`,
      ...compareFigure(1000, ratio),
      why: 'both pay the same wake-up of a sleeping receiver; the divide is sleeping versus polling, not thread versus process.',
    });
  }
  if (post) {
    const share = coreShare(oneBySend(post).cpuUsPerMessage, 1e6);
    out.push({
      id: 'thread-cost-1m',
      claim: 'At 1M messages/s, threads spend 100 ms per second communicating',
      claimed: '10% of a core',
      measured: `${pct(share)} (postMessage, one per send); ${pct(coreShare(batched(post).cpuUsPerMessage, 1e6))} batched ${batched(post).batch} per send`,
      ...compareFigure(0.1, share),
      why: 'each postMessage serializes, allocates and schedules a task on both sides; batching divides that by the batch size.',
    });
  }
  if (unix) {
    const share = coreShare(oneBySend(unix).cpuUsPerMessage, 1e6);
    out.push({
      id: 'process-cost-1m',
      claim: 'At 1M messages/s, process IPC consumes 500% of a core',
      claimed: '500% of a core',
      measured: `${pct(share)} (Unix socket, one per send); ${pct(coreShare(batched(unix).cpuUsPerMessage, 1e6))} batched ${batched(unix).batch} per send`,
      ...compareFigure(5, share),
      why: 'the cost is per send (syscalls, wake-ups) far more than per byte: batching changes it more than the boundary does.',
    });
    const at10k = coreShare(oneBySend(unix).cpuUsPerMessage, 10_000);
    out.push({
      id: 'below-10k',
      claim: 'Below 10,000 messages/s, IPC costs under 5% of a core',
      claimed: '< 5% at 10k/s',
      measured: `${pct(at10k)} at 10k/s; 5% is reached at ${Math.round(crossoverRate(oneBySend(unix).cpuUsPerMessage, 0.05)).toLocaleString('en-US')}/s`,
      ...checkThreshold(at10k, 0.05, true),
      why: 'a few µs of CPU per message times 10k messages is a few tens of ms per second.',
    });
    const at100k = coreShare(oneBySend(unix).cpuUsPerMessage, 100_000);
    out.push({
      id: 'above-100k',
      claim: 'Above 100,000 messages/s, IPC becomes a significant bottleneck (here: 25% of a core or more)',
      claimed: '>= 25% at 100k/s',
      measured: `${pct(at100k)} at 100k/s, one per send; ${pct(coreShare(batched(unix).cpuUsPerMessage, 100_000))} batched`,
      ...checkThreshold(at100k, 0.25, false),
      why: 'true one message per send; batching moves the bottleneck up by about the batch size.',
    });
  }
  return out;
}

/**
 * The cost of one wake-up of a sleeping receiver: the same shared-memory ping-pong with the
 * receiver sleeping in Atomics.wait versus spinning, halved (two wake-ups per round trip).
 */
export function wakeUpCost(results: readonly TransportResult[]): { us: number; size: Size } | null {
  for (const size of ['tiny', '4k'] as const) {
    const wait = results.find((r) => r.transport === 'atomics-wait' && r.size === size);
    const poll = results.find((r) => r.transport === 'busy-poll' && r.size === size);
    if (wait && poll) return { us: Math.max(0, (wait.rtt.p50Us - poll.rtt.p50Us) / 2), size };
  }
  return null;
}
