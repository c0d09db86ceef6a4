import { type FromWorker, forMessageChannel, type ToWorker, type WorkerData } from '../channel/protocol.js';
import { offerToRing, workerRing } from '../channel/ring-link.js';
import { serializeError } from '../errors.js';
import { WorkerRuntime } from './runtime.js';

// Runs inside a child process started by the process tier with an IPC channel.
const send = process.send?.bind(process);
if (!send) throw new Error('isolane: process-entry must be started with an IPC channel');

const data = JSON.parse(process.env.ISOLANE_WORKER_DATA ?? '{}') as WorkerData;
delete process.env.ISOLANE_WORKER_DATA;
// In a sandbox, whatever the launch chain added (a shell's PWD, say) goes too: only the allowlist stays.
if (data.env) {
  const allowed = new Set(data.env);
  for (const name of Object.keys(process.env)) if (!allowed.has(name)) delete process.env[name];
}

// The parent is gone (or closed the channel): nothing can receive our results, so stop at once.
process.on('disconnect', () => process.exit(0));

// Report the uncaught error to the pool, then exit. The exit is forced if the report cannot be sent.
process.on('uncaughtException', (err) => {
  const exit = () => process.exit(70);
  setTimeout(exit, 500).unref();
  try {
    send({ t: 'fatal', error: serializeError(err) } satisfies FromWorker, undefined, {}, exit);
  } catch {
    exit();
  }
});

let ring: ReturnType<typeof workerRing> | undefined;
const runtime = new WorkerRuntime(
  (msg: FromWorker) => {
    // Results and pongs take the ring unless they are large; the rest (ready, start errors) the IPC channel.
    if (ring && (msg.t === 'results' || msg.t === 'pong') && offerToRing(ring.post, msg)) return;
    send(forMessageChannel(msg));
  },
  () => process.exit(0),
);
process.on('message', (msg: ToWorker) => runtime.receive(msg));
let ringError: unknown;
try {
  if (data.ring) ring = workerRing(data.ring, (msg) => runtime.receive(msg), undefined);
} catch (err) {
  ringError = err;
}
// Without its ring this worker cannot serve: say why, and the pool stops it.
if (ringError) send({ t: 'start-error', error: serializeError(ringError) } satisfies FromWorker);
else await runtime.load(data.handlers);
