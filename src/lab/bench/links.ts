/**
 * The parent's end of each event-driven transport, behind one interface, so that one set of
 * measuring functions serves them all.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { type Msg, ndjson, ndjsonDecoder } from './messages.js';

export interface Link {
  /** One send operation carrying `msgs` (a single message is sent as itself, not as an array). False: back off until `drained()`. */
  send(msgs: Msg[]): boolean;
  drained(): Promise<void>;
  onMessage: (m: Msg) => void;
  /** The peer's kernel thread id (thread transports) or process id (process transports). */
  peer: { pid?: number; tid?: number };
  close(): Promise<void>;
}

const PEER_THREAD = new URL('./peer-thread.js', import.meta.url);
const PEER_PROCESS = new URL('./peer-process.js', import.meta.url);
const resolved = Promise.resolve();

export async function postMessageLink(): Promise<Link> {
  const worker = new Worker(PEER_THREAD, { workerData: { mode: 'postMessage' } });
  const [{ tid }] = (await once(worker, 'message')) as [{ tid: number }];
  const link: Link = {
    send(msgs) {
      worker.postMessage(msgs.length === 1 ? msgs[0] : msgs);
      return true;
    },
    drained: () => resolved,
    onMessage: () => {},
    peer: { tid },
    async close() {
      await worker.terminate();
    },
  };
  worker.on('message', (m: Msg) => link.onMessage(m));
  return link;
}

function forkPeer(mode: string, args: string[], options: Parameters<typeof fork>[2]): ChildProcess {
  const execArgv = process.execArgv.filter((a) => !a.startsWith('--test'));
  return fork(PEER_PROCESS, [mode, ...args], { execArgv, ...options });
}

async function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = once(child, 'exit');
  child.kill('SIGKILL');
  await gone;
}

export async function ipcLink(serialization: 'json' | 'advanced'): Promise<Link> {
  const child = forkPeer('ipc', [], { serialization, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await once(child, 'spawn');
  let drainWaiters: (() => void)[] = [];
  const link: Link = {
    send(msgs) {
      return child.send(msgs.length === 1 ? msgs[0]! : msgs, () => {
        const waiters = drainWaiters;
        drainWaiters = [];
        for (const w of waiters) w();
      });
    },
    drained: () => new Promise((resolve) => drainWaiters.push(resolve)),
    onMessage: () => {},
    peer: { pid: child.pid! },
    close: () => exited(child),
  };
  child.on('message', (m: Msg) => link.onMessage(m));
  return link;
}

function streamLink(
  write: Socket | NodeJS.WritableStream,
  peer: Link['peer'],
  close: () => Promise<void>,
): Link {
  const link: Link = {
    send: (msgs) => write.write(ndjson(msgs)),
    drained: () => once(write, 'drain').then(() => undefined),
    onMessage: () => {},
    peer,
    close,
  };
  return link;
}

export async function pipeLink(): Promise<Link> {
  const child = forkPeer('pipe', [], { stdio: ['pipe', 'pipe', 'inherit', 'ipc'] });
  await once(child, 'spawn');
  const link = streamLink(child.stdin!, { pid: child.pid! }, async () => {
    child.stdin!.end();
    await exited(child);
  });
  child.stdout!.on(
    'data',
    ndjsonDecoder((m) => link.onMessage(m)),
  );
  return link;
}

/** A socket server on loopback (TCP, 127.0.0.1) or a Unix socket in a private temporary folder. */
export async function socketLink(kind: 'unix' | 'tcp'): Promise<Link> {
  const dir = kind === 'unix' ? mkdtempSync(join(tmpdir(), 'isolane-bench-')) : undefined;
  const server: Server = createServer();
  if (dir) server.listen(join(dir, 's.sock'));
  else server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  const target = dir
    ? join(dir, 's.sock')
    : String(typeof address === 'object' && address ? address.port : 0);
  const child = forkPeer(kind, [target], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const [socket] = (await once(server, 'connection')) as [Socket];
  socket.setNoDelay(true);
  const link = streamLink(socket, { pid: child.pid! }, async () => {
    socket.destroy();
    server.close();
    await exited(child);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  socket.on(
    'data',
    ndjsonDecoder((m) => link.onMessage(m)),
  );
  return link;
}
