// Piscina worker module: exported functions, picked per task with `run(input, { name })`.
// The default export is what Piscina preloads when the worker starts.
import { tiny } from '../workload.cjs';

export { cpu, echoBytes, tiny } from '../workload.cjs';
export default tiny;
