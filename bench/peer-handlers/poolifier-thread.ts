// Poolifier worker for FixedThreadPool: the task functions by name, run with `execute(input, name)`.
import { type TaskFunctions, ThreadWorker } from 'poolifier';
import { cpu, tiny } from '../workload.cjs';

// Poolifier types a task's input as optional (`data?: Data`); these tasks always get one.
export default new ThreadWorker<number, number>({ tiny, cpu } as TaskFunctions<number, number>);
