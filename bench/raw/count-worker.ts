// The worker of the raw one-way baseline: counts the numbers it is sent and answers nothing but the
// count, every `reportEvery` messages (the sender's flow control) and when told the stream ended.
import { parentPort, workerData } from 'node:worker_threads';

const { reportEvery } = workerData as { reportEvery: number };
const port = parentPort!;
let count = 0;
port.on('message', (m: number | 'end') => {
  if (m === 'end') {
    port.postMessage({ total: count });
    count = 0;
  } else if (++count % reportEvery === 0) {
    port.postMessage(count);
  }
});
port.postMessage({ ready: true });
