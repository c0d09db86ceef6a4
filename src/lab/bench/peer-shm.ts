// The far end of the shared-memory transport between processes: maps the control cell and the
// data area (memfds at fds 4 and 5, native addon), reports its pid, then busy-polls them like the
// thread peer does, until the caller stops it or its time is up.
import { nativeLoadError, nativeShm } from '../../channel/native.js';
import { SabPeer, type SabPeerData } from './sab.js';

const shm = nativeShm;
if (!shm) throw nativeLoadError;
const options = JSON.parse(process.argv[2] ?? '{}') as Pick<SabPeerData, 'slotBytes' | 'phase' | 'maxMs'> & {
  ctrlBytes: number;
  dataBytes: number;
};
const peer = new SabPeer({
  ctrl: shm.open(4, options.ctrlBytes),
  data: shm.open(5, options.dataBytes),
  slotBytes: options.slotBytes,
  sleep: false,
  phase: options.phase,
  ...(options.maxMs !== undefined ? { maxMs: options.maxMs } : {}),
});
process.send?.({ pid: process.pid }, () => {
  peer.run();
  process.exit(0);
});
