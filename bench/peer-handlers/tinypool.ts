// Tinypool worker module (worker_threads and child_process alike): exported functions, picked per
// task with `run(input, { name })`. The default export is what Tinypool preloads when a worker starts.
import { tiny } from '../workload.cjs';

export { cpu, echoBytes, tiny } from '../workload.cjs';
export default tiny;
