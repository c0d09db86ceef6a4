/** A bad command line: the message is printed with the usage, and the exit code is 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

export function list(
  value: string | undefined,
  flag: string,
  allowed: readonly string[],
): string[] | undefined {
  if (value === undefined) return undefined;
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw new UsageError(`${flag} needs at least one of: ${allowed.join(', ')}`);
  for (const item of items) {
    if (!allowed.includes(item))
      throw new UsageError(`${flag}: unknown value '${item}'; allowed: ${allowed.join(', ')}`);
  }
  return items;
}

export function positiveInt(
  value: string | undefined,
  flag: string,
  min: number,
  max: number,
): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new UsageError(`${flag} must be an integer from ${min} to ${max}; got '${value}'`);
  }
  return n;
}

export function oneOf<T extends string>(
  value: string | undefined,
  flag: string,
  allowed: readonly T[],
): T | undefined {
  if (value === undefined) return undefined;
  if (!allowed.includes(value as T))
    throw new UsageError(`${flag}: unknown value '${value}'; allowed: ${allowed.join(', ')}`);
  return value as T;
}
