// Options of a process started in a running container (`container.exec()` / `.run()`): what
// docker exec takes. The rest (namespaces, capabilities, seccomp, no_new_privs, rlimits) is the
// container's own, as for its PID 1: an exec never gets more than the container has.
import { constants } from 'node:os'

import { ownOnly } from './own'
import { optionError } from './optionerror'
import { bool, byteCount, command, containerPath, groupsOf, id, userOf, millis, rangeError, signalNumber, streamsOf, terminalOption, typeError, type ContainerOptions, type Normalized, type RunOptions } from './options'

/** What an exec may set; every other option is the container's. */
export type ExecOptions = Pick<ContainerOptions, 'env' | 'cwd' | 'user' | 'uid' | 'gid' | 'groups' | 'tty' | 'stdio' | 'stdin' | 'stdout' | 'stderr' | 'input' | 'timeout' | 'cancelSignal' | 'killSignal' | 'forceKillAfterDelay'>
export type ExecRunOptions = ExecOptions & Pick<RunOptions, 'reject' | 'encoding' | 'maxBuffer' | 'stripFinalNewline'>

const EXEC_KEYS = ['env', 'cwd', 'user', 'uid', 'gid', 'groups', 'tty', 'stdio', 'stdin', 'stdout', 'stderr', 'input', 'timeout', 'cancelSignal', 'killSignal', 'forceKillAfterDelay'] as const
const RUN_ONLY = ['reject', 'encoding', 'maxBuffer', 'stripFinalNewline'] as const

/** The spec of `cmd` run in the container of `container` (its PID 1 is `pid`). */
export function normalizeExec(container: Normalized, pid: number, cmd: unknown, options: unknown, forRun: boolean): Normalized {
  if (options === undefined) options = {}
  if (typeof options !== 'object' || options === null) throw typeError('options', 'an object', options)
  const known: readonly string[] = forRun ? [...EXEC_KEYS, ...RUN_ONLY] : EXEC_KEYS
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) throw optionError(TypeError, key, `Unknown option \`${key}\` for exec (it takes ${known.join(', ')}; the rest is the container's).`)
  }
  const o = ownOnly(options) as ExecRunOptions
  const argv = command(ownOnly(cmd))
  const base = container.spec
  // docker exec -u: the user looked up in the container's own /etc/passwd and /etc/group.
  const rootDirs = base.image ? [...base.image.lowerdirs].reverse().concat(base.image.upper) : [base.rootfs ?? '/']
  const user = userOf(o, rootDirs)
  const uid = id('uid', user?.uid, base.uid)
  const gid = id('gid', o.gid, user?.gid ?? base.gid)
  if (o.groups !== undefined && !Array.isArray(o.groups)) throw typeError('groups', 'an array of group ids or names', o.groups)
  const added = groupsOf(o.groups, rootDirs)
  const groups = o.groups === undefined && user === undefined ? base.groups : [...new Set([...(user?.groups ?? []), ...added])]
  const { tty, size: ttySize } = terminalOption(o.tty)
  const { streams, relayed } = streamsOf(o, tty)
  // docker exec: the container's environment, with the exec's `env` over it (TERM with a terminal).
  const environment = new Map(base.env.map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]))
  if (tty) environment.set('TERM', 'xterm')
  if (o.env !== undefined) {
    if (typeof o.env !== 'object' || o.env === null || Array.isArray(o.env)) throw typeError('env', 'an object of strings', o.env)
    for (const [key, v] of Object.entries(o.env)) {
      if (key === '' || key.includes('=') || key.includes('\0')) throw rangeError('env', 'has an invalid name', key)
      if (typeof v !== 'string' || v.includes('\0')) throw typeError(`env.${key}`, 'a string without NUL', v)
      environment.set(key, v)
    }
  }
  const encoding = o.encoding ?? 'utf8'
  if (encoding !== 'utf8' && encoding !== 'buffer') throw rangeError('encoding', 'must be "utf8" or "buffer"', encoding)
  // Not an exec's: the root's layer, a cgroup of its own, PID 1's init, a detached PID 1's monitor.
  const { image: _image, limits: _limits, init: _init, detached: _detached, stateDir: _stateDir, held: _held, layerLock: _layerLock, ...inherited } = base
  return {
    spec: {
      ...inherited,
      argv,
      env: [...environment].map(([k, v]) => `${k}=${v}`),
      cwd: o.cwd === undefined ? base.cwd : containerPath('cwd', o.cwd),
      uid,
      gid,
      groups,
      tty,
      // Its own terminal's size, never PID 1's.
      ttySize,
      stdio: streams,
      mounts: [],
      join: pid,
    },
    input: typeof o.input === 'string' ? Buffer.from(o.input) : o.input,
    relayed,
    cancelSignal: o.cancelSignal,
    timeout: millis('timeout', o.timeout, 0),
    killSignal: o.killSignal === undefined ? constants.signals.SIGTERM : signalNumber('killSignal', o.killSignal),
    forceKillAfterDelay: millis('forceKillAfterDelay', o.forceKillAfterDelay, 2000),
    reject: bool('reject', o.reject, true),
    encoding,
    maxBuffer: byteCount('maxBuffer', o.maxBuffer, 100 * 1024 * 1024),
    stripFinalNewline: bool('stripFinalNewline', o.stripFinalNewline, true),
  }
}
