// workerpool worker script (thread and process alike): registers the task functions by name.
import workerpool from 'workerpool';
import { cpu, echoBytes, tiny } from '../workload.cjs';

workerpool.worker({ tiny, cpu, echoBytes });
