/**
 * Round trip between two processes over the native shared memory (native/isolane_shm.cc) against
 * fork IPC, in one run: `node dist/bench/native-shm.js [--quick]`.
 *
 * One child per transport, ping-pong of one int (shared memory) or one small object (IPC), one
 * message in flight; each round trip is timed on its own. The transports take turns three times
 * (`--quick`: once); the median (p50) of all their round trips is printed with its ratio to fork
 * IPC's, next to the range of the per-turn medians, which shows how steady the machine was. Shared memory runs three ways: both sides spin (up to 50 µs, then sleep on the
 * doorbell), and both sides sleep on the doorbell every time, the parent either blocking in waitSync
 * or on its event loop through watch. No assertion on any time: this is a benchmark, not a test.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { type NativeShm, nativeLoadError, nativeShm } from '../src/channel/native.js';
import { percentile } from '../src/lab/math.js';

const SELF = fileURLToPath(import.meta.url);
const BYTES = 4096;
const [PING_SEQ, PING_VAL, PONG_SEQ, PONG_VAL, CHILD_SLEEPING, PARENT_SLEEPING] = [0, 1, 2, 3, 4, 5];
const MEMFD = 4;
const BELL_TO_CHILD = 5;
const BELL_TO_PARENT = 6;

function spinUntil(ready: () => boolean, spinUs: number): boolean {
  if (ready()) return true;
  const deadline = performance.now() + spinUs / 1000;
  while (performance.now() < deadline) if (ready()) return true;
  return ready();
}

/** The child: echoes IPC messages, or answers shared-memory pings (spin, then sleep on its bell). */
function peer(shm: NativeShm | undefined, mode: string, rounds: number, spinUs: number): void {
  if (mode === 'ipc') {
    process.on('message', (m) => process.send!(m));
    process.on('disconnect', () => process.exit(0));
    return;
  }
  if (!shm) throw nativeLoadError;
  const i32 = new Int32Array(shm.open(MEMFD, BYTES));
  for (let round = 1; round <= rounds; round++) {
    const arrived = () => Atomics.load(i32, PING_SEQ) >= round;
    if (!spinUntil(arrived, spinUs)) {
      Atomics.store(i32, CHILD_SLEEPING, 1);
      while (!arrived()) shm.waitSync(BELL_TO_CHILD, 1000);
      Atomics.store(i32, CHILD_SLEEPING, 0);
    }
    Atomics.store(i32, PONG_VAL, Atomics.load(i32, PING_VAL) + 1);
    Atomics.store(i32, PONG_SEQ, round);
    if (Atomics.load(i32, PARENT_SLEEPING) === 1) shm.ring(BELL_TO_PARENT);
  }
  process.disconnect();
}

interface Run {
  name: string;
  samplesUs: number[];
}

async function ipc(serialization: 'json' | 'advanced', rounds: number, warmup: number): Promise<Run> {
  const child = fork(SELF, ['peer', 'ipc'], {
    serialization,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const samplesUs: number[] = [];
  try {
    for (let i = 0; i < warmup + rounds; i++) {
      const start = performance.now();
      const reply = once(child, 'message');
      child.send({ i });
      const [m] = await reply;
      if (m.i !== i) throw new Error(`ipc: answer ${m.i} to ${i}`);
      if (i >= warmup) samplesUs.push((performance.now() - start) * 1000);
    }
  } finally {
    child.disconnect();
    await exited(child);
  }
  return { name: `fork IPC, ${serialization}`, samplesUs };
}

function exited(child: ChildProcess): Promise<unknown> {
  return child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : once(child, 'exit');
}

/** Parent side: `sync` spins then blocks in waitSync; `watch` spins then sleeps on its event loop. */
async function shmPingPong(
  shm: NativeShm,
  name: string,
  parentWait: 'sync' | 'watch',
  spinUs: number,
  rounds: number,
  warmup: number,
): Promise<Run> {
  const { fd, buffer } = shm.create(BYTES);
  const toChild = shm.doorbell();
  const toParent = shm.doorbell();
  const total = warmup + rounds;
  const child = fork(SELF, ['peer', 'shm', String(total), String(spinUs)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc', fd, toChild, toParent],
  });
  shm.close(fd);
  const i32 = new Int32Array(buffer);
  const samplesUs: number[] = [];
  let wake: (() => void) | undefined;
  const watch = parentWait === 'watch' ? shm.watch(toParent, () => wake?.()) : undefined;
  let died = false;
  child.once('exit', () => {
    died = true;
    wake?.();
  });
  try {
    for (let round = 1; round <= total; round++) {
      const start = performance.now();
      Atomics.store(i32, PING_VAL, round);
      Atomics.store(i32, PING_SEQ, round);
      if (Atomics.load(i32, CHILD_SLEEPING) === 1) shm.ring(toChild);
      const answered = () => Atomics.load(i32, PONG_SEQ) >= round;
      if (!spinUntil(answered, spinUs)) {
        Atomics.store(i32, PARENT_SLEEPING, 1);
        while (!answered()) {
          if (died) throw new Error(`${name}: the child died at round ${round}`);
          if (watch) {
            await new Promise<void>((resolve) => {
              wake = resolve;
            });
            wake = undefined;
          } else if (!shm.waitSync(toParent, 1000) && child.exitCode !== null) {
            died = true;
          }
        }
        Atomics.store(i32, PARENT_SLEEPING, 0);
      }
      const end = performance.now();
      if (Atomics.load(i32, PONG_VAL) !== round + 1)
        throw new Error(`${name}: wrong answer at round ${round}`);
      if (round > warmup) samplesUs.push((end - start) * 1000);
    }
  } finally {
    watch?.close();
    await exited(child);
    shm.close(toChild);
    shm.close(toParent);
  }
  return { name, samplesUs };
}

function fmt(us: number): string {
  return us < 10 ? us.toFixed(2) : us.toFixed(1);
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const shm = nativeShm;
  if (!shm) throw new Error(`the native addon did not load: ${nativeLoadError?.message}`);
  const n = quick ? 2_000 : 8_000;
  const rounds = quick ? 1 : 3;
  // The transports take turns, `rounds` times, so a burst of load elsewhere does not land on one only.
  const plan: Array<() => Promise<Run>> = [
    () => ipc('json', n / 4, n / 20),
    () => ipc('advanced', n / 4, n / 20),
    () => shmPingPong(shm, 'shared memory, both spin (≤50 µs)', 'sync', 50, n * 5, n / 2),
    () => shmPingPong(shm, 'shared memory, doorbell every time, waitSync', 'sync', 0, n, n / 10),
    () => shmPingPong(shm, 'shared memory, doorbell every time, watch', 'watch', 0, n, n / 10),
  ];
  const runs: Run[][] = plan.map(() => []);
  for (let round = 0; round < rounds; round++) {
    for (const [i, run] of plan.entries()) runs[i]!.push(await run());
  }
  const p50 = (samples: number[]) => percentile(samples, 50);
  const pooled = runs.map((r) => ({ name: r[0]!.name, samplesUs: r.flatMap((x) => x.samplesUs) }));
  const baseline = p50(pooled[0]!.samplesUs);
  console.log(
    `round trip between two processes, one message in flight (node ${process.version}, ${rounds} rounds taking turns)`,
  );
  console.log(
    `${'transport'.padEnd(46)} ${'samples'.padStart(7)} ${'p50 µs'.padStart(7)} ${'rounds p50'.padStart(13)} ${'p99 µs'.padStart(7)}  p50 vs fork IPC (json)`,
  );
  for (const [i, run] of pooled.entries()) {
    const median = p50(run.samplesUs);
    const perRound = runs[i]!.map((r) => p50(r.samplesUs));
    const spread = `${fmt(Math.min(...perRound))}–${fmt(Math.max(...perRound))}`;
    const ratio = baseline / median;
    const vs =
      i === 0 ? 'baseline' : ratio >= 1 ? `${ratio.toFixed(1)}× faster` : `${(1 / ratio).toFixed(1)}× slower`;
    console.log(
      `${run.name.padEnd(46)} ${String(run.samplesUs.length).padStart(7)} ${fmt(median).padStart(7)} ${spread.padStart(13)} ${fmt(percentile(run.samplesUs, 99)).padStart(7)}  ${vs}`,
    );
  }
}

if (process.argv[2] === 'peer') {
  peer(nativeShm, process.argv[3]!, Number(process.argv[4]), Number(process.argv[5]));
} else {
  await main();
}
