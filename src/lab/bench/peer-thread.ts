import { parentPort, workerData } from 'node:worker_threads';
import { currentTid } from '../cpu.js';
import { type Msg, peerLogic } from './messages.js';
import { SabPeer, type SabPeerData } from './sab.js';

// The far end of the thread transports: postMessage echo, or a shared-memory loop.
const port = parentPort!;
const data = workerData as { mode: 'postMessage' } | ({ mode: 'sab' } & SabPeerData);
port.postMessage({ tid: currentTid() });

if (data.mode === 'postMessage') {
  const handle = peerLogic((m) => port.postMessage(m));
  port.on('message', (m: Msg | Msg[]) => {
    if (Array.isArray(m)) for (const one of m) handle(one);
    else handle(m);
  });
} else {
  new SabPeer(data).run();
  process.exit(0);
}
