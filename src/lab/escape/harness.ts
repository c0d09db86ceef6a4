/**
 * Runs one level of the escape lab in its own process, so that a probe that takes down the process
 * running the pool takes down this harness and not the lab. It builds the level's pool (victim and
 * attacker are two tenants of it), runs the probes one by one and reports each outcome to the lab
 * over IPC before starting the next.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { createPool, type Pool } from '../../index.js';
import type { AttackEvidence, AttackInput, Target } from './attacker.js';
import { errorCode } from './errors.js';
import { LEVELS, sharesProcess } from './levels.js';
import type { HarnessConfig, HarnessMessage, Tenant } from './messages.js';
import type { ProbeId } from './probes.js';
import { ENV_NAME, sha256 } from './secrets.js';
import type { BombHealth, HogMeasure, Latency, ProbeOutcome } from './verdict.js';
import type { VictimInfo, VictimStatus } from './victim.js';

const config = JSON.parse(process.argv[2] ?? '{}') as HarnessConfig;
// First of all, join the level's memory budget: everything started from here on is inside it.
if (config.budgetProcs) writeFileSync(config.budgetProcs, String(process.pid));

function send(msg: HarnessMessage): Promise<void> {
  return new Promise((resolve) => {
    if (!process.send) return resolve();
    process.send(msg, undefined, {}, () => resolve());
  });
}

const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
const handlers = new URL(`./handlers${ext}`, import.meta.url);
const level = LEVELS[config.level];
const bounds = config.bounds;
const shared = sharesProcess(config.level);

let pool: Pool;
try {
  pool = createPool({ handlers, ...level.options });
} catch (err) {
  await send({ t: 'unavailable', reason: (err as Error).message });
  process.exit(0);
}

const TASK_MS = 30_000;

function run<T>(
  name: string,
  input: unknown,
  tenant: 'victim' | 'attacker',
  timeoutMs = TASK_MS,
): Promise<T> {
  return pool.run(name, input as never, { tenant, timeoutMs }) as Promise<T>;
}

/** The host pid of a tenant's ready worker: this process's own when they share it. */
function hostPid(tenant: 'victim' | 'attacker'): number {
  if (shared) return process.pid;
  const worker = pool.stats().workers.find((w) => w.tenant === tenant && w.state === 'ready');
  return worker?.pid ?? -1;
}

async function whoami(tenant: 'victim' | 'attacker'): Promise<Tenant> {
  const me = await run<{ pid: number; uid: number; threadId: number }>('whoami', undefined, tenant);
  return { pid: hostPid(tenant), uid: me.uid, ...(shared ? { threadId: me.threadId } : {}) };
}

async function plantVictim(): Promise<{ info: VictimInfo; pid: number }> {
  const info = await run<VictimInfo>('plant', { runId: config.runId }, 'victim');
  return { info, pid: hostPid('victim') };
}

/** The env secret as the pool's host has it; the victim may have set its own as well. */
const hostEnvHash = process.env[ENV_NAME] ? sha256(process.env[ENV_NAME]) : undefined;

function targetOf(victim: { info: VictimInfo; pid: number }): Target {
  return {
    pid: victim.pid,
    fd: victim.info.fd,
    filePath: victim.info.filePath,
    port: victim.info.port,
    hashes: victim.info.hashes,
    hostPid: process.pid,
    envHashes: [...new Set([hostEnvHash, victim.info.hashes.env].filter((h): h is string => !!h))],
  };
}

type Attack = Pick<ProbeOutcome, 'attack' | 'attackFailed'>;

async function attack(probe: ProbeId, target: Target, timeoutMs = TASK_MS): Promise<Attack> {
  try {
    const input: AttackInput = { probe, target, bounds, mark: config.runId };
    return { attack: await run<AttackEvidence>('attack', input, 'attacker', timeoutMs) };
  } catch (err) {
    const e = err as Error & {
      cause?: { reason?: string; signal?: string | null; limit?: string; error?: { message?: string } };
    };
    const cause = e.cause && typeof e.cause === 'object' ? e.cause : undefined;
    return {
      attackFailed: {
        error: e.name ?? errorCode(err),
        oomKilled: budgetOomKills() > oomKillsBefore,
        ...(cause?.reason ? { reason: cause.reason } : {}),
        ...(cause?.signal !== undefined ? { signal: cause.signal } : {}),
        ...(cause?.limit ? { limit: cause.limit } : {}),
        ...(cause?.error?.message ? { message: cause.error.message.slice(0, 200) } : {}),
      },
    };
  }
}

/** OOM kills so far in the level's memory budget (cgroup v1 memory.oom_control). */
function budgetOomKills(): number {
  if (!config.budgetProcs) return 0;
  try {
    const control = readFileSync(join(dirname(config.budgetProcs), 'memory.oom_control'), 'utf8');
    return Number(/oom_kill (\d+)/.exec(control)?.[1] ?? 0);
  } catch {
    return 0;
  }
}
let oomKillsBefore = 0;

/** Waits (bounded) for the pool to notice that a worker died and bring up another. */
async function replaced(tenant: 'victim' | 'attacker', pid: number, withinMs: number): Promise<void> {
  const deadline = performance.now() + withinMs;
  while (performance.now() < deadline) {
    const now = pool.stats().workers.find((w) => w.tenant === tenant);
    if (!now || now.pid !== pid || now.state !== 'ready') return;
    await sleep(20);
  }
}

async function victimNow(): Promise<Pick<ProbeOutcome, 'victimAfter' | 'victimAfterError'>> {
  try {
    const s = await run<VictimStatus>('status', undefined, 'victim', 10_000);
    return { victimAfter: { ...s, hostPid: hostPid('victim') } };
  } catch (err) {
    return { victimAfterError: errorCode(err) };
  }
}

function summary(samples: number[]): Latency {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0;
  return { count: sorted.length, p50Ms: at(0.5), p90Ms: at(0.9), p99Ms: at(0.99), maxMs: sorted.at(-1) ?? 0 };
}

/** A victim round trip; `start` on the machine-wide clock (performance.timeOrigin + now()). */
async function pingVictim(): Promise<{ start: number; ms: number; ok: boolean }> {
  const t0 = performance.now();
  const start = performance.timeOrigin + t0;
  try {
    await run('ping', undefined, 'victim', 10_000);
    return { start, ms: performance.now() - t0, ok: true };
  } catch {
    return { start, ms: performance.now() - t0, ok: false };
  }
}

async function cpuHog(target: Target): Promise<Partial<ProbeOutcome>> {
  for (let i = 0; i < 20; i++) await pingVictim(); // warm up
  const baseline: number[] = [];
  const baselineEnd = performance.now() + bounds.baselineMs;
  while (performance.now() < baselineEnd) baseline.push((await pingVictim()).ms);
  let done = false;
  const hog = attack('cpu-hog', target, bounds.hogMs + TASK_MS).finally(() => {
    done = true;
  });
  const samples: { start: number; ms: number }[] = [];
  const giveUp = performance.now() + bounds.hogMs + TASK_MS;
  while (!done && performance.now() < giveUp) {
    samples.push(await pingVictim());
    // Inline, a round trip is all microtasks: without this the hog's own events would never run.
    await new Promise((resolve) => setImmediate(resolve));
  }
  const result = await hog;
  // The hog's window, as the attacker timed its own spinning (or, if it died, until it died).
  const now = performance.timeOrigin + performance.now();
  const start = result.attack?.spinners?.from ?? now - bounds.hogMs;
  const end = result.attack?.spinners?.to ?? now;
  const during = samples.filter((s) => s.start >= start && s.start < end).map((s) => s.ms);
  // The longest the victim went without an answer in the window: a round trip, or a gap between them.
  let worst = 0;
  let lastEnd = start;
  for (const s of samples) {
    if (s.start + s.ms <= start || s.start >= end) continue;
    worst = Math.max(worst, s.ms, s.start - lastEnd);
    lastEnd = Math.max(lastEnd, s.start + s.ms);
  }
  worst = Math.max(worst, end - lastEnd);
  const measure: HogMeasure = {
    baseline: summary(baseline),
    during: summary(during),
    worstMs: worst,
    hogMs: bounds.hogMs,
  };
  return { ...result, hog: measure };
}

async function memoryBomb(target: Target): Promise<Partial<ProbeOutcome>> {
  let done = false;
  const bomb = attack('memory-bomb', target, 60_000).finally(() => {
    done = true;
  });
  const health: BombHealth = { pings: 0, failed: 0, worstMs: 0 };
  while (!done) {
    const p = await pingVictim();
    health.pings++;
    if (!p.ok) health.failed++;
    health.worstMs = Math.max(health.worstMs, p.ms);
    await sleep(50);
  }
  const result = await bomb;
  health.allocate = await run<{ ok: boolean; error?: string }>(
    'allocate',
    { mb: 32 },
    'victim',
    10_000,
  ).catch((err) => ({ ok: false, error: errorCode(err) }));
  return { ...result, bomb: health };
}

async function probeOnce(probe: ProbeId): Promise<ProbeOutcome> {
  const victim = await plantVictim();
  const target = targetOf(victim);
  oomKillsBefore = budgetOomKills();
  let part: Partial<ProbeOutcome>;
  switch (probe) {
    case 'cpu-hog':
      part = await cpuHog(target);
      break;
    case 'memory-bomb':
      part = await memoryBomb(target);
      break;
    case 'kill':
      part = await attack(probe, target);
      if (part.attack?.succeeded) await replaced('victim', victim.pid, 3_000);
      break;
    default:
      part = await attack(probe, target);
  }
  if (probe === 'fork-bomb' || probe === 'memory-bomb' || probe === 'crash') await sleep(100);
  return { probe, victimPid: victim.pid, ...part, ...(await victimNow()) };
}

async function main(): Promise<void> {
  let victim: Tenant;
  let attacker: Tenant;
  let notPlanted: Record<string, string>;
  try {
    const planted = await plantVictim();
    notPlanted = planted.info.notPlanted as Record<string, string>;
    victim = {
      pid: planted.pid,
      uid: planted.info.uid,
      ...(shared ? { threadId: planted.info.threadId } : {}),
    };
    attacker = await whoami('attacker');
  } catch (err) {
    await send({
      t: 'unavailable',
      reason: `the pool could not start the tenants: ${(err as Error).message}`,
    });
    return;
  }
  await send({ t: 'ready', hostPid: process.pid, victim, attacker, notPlanted });
  for (const probe of config.probes) {
    await send({ t: 'start', probe });
    const started = performance.now();
    try {
      const outcome = await probeOnce(probe);
      await send({ t: 'outcome', outcome, ms: Math.round(performance.now() - started) });
    } catch (err) {
      await send({
        t: 'failed',
        probe,
        error: (err as Error).message,
        ms: Math.round(performance.now() - started),
      });
    }
  }
}

try {
  await main();
} finally {
  await run('cleanup', undefined, 'victim', 5_000).catch(() => {});
  await Promise.race([pool.destroy(), sleep(5_000)]);
  await send({ t: 'done' });
  process.exit(0);
}
