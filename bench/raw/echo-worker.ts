// The worker of the raw per-task baselines, as a worker thread or as a forked child process: one
// message per task ({ id, fn, x }), one reply per task ({ id, value } or { id, error }).
import { parentPort } from 'node:worker_threads';
import { cpu, echoBytes, tiny } from '../workload.cjs';

/** By index, so that a task message is as small as a pool's could be: see `RAW_FUNCTIONS`. */
const FUNCTIONS: readonly ((x: any) => unknown)[] = [tiny, cpu, echoBytes];

interface TaskMessage {
  id: number;
  fn: number;
  x: unknown;
}

const port = parentPort;
const send: (message: unknown) => void = port
  ? (message) => port.postMessage(message)
  : (message) => process.send!(message);

function onTask({ id, fn, x }: TaskMessage): void {
  try {
    send({ id, value: FUNCTIONS[fn]!(x) });
  } catch (err) {
    send({ id, error: err instanceof Error ? err.message : String(err) });
  }
}

if (port) {
  port.on('message', onTask);
} else {
  process.on('message', onTask);
  process.on('disconnect', () => process.exit(0));
}
send({ ready: true });
