import { parentPort, workerData } from 'node:worker_threads';
import { type FromWorker, forMessageChannel, type ToWorker, type WorkerData } from '../channel/protocol.js';
import { offerToRing, workerRing } from '../channel/ring-link.js';
import { inheritTsxInThread } from './loaders.js';
import { WorkerRuntime } from './runtime.js';

// Runs inside a worker thread. Uncaught errors are left alone on purpose: the thread dies and the
// pool's Worker 'error' and 'exit' events report the cause.
const port = parentPort;
if (!port) throw new Error('isolane: thread-entry must run in a worker thread');

const data = workerData as WorkerData;
const ring = data.ring
  ? workerRing(
      data.ring,
      (msg) => runtime.receive(msg),
      () => port.postMessage({ t: 'bell' } satisfies FromWorker),
    )
  : undefined;
const runtime = new WorkerRuntime(
  (msg: FromWorker, transfer) => {
    // Results and pongs take the ring, unless they move objects, are large, or hold what V8's
    // serializer cannot clone: postMessage does better with those.
    if (ring && (msg.t === 'results' || msg.t === 'pong') && !transfer?.length && offerToRing(ring.post, msg))
      return;
    port.postMessage(forMessageChannel(msg), transfer);
  },
  () => process.exit(0),
);
port.on('message', (msg: ToWorker) => {
  if (msg.t === 'bell') ring?.wake();
  else runtime.receive(msg);
});
await inheritTsxInThread(process.execArgv);
await runtime.load(data.handlers);
