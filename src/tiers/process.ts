import { type ChildProcess, fork, spawn } from 'node:child_process';
import { readFileSync, readlinkSync } from 'node:fs';
import type { Socket } from 'node:net';
import { nativeShm } from '../channel/native.js';
import {
  type FromWorker,
  forMessageChannel,
  type RingSetup,
  type ToWorker,
  type WorkerData,
} from '../channel/protocol.js';
import { offerToRing, processRing } from '../channel/ring-link.js';
import { type SerializedError, serializeError } from '../errors.js';
import { WorkerCgroup } from '../sandbox/cgroup.js';
import { permissionDirs, sandboxCommand } from '../sandbox/launch.js';
import { workerEntry } from './entry.js';
import type { SpawnOptions, Tier, WorkerEvents, WorkerHandle, WorkerSandbox } from './tier.js';

const entry = workerEntry('process-entry');

/** What V8 prints when a process runs out of heap. */
const OOM_PATTERN = /heap out of memory|Reached heap limit|Allocation failed/;
const STDERR_TAIL_BYTES = 8192;
/** After the process exits, how long to wait for the IPC channel to deliver what is still in it. */
const DRAIN_AFTER_EXIT_MS = 200;
let cgroupCounter = 0;

/**
 * Flags of the parent that must not reach a worker: the test runner's and the inspector's own, and
 * a heap limit that `maxHeapMb` replaces. Loaders (`--import`, `--require`, `--loader`) are kept, so
 * a worker runs TypeScript handlers when its parent runs under tsx.
 */
function inheritedExecArgv(maxHeapMb: number | undefined): string[] {
  const dropped = /^--(test|inspect|debug|max-old-space-size)/;
  const args = process.execArgv.filter((arg) => !dropped.test(arg));
  if (maxHeapMb) args.push(`--max-old-space-size=${maxHeapMb}`);
  return args;
}

/**
 * util-linux's unshare, when its child dies of SIGKILL, fails to re-raise it (it cannot reset
 * SIGKILL's handler), prints this and exits with 1. It is how a SIGKILL inside the namespaces looks.
 */
const UNSHARE_SIGKILL = /unshare: sigprocmask unblock failed[^\n]*\n?/;

function workerEnv(
  handlers: string,
  sandbox: WorkerSandbox | undefined,
  ring: RingSetup | undefined,
): NodeJS.ProcessEnv {
  const data = JSON.stringify({
    handlers,
    ...(sandbox ? { env: sandbox.env } : {}),
    ...(ring ? { ring } : {}),
  } satisfies WorkerData);
  if (!sandbox) return { ...process.env, ISOLANE_WORKER_DATA: data };
  const env: NodeJS.ProcessEnv = { ISOLANE_WORKER_DATA: data };
  for (const name of sandbox.env) if (process.env[name] !== undefined) env[name] = process.env[name];
  return env;
}

/** The heap limit: `maxHeapMb`, else three quarters of a sandbox memory limit, so the heap runs out first. */
function heapLimit(options: SpawnOptions): number | undefined {
  const memoryMb = options.sandbox?.limits.memoryMb;
  return options.maxHeapMb ?? (memoryMb ? Math.floor(memoryMb * 0.75) : undefined);
}

/** With a ring: where the child finds it, and the memfd and doorbells to place at stdio 4, 5 and 6. */
interface RingLaunch {
  setup: RingSetup;
  stdio: [number, number, number];
}

function launch(
  options: SpawnOptions,
  ring: RingLaunch | undefined,
): { child: ChildProcess; cgroup?: WorkerCgroup } {
  const execArgv = inheritedExecArgv(heapLimit(options));
  const env = workerEnv(options.handlers, options.sandbox, ring?.setup);
  const stdio: ('inherit' | 'pipe' | 'ipc' | number)[] = [
    'inherit',
    'inherit',
    'pipe',
    'ipc',
    ...(ring?.stdio ?? []),
  ];
  const sandbox = options.sandbox;
  if (!sandbox) return { child: fork(entry, [], { serialization: 'advanced', execArgv, env, stdio }) };
  const { memoryMb, processes, cpuSeconds, openFiles } = sandbox.limits;
  const limited = memoryMb !== undefined || processes !== undefined || cpuSeconds !== undefined;
  const cgroup = limited
    ? new WorkerCgroup(`isolane-${process.pid}-${++cgroupCounter}`, {
        memoryMb,
        processes,
        cpuSeconds,
        cpuShare: true,
      })
    : undefined;
  const command = sandboxCommand(
    {
      uid: sandbox.uid,
      namespaces: sandbox.namespaces,
      cpuSeconds,
      openFiles,
      cgroupProcs: cgroup?.procsFiles() ?? [],
      ...(sandbox.permission ? { permissionReadDirs: permissionDirs(options.handlers) } : {}),
    },
    process.execPath,
    [...execArgv, entry],
  );
  const child = spawn(command.command, command.args, { serialization: 'advanced', env, stdio });
  return { child, ...(cgroup ? { cgroup } : {}) };
}

/** The Node process at the end of a sandbox's launch chain, as the host sees it. */
function nodeDescendant(pid: number): number | undefined {
  const queue = [pid];
  for (let seen = 0; queue.length > 0 && seen < 32; seen++) {
    const next = queue.shift()!;
    try {
      if (readlinkSync(`/proc/${next}/exe`) === process.execPath) return next;
      const children = readFileSync(`/proc/${next}/task/${next}/children`, 'utf8').trim();
      if (children) queue.push(...children.split(' ').map(Number));
    } catch {
      // gone, or not ours to read
    }
  }
  return undefined;
}

/**
 * A child process per worker, talking over Node's IPC channel with structured-clone serialization,
 * or with `channel: 'ring'` through two rings in memory shared with the child (native addon).
 */
export const processTier: Tier = {
  isolation: 'process',
  spawn(options: SpawnOptions, events: WorkerEvents): WorkerHandle {
    let protocol: SerializedError | undefined;
    let killNow = () => {};
    let ring: ReturnType<typeof processRing> | undefined;
    if (options.channel === 'ring') {
      if (!nativeShm)
        throw new Error(
          "isolane: channel 'ring' on the process tier needs the native addon, which did not load",
        );
      ring = processRing(
        {
          spinUs: options.spinUs ?? 0,
          onMessage: (msg) => events.message(msg),
          onBroken: (error) => {
            protocol = serializeError(error);
            killNow();
          },
        },
        nativeShm,
      );
    }
    let launched: ReturnType<typeof launch>;
    try {
      launched = launch(options, ring);
    } catch (err) {
      ring?.end.close();
      throw err;
    }
    ring?.spawned();
    const end = ring?.end;
    const { child, cgroup } = launched;
    let stderrTail = '';
    let fatal: SerializedError | undefined;
    let stopTimer: NodeJS.Timeout | undefined;
    let exited = false;
    let hostPid = options.sandbox ? undefined : child.pid;

    let killedInNamespace = false;
    child.stderr?.on('data', (chunk: Buffer) => {
      let text = chunk.toString('latin1');
      if (options.sandbox?.namespaces && UNSHARE_SIGKILL.test(text)) {
        killedInNamespace = true;
        text = text.replace(UNSHARE_SIGKILL, '');
      }
      if (text) process.stderr.write(Buffer.from(text, 'latin1'));
      stderrTail = (stderrTail + chunk.toString('latin1')).slice(-STDERR_TAIL_BYTES);
    });
    child.on('message', (msg: FromWorker) => {
      if (msg.t === 'fatal') {
        fatal = msg.error;
        return;
      }
      if (msg.t === 'ready' && hostPid === undefined && child.pid) hostPid = nodeDescendant(child.pid);
      events.message(msg);
    });
    // A failed spawn (e.g. EAGAIN) emits 'error' and then, usually, 'exit'; make sure exit is reported once.
    child.on('error', (err) => {
      if (child.exitCode === null && child.signalCode === null && child.pid === undefined) {
        fatal = { name: err.name, message: err.message, stack: err.stack };
        finish(null, null);
      }
    });
    const finish = (code: number | null, sig: NodeJS.Signals | null) => {
      if (exited) return;
      // The message may have come in pieces, past the filter above: look at what was collected too.
      if (options.sandbox?.namespaces && code === 1 && UNSHARE_SIGKILL.test(stderrTail))
        killedInNamespace = true;
      const exitCode = killedInNamespace ? null : code;
      const signal = killedInNamespace ? 'SIGKILL' : sig;
      exited = true;
      if (stopTimer) clearTimeout(stopTimer);
      // What the worker wrote into the ring before it ended is read before its exit is reported.
      end?.close();
      child.removeAllListeners('message');
      const oom = OOM_PATTERN.test(stderrTail);
      const cpuSeconds = options.sandbox?.limits.cpuSeconds;
      const overCpu =
        signal === 'SIGXCPU' ||
        (signal === 'SIGKILL' && cpuSeconds !== undefined && cgroup?.cpuUsedAtLeast(cpuSeconds) === true);
      const limit = cgroup?.memoryExceeded() && !oom ? 'memory' : overCpu ? 'cpu' : undefined;
      cgroup?.remove();
      events.exit({
        exitCode,
        signal,
        oom,
        ...(limit ? { limit } : {}),
        ...(fatal ? { error: fatal } : {}),
        ...(protocol ? { protocol } : {}),
      });
    };
    child.once('exit', (code, signal) => {
      // Messages sent just before the exit may still be in the channel: let 'close' deliver them first.
      setTimeout(() => finish(code, signal), DRAIN_AFTER_EXIT_MS);
    });
    child.once('close', (code, signal) => finish(code, signal));

    killNow = () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      // In a sandbox the Node process is at the end of the launch chain: kill it too, not only the chain's head.
      const worker = options.sandbox && child.pid ? (hostPid ?? nodeDescendant(child.pid)) : undefined;
      if (worker !== undefined && worker !== child.pid) {
        try {
          process.kill(worker, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      child.kill('SIGKILL');
    };
    return {
      get pid() {
        return hostPid ?? child.pid;
      },
      send(msg: ToWorker) {
        if (end) {
          switch (msg.t) {
            case 'run':
              // Large batches go by the IPC channel, which copies them in fewer passes than a ring,
              // and so does what the ring cannot carry (IPC then clones it, or says why it cannot).
              if (offerToRing(end.post, msg)) return;
              break;
            case 'abort':
              // The task may have gone either way, and an abort must not overtake it: send it both ways.
              end.post(msg);
              break;
            case 'ping':
              end.post(msg);
              return;
          }
        }
        if (child.connected) child.send(forMessageChannel(msg));
      },
      kill: killNow,
      stop(graceMs: number) {
        if (child.connected) child.send({ t: 'close' } satisfies ToWorker);
        stopTimer = setTimeout(killNow, graceMs);
        stopTimer.unref();
      },
      ref() {
        end?.ref();
        child.ref();
        child.channel?.ref();
        (child.stderr as Socket | null)?.ref();
      },
      unref() {
        end?.unref();
        child.unref();
        child.channel?.unref();
        (child.stderr as Socket | null)?.unref();
      },
    };
  },
};
