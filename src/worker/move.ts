import type { TransferListItem } from 'node:worker_threads';

const MOVED = Symbol.for('isolane.moved');

interface Moved {
  [MOVED]: true;
  value: unknown;
  transfer: readonly TransferListItem[];
}

/**
 * Marks a handler's result to be moved rather than copied back to the caller, where the level
 * allows it (thread tier: the ArrayBuffers are transferred and become unusable in the worker).
 * Elsewhere it is copied as usual (process tier) or passed as is (inline). Without a list, an
 * ArrayBuffer, or the buffer under a typed array or DataView, moves itself.
 *
 *     export function render(input) { const pixels = new Uint8Array(1 << 20); …; return move(pixels); }
 */
export function move<T>(value: T, transfer?: readonly TransferListItem[]): T {
  const list = transfer ?? ownBuffer(value);
  if (!Array.isArray(list)) throw new TypeError('isolane: move(value, transfer): transfer must be an array');
  return { [MOVED]: true, value, transfer: list } satisfies Moved as unknown as T;
}

function ownBuffer(value: unknown): TransferListItem[] {
  if (value instanceof ArrayBuffer) return [value];
  if (ArrayBuffer.isView(value) && value.buffer instanceof ArrayBuffer) return [value.buffer];
  throw new TypeError(
    'isolane: move(value) without a transfer list needs an ArrayBuffer, a typed array or a DataView',
  );
}

/** The value to send and what to move with it. */
export function unwrapMoved(value: unknown): { value: unknown; transfer?: readonly TransferListItem[] } {
  if (value !== null && typeof value === 'object' && (value as Partial<Moved>)[MOVED] === true) {
    const moved = value as Moved;
    return { value: moved.value, transfer: moved.transfer };
  }
  return { value };
}
