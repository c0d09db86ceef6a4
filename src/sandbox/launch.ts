/**
 * How a sandboxed process worker is started: a chain of util-linux programs, each of which sets up
 * one thing and execs the next, so that the Node process that runs tenant code starts inside every
 * boundary. The IPC channel's file descriptor passes through the chain untouched.
 *
 *   sh (joins the worker's cgroups) → unshare (pid, net, ipc, mount, uts namespaces; a private /proc)
 *   → setpriv (own uid/gid, no groups, no capabilities, no new privileges) → prlimit (rlimits) → node
 */
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface SandboxLaunch {
  uid?: number;
  namespaces: boolean;
  cpuSeconds?: number;
  openFiles?: number;
  /** cgroup.procs files to join first. */
  cgroupProcs: string[];
  /** Node's permission model: only these folders are readable; no writes, no child processes, no workers. */
  permissionReadDirs?: string[];
}

export interface Command {
  command: string;
  args: string[];
}

export function sandboxCommand(launch: SandboxLaunch, node: string, nodeArgs: string[]): Command {
  const chain: string[] = [];
  if (launch.namespaces) {
    // unshare dies with its parent (the pool), and takes the namespace's processes with it.
    chain.push('setpriv', '--pdeathsig=SIGKILL', '--');
    chain.push(
      'unshare',
      '--fork',
      '--kill-child=SIGKILL',
      '--pid',
      '--net',
      '--ipc',
      '--mount',
      '--mount-proc',
      '--uts',
      '--',
    );
  }
  if (launch.uid !== undefined) {
    chain.push(
      'setpriv',
      `--reuid=${launch.uid}`,
      `--regid=${launch.uid}`,
      '--clear-groups',
      '--no-new-privs',
      // A change of uid clears the parent-death signal: set it again, so the worker dies with its parent.
      '--pdeathsig=SIGKILL',
      '--inh-caps=-all',
      '--bounding-set=-all',
      '--',
    );
  }
  const rlimits: string[] = [];
  // Soft limit below the hard one: the worker dies of SIGXCPU (reported as the CPU limit), not SIGKILL.
  if (launch.cpuSeconds !== undefined) rlimits.push(`--cpu=${launch.cpuSeconds}:${launch.cpuSeconds + 1}`);
  if (launch.openFiles !== undefined) rlimits.push(`--nofile=${launch.openFiles}`);
  if (rlimits.length > 0) chain.push('prlimit', ...rlimits, '--');
  const permission = launch.permissionReadDirs
    ? ['--experimental-permission', `--allow-fs-read=${launch.permissionReadDirs.join(',')}`]
    : [];
  chain.push(node, ...permission, ...nodeArgs);
  if (launch.cgroupProcs.length === 0) return { command: chain[0]!, args: chain.slice(1) };
  // `sh` writes its own pid into each cgroup, then becomes the rest of the chain.
  const joins = launch.cgroupProcs.map((_, i) => `echo $$ > "$${i + 1}"`).join(' && ');
  const n = launch.cgroupProcs.length;
  return {
    command: '/bin/sh',
    args: ['-c', `${joins} && shift ${n} && exec "$@"`, 'isolane-sandbox', ...launch.cgroupProcs, ...chain],
  };
}

/** The folders a worker under the permission model must read: isolane's own files and the handler module's. */
export function permissionDirs(handlersUrl: string): string[] {
  const isolaneRoot = fileURLToPath(new URL('../../', import.meta.url));
  const handlersDir = handlersUrl.startsWith('file:') ? dirname(fileURLToPath(handlersUrl)) : undefined;
  return [...new Set([isolaneRoot, ...(handlersDir ? [handlersDir] : [])])];
}
