export interface LatencySummary {
  /** Milliseconds. */
  p50: number;
  p99: number;
  max: number;
  /** How many samples. */
  count: number;
}

/** Values below this many µs each have a bucket of their own; above, 128 buckets per power of two. */
const EXACT_BELOW = 256;
const SUB_BUCKET_BITS = 7;
const SUB_BUCKETS = 1 << SUB_BUCKET_BITS;
/** Up to 2^31 µs (about 36 minutes); longer samples count as that. */
const MAX_EXPONENT = 30;
const BUCKETS = EXACT_BELOW + (MAX_EXPONENT - 7) * SUB_BUCKETS;
const LONGEST_US = 2 ** (MAX_EXPONENT + 1) - 1;

function bucketOf(us: number): number {
  if (us < EXACT_BELOW) return us;
  const exponent = Math.min(31 - Math.clz32(us), MAX_EXPONENT);
  const sub = (us >>> (exponent - SUB_BUCKET_BITS)) & (SUB_BUCKETS - 1);
  return EXACT_BELOW + (exponent - 8) * SUB_BUCKETS + sub;
}

/** The middle of a bucket's range, in µs. */
function middleOf(bucket: number): number {
  if (bucket < EXACT_BELOW) return bucket;
  const exponent = 8 + Math.floor((bucket - EXACT_BELOW) / SUB_BUCKETS);
  const sub = (bucket - EXACT_BELOW) % SUB_BUCKETS;
  const width = 2 ** (exponent - SUB_BUCKET_BITS);
  return (SUB_BUCKETS + sub) * width + (width - 1) / 2;
}

/**
 * A latency histogram in microseconds, reported in milliseconds: log-linear buckets (exact below
 * 256 µs, within 0.4% above), like HdrHistogram's. Not `perf_hooks.createHistogram`: its `record`
 * is a native call with argument checks, about 30 ns, and the pool records two latencies per task,
 * which came to a tenth of the whole cost of a tiny task; here a sample is an array increment.
 */
export class LatencyRecorder {
  private readonly counts = new Float64Array(BUCKETS);
  private count = 0;
  private maxUs = 0;

  recordMs(ms: number): void {
    const us = ms >= 0.001 ? Math.round(ms * 1000) : 1;
    this.counts[bucketOf(Math.min(us, LONGEST_US))]!++;
    this.count++;
    if (us > this.maxUs) this.maxUs = us;
  }

  /** The value at percentile `p` (0 to 100), in µs. */
  percentileUs(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.count));
    let seen = 0;
    for (let b = 0; b < BUCKETS; b++) {
      seen += this.counts[b]!;
      if (seen >= rank) return Math.min(middleOf(b), this.maxUs);
    }
    return this.maxUs;
  }

  summary(): LatencySummary {
    if (this.count === 0) return { p50: 0, p99: 0, max: 0, count: 0 };
    return {
      p50: this.percentileUs(50) / 1000,
      p99: this.percentileUs(99) / 1000,
      max: this.maxUs / 1000,
      count: this.count,
    };
  }
}
