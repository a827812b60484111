// How an option's value is echoed in error messages.
import { inspect } from 'node:util'

/** The caller's value as they wrote it (ownOnly's null-prototype copies shown as plain objects). */
function asWritten(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(asWritten)
  if (typeof v !== 'object' || v === null || Object.getPrototypeOf(v) !== null) return v
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, asWritten(x)]))
}

export const show = (v: unknown): string => inspect(asWritten(v), { breakLength: Infinity, maxStringLength: 80 })
