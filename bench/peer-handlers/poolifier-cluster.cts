// Poolifier worker for FixedClusterPool: the task functions by name, run with `execute(input, name)`.
//
// CommonJS on purpose. A cluster worker must be listening when the pool's startup message arrives,
// which the pool sends as soon as the process is online; an ES module is evaluated asynchronously,
// after that message has been delivered to no listener, and the pool then waits forever for its
// first task (seen with poolifier 5.3 on Node 20). A CommonJS module is evaluated before any IPC
// message is read.
import poolifier = require('poolifier');
import workload = require('../workload.cjs');

// Poolifier types a task's input as optional (`data?: Data`); these tasks always get one.
const tasks = {
  tiny: workload.tiny,
  cpu: workload.cpu,
  echoBytes: workload.echoBytes,
} as poolifier.TaskFunctions<unknown, unknown>;

export = new poolifier.ClusterWorker<unknown, unknown>(tasks);
