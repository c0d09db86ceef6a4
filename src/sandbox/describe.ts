/**
 * What a pool's configuration isolates, boundary by boundary, as observed on Linux (see the escape
 * lab for the evidence). Pure: a function of the resolved options.
 */
import type { ResolvedOptions } from '../pool/options.js';

export type Boundary = 'memory' | 'environment' | 'files' | 'signals' | 'network' | 'crash' | 'resources';

export interface IsolationReport {
  level: string;
  boundaries: Record<Boundary, { holds: boolean; why: string }>;
}

export function describeIsolation(
  o: Pick<ResolvedOptions, 'isolation' | 'tenancy' | 'sandbox'>,
): IsolationReport {
  const sb = o.sandbox;
  const perTenantUid = sb?.uid === 'per-tenant';
  const dedicated = o.tenancy === 'dedicated';
  const ns = sb?.namespaces === true;
  const limits = sb?.limits ?? {};
  const separated = o.isolation === 'process' && dedicated && perTenantUid;
  const level =
    o.isolation !== 'process'
      ? o.isolation
      : [
          'process',
          dedicated ? 'dedicated per tenant' : 'shared by tenants',
          perTenantUid
            ? 'own uid per tenant'
            : sb?.uid !== undefined
              ? 'fixed uid'
              : 'same uid as the caller',
          ...(ns ? ['namespaces'] : []),
          ...(Object.keys(limits).length ? ['limits'] : []),
        ].join(', ');
  const no = (why: string) => ({ holds: false, why });
  const yes = (why: string) => ({ holds: true, why });

  if (o.isolation === 'inline') {
    const all = no('handlers run in the caller\u2019s own thread and heap');
    return {
      level,
      boundaries: {
        memory: all,
        environment: all,
        files: all,
        signals: all,
        network: all,
        crash: no('a crash, exit or hang in a handler is the caller\u2019s'),
        resources: all,
      },
    };
  }
  if (o.isolation === 'thread') {
    const process = no(
      'a worker thread is the same process: /proc/self/mem reads and writes every thread\u2019s memory',
    );
    return {
      level,
      boundaries: {
        memory: process,
        environment: no('threads share the process environment and /proc/self/environ'),
        files: no('threads share the process\u2019s file descriptors and uid'),
        signals: no('process.kill(process.pid) from a thread kills everyone'),
        network: no('threads share the process\u2019s network'),
        crash: no(
          'uncaught errors and process.exit are contained; SIGSEGV, abort() and off-heap memory exhaustion take the whole process down',
        ),
        resources: no(
          'only the heap is bounded (maxHeapMb); CPU, off-heap memory and file descriptors are shared',
        ),
      },
    };
  }
  return {
    level,
    boundaries: {
      memory: separated
        ? yes('each tenant\u2019s workers run under their own uid: /proc/PID/mem of another tenant is denied')
        : no(
            dedicated
              ? 'tenants\u2019 processes share a uid, and a uid can read its own processes\u2019 memory'
              : 'tenants share worker processes',
          ),
      environment: separated
        ? yes(
            `only ${sb?.env.join(', ')} reach tenant code, and other tenants\u2019 /proc/PID/environ is denied`,
          )
        : no('same-uid processes read each other\u2019s /proc/PID/environ'),
      files: separated
        ? yes(
            'files and descriptors of another uid with mode 0600 are denied; world-readable files stay readable',
          )
        : no('same uid: the same files, and /proc/PID/fd of each other'),
      signals:
        separated || ns
          ? yes(
              ns
                ? 'a private pid namespace: no other process is visible'
                : 'a different uid cannot signal another tenant\u2019s process',
            )
          : no('same-uid processes may signal each other'),
      network: ns
        ? yes(
            'a private network namespace with no interfaces up: loopback listeners of others are unreachable',
          )
        : no('the host\u2019s network, loopback listeners included'),
      crash: yes('a crash, abort() or SIGKILL ends only that worker process'),
      resources:
        limits.memoryMb !== undefined && limits.cpuSeconds !== undefined && limits.processes !== undefined
          ? yes(
              `memory ${limits.memoryMb} MiB (cgroup), CPU ${limits.cpuSeconds} s and an equal CPU share (cgroup), processes ${limits.processes}${limits.openFiles ? `, files ${limits.openFiles}` : ''}`,
            )
          : no('set sandbox.limits memoryMb, cpuSeconds and processes to bound memory, CPU and forks'),
    },
  };
}
