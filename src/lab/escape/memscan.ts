/**
 * Reading (and writing) another process's memory the way an attacker would: /proc/PID/maps for the
 * layout, /proc/PID/mem for the bytes. Every scan is bounded in bytes and in time.
 */
import { closeSync, openSync, readFileSync, readSync, writeSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { errorCode } from './errors.js';
import { findSecret, SECRET_LENGTH, type SecretKind, sha256 } from './secrets.js';

export interface Region {
  start: number;
  end: number;
  perms: string;
  /** The mapped file, or a pseudo-name like [heap]; '' for anonymous memory. */
  path: string;
}

/** Parses /proc/PID/maps. Addresses fit a double: user space ends below 2^47. */
export function parseMaps(text: string): Region[] {
  const regions: Region[] = [];
  for (const line of text.split('\n')) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) (\S{4}) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (!m) continue;
    regions.push({
      start: Number.parseInt(m[1]!, 16),
      end: Number.parseInt(m[2]!, 16),
      perms: m[3]!,
      path: m[4]!.trim(),
    });
  }
  return regions;
}

/**
 * The regions worth scanning, most promising first: secrets made at run time live in writable
 * memory (the malloc heap, anonymous mappings, V8's pages), never in read-only or code mappings.
 * Kernel pseudo-mappings are skipped: reading them fails or means nothing.
 */
export function scanOrder(regions: Region[]): Region[] {
  const skip = new Set(['[vvar]', '[vvar_vclock]', '[vsyscall]', '[vdso]']);
  const writable = regions.filter((r) => r.perms[0] === 'r' && r.perms[1] === 'w' && !skip.has(r.path));
  const rank = (r: Region) => (r.path === '[heap]' ? 0 : r.path === '' ? 1 : r.path === '[stack]' ? 3 : 2);
  return writable.sort((a, b) => rank(a) - rank(b) || a.start - b.start);
}

export interface ScanBounds {
  maxBytes: number;
  maxMs: number;
}

export interface ScanTarget {
  kind: SecretKind;
  hash: string;
}

export interface Hit {
  /** Hex address. */
  address: string;
  /** The mapping it was found in. */
  region: string;
  preview: string;
}

export interface ScanResult {
  /** What was read: /proc/self/mem or /proc/PID/mem. */
  path: string;
  /** Why the maps or mem file could not be opened (an errno code), if it could not. */
  error?: string;
  regions: number;
  regionsScanned: number;
  unreadableRegions: number;
  bytesScanned: number;
  ms: number;
  stoppedBy: 'found' | 'bytes' | 'time' | 'end' | 'error';
  hits: Partial<Record<SecretKind, Hit[]>>;
}

const CHUNK = 4 * 1024 * 1024;

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

function regionName(r: Region): string {
  return `${hex(r.start)}-${hex(r.end)} ${r.perms} ${r.path || '[anon]'}`;
}

/**
 * Scans a process's writable memory for secrets, each known only by its SHA-256. Stops when every
 * target has `perTarget` hits, or after `maxBytes`, or after `maxMs`.
 */
export function scanMemory(
  pid: number | 'self',
  targets: ScanTarget[],
  bounds: ScanBounds,
  perTarget = 1,
): ScanResult {
  const started = performance.now();
  const base = `/proc/${pid}`;
  const result: ScanResult = {
    path: `${base}/mem`,
    regions: 0,
    regionsScanned: 0,
    unreadableRegions: 0,
    bytesScanned: 0,
    ms: 0,
    stoppedBy: 'end',
    hits: {},
  };
  let regions: Region[];
  let fd: number;
  try {
    regions = scanOrder(parseMaps(readFileSync(`${base}/maps`, 'latin1')));
    fd = openSync(`${base}/mem`, 'r');
  } catch (err) {
    result.error = errorCode(err);
    result.stoppedBy = 'error';
    result.ms = performance.now() - started;
    return result;
  }
  result.regions = regions.length;
  const chunk = Buffer.allocUnsafeSlow(CHUNK + SECRET_LENGTH);
  const done = () => targets.every((t) => (result.hits[t.kind]?.length ?? 0) >= perTarget);
  try {
    outer: for (const region of regions) {
      result.regionsScanned++;
      for (let at = region.start; at < region.end; at += CHUNK) {
        if (result.bytesScanned >= bounds.maxBytes) {
          result.stoppedBy = 'bytes';
          break outer;
        }
        if (performance.now() - started > bounds.maxMs) {
          result.stoppedBy = 'time';
          break outer;
        }
        // Read a little past the chunk, so a secret straddling two chunks is seen whole.
        const length = Math.min(CHUNK + SECRET_LENGTH, region.end - at);
        let read: number;
        try {
          read = readSync(fd, chunk, 0, length, at);
        } catch {
          result.unreadableRegions++;
          continue outer;
        }
        result.bytesScanned += Math.min(read, CHUNK);
        const view = chunk.subarray(0, read);
        for (const target of targets) {
          const have = result.hits[target.kind] ?? [];
          if (have.length >= perTarget) continue;
          for (const m of findSecret(view, target.kind, target.hash, perTarget - have.length)) {
            if (m.offset >= CHUNK) continue; // found again in the next chunk
            have.push({ address: hex(at + m.offset), region: regionName(region), preview: m.preview });
          }
          if (have.length > 0) result.hits[target.kind] = have;
        }
        if (done()) {
          result.stoppedBy = 'found';
          break outer;
        }
      }
    }
  } finally {
    chunk.fill(0);
    closeSync(fd);
  }
  result.ms = performance.now() - started;
  return result;
}

export interface WriteResult {
  path: string;
  /** Addresses written, each after checking it still held the secret. */
  written: string[];
  error?: string;
}

/**
 * Overwrites, in place, each hit that still holds the secret, with `replacement` (same length).
 */
export function overwrite(pid: number | 'self', hits: Hit[], hash: string, replacement: Buffer): WriteResult {
  const path = `/proc/${pid}/mem`;
  const out: WriteResult = { path, written: [] };
  let fd: number;
  try {
    fd = openSync(path, 'r+');
  } catch (err) {
    out.error = errorCode(err);
    return out;
  }
  const current = Buffer.alloc(SECRET_LENGTH);
  try {
    for (const hit of hits) {
      const address = Number.parseInt(hit.address, 16);
      try {
        if (readSync(fd, current, 0, SECRET_LENGTH, address) !== SECRET_LENGTH) continue;
        if (sha256(current) !== hash) continue;
        writeSync(fd, replacement, 0, SECRET_LENGTH, address);
        out.written.push(hit.address);
      } catch (err) {
        out.error = errorCode(err);
      }
    }
  } finally {
    current.fill(0);
    closeSync(fd);
  }
  return out;
}
