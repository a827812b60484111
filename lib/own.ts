// Options are read from the caller's own properties only.

/**
 * A copy of `value` with only its own properties, plain objects as null-prototype objects and
 * arrays without holes: what Object.prototype or Array.prototype carry (prototype pollution
 * anywhere in the host application) is never read as an option. Other objects (AbortSignal,
 * Uint8Array) are kept as they are.
 */
export function ownOnly(value: unknown): unknown {
  if (Array.isArray(value)) return Array.from({ length: value.length }, (_, i) => (Object.hasOwn(value, i) ? ownOnly(value[i]) : undefined))
  if (typeof value !== 'object' || value === null) return value
  const proto = Object.getPrototypeOf(value)
  if (proto !== Object.prototype && proto !== null) return value
  const copy = Object.create(null) as Record<string, unknown>
  for (const key of Object.keys(value)) copy[key] = ownOnly((value as Record<string, unknown>)[key])
  return copy
}
