/** Every bound the escape lab puts on its probes: bytes, time, processes, memory. */

export interface Bounds {
  /** Memory scans: at most this many bytes, and this long. */
  scanBytes: number;
  scanMs: number;
  /** Loopback connect: give up after this long. */
  connectMs: number;
  /** Fork bomb: at most this many children, each of which exits by itself after forkChildSeconds. */
  forkCap: number;
  forkChildSeconds: number;
  forkMaxMs: number;
  /** Memory bomb: up to bombCapMb in bombStepMb steps, held for bombHoldMs, then freed. */
  bombCapMb: number;
  bombStepMb: number;
  bombHoldMs: number;
  /** The memory the whole level may use (a cgroup around it), below the bomb's cap. */
  hostBudgetMb: number;
  /** CPU hog: this many spinning threads for hogMs; the victim's round trip is sampled for baselineMs before. */
  hogMs: number;
  hogSpinners: number;
  baselineMs: number;
}

export function defaultBounds(quick: boolean, cores: number): Bounds {
  return {
    scanBytes: (quick ? 256 : 512) * 1024 * 1024,
    scanMs: quick ? 3_000 : 6_000,
    connectMs: 1_000,
    forkCap: quick ? 100 : 200,
    forkChildSeconds: 2,
    forkMaxMs: 5_000,
    bombCapMb: quick ? 1024 : 2048,
    bombStepMb: 64,
    bombHoldMs: quick ? 300 : 600,
    hostBudgetMb: quick ? 640 : 1024,
    hogMs: quick ? 800 : 2_000,
    hogSpinners: Math.min(4 * cores, 32),
    baselineMs: quick ? 400 : 1_000,
  };
}

/**
 * The CPU hog counts as blocked when the victim's round trip stays within these, against its own
 * baseline measured just before. The p99 is shown but not judged: on an idle machine it is mostly
 * the noise of waking idle cores.
 */
export const HOG_THRESHOLD = {
  /** p50 during the hog at most this many times the baseline p50… */
  p50Ratio: 2,
  /** …and p90 at most this many times the baseline p90, */
  p90Ratio: 3,
  /** or within this many ms of the baseline, which is noise whatever the ratio. */
  slackMs: 1,
};
