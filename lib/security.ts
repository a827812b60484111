// Privilege options: capabilities (docker's default set, capAdd/capDrop), no_new_privs,
// seccomp, masked and read-only paths. Each can be relaxed explicitly, never silently.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { show } from './show'
import { optionError } from './optionerror'

/** In kernel order (capability.h). */
export const CAPABILITIES = [
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP',
  'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER',
  'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE',
  'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP',
  'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF',
  'CHECKPOINT_RESTORE',
] as const
export type Capability = (typeof CAPABILITIES)[number]

/** What root in a container keeps by default: docker's 14. */
export const DEFAULT_CAPABILITIES: Capability[] = [
  'CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'NET_RAW', 'SETGID', 'SETUID', 'SETFCAP', 'SETPCAP',
  'NET_BIND_SERVICE', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE',
]

export interface SecurityOptions {
  /** Capabilities added to docker's default set: names with or without `CAP_`, or `ALL`. */
  capAdd?: string[]
  /** Capabilities removed from it; `ALL` drops every one (then `capAdd` picks). */
  capDrop?: string[]
  /** Default true: no setuid binary or file capability can raise privileges. */
  noNewPrivileges?: boolean
  /** `'default'` (docker's allowlist, stricter), `'unconfined'`, a path to a docker/OCI JSON profile, or the profile object. */
  seccomp?: 'default' | 'unconfined' | string | object
  /** Paths hidden from the container (default: docker's list, e.g. /proc/kcore, /proc/keys, /sys/firmware). */
  maskedPaths?: string[]
  /** Paths made read-only (default: /proc/bus, /proc/fs, /proc/irq, /proc/sys, /proc/sysrq-trigger). */
  readonlyPaths?: string[]
  /**
   * Default false: the rootfs (an image's overlay too) and bind mounts are `nosuid`, and a container that writes into a
   * host directory (a writable `rootfs` or bind, without a user namespace) cannot make a file
   * setuid or setgid there, nor keep those bits when it writes to one (seccomp on the mode of
   * chmod/open/mknod..., no FSETID or SETFCAP). True: docker's behaviour. A setuid binary raises
   * privileges only with `noNewPrivileges: false` too (and, in an image, layers loaded with `keepSetuid`).
   */
  allowSetuid?: boolean
}

export interface SecuritySpec {
  capabilities: string[]
  /** `capAdd: ['ALL']`: every capability this process may pass on (its bounding set), not an error for the rest. */
  capabilitiesAll: boolean
  noNewPrivileges: boolean
  /** The rootfs (an image's overlay too) and bind mounts are mounted nosuid. */
  nosuid: boolean
  /** The default seccomp profile refuses setuid/setgid modes (core/src/seccomp/compact.rs). */
  setuidGuard: boolean
  seccomp: 'default' | 'unconfined' | { profile: string }
  maskedPaths?: string[]
  readonlyPaths?: string[]
}


function capabilityList(option: string, value: unknown): string[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) throw optionError(TypeError, `${option}`, `Option \`${option}\` must be an array of capability names; got ${show(value)}.`)
  return value.map((v, i) => {
    if (typeof v !== 'string') throw optionError(TypeError, `${option}[${i}]`, `Option \`${option}[${i}]\` must be a string; got ${show(v)}.`)
    const name = v.toUpperCase().replace(/^CAP_/, '')
    if (name !== 'ALL' && !(CAPABILITIES as readonly string[]).includes(name)) {
      throw optionError(RangeError, `${option}[${i}]`, `Option \`${option}[${i}]\` is not a capability; got ${show(v)} (known: ${CAPABILITIES.join(', ')}, ALL).`)
    }
    return name
  })
}

function pathList(option: string, value: unknown): string[] | undefined {
  if (value === undefined) return undefined
  if (!Array.isArray(value)) throw optionError(TypeError, `${option}`, `Option \`${option}\` must be an array of absolute paths; got ${show(value)}.`)
  return value.map((p, i) => {
    if (typeof p !== 'string' || !p.startsWith('/') || p.split('/').includes('..') || p.includes('\0')) {
      throw optionError(RangeError, `${option}[${i}]`, `Option \`${option}[${i}]\` must be an absolute path inside the container without \`..\`; got ${show(p)}.`)
    }
    return p
  })
}

function seccomp(value: unknown): SecuritySpec['seccomp'] {
  if (value === undefined || value === 'default') return 'default'
  if (value === 'unconfined') return 'unconfined'
  if (typeof value === 'string') {
    let text: string
    try {
      text = fs.readFileSync(path.resolve(value), 'utf8')
    } catch (e) {
      throw optionError(RangeError, `seccomp`, `Option \`seccomp\` must be 'default', 'unconfined', a profile object or a readable JSON file; got ${show(value)} (${(e as Error).message}).`)
    }
    try {
      JSON.parse(text)
    } catch (e) {
      throw optionError(RangeError, `seccomp`, `Option \`seccomp\`: ${show(value)} is not JSON (${(e as Error).message}).`)
    }
    return { profile: text }
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    if (typeof (value as { defaultAction?: unknown }).defaultAction !== 'string') {
      throw optionError(RangeError, `seccomp`, `Option \`seccomp\` as a profile needs a \`defaultAction\` (docker/OCI format); got ${show(value)}.`)
    }
    return { profile: JSON.stringify(value) }
  }
  throw optionError(TypeError, `seccomp`, `Option \`seccomp\` must be 'default', 'unconfined', a path or a profile object; got ${show(value)}.`)
}

/** What a setuid plant in a host directory needs besides a mode: keeping the bits on write (FSETID), file capabilities (SETFCAP). */
const SETUID_KEEPERS = ['FSETID', 'SETFCAP']

/** `writesHost`: the container can write into a host directory other host users may reach. */
export function normalizeSecurity(o: SecurityOptions, writesHost: boolean): SecuritySpec {
  const add = capabilityList('capAdd', o.capAdd)
  const drop = capabilityList('capDrop', o.capDrop)
  if (o.allowSetuid !== undefined && typeof o.allowSetuid !== 'boolean') {
    throw optionError(TypeError, `allowSetuid`, `Option \`allowSetuid\` must be a boolean; got ${show(o.allowSetuid)}.`)
  }
  const guard = writesHost && !o.allowSetuid
  // Named in capAdd, they are the caller's explicit choice; from the default set they go.
  let caps = new Set<string>(drop.includes('ALL') ? [] : DEFAULT_CAPABILITIES.filter((c) => !guard || !SETUID_KEEPERS.includes(c)))
  if (add.includes('ALL')) caps = new Set(CAPABILITIES)
  for (const c of add) if (c !== 'ALL') caps.add(c)
  for (const c of drop) if (c !== 'ALL' && !add.includes(c)) caps.delete(c)
  if (o.noNewPrivileges !== undefined && typeof o.noNewPrivileges !== 'boolean') {
    throw optionError(TypeError, `noNewPrivileges`, `Option \`noNewPrivileges\` must be a boolean; got ${show(o.noNewPrivileges)}.`)
  }
  const masked = pathList('maskedPaths', o.maskedPaths)
  const readonly = pathList('readonlyPaths', o.readonlyPaths)
  return {
    capabilities: CAPABILITIES.filter((c) => caps.has(c)),
    capabilitiesAll: add.includes('ALL'),
    noNewPrivileges: o.noNewPrivileges ?? true,
    nosuid: !o.allowSetuid,
    setuidGuard: guard,
    seccomp: seccomp(o.seccomp),
    ...(masked ? { maskedPaths: masked } : {}),
    ...(readonly ? { readonlyPaths: readonly } : {}),
  }
}

/**
 * A rootfs whose /proc, /sys or /dev/null is a symlink is refused (CVE-2019-16884,
 * CVE-2019-19921 and CVE-2025-31133 classes): such a rootfs exists to redirect a mount.
 */
export function checkRootfsLinks(rootfs: string): void {
  for (const p of ['proc', 'sys', 'dev', 'dev/null']) {
    // No exception for an absent entry (created by the container's setup): building one costs ~40 µs.
    const st = fs.lstatSync(path.join(rootfs, p), { throwIfNoEntry: false })
    if (st?.isSymbolicLink()) {
      throw optionError(RangeError, `rootfs`, `Option \`rootfs\` has /${p} as a symlink, which is refused (a rootfs must not redirect /proc, /sys or /dev/null); got ${show(rootfs)}.`)
    }
  }
}
