/** The escape lab's probes: what each one tries, in the order they run. */

export const PROBE_IDS = [
  'memory-self',
  'memory-victim',
  'environ',
  'cmdline',
  'fd',
  'file',
  'connect',
  'signal',
  'memory-write',
  'cpu-hog',
  'fork-bomb',
  'memory-bomb',
  'kill',
  'crash',
] as const;

export type ProbeId = (typeof PROBE_IDS)[number];

export interface ProbeInfo {
  id: ProbeId;
  title: string;
  /** What the attacker does. */
  tries: string;
}

export const PROBES: Record<ProbeId, ProbeInfo> = {
  'memory-self': {
    id: 'memory-self',
    title: 'read memory: own process',
    tries: "scans its own /proc/self/mem for the victim's heap string and Buffer",
  },
  'memory-victim': {
    id: 'memory-victim',
    title: "read memory: victim's",
    tries: "scans the victim's /proc/PID/mem (layout from /proc/PID/maps) for the same secrets",
  },
  environ: {
    id: 'environ',
    title: 'environment',
    tries:
      "looks for the secret variable in its own process.env and /proc/self/environ, the victim's and the pool host's /proc/PID/environ",
  },
  cmdline: {
    id: 'cmdline',
    title: 'command line',
    tries: "reads the victim's /proc/PID/cmdline (the victim put a secret in its process title)",
  },
  fd: {
    id: 'fd',
    title: 'open descriptor',
    tries: "reads the victim's open descriptor of an unlinked file: by its number, then via /proc/PID/fd/N",
  },
  file: {
    id: 'file',
    title: '0600 file',
    tries: "reads the victim's 0600 file in its 0700 folder",
  },
  connect: {
    id: 'connect',
    title: 'loopback listener',
    tries: "connects to the victim's listener on 127.0.0.1 (that address and port only) and reads its banner",
  },
  signal: {
    id: 'signal',
    title: 'signal the victim',
    tries: 'sends SIGWINCH (harmless) to the victim’s pid',
  },
  'memory-write': {
    id: 'memory-write',
    title: "write memory: victim's",
    tries:
      "finds the victim's Buffer through /proc/PID/mem and overwrites it in place; the victim then reports its value",
  },
  'cpu-hog': {
    id: 'cpu-hog',
    title: 'CPU hog',
    tries: "spins one thread per core for a while; the victim's round trip is measured with and without it",
  },
  'fork-bomb': {
    id: 'fork-bomb',
    title: 'fork bomb (bounded)',
    tries: 'starts short-lived `sleep` processes up to a cap, stopping at the first refusal',
  },
  'memory-bomb': {
    id: 'memory-bomb',
    title: 'memory bomb (bounded)',
    tries: 'allocates and touches off-heap Buffers in 64 MiB steps up to a cap, above the host budget',
  },
  kill: {
    id: 'kill',
    title: 'kill the victim',
    tries: "sends SIGKILL to the victim's pid",
  },
  crash: {
    id: 'crash',
    title: 'crash the shared process',
    tries: 'kills its own process (SIGKILL, then abort() if that is ignored), as a native crash would',
  },
};
