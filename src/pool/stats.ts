import { createHistogram, type RecordableHistogram } from 'node:perf_hooks';

export interface LatencySummary {
  /** Milliseconds. */
  p50: number;
  p99: number;
  max: number;
  /** How many samples. */
  count: number;
}

/** A latency histogram in microseconds (perf_hooks records integers >= 1), reported in milliseconds. */
export class LatencyRecorder {
  private readonly histogram: RecordableHistogram = createHistogram();

  recordMs(ms: number): void {
    this.histogram.record(Math.max(1, Math.round(ms * 1000)));
  }

  summary(): LatencySummary {
    const h = this.histogram;
    if (h.count === 0) return { p50: 0, p99: 0, max: 0, count: 0 };
    return { p50: h.percentile(50) / 1000, p99: h.percentile(99) / 1000, max: h.max / 1000, count: h.count };
  }
}
