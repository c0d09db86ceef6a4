/**
 * The task functions of the benchmark's workloads. Every contender's worker module imports these same functions,
 * so every pool runs exactly the same code and only the pool around it differs.
 *
 * CommonJS (it compiles to workload.cjs) so that the one worker that has to be CommonJS, Poolifier's
 * cluster worker, can load it as well; ES modules import it like any other module.
 */

/**
 * Iterations of the CPU task. Fixed (not calibrated at run time) so that every machine does the same
 * work; about 1 ms on a recent x86 core. The benchmark prints what it costs on the machine it runs on.
 */
const CPU_ITERATIONS = 330_000;

/** The tiny task: nothing to compute, so what is measured is the pool's own overhead. */
function tiny(x: number): number {
  return x + 1;
}

/** The CPU task: a deterministic busy loop (a sum of square roots) of about 1 ms. */
function cpu(iterations: number): number {
  let sum = 0;
  for (let i = 0; i < iterations; i++) sum += Math.sqrt(i);
  return sum;
}

/**
 * The payload tasks (4 KiB, 1 MiB): the bytes come back as they arrived, so that the payload
 * travels both ways and the handler itself costs nothing.
 */
function echoBytes(bytes: Uint8Array): Uint8Array {
  return bytes;
}

export = { CPU_ITERATIONS, tiny, cpu, echoBytes };
