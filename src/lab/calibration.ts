import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

/** Where the labs keep what they measured, for the advisor and the report: $XDG_CACHE_HOME/isolane or ~/.cache/isolane. */
export function cacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'isolane');
}

export function calibrationPath(): string {
  return process.env.ISOLANE_CALIBRATION || join(cacheDir(), 'calibration.json');
}

export function writeCalibration(data: unknown, path = calibrationPath()): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(data, null, 2)}\n`);
  return path;
}

export function readCalibration<T>(path = calibrationPath()): T | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch {
    return undefined;
  }
}
