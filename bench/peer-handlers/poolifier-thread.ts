// Poolifier worker for FixedThreadPool: the task functions by name, run with `execute(input, name)`.
import { type TaskFunctions, ThreadWorker } from 'poolifier';
import { cpu, echoBytes, tiny } from '../workload.cjs';

// Poolifier types a task's input as optional (`data?: Data`); these tasks always get one.
export default new ThreadWorker<unknown, unknown>({ tiny, cpu, echoBytes } as TaskFunctions<
  unknown,
  unknown
>);
