// A parsed `lonely run` command line as library options: one flag at a time, each error
// naming its flag; and the library's validation errors named by flag (error.option).
import * as path from 'node:path'
import { constants } from 'node:os'

import type { ContainerOptions, Mount } from '../../index'
import type { OptionError } from '../optionerror'
import { SHELLS, flagName, invalid, type Parsed } from './flags'

/** Node's timers take at most 2^31-1 ms (about 24.8 days). */
const MAX_SECONDS = Math.floor(0x7fffffff / 1000)

function seconds(long: string, value: string): number {
  if (!/^(\d+\.?\d*|\.\d+)$/.test(value)) throw invalid(long, value, 'must be a non-negative number of seconds, like 10 or 0.5')
  if (Number(value) > MAX_SECONDS) throw invalid(long, value, `must be at most ${MAX_SECONDS} seconds (about 24 days)`)
  return Number(value)
}

function numericId(long: string, raw: string, value: string): number {
  if (!/^\d+$/.test(value)) {
    throw invalid(long, raw, `only numeric UID[:GID] is supported (lonely does not look up user or group names like ${JSON.stringify(value)})`)
  }
  return Number(value)
}

export interface Plan {
  command: string[]
  options: ContainerOptions
  interactive: boolean
  tty: boolean
  timeoutSeconds: number
  printPlan: boolean
  /** -d: created detached, its id printed. */
  detach: boolean
  name?: string
  /** Which flag and value produced mounts[i], to name it in errors. */
  mountFlags: string[]
}

export function buildPlan(p: Parsed): Plan {
  const last = (long: string) => p.values.get(long)?.at(-1)
  const all = (long: string) => p.values.get(long) ?? []
  const options: ContainerOptions = {}
  const mounts: Mount[] = []
  const mountFlags: string[] = []

  const rootfs = last('rootfs')
  if (rootfs !== undefined) options.rootfs = rootfs
  // `lonely run IMAGE -- COMMAND`: a word right before `--` names the image, unless an explicit
  // `--` already ended the options or --rootfs gives the root (then `--` is the command's: tini -- cmd).
  let command = p.command
  let image = last('image')
  if (image === undefined && rootfs === undefined && !p.dashed && command.length >= 2 && command[1] === '--') {
    image = command[0]
    command = command.slice(2)
  }
  if (image !== undefined) options.image = image
  const store = last('store')
  if (store !== undefined) options.store = store
  const entrypoint = last('entrypoint')
  if (entrypoint !== undefined) options.entrypoint = entrypoint === '' ? [] : [entrypoint]
  const hostname = last('hostname')
  if (hostname !== undefined) options.hostname = hostname

  const env: Record<string, string> = {}
  for (const e of all('env')) {
    const eq = e.indexOf('=')
    if (eq === 0 || e === '') throw invalid('env', e, 'must be K=V or K')
    if (eq > 0) env[e.slice(0, eq)] = e.slice(eq + 1)
    else if (process.env[e] !== undefined) env[e] = process.env[e]!
  }
  if (Object.keys(env).length) options.env = env

  const workdir = last('workdir')
  if (workdir !== undefined) {
    if (!workdir.startsWith('/')) throw invalid('workdir', workdir, 'must be an absolute path inside the container')
    options.cwd = workdir
  }

  const user = last('user')
  if (user !== undefined) {
    const [u, g, ...rest] = user.split(':')
    if (rest.length || u === '' || g === '') throw invalid('user', user, 'must be UID or UID:GID')
    options.uid = numericId('user', user, u)
    // Without GID the library takes the UID's group from the container's /etc/passwd, as docker.
    if (g !== undefined) options.gid = numericId('user', user, g)
  }

  for (const v of all('volume')) {
    const parts = v.split(':')
    if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1]) {
      throw invalid('volume', v, 'must be SRC:DST or SRC:DST:ro (anonymous volumes are not supported)')
    }
    const [src, dst, mode] = parts
    if (!src.startsWith('/') && !src.startsWith('.')) {
      throw invalid('volume', v, `named volumes are not supported: SRC must be a host path, absolute or starting with "." (got ${JSON.stringify(src)})`)
    }
    if (mode !== undefined && mode !== 'ro' && mode !== 'rw') throw invalid('volume', v, `unknown mode ${JSON.stringify(mode)}: use ro or rw`)
    mounts.push({ type: 'bind', source: path.resolve(src), target: dst, readonly: mode === 'ro' })
    mountFlags.push(`${flagName('volume')} ${JSON.stringify(v)}`)
  }

  for (const t of all('tmpfs')) {
    const colon = t.indexOf(':')
    const target = colon < 0 ? t : t.slice(0, colon)
    if (!target) throw invalid('tmpfs', t, 'must be DST[:size=N[,mode=M]]')
    const mount: Mount = { type: 'tmpfs', target }
    if (colon >= 0) {
      for (const opt of t.slice(colon + 1).split(',')) {
        const [key, value] = opt.split('=', 2)
        if (key === 'size' && value) mount.size = value
        else if (key === 'mode' && value && /^[0-7]{1,4}$/.test(value)) mount.mode = parseInt(value, 8)
        else if (key === 'mode') throw invalid('tmpfs', t, `mode must be octal, like 1777 (got ${JSON.stringify(value ?? '')})`)
        else throw invalid('tmpfs', t, `unsupported option ${JSON.stringify(opt)}: use size=N and mode=M`)
      }
    }
    mounts.push(mount)
    mountFlags.push(`--tmpfs ${JSON.stringify(t)}`)
  }
  if (mounts.length) options.mounts = mounts

  if (p.bools.get('read-only')) options.readonlyRoot = true
  if (p.bools.get('init')) options.init = true

  const limits: NonNullable<ContainerOptions['limits']> = {}
  const memory = last('memory')
  if (memory !== undefined) limits.memory = memory
  const swap = last('memory-swap')
  if (swap !== undefined) limits.memorySwap = swap === '-1' ? -1 : swap
  const cpus = last('cpus')
  if (cpus !== undefined) {
    if (!/^(\d+\.?\d*|\.\d+)$/.test(cpus)) throw invalid('cpus', cpus, 'must be a number of CPUs, like 1.5, or 0 for no limit')
    // docker's 0: no CPU limit.
    if (Number(cpus) !== 0) limits.cpus = Number(cpus)
  }
  const integerFlag = (long: string, value: string) => {
    if (!/^\d+$/.test(value)) throw invalid(long, value, 'must be a whole number')
    return Number(value)
  }
  const shares = last('cpu-shares')
  if (shares !== undefined) limits.cpuShares = integerFlag('cpu-shares', shares)
  const cpuset = last('cpuset-cpus')
  if (cpuset !== undefined) limits.cpuset = cpuset
  const mems = last('cpuset-mems')
  if (mems !== undefined) limits.cpusetMems = mems
  const pids = last('pids-limit')
  // docker's 0 and -1: no limit.
  if (pids !== undefined && pids !== '-1' && pids !== '0') {
    if (!/^\d+$/.test(pids)) throw invalid('pids-limit', pids, 'must be a whole number, or 0 or -1 for no limit')
    limits.pids = Number(pids)
  }
  if (Object.keys(limits).length) options.limits = limits

  const capAdd = all('cap-add')
  if (capAdd.length) options.capAdd = capAdd
  const capDrop = all('cap-drop')
  if (capDrop.length) options.capDrop = capDrop
  for (const opt of all('security-opt')) {
    const [key, value] = opt.includes('=') ? [opt.slice(0, opt.indexOf('=')), opt.slice(opt.indexOf('=') + 1)] : [opt, undefined]
    if (key === 'seccomp' && value) options.seccomp = value === 'unconfined' ? 'unconfined' : value
    else if (key === 'no-new-privileges' && (value === undefined || value === 'true' || value === 'false')) options.noNewPrivileges = value !== 'false'
    else if (key === 'systempaths' && value === 'unconfined') {
      options.maskedPaths = []
      options.readonlyPaths = []
    } else if (key === 'allow-setuid' && value === undefined) options.allowSetuid = true
    else throw invalid('security-opt', opt, 'must be seccomp=unconfined|PROFILE, no-new-privileges[=true|false], systempaths=unconfined or allow-setuid')
  }

  const rlimits: NonNullable<ContainerOptions['rlimits']> = {}
  for (const u of all('ulimit')) {
    const m = /^([a-z]+)=(-1|unlimited|\d+)(?::(-1|unlimited|\d+))?$/.exec(u)
    if (!m) throw invalid('ulimit', u, 'must be NAME=SOFT[:HARD], like nofile=1024:2048')
    const value = (v: string): number | 'unlimited' => (v === '-1' || v === 'unlimited' ? 'unlimited' : Number(v))
    ;(rlimits as Record<string, unknown>)[m[1]] = [value(m[2]), value(m[3] ?? m[2])]
  }
  if (Object.keys(rlimits).length) options.rlimits = rlimits

  const network = last('network')
  if (network !== undefined && network !== 'none' && network !== 'host') {
    throw invalid('network', network, 'must be none (the default: loopback only) or host (there is no bridge: lonely has no daemon)')
  }
  if (network === 'host') options.namespaces = { net: false }

  const timeout = last('timeout')
  const timeoutSeconds = timeout === undefined ? 0 : seconds('timeout', timeout)
  if (timeoutSeconds > 0) options.timeout = Math.max(1, Math.round(timeoutSeconds * 1000))
  const stopSignal = last('stop-signal')
  if (stopSignal !== undefined) {
    const upper = stopSignal.toUpperCase()
    const name = upper.startsWith('SIG') ? upper : `SIG${upper}`
    if (/^\d+$/.test(stopSignal) && Number(stopSignal) >= 1 && Number(stopSignal) <= 64) options.killSignal = Number(stopSignal)
    else if (name in constants.signals) options.killSignal = name as NodeJS.Signals
    else throw invalid('stop-signal', stopSignal, 'must be a signal name like SIGTERM or a number from 1 to 64')
  }
  const stopTimeout = last('stop-timeout')
  if (stopTimeout !== undefined) options.forceKillAfterDelay = Math.round(seconds('stop-timeout', stopTimeout) * 1000)

  let interactive = p.bools.get('interactive') ?? false
  let tty = p.bools.get('tty') ?? false
  if (!p.bools.has('interactive') && !p.bools.has('tty') && process.stdin.isTTY && command.length === 1 && SHELLS.has(path.basename(command[0]))) {
    interactive = true
    tty = true
  }
  const name = last('name')
  if (name !== undefined && !p.bools.get('detach')) throw invalid('name', name, 'goes with -d/--detach (only detached containers are found by name)')
  return { command, options, interactive, tty, timeoutSeconds, printPlan: p.bools.get('print-plan') ?? false, mountFlags, detach: p.bools.get('detach') ?? false, ...(name !== undefined ? { name } : {}) }
}

/** Names the flag behind a library validation error (its `option`: `hostname`, `mounts[0].source`...). */
export function translate(e: OptionError, plan: Plan | undefined): string {
  const option = e.option
  const rest = e.message.startsWith(`Option \`${option}\``) ? e.message.slice(`Option \`${option}\``.length).trimStart() : e.message
  const mount = /^mounts\[(\d+)\]/.exec(option)
  let flag: string | undefined
  if (mount) flag = plan?.mountFlags[Number(mount[1])]
  else if (option.startsWith('command')) flag = 'COMMAND'
  else {
    const byOption: Record<string, string> = {
      rootfs: 'rootfs', image: 'image', store: 'store', entrypoint: 'entrypoint', keep: 'image', hostname: 'hostname', env: 'env', cwd: 'workdir', uid: 'user', gid: 'user',
      timeout: 'timeout', killSignal: 'stop-signal', forceKillAfterDelay: 'stop-timeout', rlimits: 'ulimit',
      'limits.memory': 'memory', 'limits.memorySwap': 'memory-swap', 'limits.cpus': 'cpus', 'limits.cpuShares': 'cpu-shares',
      'limits.cpuset': 'cpuset-cpus', 'limits.cpusetMems': 'cpuset-mems', 'limits.pids': 'pids-limit',
      capAdd: 'cap-add', capDrop: 'cap-drop', seccomp: 'security-opt', noNewPrivileges: 'security-opt', allowSetuid: 'security-opt',
    }
    const long = byOption[option] ?? byOption[option.split(/[.[]/)[0]]
    if (long) flag = flagName(long)
  }
  return flag ? `invalid value for ${flag}: ${option} ${rest}` : e.message
}

