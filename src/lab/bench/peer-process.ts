import { connect } from 'node:net';
import { type Msg, ndjson, ndjsonDecoder, peerLogic } from './messages.js';

// The far end of the process transports. argv: mode [address]
const [mode, address] = process.argv.slice(2);

function objectEcho(): void {
  const handle = peerLogic((m) => process.send!(m));
  process.on('message', (m: Msg | Msg[]) => {
    if (Array.isArray(m)) for (const one of m) handle(one);
    else handle(m);
  });
  process.on('disconnect', () => process.exit(0));
}

function streamEcho(read: NodeJS.ReadableStream, write: (s: string) => void): void {
  read.on('data', ndjsonDecoder(peerLogic((m) => write(ndjson([m])))));
  read.on('end', () => process.exit(0));
}

switch (mode) {
  case 'ipc':
    objectEcho();
    break;
  case 'pipe':
    streamEcho(process.stdin, (s) => process.stdout.write(s));
    break;
  case 'unix':
  case 'tcp': {
    const socket =
      mode === 'unix' ? connect({ path: address! }) : connect({ host: '127.0.0.1', port: Number(address) });
    socket.setNoDelay?.(true);
    streamEcho(socket, (s) => socket.write(s));
    socket.on('error', () => process.exit(1));
    break;
  }
  default:
    process.stderr.write(`peer-process: unknown mode ${mode}\n`);
    process.exit(2);
}
