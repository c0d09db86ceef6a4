/** How a failed attempt is reported: the errno code when there is one (EACCES, ENOENT, ESRCH…). */
export function errorCode(err: unknown): string {
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; name?: unknown; message?: unknown };
    if (typeof e.code === 'string') return e.code;
    if (typeof e.name === 'string' && e.name !== 'Error') return e.name;
    if (typeof e.message === 'string') return e.message.slice(0, 80);
  }
  return String(err).slice(0, 80);
}
