/** The messages of the communication-tax lab, the same over every event-driven transport. */
export interface Msg {
  /** ping → pong; start, m…, end → ack… done. */
  k: 'ping' | 'pong' | 'start' | 'm' | 'end' | 'ack' | 'done';
  i?: number;
  /** Padding that makes a message about 4 KiB. */
  p?: string;
  /** For ack and done: messages received so far. */
  n?: number;
}

export type Size = 'tiny' | '4k';
export const SIZES: readonly Size[] = ['tiny', '4k'];

export function payload(size: Size): string | undefined {
  return size === '4k' ? 'x'.repeat(4096 - 24) : undefined;
}

/** Bytes one message of this size takes as JSON, the unit the throughput figures count. */
export function messageBytes(size: Size): number {
  return Buffer.byteLength(JSON.stringify({ k: 'm', i: 123456, p: payload(size) }));
}

/** The receiving side's logic, shared by every peer: echo pings, count streamed messages. */
export const ACK_EVERY = 1024;

export function peerLogic(reply: (m: Msg) => void): (m: Msg) => void {
  let count = 0;
  return (m) => {
    switch (m.k) {
      case 'ping':
        reply(m.p === undefined ? { k: 'pong', i: m.i } : { k: 'pong', i: m.i, p: m.p });
        return;
      case 'start':
        count = 0;
        return;
      case 'm':
        if (++count % ACK_EVERY === 0) reply({ k: 'ack', n: count });
        return;
      case 'end':
        reply({ k: 'done', n: count });
        return;
      default:
        return;
    }
  };
}

/** Splits newline-delimited JSON as it arrives in chunks; hands each message to `onMessage`. */
export function ndjsonDecoder(onMessage: (m: Msg) => void): (chunk: Buffer | string) => void {
  let rest = '';
  return (chunk) => {
    const text = rest + chunk.toString();
    let start = 0;
    for (let nl = text.indexOf('\n', start); nl !== -1; nl = text.indexOf('\n', start)) {
      onMessage(JSON.parse(text.slice(start, nl)) as Msg);
      start = nl + 1;
    }
    rest = text.slice(start);
  };
}

export function ndjson(msgs: readonly Msg[]): string {
  let out = '';
  for (const m of msgs) out += `${JSON.stringify(m)}\n`;
  return out;
}
