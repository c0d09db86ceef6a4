// isolane's handler module for the benchmark: its named function exports are the handlers.
export { cpu, tiny } from './workload.cjs';
