/**
 * The victim tenant: plants one secret of each kind where it runs, and answers whether they are
 * still intact. It reports only each secret's SHA-256, never the secret.
 */
import {
  chmodSync,
  closeSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMainThread, threadId } from 'node:worker_threads';
import { errorCode } from './errors.js';
import { ENV_NAME, newSecret, PREFIXES, type SecretKind, sha256 } from './secrets.js';

export interface VictimInfo {
  /** process.pid as the victim sees it (inside a pid namespace, not the host's pid). */
  pid: number;
  threadId: number;
  uid: number;
  /** SHA-256 of each secret that could be planted. */
  hashes: Partial<Record<SecretKind, string>>;
  /** Why a secret could not be planted. */
  notPlanted: Partial<Record<SecretKind, string>>;
  /** The descriptor of the unlinked file that holds the fd secret. */
  fd: number | null;
  /** The 0600 file that holds the file secret. */
  filePath: string | null;
  /** The loopback port that answers with the listener secret. */
  port: number | null;
  /** Whether the env secret came with the victim's environment (else the victim set it itself). */
  envInherited: boolean;
}

export interface VictimStatus {
  pid: number;
  threadId: number;
  planted: boolean;
  /** The Buffer secret still holds its value; if not, what it holds now. */
  bufferIntact: boolean;
  bufferNow?: string;
  heapIntact: boolean;
  /** SIGWINCH signals received (process main threads only; worker threads cannot listen for signals). */
  signals: number | null;
}

interface Planted {
  info: VictimInfo;
  heap: string;
  buffer: Buffer;
  dir: string | null;
  server: Server | null;
  signals: number | null;
  onSignal?: () => void;
}

let planted: Planted | undefined;

function listen(secret: Buffer): Promise<{ server: Server; port: number }> {
  return new Promise((resolve, reject) => {
    const server = createServer((socket) => {
      socket.on('error', () => {});
      socket.end(secret);
    });
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.unref();
      resolve({ server, port: (server.address() as { port: number }).port });
    });
  });
}

/** Plants every secret once per worker; later calls return the same description. */
export async function plant(input: { runId: string }): Promise<VictimInfo> {
  if (planted) return planted.info;
  const info: VictimInfo = {
    pid: process.pid,
    threadId,
    uid: process.getuid?.() ?? -1,
    hashes: {},
    notPlanted: {},
    fd: null,
    filePath: null,
    port: null,
    envInherited: false,
  };

  // A string in the V8 heap (flat, one byte per character) and a Buffer outside it.
  const heapBytes = newSecret('heap');
  const heap = heapBytes.toString('latin1');
  info.hashes.heap = sha256(heapBytes);
  heapBytes.fill(0);
  const buffer = newSecret('buffer');
  info.hashes.buffer = sha256(buffer);

  // The environment: inherited from the process that started the victim, or set here.
  const inherited = process.env[ENV_NAME];
  if (inherited?.startsWith(PREFIXES.env)) {
    info.envInherited = true;
    info.hashes.env = sha256(inherited);
  } else {
    const own = newSecret('env');
    info.hashes.env = sha256(own);
    process.env[ENV_NAME] = own.toString('latin1');
    own.fill(0);
  }

  // The process title, which is what /proc/PID/cmdline shows. Only a process's main thread has one.
  if (isMainThread) {
    const title = newSecret('cmdline');
    const wanted = `isolane-victim ${title.toString('latin1')}`;
    process.title = wanted;
    let cmdline = '';
    try {
      cmdline = readFileSync('/proc/self/cmdline', 'latin1');
    } catch {
      // no /proc: the title may still be set
    }
    if (cmdline.includes(wanted)) info.hashes.cmdline = sha256(title);
    else info.notPlanted.cmdline = 'the process title is shorter than the secret';
    title.fill(0);
  } else {
    info.notPlanted.cmdline = 'a worker thread cannot set the process title';
  }

  // A private folder with a 0600 file, and a file reachable only through an open descriptor.
  let dir: string | null = null;
  try {
    dir = mkdtempSync(join(tmpdir(), `isolane-escape-${input.runId}-`));
    chmodSync(dir, 0o700);
    const file = join(dir, 'secret');
    const fileSecret = newSecret('file');
    writeFileSync(file, fileSecret, { mode: 0o600 });
    info.hashes.file = sha256(fileSecret);
    info.filePath = file;
    fileSecret.fill(0);

    const fdFile = join(dir, 'descriptor');
    const fdSecret = newSecret('fd');
    writeFileSync(fdFile, fdSecret, { mode: 0o600 });
    info.fd = openSync(fdFile, 'r');
    unlinkSync(fdFile);
    info.hashes.fd = sha256(fdSecret);
    fdSecret.fill(0);
  } catch (err) {
    info.notPlanted.file ??= errorCode(err);
    info.notPlanted.fd ??= errorCode(err);
  }

  // A loopback listener that hands its secret to whoever connects.
  let server: Server | null = null;
  try {
    const listenerSecret = newSecret('listener');
    info.hashes.listener = sha256(listenerSecret);
    const opened = await listen(listenerSecret);
    server = opened.server;
    info.port = opened.port;
  } catch (err) {
    delete info.hashes.listener;
    info.notPlanted.listener = errorCode(err);
  }

  planted = { info, heap, buffer, dir, server, signals: null };
  if (isMainThread) {
    const p = planted;
    p.signals = 0;
    p.onSignal = () => {
      p.signals! += 1;
    };
    process.on('SIGWINCH', p.onSignal);
  }
  return info;
}

export function status(): VictimStatus {
  const p = planted;
  if (!p) {
    return {
      pid: process.pid,
      threadId,
      planted: false,
      bufferIntact: false,
      heapIntact: false,
      signals: null,
    };
  }
  const bufferIntact = sha256(p.buffer) === p.info.hashes.buffer;
  return {
    pid: process.pid,
    threadId,
    planted: true,
    bufferIntact,
    // Once overwritten it is no longer a secret: show what the attacker put there.
    ...(bufferIntact ? {} : { bufferNow: p.buffer.toString('latin1') }),
    heapIntact: sha256(p.heap) === p.info.hashes.heap,
    signals: p.signals,
  };
}

/** A round trip, for latency. */
export function ping(): number {
  return process.pid;
}

/** Whether the victim can still get memory: allocates and touches `mb` MiB, then lets it go. */
export function allocate(input: { mb: number }): { ok: boolean; error?: string } {
  try {
    const b = Buffer.allocUnsafeSlow(input.mb * 1024 * 1024);
    b.fill(1);
    return { ok: true };
  } catch (err) {
    return { ok: false, error: errorCode(err) };
  }
}

/** Closes the descriptor and the listener and removes the folder. */
export async function cleanup(): Promise<void> {
  const p = planted;
  if (!p) return;
  planted = undefined;
  p.buffer.fill(0);
  if (p.onSignal) process.off('SIGWINCH', p.onSignal);
  if (p.info.fd !== null) {
    try {
      closeSync(p.info.fd);
    } catch {
      // already closed
    }
  }
  if (p.dir) rmSync(p.dir, { recursive: true, force: true });
  if (p.server) await new Promise<void>((resolve) => p.server!.close(() => resolve()));
}
