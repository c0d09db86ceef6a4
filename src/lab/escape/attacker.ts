/**
 * The attacker tenant: one handler per probe, each trying one thing against the victim and
 * returning what it did and what came back. It knows the victim's pid, descriptor number, file
 * path and port (an attacker can usually learn those) and each secret's SHA-256 (to recognise a
 * secret it finds), never a secret itself.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readlinkSync, readSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Worker } from 'node:worker_threads';
import type { Bounds } from './bounds.js';
import { errorCode } from './errors.js';
import { type Hit, overwrite, type ScanResult, scanMemory } from './memscan.js';
import type { ProbeId } from './probes.js';
import { ENV_NAME, findSecret, PREFIXES, redact, SECRET_LENGTH, type SecretKind, sha256 } from './secrets.js';

export interface Target {
  /** The victim's pid as the pool's host sees it. */
  pid: number;
  fd: number | null;
  filePath: string | null;
  port: number | null;
  hashes: Partial<Record<SecretKind, string>>;
  /** The pool host's pid (whose environment holds the env secret). */
  hostPid: number;
  /** Hashes of every value the env secret may have (the host's, and the victim's own if it set one). */
  envHashes: string[];
}

export interface AttackInput {
  probe: ProbeId;
  target: Target;
  bounds: Bounds;
  /** Put in the environment (FORK_MARK) of every process the attacker starts, so the lab can check none outlives it. */
  mark: string;
}

export const FORK_MARK = 'ISOLANE_ESCAPE_FORK';

/** One thing the attacker tried. */
export interface Attempt {
  /** What it did: `read /proc/1234/environ`, `kill(1234, SIGKILL)`… */
  via: string;
  /** The errno code or error name if it failed. */
  error?: string;
  /** For reads: whether the secret was in what came back. */
  found?: boolean;
  detail?: string;
}

export interface AttackEvidence {
  probe: ProbeId;
  attacker: { pid: number; uid: number };
  attempts: Attempt[];
  /** The probe reached its aim (read the secret, signalled, connected…). */
  succeeded: boolean;
  scan?: ScanSummary;
  written?: string[];
  /** fork-bomb */
  spawned?: number;
  /** memory-bomb */
  allocatedMb?: number;
  /** cpu-hog */
  spinners?: {
    wanted: number;
    started: number;
    ms: number;
    /** When the attacker's own thread spun (performance.timeOrigin + now(): comparable across processes). */
    from: number;
    to: number;
  };
}

export interface ScanSummary {
  path: string;
  error?: string;
  mib: number;
  regions: number;
  regionsScanned: number;
  ms: number;
  stoppedBy: ScanResult['stoppedBy'];
  found: Partial<Record<SecretKind, string>>;
}

function summarize(scan: ScanResult): ScanSummary {
  const found: Partial<Record<SecretKind, string>> = {};
  for (const [kind, hits] of Object.entries(scan.hits) as [SecretKind, Hit[]][]) {
    const first = hits[0];
    if (first) found[kind] = `${first.preview} at ${first.address} in ${first.region}`;
  }
  return {
    path: scan.path,
    ...(scan.error ? { error: scan.error } : {}),
    mib: Math.round((scan.bytesScanned / 1048576) * 10) / 10,
    regions: scan.regions,
    regionsScanned: scan.regionsScanned,
    ms: Math.round(scan.ms),
    stoppedBy: scan.stoppedBy,
    found,
  };
}

function scanAttempt(scan: ScanResult): Attempt {
  const s = summarize(scan);
  const kinds = Object.keys(s.found);
  return {
    via: `scan ${scan.path}`,
    ...(s.error ? { error: s.error } : {}),
    found: kinds.length > 0,
    detail: s.error
      ? undefined
      : `${s.mib} MiB of ${s.regionsScanned}/${s.regions} writable regions in ${s.ms} ms` +
        (kinds.length ? `; found ${kinds.join(' and ')}` : `; nothing (${s.stoppedBy})`),
  };
}

function memoryTargets(t: Target): { kind: SecretKind; hash: string }[] {
  return (['heap', 'buffer'] as const)
    .filter((k) => t.hashes[k] !== undefined)
    .map((kind) => ({ kind, hash: t.hashes[kind]! }));
}

function evidence(probe: ProbeId, attempts: Attempt[], succeeded?: boolean): AttackEvidence {
  return {
    probe,
    attacker: { pid: process.pid, uid: process.getuid?.() ?? -1 },
    attempts,
    succeeded: succeeded ?? attempts.some((a) => a.found === true),
  };
}

/** Reads at most `max` bytes of a file; the error code if it cannot. */
function readSmall(path: string, max = 64 * 1024): Buffer {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(max);
    const n = readSync(fd, buf, 0, max, 0);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

function tryRead(via: string, path: string, kind: SecretKind, hashes: string[]): Attempt {
  try {
    const bytes = readSmall(path);
    const found = hashes.some((h) => findSecret(bytes, kind, h, 1).length > 0);
    bytes.fill(0);
    return { via, found, detail: `${bytes.length} bytes read` };
  } catch (err) {
    return { via, error: errorCode(err), found: false };
  }
}

function memory(probe: 'memory-self' | 'memory-victim', input: AttackInput): AttackEvidence {
  const pid = probe === 'memory-self' ? 'self' : input.target.pid;
  const scan = scanMemory(pid, memoryTargets(input.target), {
    maxBytes: input.bounds.scanBytes,
    maxMs: input.bounds.scanMs,
  });
  const attempt = scanAttempt(scan);
  if (probe === 'memory-victim' && input.target.pid === process.pid) {
    attempt.detail = `the victim's pid is this process's own; ${attempt.detail ?? ''}`;
  }
  return { ...evidence(probe, [attempt]), scan: summarize(scan) };
}

/** The replacement the attacker writes over the victim's Buffer: same length, plainly not random. */
const OWNED = Buffer.from(`${PREFIXES.buffer}${'overwritten-by-attacker!'}`, 'latin1');

function memoryWrite(input: AttackInput): AttackEvidence {
  const hash = input.target.hashes.buffer;
  if (!hash) return evidence('memory-write', [{ via: 'nothing to write', error: 'no Buffer secret' }]);
  const scan = scanMemory(
    input.target.pid,
    [{ kind: 'buffer', hash }],
    { maxBytes: input.bounds.scanBytes, maxMs: input.bounds.scanMs },
    16,
  );
  const attempts = [scanAttempt(scan)];
  let written: string[] = [];
  const hits = scan.hits.buffer ?? [];
  if (hits.length > 0) {
    const w = overwrite(input.target.pid, hits, hash, OWNED);
    written = w.written;
    attempts.push({
      via: `write ${w.path}`,
      ...(w.error ? { error: w.error } : {}),
      detail: `${w.written.length} of ${hits.length} copies overwritten`,
    });
  }
  return { ...evidence('memory-write', attempts, written.length > 0), scan: summarize(scan), written };
}

function environ(input: AttackInput): AttackEvidence {
  const t = input.target;
  const attempts: Attempt[] = [];
  const own = process.env[ENV_NAME];
  const ownFound = Object.values(process.env).some(
    (v) => v?.startsWith(PREFIXES.env) && t.envHashes.includes(sha256(v)),
  );
  attempts.push({
    via: 'own process.env',
    found: ownFound,
    detail: own === undefined ? `${ENV_NAME} not set` : `${ENV_NAME}=${redact(own)}`,
  });
  attempts.push(tryRead('read /proc/self/environ', '/proc/self/environ', 'env', t.envHashes));
  if (t.pid !== process.pid) {
    attempts.push(
      tryRead(`read /proc/${t.pid}/environ (victim)`, `/proc/${t.pid}/environ`, 'env', t.envHashes),
    );
  }
  if (t.hostPid !== process.pid && t.hostPid !== t.pid) {
    attempts.push(
      tryRead(
        `read /proc/${t.hostPid}/environ (pool host)`,
        `/proc/${t.hostPid}/environ`,
        'env',
        t.envHashes,
      ),
    );
  }
  return evidence('environ', attempts);
}

function cmdline(input: AttackInput): AttackEvidence {
  const t = input.target;
  const path = `/proc/${t.pid}/cmdline`;
  try {
    const bytes = readSmall(path, 4096);
    const found = t.hashes.cmdline ? findSecret(bytes, 'cmdline', t.hashes.cmdline, 1).length > 0 : false;
    const shown = bytes
      .toString('latin1')
      .replace(/\0/g, ' ')
      .replace(/ISLC:[0-9a-f]{24}/g, (s) => redact(s))
      .trim()
      .slice(0, 80);
    bytes.fill(0);
    // Reading it is the escape; the planted title is the proof it was the victim's.
    return evidence('cmdline', [{ via: `read ${path}`, found, detail: `"${shown}"` }], true);
  } catch (err) {
    return evidence('cmdline', [{ via: `read ${path}`, error: errorCode(err), found: false }], false);
  }
}

function fd(input: AttackInput): AttackEvidence {
  const t = input.target;
  const hash = t.hashes.fd;
  if (t.fd === null || !hash) return evidence('fd', [{ via: 'no descriptor to read', error: 'not planted' }]);
  const attempts: Attempt[] = [];
  // The same number in this process: only read it if it is the victim's file (in a shared process it is).
  const direct = `read descriptor ${t.fd} of this process`;
  try {
    const link = readlinkSync(`/proc/self/fd/${t.fd}`);
    if (link.includes('isolane-escape-')) {
      const buf = Buffer.alloc(SECRET_LENGTH);
      readSync(t.fd, buf, 0, SECRET_LENGTH, 0);
      attempts.push({ via: direct, found: sha256(buf) === hash, detail: `it is ${link}` });
      buf.fill(0);
    } else {
      attempts.push({ via: direct, found: false, detail: `it is something else here: ${link}` });
    }
  } catch (err) {
    attempts.push({ via: direct, error: errorCode(err), found: false });
  }
  attempts.push(tryRead(`open /proc/${t.pid}/fd/${t.fd}`, `/proc/${t.pid}/fd/${t.fd}`, 'fd', [hash]));
  return evidence('fd', attempts);
}

function file(input: AttackInput): AttackEvidence {
  const t = input.target;
  if (!t.filePath || !t.hashes.file) return evidence('file', [{ via: 'no file', error: 'not planted' }]);
  const attempt = tryRead(`read ${t.filePath}`, t.filePath, 'file', [t.hashes.file]);
  try {
    const s = statSync(t.filePath);
    attempt.detail = `mode ${(s.mode & 0o777).toString(8)}, owner uid ${s.uid}; ${attempt.detail ?? 'not read'}`;
  } catch (err) {
    attempt.detail = `stat: ${errorCode(err)}`;
  }
  return evidence('file', [attempt]);
}

function connectProbe(input: AttackInput): Promise<AttackEvidence> {
  const t = input.target;
  const hash = t.hashes.listener;
  if (t.port === null || !hash) {
    return Promise.resolve(evidence('connect', [{ via: 'no listener', error: 'not planted' }]));
  }
  const port = t.port;
  const via = `connect 127.0.0.1:${port}`;
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const socket = connect({ host: '127.0.0.1', port });
    const finish = (attempt: Attempt) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(evidence('connect', [attempt]));
    };
    const timer = setTimeout(() => finish({ via, error: 'ETIMEDOUT', found: false }), input.bounds.connectMs);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err) => finish({ via, error: errorCode(err), found: false }));
    socket.on('end', () => {
      const banner = Buffer.concat(chunks);
      finish({
        via,
        found: findSecret(banner, 'listener', hash, 1).length > 0,
        detail: `${banner.length} bytes`,
      });
    });
  });
}

function signal(probe: 'signal' | 'kill', input: AttackInput): AttackEvidence {
  const sig = probe === 'signal' ? 'SIGWINCH' : 'SIGKILL';
  const via = `kill(${input.target.pid}, ${sig})`;
  try {
    process.kill(input.target.pid, sig);
    return evidence(probe, [{ via, detail: 'delivered' }], true);
  } catch (err) {
    return evidence(probe, [{ via, error: errorCode(err) }], false);
  }
}

async function crash(): Promise<AttackEvidence> {
  try {
    process.kill(process.pid, 'SIGKILL');
  } catch {
    // fall through to abort()
  }
  // Still here: the signal was ignored, as it is by the first process of a pid namespace.
  await new Promise((resolve) => setTimeout(resolve, 200));
  process.abort();
}

async function forkBomb(input: AttackInput): Promise<AttackEvidence> {
  const b = input.bounds;
  const sleep = ['/bin/sleep', '/usr/bin/sleep'].find((p) => existsSync(p)) ?? 'sleep';
  const children: ChildProcess[] = [];
  const started = performance.now();
  let error: string | undefined;
  try {
    while (children.length < b.forkCap && performance.now() - started < b.forkMaxMs) {
      let child: ChildProcess;
      try {
        child = spawn(sleep, [String(b.forkChildSeconds)], {
          stdio: 'ignore',
          env: { ...process.env, [FORK_MARK]: input.mark },
        });
      } catch (err) {
        error = errorCode(err);
        break;
      }
      const ok = await new Promise<boolean>((resolve) => {
        child.once('spawn', () => resolve(true));
        child.once('error', (err) => {
          error = errorCode(err);
          resolve(false);
        });
      });
      if (!ok) break;
      children.push(child);
    }
  } finally {
    // Whatever happened: every child is killed, and waited for (they would exit by themselves soon anyway).
    await Promise.all(
      children.map(
        (c) =>
          new Promise<void>((resolve) => {
            if (c.exitCode !== null || c.signalCode !== null) return resolve();
            c.once('exit', () => resolve());
            c.kill('SIGKILL');
          }),
      ),
    );
  }
  const ms = Math.round(performance.now() - started);
  const attempt: Attempt = {
    via: `spawn ${sleep} ${b.forkChildSeconds}, up to ${b.forkCap} times`,
    ...(error ? { error } : {}),
    detail: `${children.length} started in ${ms} ms${error ? `, then refused` : ''}; all killed`,
  };
  return { ...evidence('fork-bomb', [attempt], children.length >= b.forkCap), spawned: children.length };
}

/** Collects garbage now: the bomb's Buffers are freed before the next probe, not whenever V8 gets to it. */
function collectGarbage(): void {
  try {
    setFlagsFromString('--expose-gc');
    (runInNewContext('gc') as () => void)();
  } catch {
    // leave it to V8
  }
}

async function memoryBomb(input: AttackInput): Promise<AttackEvidence> {
  const b = input.bounds;
  const step = b.bombStepMb * 1024 * 1024;
  let held: Buffer[] = [];
  let error: string | undefined;
  const started = performance.now();
  while (held.length * b.bombStepMb < b.bombCapMb) {
    try {
      const chunk = Buffer.allocUnsafeSlow(step);
      chunk.fill(0x5a); // touch every page: untouched memory costs nothing
      held.push(chunk);
    } catch (err) {
      error = errorCode(err);
      break;
    }
    // Let the event loop breathe: the pool and the victim's pings keep flowing where they can.
    await new Promise((resolve) => setImmediate(resolve));
  }
  const allocatedMb = held.length * b.bombStepMb;
  await new Promise((resolve) => setTimeout(resolve, b.bombHoldMs));
  held = [];
  collectGarbage();
  const ms = Math.round(performance.now() - started);
  const attempt: Attempt = {
    via: `Buffer.allocUnsafeSlow(${b.bombStepMb} MiB).fill() up to ${b.bombCapMb} MiB`,
    ...(error ? { error } : {}),
    detail: `${allocatedMb} MiB held for ${b.bombHoldMs} ms (${ms} ms in all), then freed`,
  };
  return { ...evidence('memory-bomb', [attempt], allocatedMb >= b.bombCapMb), allocatedMb };
}

const SPIN = `
const { workerData, parentPort } = require('node:worker_threads');
parentPort.postMessage('spinning');
const end = Date.now() + workerData;
let x = 0;
while (Date.now() < end) x++;
`;

async function cpuHog(input: AttackInput): Promise<AttackEvidence> {
  const b = input.bounds;
  const started = performance.now();
  const helpers: Worker[] = [];
  let error: string | undefined;
  // The attacker's own thread is one spinner; the others are threads it starts.
  for (let i = 1; i < b.hogSpinners; i++) {
    try {
      const w = new Worker(SPIN, { eval: true, workerData: b.hogMs });
      w.on('error', (err) => {
        error ??= errorCode(err);
      });
      helpers.push(w);
    } catch (err) {
      error = errorCode(err);
      break;
    }
  }
  // Wait (bounded) until the helpers spin, so the hog's window is the same for every spinner.
  const spinning = await Promise.all(
    helpers.map(
      (w) =>
        new Promise<boolean>((resolve) => {
          const t = setTimeout(() => resolve(false), 1_000);
          w.once('message', () => {
            clearTimeout(t);
            resolve(true);
          });
          w.once('exit', () => {
            clearTimeout(t);
            resolve(false);
          });
        }),
    ),
  );
  const from = performance.timeOrigin + performance.now();
  const end = performance.now() + b.hogMs;
  let x = 0;
  while (performance.now() < end) x++;
  const to = performance.timeOrigin + performance.now();
  await Promise.all(helpers.map((w) => w.terminate()));
  const startedCount = 1 + spinning.filter(Boolean).length;
  const ms = Math.round(performance.now() - started);
  return {
    ...evidence(
      'cpu-hog',
      [
        {
          via: `spin ${b.hogSpinners} threads for ${b.hogMs} ms`,
          ...(error ? { error } : {}),
          detail: `${startedCount} spinning (${x > 0 ? 'busy' : 'idle'}), ${ms} ms`,
        },
      ],
      true,
    ),
    spinners: { wanted: b.hogSpinners, started: startedCount, ms, from, to },
  };
}

/** The attacker's handler: one probe per call. */
export async function attack(input: AttackInput): Promise<AttackEvidence> {
  switch (input.probe) {
    case 'memory-self':
    case 'memory-victim':
      return memory(input.probe, input);
    case 'memory-write':
      return memoryWrite(input);
    case 'environ':
      return environ(input);
    case 'cmdline':
      return cmdline(input);
    case 'fd':
      return fd(input);
    case 'file':
      return file(input);
    case 'connect':
      return connectProbe(input);
    case 'signal':
    case 'kill':
      return signal(input.probe, input);
    case 'crash':
      return crash();
    case 'fork-bomb':
      return forkBomb(input);
    case 'memory-bomb':
      return memoryBomb(input);
    case 'cpu-hog':
      return cpuHog(input);
  }
}
