/** The communication-tax lab's report as text tables. */
import Table from 'cli-table3';
import { micros, rate, share } from '../format.js';
import { machineLine } from '../machine.js';
import { RATES } from './derive.js';
import type { BenchReport } from './run.js';

function table(head: string[]): Table.Table {
  return new Table({
    head,
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
}

export function renderBench(report: BenchReport): string {
  const out: string[] = [];
  out.push(`isolane bench — the communication tax, measured on ${machineLine(report.machine)}`);
  out.push(
    `core placement: ${report.plan.cores === 'cross' ? 'caller and peer pinned to different cores' : report.plan.cores === 'same' ? 'caller and peer pinned to the same core' : 'not pinned'}` +
      `; ${report.plan.rttMs} ms per measurement; batched = ${report.plan.batch} messages per send (pool: tasks in flight)`,
  );
  out.push('');

  const latency = table([
    'transport',
    'size',
    'RTT p50',
    'RTT p99',
    'idle RTT',
    'msg/s 1/send',
    'msg/s batched',
    'CPU/msg 1/send',
    'CPU/msg batched',
    'same core',
  ]);
  for (const r of report.results) {
    const one = r.oneWay.find((t) => t.batch === 1);
    const many = r.oneWay.find((t) => t.batch > 1);
    latency.push([
      r.transport,
      r.size,
      micros(r.rtt.p50Us),
      micros(r.rtt.p99Us),
      r.idleRtt ? micros(r.idleRtt.p50Us) : '-',
      one ? rate(one.messagesPerSec) : '-',
      many ? rate(many.messagesPerSec) : '-',
      one ? micros(one.cpuUsPerMessage) : '-',
      many ? micros(many.cpuUsPerMessage) : '-',
      r.cores.sameCore === undefined ? '-' : r.cores.sameCore ? 'yes' : 'no',
    ]);
  }
  out.push('Round trip (ping-pong), one-way throughput, and CPU per message counted in both ends:');
  out.push(latency.toString());
  out.push('');

  const costs = table([
    'transport',
    'size',
    'per send',
    ...RATES.map((r) => `@ ${rate(r)}`),
    '5% of a core at',
    '50% at',
  ]);
  for (const c of report.costs) {
    costs.push([
      c.transport,
      c.size,
      String(c.batch),
      ...c.shares.map(share),
      rate(c.fivePercentAt),
      rate(c.fiftyPercentAt),
    ]);
  }
  out.push('Share of one core the communication alone costs, by message rate:');
  out.push(costs.toString());
  out.push('');

  if (report.wakeUp) {
    out.push(
      `One wake-up of a sleeping receiver costs ${micros(report.wakeUp.us)} here (Atomics.wait round trip minus busy-poll round trip, halved).`,
    );
    out.push('');
  }
  if (report.claims.length > 0) {
    const claims = table(['the seed says', 'claimed', 'measured here', 'verdict']);
    for (const c of report.claims) claims.push([c.claim, c.claimed, c.measured, c.label]);
    out.push('The seed\u2019s claims, put to the test:');
    out.push(claims.toString());
    for (const c of report.claims) out.push(`  - ${c.id}: ${c.why}`);
    out.push('');
  }
  for (const e of report.errors) out.push(`! ${e.transport} (${e.size}) could not be measured: ${e.message}`);
  return out.join('\n');
}
