// Options are normalized in one place: every validator names the option and echoes the
// bad value, and throws before any process exists.
import { constants } from 'node:os'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { ownOnly } from './own'
import { relayedStdio } from './relay'
import { show } from './show'

import { normalizeLimits, normalizeRlimits, parseBytes, type Limits, type LimitsSpec, type Rlimits } from './limits'
import { deviceNodes, type Device, type DeviceNode } from './devices'
import { checkRootfsLinks, normalizeSecurity, type SecurityOptions, type SecuritySpec } from './security'
import { findImage, imageCommand, makeImageRoot, type ImageRootSpec } from './imageroot'
import { resolveGroups, resolveUser, type User } from './users'
import { optionError } from './optionerror'
import { normalizeSysctls } from './sysctls'

export type StdioOption = 'pipe' | 'inherit' | 'ignore' | number
/** `size` ids from `containerId` inside the container are `hostId`... outside. */
export interface IdRange {
  containerId: number
  hostId: number
  size: number
}
export type NamespaceName = 'pid' | 'mount' | 'uts' | 'ipc' | 'net' | 'cgroup' | 'user'
/** A terminal's size in character cells (`tty`, `resize()`). */
export interface TtySize {
  /** Default 80. */
  columns?: number
  /** Default 24. */
  rows?: number
}

/** docker's bind propagation types; a bind is recursive, so `slave` acts as `rslave`. */
export type Propagation = 'private' | 'rprivate' | 'slave' | 'rslave' | 'shared' | 'rshared'
export const PROPAGATIONS: readonly Propagation[] = ['private', 'rprivate', 'slave', 'rslave', 'shared', 'rshared']

export type Mount =
  | {
      type: 'bind'
      source: string
      target: string
      readonly?: boolean
      /**
       * Default private: nothing mounted on either side reaches the other. `rslave`: mounts the
       * host makes below the source later appear inside; `rshared`: also the container's own
       * appear on the host (only a container allowed to mount can make any).
       */
      propagation?: Propagation
    }
  | {
      type: 'tmpfs'
      target: string
      size?: number | string
      mode?: number
      /** Read-only (docker's `ro`). Default false. */
      readonly?: boolean
      /** No program runs from it (docker's --tmpfs default). Default false. Always nosuid and nodev. */
      noexec?: boolean
      /** Owner of its root directory. Default 0:0. */
      uid?: number
      gid?: number
    }

export interface ContainerOptions extends SecurityOptions {
  /** Root directory of the container. Default: a read-only mirror of the host's /usr, /bin, /lib*, /sbin, /etc. */
  rootfs?: string
  /** Default `lonely`. */
  hostname?: string
  /** Each namespace is on by default; set one to false to share the host's. */
  namespaces?: Partial<Record<NamespaceName, boolean>>
  /** Added to the container's default env (PATH, HOSTNAME, HOME); never the Node process's env. */
  env?: Record<string, string>
  /** Working directory inside the container. Default `/`. */
  cwd?: string
  /**
   * docker's `-u`: `name`, `uid`, `name:group` or `uid:gid`, looked up in the container's own
   * /etc/passwd and /etc/group. It sets the uid, the gid (the user's primary group unless given),
   * the groups /etc/group lists the user in, and HOME (its passwd home). Excludes `uid` and `gid`.
   */
  user?: string
  /** Numeric user id; its group, groups and home are looked up as for `user`. Default 0, or the image's User. */
  uid?: number
  gid?: number
  /** More supplementary groups (docker's --group-add): ids, or names in the container's /etc/group. */
  groups?: Array<number | string>
  /** Host device nodes made in the container's /dev (docker's --device): paths, or `{ source, target }`. */
  devices?: Array<string | Device>
  /** Size of /dev/shm (docker's --shm-size): bytes or `64m`. Default 64 MiB. */
  shmSize?: number | string
  /** The container's /proc/self/oom_score_adj, -1000 to 1000 (lowering it needs CAP_SYS_RESOURCE). */
  oomScoreAdj?: number
  /** One value for all three streams, or one per stream. Default `pipe`. */
  stdio?: StdioOption | [StdioOption, StdioOption, StdioOption]
  stdin?: StdioOption
  stdout?: StdioOption
  stderr?: StdioOption
  /** Written to stdin, which is then closed. */
  input?: string | Uint8Array
  /** Kill the container after this many milliseconds. */
  timeout?: number
  cancelSignal?: AbortSignal
  /** Sent on timeout, cancel and kill(). Default SIGTERM. */
  killSignal?: NodeJS.Signals | number
  /** Then SIGKILL after this many ms (PID 1 ignores signals it has no handler for). Default 2000. */
  forceKillAfterDelay?: number
  mounts?: Mount[]
  /** Mount the rootfs read-only (the default mirror root is always read-only). */
  readonlyRoot?: boolean
  /**
   * A pseudo-terminal on stdin/stdout/stderr, as `docker run -t`. `true` makes it 80x24;
   * `{ columns, rows }` another size. The command's first TIOCGWINSZ sees it; `resize()`
   * changes it later (SIGWINCH).
   */
  tty?: boolean | TtySize
  /**
   * Namespaced sysctls, as `docker run --sysctl`: net.* (needs `namespaces.net`), kernel.shm*,
   * kernel.msg*, kernel.sem, fs.mqueue.* (`namespaces.ipc`), kernel.domainname (`namespaces.uts`).
   * With its own network namespace a container gets docker's defaults first:
   * `net.ipv4.ip_unprivileged_port_start: '0'` and (without a user namespace)
   * `net.ipv4.ping_group_range: '0 2147483647'`; these override them.
   */
  sysctls?: Record<string, string | number>
  /**
   * Default false. True: PID 1 is lonely-init (docker --init, tini's job), which runs the
   * command as its child, forwards signals to it, reaps every zombie, and exits with its status.
   */
  init?: boolean
  /** An image from the store (`images.load`): its layers stacked read-only, a fresh writable layer on top. */
  image?: string
  /** The image store; default /var/lib/lonely for root, ~/.local/share/lonely otherwise. */
  store?: string
  /** Keep the container's writable layer after it ends (its path is `result.keptLayer`). */
  keep?: boolean
  /** Replaces the image's Entrypoint (`[]` clears it) and drops its Cmd, as `docker run --entrypoint`. */
  entrypoint?: string[]
  /**
   * uid ranges of the user namespace (default: the caller's uid as 0). Root writes them
   * directly; other users need shadow's `newuidmap` and a range in /etc/subuid.
   */
  uidMap?: IdRange[]
  /** gid ranges, as `uidMap` (`newgidmap`, /etc/subgid). */
  gidMap?: IdRange[]
  /** cgroup limits; the container gets a cgroup (and memory/pids accounting) only with this. */
  limits?: Limits
  /** setrlimit before exec, by docker's --ulimit names: `{ nofile: 1024, core: 0 }`. */
  rlimits?: Rlimits
}

export interface RunOptions extends ContainerOptions {
  /** Reject on non-zero exit, signal, timeout or cancel. Default true. */
  reject?: boolean
  /** `utf8` (default) or `buffer`. */
  encoding?: 'utf8' | 'buffer'
  /** Largest stdout/stderr kept, in bytes. Default 100 MB. */
  maxBuffer?: number
  /** Default true, as execa. */
  stripFinalNewline?: boolean
}

const RUN_ONLY = ['reject', 'encoding', 'maxBuffer', 'stripFinalNewline'] as const
const CONTAINER_KEYS = [
  'rootfs', 'hostname', 'namespaces', 'env', 'cwd', 'user', 'uid', 'gid', 'groups', 'stdio', 'stdin', 'stdout',
  'stderr', 'input', 'timeout', 'cancelSignal', 'killSignal', 'forceKillAfterDelay', 'mounts', 'readonlyRoot', 'tty', 'init',
  'image', 'store', 'keep', 'entrypoint', 'uidMap', 'gidMap', 'limits', 'rlimits', 'capAdd', 'capDrop', 'noNewPrivileges', 'allowSetuid', 'seccomp', 'maskedPaths', 'readonlyPaths', 'devices', 'shmSize', 'oomScoreAdj', 'sysctls',
] as const
const NAMESPACES: NamespaceName[] = ['pid', 'mount', 'uts', 'ipc', 'net', 'cgroup', 'user']
const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/

/** What the addon receives (core/src/spec.rs ContainerSpec). */
export interface Spec extends SecuritySpec {
  devices?: DeviceNode[]
  shmSize?: string
  oomScoreAdj?: number
  argv: string[]
  env: string[]
  cwd: string
  hostname: string | null
  namespaces: Record<NamespaceName, boolean>
  rootfs: string | null
  readonlyRoot: boolean
  /** The container's own tmpfs /tmp. */
  tmp: boolean
  mounts: Array<{ type: 'bind'; source: string; target: string; readonly: boolean; propagation: Propagation | null } | { type: 'tmpfs'; target: string; size: string | null; mode: string | null; readonly: boolean; noexec: boolean; uid: number | null; gid: number | null }>
  uid: number
  gid: number
  groups: number[]
  tty: boolean
  /** With `tty`: the terminal's size before the command runs. */
  ttySize?: { columns: number; rows: number }
  /** Namespaced sysctls, written in the container's namespaces (docker's defaults included). */
  sysctl?: Record<string, string>
  stdio: StdioOption[]
  limits?: LimitsSpec
  rlimits?: Array<{ name: string; soft: number; hard: number }>
  image?: ImageRootSpec
  idMaps?: { uid: IdRange[]; gid: IdRange[]; newuidmap: string | null; newgidmap: string | null }
  /** Exec into the running container whose PID 1 is this host pid (lib/exec.ts). */
  join?: number
  /** With `join`, for a detached container another process made: its PID 1's start time. */
  joinStart?: number
  joinCgroups?: string[]
  init?: boolean
  /** With a monitor (lonely-monitor) as PID 1's parent, holding its stdio, log and status in `stateDir`. */
  detached?: boolean
  stateDir?: string
  /** Created, not started: PID 1 waits for its monitor's word (lonely-init --hold). */
  held?: boolean
  /** Detached with an image: its layer's lock fd, for its monitor to hold. */
  layerLock?: number
}

export interface Normalized {
  spec: Spec
  /** Removes the container's writable layer (image roots; nothing ran, or it ended without `keep`). */
  discard?: () => void
  /** Keeps it (`keep: true`, once the container ended). */
  release?: () => void
  /** The writable layer kept after the container ends. */
  keptLayer?: string
  /** An image container's own directory (its writable layer) and the fd of its lock. */
  layer?: { dir: string; lock: number }
  /** The image's labels (a detached container's start from them, as docker's). */
  imageLabels?: Record<string, string>
  input?: Uint8Array
  /** The `inherit` fds that get a pipe of ours and a relay (lib/relay.ts). */
  relayed: number[]
  timeout: number
  cancelSignal?: AbortSignal
  killSignal: number
  forceKillAfterDelay: number
  reject: boolean
  encoding: 'utf8' | 'buffer'
  maxBuffer: number
  stripFinalNewline: boolean
}


export function typeError(option: string, expected: string, value: unknown): TypeError {
  return optionError(TypeError, `${option}`, `Option \`${option}\` must be ${expected}; got ${show(value)}.`)
}

export function rangeError(option: string, problem: string, value: unknown): RangeError {
  return optionError(RangeError, `${option}`, `Option \`${option}\` ${problem}; got ${show(value)}.`)
}

function noNul(option: string, value: string): string {
  if (value.includes('\0')) throw rangeError(option, 'must not contain a NUL byte', value)
  return value
}

export function bool(option: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw typeError(option, 'a boolean', value)
  return value
}

/** `tty`: false, true (80x24, docker's default size when its client has none), or a size. */
export function terminalOption(value: unknown): { tty: boolean; size?: { columns: number; rows: number } } {
  if (value === undefined || value === false) return { tty: false }
  if (value === true) return { tty: true, size: { columns: 80, rows: 24 } }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw typeError('tty', 'a boolean or { columns, rows }', value)
  for (const key of Object.keys(value)) {
    if (key !== 'columns' && key !== 'rows') throw rangeError('tty', `has an unknown key \`${key}\` (known: columns, rows)`, value)
  }
  const cells = (key: 'columns' | 'rows', fallback: number): number => {
    const v = (value as TtySize)[key]
    if (v === undefined) return fallback
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 0xffff) throw rangeError(`tty.${key}`, 'must be an integer from 1 to 65535', v)
    return v
  }
  return { tty: true, size: { columns: cells('columns', 80), rows: cells('rows', 24) } }
}

export function id(option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number') throw typeError(option, 'an integer from 0 to 4294967294', value)
  if (!Number.isInteger(value) || value < 0 || value > 0xfffffffe) throw rangeError(option, 'must be an integer from 0 to 4294967294', value)
  return value
}

export function millis(option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number') throw typeError(option, 'a non-negative number of milliseconds', value)
  // Node's timers hold at most 2^31-1 ms; larger values would fire at once.
  if (!Number.isFinite(value) || value < 0 || value > 0x7fffffff) throw rangeError(option, 'must be from 0 to 2147483647 milliseconds', value)
  return value
}

export function byteCount(option: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number') throw typeError(option, 'a number of bytes', value)
  if (!Number.isSafeInteger(value) || value < 0) throw rangeError(option, 'must be a non-negative integer number of bytes', value)
  return value
}

/** An absolute path inside the container, without `..`. */
export function containerPath(option: string, value: unknown): string {
  if (typeof value !== 'string') throw typeError(option, 'a string', value)
  noNul(option, value)
  if (!value.startsWith('/')) throw rangeError(option, 'must be an absolute path inside the container', value)
  if (value.split('/').includes('..')) throw rangeError(option, 'must not contain `..`', value)
  return value
}

export function signalNumber(option: string, value: unknown): number {
  if (typeof value === 'number' && Number.isInteger(value) && value > 0 && value < 65) return value
  if (typeof value === 'string' && value in constants.signals) return constants.signals[value as NodeJS.Signals]
  throw typeError(option, 'a signal name like "SIGTERM" or a signal number from 1 to 64', value)
}

/** An image's StopSignal as docker reads it: `SIGQUIT`, `QUIT`, `3`, `SIGRTMIN+3`. */
function imageStopSignal(value: string): number {
  const name = value.toUpperCase().startsWith('SIG') ? value.toUpperCase() : `SIG${value.toUpperCase()}`
  const rt = /^SIGRTMIN\+(\d+)$/.exec(name)
  const n = /^\d+$/.test(value) ? Number(value) : rt ? 34 + Number(rt[1]) : name === 'SIGRTMIN' ? 34 : constants.signals[name as NodeJS.Signals]
  if (!Number.isInteger(n) || n < 1 || n > 64) throw rangeError('image', `has a StopSignal lonely does not know (give \`killSignal\`)`, value)
  return n
}

function oomScore(value: unknown): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < -1000 || value > 1000) throw rangeError('oomScoreAdj', 'must be an integer from -1000 to 1000', value)
  return value
}

function stdioValue(option: string, value: unknown): StdioOption {
  if (value === 'pipe' || value === 'inherit' || value === 'ignore') return value
  if (Number.isInteger(value) && (value as number) >= 0) {
    if ((value as number) > 0x7fffffff) throw rangeError(option, 'must be a file descriptor number (at most 2147483647)', value)
    return value as number
  }
  throw typeError(option, '"pipe", "inherit", "ignore" or a file descriptor', value)
}

/** The three streams as the addon gets them, `input` and `cancelSignal` checked, and which `inherit` ones are relayed. */
export function streamsOf(o: ContainerOptions, tty: boolean): { streams: StdioOption[]; relayed: number[] } {
  const streams = stdio(o)
  if (o.input !== undefined) {
    if (typeof o.input !== 'string' && !(o.input instanceof Uint8Array)) throw typeError('input', 'a string or a Uint8Array', o.input)
    if (o.stdin !== undefined && o.stdin !== 'pipe') throw rangeError('input', 'needs `stdin: "pipe"`', o.stdin)
    streams[0] = 'pipe'
  }
  // With a terminal the pty replaces 0-2 and this process relays it already.
  const relayed = tty ? [] : relayedStdio(streams)
  for (const fd of relayed) streams[fd] = 'pipe'
  if (o.cancelSignal !== undefined && !(o.cancelSignal instanceof AbortSignal)) throw typeError('cancelSignal', 'an AbortSignal', o.cancelSignal)
  return { streams, relayed }
}

function stdio(options: ContainerOptions): StdioOption[] {
  const all = options.stdio
  let base: StdioOption[]
  if (Array.isArray(all)) {
    if (all.length !== 3) throw rangeError('stdio', 'must have exactly 3 entries', all)
    base = all.map((v, i) => stdioValue(`stdio[${i}]`, v))
  } else {
    const one = all === undefined ? 'pipe' : stdioValue('stdio', all)
    base = [one, one, one]
  }
  const names = ['stdin', 'stdout', 'stderr'] as const
  names.forEach((name, i) => {
    if (options[name] !== undefined) base[i] = stdioValue(name, options[name])
  })
  return base
}

function hostname(value: unknown): string {
  if (value === undefined) return 'lonely'
  if (typeof value !== 'string') throw typeError('hostname', 'a string', value)
  if (Buffer.byteLength(value) > 64) throw rangeError('hostname', 'must be at most 64 bytes', value)
  if (!HOSTNAME.test(value)) throw rangeError('hostname', 'must be letters, digits, `-` and `.` (RFC 1123)', value)
  return value
}

function namespaces(value: unknown): Record<NamespaceName, boolean> {
  const out = Object.fromEntries(NAMESPACES.map((n) => [n, true])) as Record<NamespaceName, boolean>
  // Root makes containers directly; anyone else through a user namespace (rootless).
  const root = process.geteuid?.() === 0
  out.user = !root
  if (value === undefined) return out
  if (typeof value !== 'object' || value === null) throw typeError('namespaces', 'an object', value)
  for (const [key, on] of Object.entries(value)) {
    if (key === 'user' && on === false && !root) {
      throw rangeError('namespaces.user', `can only be turned off by root (this process runs as uid ${process.geteuid?.()})`, on)
    }
    if (!NAMESPACES.includes(key as NamespaceName)) {
      throw rangeError('namespaces', `has an unknown key \`${key}\` (known: ${NAMESPACES.join(', ')})`, value)
    }
    out[key as NamespaceName] = bool(`namespaces.${key}`, on, true)
  }
  return out
}

function hostDirectory(option: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') throw typeError(option, 'a path to a directory', value)
  const abs = path.resolve(noNul(option, value))
  let stat: fs.Stats
  try {
    stat = fs.statSync(abs)
  } catch {
    throw rangeError(option, 'must be an existing directory', value)
  }
  if (!stat.isDirectory()) throw rangeError(option, 'must be a directory', value)
  try {
    return fs.realpathSync(abs)
  } catch {
    throw rangeError(option, 'changed while it was being checked (renamed, or swapped for a symlink)', value)
  }
}

/**
 * The rootfs is opened with no symlink in any component (RESOLVE_NO_SYMLINKS, core/src/rootfs.rs):
 * a path that only reaches it through one is refused here with the path to give instead.
 */
function symlinkFree(option: string, real: string, value: unknown): string {
  const abs = path.resolve(String(value))
  if (real !== abs) throw rangeError(option, `must be a path with no symlink in it (it resolves to ${show(real)}: give that)`, value)
  return real
}

/**
 * Walks `target` inside `root` the way the kernel will (RESOLVE_IN_ROOT), and refuses a
 * symlink that points out of it: such a mount would land somewhere the user did not mean.
 */
function checkInsideRoot(option: string, root: string, target: string): void {
  const parts = target.split('/').filter((p) => p && p !== '.')
  let depth: string[] = []
  let hops = 0
  while (parts.length) {
    const part = parts.shift()!
    if (part === '..') {
      if (depth.length === 0) throw rangeError(option, `leaves the rootfs through a symlink`, target)
      depth.pop()
      continue
    }
    const host = path.join(root, ...depth, part)
    let link: string | undefined
    try {
      if (fs.lstatSync(host).isSymbolicLink()) link = fs.readlinkSync(host)
    } catch {
      return // does not exist yet: it will be created inside the root
    }
    if (link === undefined) {
      depth.push(part)
      continue
    }
    if (++hops > 40) throw rangeError(option, 'has too many levels of symlinks', target)
    if (link.startsWith('/')) {
      throw rangeError(option, `goes through the symlink /${[...depth, part].join('/')} -> ${link}, which points out of the rootfs`, target)
    }
    parts.unshift(...link.split('/').filter((p) => p && p !== '.'))
  }
}

function size(option: string, value: unknown): string | null {
  if (value === undefined) return null
  if (typeof value === 'number' && Number.isInteger(value) && value > 0) return String(value)
  if (typeof value === 'string' && /^[1-9][0-9]*[kmgKMG]?$/.test(value)) return value.toLowerCase()
  throw typeError(option, 'a positive number of bytes or a size like "64m"', value)
}

function mounts(value: unknown, root: string | null): Spec['mounts'] {
  if (value === undefined) return []
  if (!Array.isArray(value)) throw typeError('mounts', 'an array', value)
  return value.map((m, i) => {
    const at = `mounts[${i}]`
    if (typeof m !== 'object' || m === null) throw typeError(at, 'an object', m)
    const target = containerPath(`${at}.target`, m.target)
    if (root) checkInsideRoot(`${at}.target`, root, target)
    if (m.type === 'bind') {
      for (const key of Object.keys(m)) {
        if (!['type', 'source', 'target', 'readonly', 'propagation'].includes(key)) throw rangeError(at, `has an unknown key \`${key}\``, m)
      }
      if (typeof m.source !== 'string' || m.source === '') throw typeError(`${at}.source`, 'a host path', m.source)
      let real: string
      try {
        real = fs.realpathSync(path.resolve(noNul(`${at}.source`, m.source)))
      } catch {
        throw rangeError(`${at}.source`, 'must exist on the host', m.source)
      }
      // As for rootfs: a symlink is what a writer of a parent directory would swap in, so the
      // path must have none, and the parent opens it with none followed (spec.rs source_identity).
      const source = symlinkFree(`${at}.source`, real, m.source)
      const propagation = m.propagation ?? null
      if (propagation !== null && !PROPAGATIONS.includes(propagation)) throw rangeError(`${at}.propagation`, `must be one of ${PROPAGATIONS.join(', ')}`, m.propagation)
      return { type: 'bind' as const, source, target, readonly: bool(`${at}.readonly`, m.readonly, false), propagation }
    }
    if (m.type === 'tmpfs') {
      for (const key of Object.keys(m)) {
        if (!['type', 'target', 'size', 'mode', 'readonly', 'noexec', 'uid', 'gid'].includes(key)) throw rangeError(at, `has an unknown key \`${key}\``, m)
      }
      if (m.mode !== undefined && (!Number.isInteger(m.mode) || m.mode < 0 || m.mode > 0o7777)) {
        throw typeError(`${at}.mode`, 'a file mode from 0 to 0o7777', m.mode)
      }
      const mode = m.mode === undefined ? null : (m.mode as number).toString(8).padStart(4, '0')
      return {
        type: 'tmpfs' as const,
        target,
        size: size(`${at}.size`, m.size),
        mode,
        readonly: bool(`${at}.readonly`, m.readonly, false),
        noexec: bool(`${at}.noexec`, m.noexec, false),
        uid: m.uid === undefined ? null : id(`${at}.uid`, m.uid, 0),
        gid: m.gid === undefined ? null : id(`${at}.gid`, m.gid, 0),
      }
    }
    throw rangeError(`${at}.type`, 'must be "bind" or "tmpfs"', m.type)
  })
}

function idRanges(option: string, value: unknown): IdRange[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > 340) throw typeError(option, 'a non-empty array of { containerId, hostId, size }', value)
  return value.map((r, i) => {
    const at = `${option}[${i}]`
    if (typeof r !== 'object' || r === null) throw typeError(at, 'an object { containerId, hostId, size }', r)
    for (const key of Object.keys(r)) if (!['containerId', 'hostId', 'size'].includes(key)) throw rangeError(at, `has an unknown key \`${key}\``, r)
    const { containerId, hostId, size } = r as IdRange
    for (const [k, v] of [['containerId', containerId], ['hostId', hostId], ['size', size]] as const) {
      if (!Number.isInteger(v) || v < 0 || v > 0xfffffffe || (k === 'size' && v === 0)) throw rangeError(`${at}.${k}`, 'must be an integer id (size at least 1)', v)
    }
    return { containerId, hostId, size }
  })
}

/** The setuid helper a non-root caller needs to map ranges, from PATH. */
function helper(name: string, option: string): string {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    const p = path.join(dir || '.', name)
    try {
      fs.accessSync(p, fs.constants.X_OK)
      return p
    } catch {
      // next
    }
  }
  throw rangeError(option, `needs ${name} for a non-root caller (apt-get install uidmap, and a range in /etc/sub${name.includes('uid') ? 'uid' : 'gid'})`, option)
}

/** uid/gid ranges for the user namespace, or undefined for the default (the caller as 0). */
function userMaps(o: ContainerOptions): Spec['idMaps'] {
  if (o.uidMap === undefined && o.gidMap === undefined) return undefined
  const root = process.geteuid?.() === 0
  const me = { uid: process.geteuid?.() ?? 0, gid: process.getegid?.() ?? 0 }
  const uid = o.uidMap === undefined ? [{ containerId: 0, hostId: me.uid, size: 1 }] : idRanges('uidMap', o.uidMap)
  const gid = o.gidMap === undefined ? [{ containerId: 0, hostId: me.gid, size: 1 }] : idRanges('gidMap', o.gidMap)
  return { uid, gid, newuidmap: root ? null : helper('newuidmap', 'uidMap'), newgidmap: root ? null : helper('newgidmap', 'gidMap') }
}

/** docker's -u (`user`, or a numeric `uid`; else the image's User) looked up in the root made of `rootDirs`. */
export function userOf(o: { user?: unknown; uid?: unknown; gid?: unknown }, rootDirs: string[], imageUser?: string): User | undefined {
  if (o.user !== undefined && (o.uid !== undefined || o.gid !== undefined)) throw rangeError('user', 'and `uid`/`gid` exclude each other', o.user)
  if (o.user !== undefined && typeof o.user !== 'string') throw typeError('user', 'a string like "alice", "1000", "alice:staff" or "1000:1000"', o.user)
  if (o.user !== undefined) return resolveUser(rootDirs, noNul('user', o.user as string), 'user')
  if (o.uid !== undefined) return resolveUser(rootDirs, String(id('uid', o.uid, 0)), 'uid')
  return imageUser ? resolveUser(rootDirs, imageUser, 'image') : undefined
}

/** docker's --group-add (`groups`, an array checked by the caller): ids, and names looked up in the root's /etc/group. */
export function groupsOf(groups: unknown[] | undefined, rootDirs: string[]): number[] {
  return resolveGroups(rootDirs, (groups ?? []).map((g, i) => (typeof g === 'string' ? noNul(`groups[${i}]`, g) : id(`groups[${i}]`, g, 0))), 'groups')
}

export function env(value: unknown, name: string, home: string, tty: boolean, image: string[] = []): string[] {
  const base: Record<string, string> = { PATH: DEFAULT_PATH, HOSTNAME: name, HOME: home }
  // The image's Env over the defaults (docker), the caller's over both.
  for (const kv of image) {
    const eq = kv.indexOf('=')
    if (eq > 0) base[kv.slice(0, eq)] = kv.slice(eq + 1)
  }
  if (tty) base.TERM = 'xterm'
  if (value !== undefined) {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw typeError('env', 'an object of strings', value)
    for (const [key, v] of Object.entries(value)) {
      if (key === '' || key.includes('=') || key.includes('\0')) throw rangeError('env', `has an invalid name ${show(key)}`, value)
      if (typeof v !== 'string') throw typeError(`env.${key}`, 'a string', v)
      base[key] = noNul(`env.${key}`, v)
    }
  }
  return Object.entries(base).map(([k, v]) => `${k}=${v}`)
}

export function command(value: unknown): string[] {
  if (!Array.isArray(value) || value.length === 0) throw typeError('command', 'a non-empty array of strings', value)
  return value.map((arg, i) => {
    if (typeof arg !== 'string') throw typeError(`command[${i}]`, 'a string', arg)
    if (i === 0 && arg === '') throw rangeError('command[0]', 'must not be empty', arg)
    return noNul(`command[${i}]`, arg)
  })
}

export function normalize(cmd: unknown, options: unknown, forRun: boolean): Normalized {
  if (options === undefined) options = {}
  if (typeof options !== 'object' || options === null) throw typeError('options', 'an object', options)
  const known: readonly string[] = forRun ? [...CONTAINER_KEYS, ...RUN_ONLY] : CONTAINER_KEYS
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) throw optionError(TypeError, key, `Unknown option \`${key}\`${forRun ? '' : ' for spawn()'}.`)
  }
  // Everything below reads this copy: only what the caller set is an option.
  const o = ownOnly(options) as RunOptions
  cmd = ownOnly(cmd)
  const found = o.image === undefined ? undefined : findImage(o.image, o.store)
  if (found && o.rootfs !== undefined) throw rangeError('image', 'and `rootfs` exclude each other', o.image)
  if (!found && o.store !== undefined) throw rangeError('store', 'goes with `image`', o.store)
  if (o.entrypoint !== undefined && !found) throw rangeError('entrypoint', 'goes with `image`', o.entrypoint)
  if (o.entrypoint !== undefined && (!Array.isArray(o.entrypoint) || o.entrypoint.some((a) => typeof a !== 'string'))) {
    throw typeError('entrypoint', 'an array of strings', o.entrypoint)
  }
  // docker run --entrypoint: the image's Cmd goes too (its arguments were the old Entrypoint's).
  const config = found && (o.entrypoint === undefined ? found.image.config : { ...found.image.config, entrypoint: o.entrypoint, cmd: undefined })
  const init = bool('init', o.init, false)
  // With init, no command is fine: lonely-init then only reaps (a container to exec into).
  const noCommand = init && Array.isArray(cmd) && cmd.length === 0
  const argv = config ? imageCommand(Array.isArray(cmd) && cmd.length === 0 ? [] : command(cmd), config) : noCommand ? [] : command(cmd)
  const ns = namespaces(o.namespaces)
  const rootfs = o.rootfs === undefined ? null : symlinkFree('rootfs', hostDirectory('rootfs', o.rootfs), o.rootfs)
  if (rootfs) checkRootfsLinks(rootfs)
  if (!ns.mount && (rootfs || o.mounts?.length)) {
    throw rangeError('namespaces.mount', 'must stay on to use `rootfs` or `mounts`', false)
  }
  const name = hostname(o.hostname)
  // docker's users: looked up in the container's own /etc/passwd and /etc/group, inside its root.
  const rootDirs = found ? found.image.layers.map((l) => l.dir) : [rootfs ?? '/']
  const user = userOf(o, rootDirs, config?.user)
  const uid = id('uid', user?.uid, 0)
  const gidDefault = id('gid', user?.gid, 0)
  const idMaps = ns.user ? userMaps(o) : undefined
  if (!ns.user && (o.uidMap !== undefined || o.gidMap !== undefined)) throw rangeError(o.uidMap ? 'uidMap' : 'gidMap', 'needs `namespaces.user`', o.uidMap ?? o.gidMap)
  if (ns.user && !idMaps) {
    // One id is mapped: the caller's, as root inside.
    for (const [key, v] of [['uid', uid], ['gid', o.gid ?? gidDefault]] as const) {
      if (v !== 0) throw rangeError(key, 'must be 0 in a user namespace without `uidMap`/`gidMap` (only the caller\'s id is mapped, as root inside)', v)
    }
    if (o.groups?.length) throw rangeError('groups', 'must be empty in a user namespace without `gidMap` (setgroups is denied there)', o.groups)
  }
  if (idMaps) {
    const inside = (ranges: IdRange[], v: number) => ranges.some((r) => v >= r.containerId && v < r.containerId + r.size)
    if (!inside(idMaps.uid, uid)) throw rangeError('uid', 'must be inside a `uidMap` range', uid)
    const gid = o.gid ?? gidDefault
    if (!inside(idMaps.gid, gid)) throw rangeError('gid', 'must be inside a `gidMap` range', gid)
  }
  const { tty, size: ttySize } = terminalOption(o.tty)
  const { streams, relayed } = streamsOf(o, tty)
  const sysctl = normalizeSysctls(o.sysctls, ns)
  if (o.groups !== undefined && !Array.isArray(o.groups)) throw typeError('groups', 'an array of group ids', o.groups)
  if (o.keep !== undefined && typeof o.keep !== 'boolean') throw typeError('keep', 'a boolean', o.keep)
  if (o.keep && !found) throw rangeError('keep', 'goes with `image`', o.keep)
  const limits = normalizeLimits(o.limits)
  const rlimits = normalizeRlimits(o.rlimits)
  const devices = deviceNodes(o.devices)
  const shmSize = size('shmSize', o.shmSize === undefined ? undefined : typeof o.shmSize === 'string' ? String(parseBytes('shmSize', o.shmSize)) : o.shmSize)
  const encoding = o.encoding ?? 'utf8'
  if (encoding !== 'utf8' && encoding !== 'buffer') throw rangeError('encoding', 'must be "utf8" or "buffer"', encoding)

  const environment = env(o.env, name, user?.home ?? (uid === 0 ? '/root' : '/'), tty, config?.env)
  const cwd = o.cwd === undefined ? config?.workingDir || '/' : containerPath('cwd', o.cwd)
  const readonlyRoot = bool('readonlyRoot', o.readonlyRoot, false)
  const binds = mounts(o.mounts, rootfs)
  const gid = id('gid', o.gid, gidDefault)
  const added = groupsOf(o.groups, rootDirs)
  // Where setgroups is denied (one id mapped), the user's listed groups cannot be had either.
  const listed = ns.user && !idMaps ? [] : (user?.groups ?? [])
  const groups = [...new Set([...listed, ...added])]
  // Host directories it can write, without a user namespace: files it makes there are host root's.
  const writesHost = !ns.user && ((rootfs !== null && !readonlyRoot) || binds.some((b) => b.type === 'bind' && !b.readonly))
  const security = normalizeSecurity(o, writesHost)
  const timing = {
    timeout: millis('timeout', o.timeout, 0),
    // docker: the image's StopSignal unless one is given.
    killSignal: o.killSignal !== undefined ? signalNumber('killSignal', o.killSignal) : config?.stopSignal ? imageStopSignal(config.stopSignal) : constants.signals.SIGTERM,
    forceKillAfterDelay: millis('forceKillAfterDelay', o.forceKillAfterDelay, 2000),
    reject: bool('reject', o.reject, true),
  }
  const maxBuffer = byteCount('maxBuffer', o.maxBuffer, 100 * 1024 * 1024)
  const stripFinalNewline = bool('stripFinalNewline', o.stripFinalNewline, true)
  // Last, once every option is valid: the container's writable layer is made on disk.
  const imageRoot = found ? makeImageRoot(found) : undefined
  return {
    spec: {
      argv,
      env: environment,
      cwd,
      hostname: ns.uts ? name : null,
      namespaces: ns,
      rootfs,
      readonlyRoot,
      // docker mounts no /tmp: an image's or a rootfs's own is used (on disk, not in --memory);
      // the read-only mirror needs a writable one.
      tmp: rootfs === null && !found,
      mounts: binds,
      uid,
      gid,
      groups,
      tty,
      ...(ttySize ? { ttySize } : {}),
      stdio: streams,
      ...(Object.keys(sysctl).length ? { sysctl } : {}),
      ...(init ? { init } : {}),
      // Sent only when set: no limits means no cgroup at all (the fast path).
      ...(limits ? { limits } : {}),
      ...(rlimits.length ? { rlimits } : {}),
      ...(devices.length ? { devices } : {}),
      ...(shmSize !== null ? { shmSize } : {}),
      ...(o.oomScoreAdj !== undefined ? { oomScoreAdj: oomScore(o.oomScoreAdj) } : {}),
      ...security,
      ...(imageRoot ? { image: imageRoot.spec } : {}),
      ...(idMaps ? { idMaps } : {}),
    },
    discard: imageRoot?.discard,
    release: imageRoot?.release,
    keptLayer: imageRoot && o.keep ? imageRoot.spec.upper : undefined,
    layer: imageRoot ? { dir: imageRoot.dir, lock: imageRoot.lock } : undefined,
    ...(config && Object.keys(config.labels).length ? { imageLabels: { ...config.labels } } : {}),
    input: typeof o.input === 'string' ? Buffer.from(o.input) : o.input,
    relayed,
    cancelSignal: o.cancelSignal,
    ...timing,
    encoding,
    maxBuffer,
    stripFinalNewline,
  }
}
