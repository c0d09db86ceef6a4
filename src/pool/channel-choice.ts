import { InvalidOptionError } from '../errors.js';
import type { Isolation } from '../tiers/tier.js';

/** What a pool asks for. */
export type ChannelOption = 'message' | 'ring' | 'auto';
/** What its batches actually travel by: direct calls (inline), messages (postMessage, IPC), or shared-memory rings. */
export type Channel = 'direct' | 'message' | 'ring';

export interface ChannelFacts {
  isolation: Isolation;
  /** Whether the native addon (shared memory between processes) loaded, and if not, why. */
  addon: { loaded: true } | { loaded: false; reason: string };
  /** Sandboxed workers under Node's permission model, which refuses native addons. */
  permission: boolean;
}

export interface ChannelChoice {
  channel: Channel;
  /** Set when a ring was asked for and cannot be had: say so once. */
  warning?: string;
}

const CHANNEL_OPTIONS: readonly ChannelOption[] = ['message', 'ring', 'auto'];

/**
 * The channel a pool's batches travel by (pure). Inline has nothing to carry; threads can always
 * share memory; processes need the native addon, and a worker under the permission model cannot
 * load it. `'auto'` takes the fastest that is there; `'ring'` asked where it cannot be had falls
 * back to messages with a warning (the process tier without the addon), or is refused where a ring
 * would need the sandbox weakened.
 */
export function chooseChannel(requested: unknown, facts: ChannelFacts): ChannelChoice {
  const option = requested === undefined ? 'auto' : requested;
  if (!CHANNEL_OPTIONS.includes(option as ChannelOption)) {
    throw new InvalidOptionError(
      'channel',
      `must be one of ${CHANNEL_OPTIONS.map((c) => `'${c}'`).join(', ')}; got ${typeof option === 'string' ? JSON.stringify(option) : typeof option}`,
    );
  }
  if (facts.isolation === 'inline') return { channel: 'direct' };
  if (option === 'message') return { channel: 'message' };
  if (facts.isolation === 'thread') return { channel: 'ring' };
  if (facts.permission) {
    if (option === 'ring') {
      throw new InvalidOptionError(
        'channel',
        "'ring' on the process tier needs the native addon in the worker, and sandbox.permission " +
          "forbids native addons (allowing them would let tenant code load native code); use 'auto' or 'message'",
      );
    }
    return { channel: 'message' };
  }
  if (facts.addon.loaded) return { channel: 'ring' };
  if (option === 'auto') return { channel: 'message' };
  return {
    channel: 'message',
    warning:
      `isolane: channel 'ring' on the process tier needs the native addon (${facts.addon.reason}); ` +
      "falling back to the IPC channel. Rebuild it with 'npm rebuild isolane' (needs g++, make, python3).",
  };
}
