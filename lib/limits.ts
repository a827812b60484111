// Resource limits (cgroups) and rlimits: parsed from docker's notations and validated,
// each error naming the limit and echoing the value.
import * as os from 'node:os'
import { show } from './show'
import { optionError } from './optionerror'

export interface Limits {
  /** Bytes, or docker's notation: `64m`, `1g`, `512k`, `100b`. At least 6 MiB, as docker. */
  memory?: number | string
  /** Memory plus swap (docker's --memory-swap); -1 for unlimited swap. Default: no swap. */
  memorySwap?: number | string
  /** A soft limit the kernel reclaims the container down to under memory pressure (docker's --memory-reservation; v1 memory.soft_limit_in_bytes, v2 memory.low). */
  memoryReservation?: number | string
  /** Fraction of the host's CPUs, as `docker --cpus` (0.5 = half of one CPU). */
  cpus?: number
  /** Relative weight, 2 to 262144 (docker's --cpu-shares; 1024 is the default weight). */
  cpuShares?: number
  /** CPUs the container may run on, as `0-2,4` (docker's --cpuset-cpus). */
  cpuset?: string
  /** Memory nodes, as `0` (docker's --cpuset-mems). */
  cpusetMems?: string
  /** Most processes and threads alive at once (docker's --pids-limit). */
  pids?: number
  /** Relative IO weight, 10 to 1000, where the host's IO scheduler has one. */
  ioWeight?: number
}

export const RLIMIT_NAMES = [
  'as', 'core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack',
] as const
export type RlimitName = (typeof RLIMIT_NAMES)[number]
/** One value (soft = hard), `[soft, hard]` or `{ soft, hard }`; -1 or 'unlimited' for no limit. */
export type RlimitValue = number | 'unlimited' | [number | 'unlimited', number | 'unlimited'] | { soft: number | 'unlimited'; hard: number | 'unlimited' }
export type Rlimits = Partial<Record<RlimitName, RlimitValue>>

/** What core/src/cgroups Limits receives. */
export interface LimitsSpec {
  memory?: number
  memorySwap?: number
  memoryReservation?: number
  cpus?: number
  cpuShares?: number
  cpusetCpus?: string
  cpusetMems?: string
  pids?: number
  ioWeight?: number
}

const bad = (name: string, expected: string, value: unknown) => optionError(RangeError, `${name}`, `Option \`${name}\` must be ${expected}; got ${show(value)}.`)
const UNITS: Record<string, number> = { b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }

/** Bytes from a number or docker's `64m` / `1GiB` notation. */
export function parseBytes(name: string, value: unknown): number {
  if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) return value
  if (typeof value === 'string') {
    // docker's RAMInBytes: binary units, with or without i and b (64m, 64MB, 1GiB, 1.5g).
    const m = /^([0-9]+(?:\.[0-9]+)?)\s*(?:([kmgt])i?)?b?$/i.exec(value.trim())
    if (m) {
      const bytes = Math.floor(Number(m[1]) * UNITS[(m[2] ?? 'b').toLowerCase()])
      if (bytes > 0 && Number.isSafeInteger(bytes)) return bytes
    }
  }
  throw bad(name, 'a positive number of bytes or a size like "64m" or "1g"', value)
}

function integer(name: string, value: unknown, min: number, max: number): number {
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) throw bad(name, `an integer from ${min} to ${max}`, value)
  return value as number
}

const CPU_LIST = /^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$/

export function normalizeLimits(value: unknown): LimitsSpec | null {
  if (value === undefined) return null
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw optionError(TypeError, `limits`, `Option \`limits\` must be an object; got ${show(value)}.`)
  const l = value as Limits
  const known = ['memory', 'memorySwap', 'memoryReservation', 'cpus', 'cpuShares', 'cpuset', 'cpusetMems', 'pids', 'ioWeight']
  for (const key of Object.keys(l)) {
    if (!known.includes(key)) throw optionError(RangeError, `limits`, `Option \`limits\` has an unknown key \`${key}\` (known: ${known.join(', ')}).`)
  }
  const out: LimitsSpec = {}
  if (l.memory !== undefined) {
    out.memory = parseBytes('limits.memory', l.memory)
    if (out.memory < 6 * 1024 * 1024) throw bad('limits.memory', 'at least 6 MiB (6m)', l.memory)
  }
  if (l.memorySwap !== undefined) {
    if (out.memory === undefined) throw bad('limits.memorySwap', 'given together with `limits.memory`', l.memorySwap)
    out.memorySwap = l.memorySwap === -1 ? -1 : parseBytes('limits.memorySwap', l.memorySwap)
    if (out.memorySwap !== -1 && out.memorySwap < out.memory) throw bad('limits.memorySwap', `at least limits.memory (${out.memory} bytes), or -1`, l.memorySwap)
  }
  if (l.memoryReservation !== undefined) {
    out.memoryReservation = parseBytes('limits.memoryReservation', l.memoryReservation)
    // docker: "Minimum memory limit should be larger than memory reservation limit".
    if (out.memory !== undefined && out.memoryReservation > out.memory) throw bad('limits.memoryReservation', `at most limits.memory (${out.memory} bytes)`, l.memoryReservation)
  }
  if (l.cpus !== undefined) {
    const max = os.availableParallelism()
    if (typeof l.cpus !== 'number' || !(l.cpus >= 0.01 && l.cpus <= max)) throw bad('limits.cpus', `a number from 0.01 to ${max} (this host's CPUs)`, l.cpus)
    out.cpus = l.cpus
  }
  if (l.cpuShares !== undefined) out.cpuShares = integer('limits.cpuShares', l.cpuShares, 2, 262144)
  for (const [key, field] of [['cpuset', 'cpusetCpus'], ['cpusetMems', 'cpusetMems']] as const) {
    const v = l[key]
    if (v === undefined) continue
    if (typeof v !== 'string' || !CPU_LIST.test(v)) throw bad(`limits.${key}`, 'a list like "0-2,4"', v)
    out[field] = v
  }
  if (l.pids !== undefined) out.pids = integer('limits.pids', l.pids, 1, 4194304)
  if (l.ioWeight !== undefined) out.ioWeight = integer('limits.ioWeight', l.ioWeight, 10, 1000)
  return out
}

function rlimitNumber(name: string, v: unknown): number {
  if (v === 'unlimited' || v === -1) return -1
  if (Number.isSafeInteger(v) && (v as number) >= 0) return v as number
  throw bad(name, 'a non-negative integer, -1 or "unlimited"', v)
}

export function normalizeRlimits(value: unknown): Array<{ name: RlimitName; soft: number; hard: number }> {
  if (value === undefined) return []
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw optionError(TypeError, `rlimits`, `Option \`rlimits\` must be an object like { nofile: 1024 }; got ${show(value)}.`)
  return Object.entries(value).map(([name, v]) => {
    if (!(RLIMIT_NAMES as readonly string[]).includes(name)) throw optionError(RangeError, `rlimits`, `Option \`rlimits\` has an unknown resource \`${name}\` (known: ${RLIMIT_NAMES.join(', ')}).`)
    const at = `rlimits.${name}`
    let soft: number
    let hard: number
    if (Array.isArray(v) && v.length === 2) [soft, hard] = [rlimitNumber(`${at}[0]`, v[0]), rlimitNumber(`${at}[1]`, v[1])]
    else if (typeof v === 'object' && v !== null && !Array.isArray(v)) [soft, hard] = [rlimitNumber(`${at}.soft`, (v as { soft: unknown }).soft), rlimitNumber(`${at}.hard`, (v as { hard: unknown }).hard)]
    else soft = hard = rlimitNumber(at, v)
    if (hard !== -1 && (soft === -1 || soft > hard)) throw bad(at, 'a soft limit no higher than the hard limit', v)
    return { name: name as RlimitName, soft, hard }
  })
}
