/**
 * The escape lab's secrets: a marker prefix and 24 random hex digits. The lab and the attacker
 * only ever see a secret's SHA-256, so a secret never travels through the pool or into the
 * harness's heap, where a memory scan would find the copy instead of the victim's.
 */
import { createHash, randomBytes } from 'node:crypto';

/** Where each secret lives, and the marker it starts with. */
export const PREFIXES = {
  /** a string in the victim's V8 heap */
  heap: 'ISLH:',
  /** a Buffer outside the V8 heap */
  buffer: 'ISLB:',
  /** an environment variable (ENV_NAME) */
  env: 'ISLE:',
  /** the victim's process title, i.e. its /proc/PID/cmdline */
  cmdline: 'ISLC:',
  /** the contents of a file the victim opened and then unlinked: only its descriptor reaches it */
  fd: 'ISLF:',
  /** the contents of a 0600 file in a 0700 folder */
  file: 'ISLP:',
  /** the banner of the victim's loopback listener */
  listener: 'ISLN:',
} as const;

export type SecretKind = keyof typeof PREFIXES;

/** The environment variable that holds the env secret. */
export const ENV_NAME = 'ISOLANE_ESCAPE_SECRET';
export const SECRET_HEX_DIGITS = 24;
export const SECRET_LENGTH = 5 + SECRET_HEX_DIGITS;

/** A new secret of this kind, as bytes (never as a JS string unless the caller makes one). */
export function newSecret(kind: SecretKind): Buffer {
  const secret = Buffer.allocUnsafeSlow(SECRET_LENGTH);
  secret.write(PREFIXES[kind], 0, 'latin1');
  const random = randomBytes(SECRET_HEX_DIGITS / 2);
  const hex = '0123456789abcdef';
  for (let i = 0; i < random.length; i++) {
    secret[5 + 2 * i] = hex.charCodeAt(random[i]! >> 4);
    secret[6 + 2 * i] = hex.charCodeAt(random[i]! & 15);
  }
  random.fill(0);
  return secret;
}

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/** `ISLH:3fa9…`: enough to show the bytes were read, not enough to be the secret. */
export function redact(secret: Buffer | string): string {
  // Only the first 9 bytes become a string: a whole copy would land in the caller's heap.
  const s = typeof secret === 'string' ? secret.slice(0, 9) : secret.toString('latin1', 0, 9);
  return `${s}…`;
}

function isHexDigit(byte: number): boolean {
  return (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x66);
}

export interface Match {
  /** Offset of the match in the searched bytes. */
  offset: number;
  /** The secret, redacted. */
  preview: string;
}

/**
 * Where in `haystack` a secret of this prefix occurs whose SHA-256 is `hash`. Candidates with the
 * prefix but another value (the attacker's own copy of the prefix, for one) are skipped.
 */
export function findSecret(haystack: Buffer, kind: SecretKind, hash: string, limit = 16): Match[] {
  const prefix = PREFIXES[kind];
  const matches: Match[] = [];
  let from = 0;
  for (;;) {
    const at = haystack.indexOf(prefix, from, 'latin1');
    if (at < 0 || at + SECRET_LENGTH > haystack.length) break;
    from = at + 1;
    let hex = true;
    for (let i = at + 5; i < at + SECRET_LENGTH && hex; i++) hex = isHexDigit(haystack[i]!);
    if (!hex) continue;
    const candidate = haystack.subarray(at, at + SECRET_LENGTH);
    if (sha256(candidate) !== hash) continue;
    matches.push({ offset: at, preview: redact(candidate) });
    if (matches.length >= limit) break;
  }
  return matches;
}
