import { parentPort, workerData } from 'node:worker_threads';
import type { FromWorker, ToWorker, WorkerData } from '../channel/protocol.js';
import { inheritTsxInThread } from './loaders.js';
import { WorkerRuntime } from './runtime.js';

// Runs inside a worker thread. Uncaught errors are left alone on purpose: the thread dies and the
// pool's Worker 'error' and 'exit' events report the cause.
const port = parentPort;
if (!port) throw new Error('isolane: thread-entry must run in a worker thread');

const runtime = new WorkerRuntime(
  (msg: FromWorker) => port.postMessage(msg),
  () => process.exit(0),
);
port.on('message', (msg: ToWorker) => runtime.receive(msg));
await inheritTsxInThread(process.execArgv);
await runtime.load((workerData as WorkerData).handlers);
