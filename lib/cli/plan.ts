// A parsed `lonely run` command line as library options: one flag at a time, each error
// naming its flag; and the library's validation errors named by flag (error.option).
import * as fs from 'node:fs'
import * as path from 'node:path'
import { constants } from 'node:os'

import type { ContainerOptions, Mount } from '../../index'
import type { OptionError } from '../optionerror'
import { inspect, store as storeDir } from '../images'
import { SHELLS, UsageError, flagName, invalid, type Parsed } from './flags'
import { mountFlag, tmpfsFlag, volumeFlag } from './mounts'
import { hostDevices } from '../devices'

/** The nodes every container's /dev has already (docker's six and the terminals). */
const STANDARD_DEVICES = new Set(['/dev/null', '/dev/zero', '/dev/full', '/dev/random', '/dev/urandom', '/dev/tty', '/dev/console', '/dev/ptmx'])

/** Node's timers take at most 2^31-1 ms (about 24.8 days). */
const MAX_SECONDS = Math.floor(0x7fffffff / 1000)

function seconds(long: string, value: string): number {
  if (!/^(\d+\.?\d*|\.\d+)$/.test(value)) throw invalid(long, value, 'must be a non-negative number of seconds, like 10 or 0.5')
  if (Number(value) > MAX_SECONDS) throw invalid(long, value, `must be at most ${MAX_SECONDS} seconds (about 24 days)`)
  return Number(value)
}

/**
 * Whether the first word after the options is docker's IMAGE: an image of the store, or else a
 * word only an image reference looks like (`name:tag`, `name@digest`; any word with --store), which
 * is refused naming the fix. Any other word is a command for the default root, as before.
 */
function imageWord(word: string, store: string | undefined): boolean {
  if (word.startsWith('/') || word.startsWith('.') || word.startsWith('-')) return false
  const dir = storeDir(store === undefined ? {} : { store })
  // A store that was never made has no images: look nothing up (and make nothing).
  if (fs.existsSync(dir)) {
    try {
      inspect(word, { store: dir })
      return true
    } catch {}
  }
  if (store === undefined && !/^([\w.-]+(:\d+)?\/)?[\w.-]+(\/[\w.-]+)*(:\w[\w.-]*|@sha256:[0-9a-f]+)$/.test(word)) return false
  throw new UsageError(noSuchImage(word, store, dir))
}

/** docker's Go names for Node's architectures. */
const GOARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' }

/** --platform: the image's (or this host's) os/arch[/variant] must be the one asked for. */
function checkPlatform(wanted: string, image: string | undefined, store: string | undefined): void {
  const m = /^([a-z0-9]+)\/([a-z0-9]+)(?:\/([a-z0-9]+))?$/.exec(wanted)
  if (!m) throw invalid('platform', wanted, 'must be OS/ARCH[/VARIANT], like linux/amd64')
  let have: { os: string; architecture: string; variant?: string }
  let what: string
  if (image === undefined) {
    have = { os: process.platform, architecture: GOARCH[process.arch] ?? process.arch }
    what = 'this host'
  } else {
    let config: { os: string; architecture: string; variant?: string }
    try {
      config = inspect(image, { store: storeDir(store === undefined ? {} : { store }) }).config
    } catch {
      return // the missing image is reported by the run itself
    }
    have = config
    what = `the image ${JSON.stringify(image)}`
  }
  const shown = `${have.os}/${have.architecture}${have.variant ? `/${have.variant}` : ''}`
  if (m[1] !== have.os || m[2] !== have.architecture || (m[3] !== undefined && have.variant !== undefined && m[3] !== have.variant)) {
    throw invalid('platform', wanted, `${what} is ${shown}: lonely runs no other platform (no emulation, no pull)`)
  }
}

/** The fix for an image that is not in the store. */
export function noSuchImage(word: string, store: string | undefined, dir = storeDir(store === undefined ? {} : { store })): string {
  const load = `lonely load${store === undefined ? '' : ` --store ${store}`} -i FILE`
  const other = store === undefined ? 'or, to run a command of that name on the default root, put `--` before it' : 'the first word after the options is the image with --store'
  return `no such image ${JSON.stringify(word)} in the store ${dir}: load it first with \`${load}\` (lonely does not pull from registries); ${other}`
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
  /** --label-file, then --label (docker's order: later wins). */
  labels: Record<string, string>
  /** Which flag and value produced mounts[i], to name it in errors. */
  mountFlags: string[]
  /** Host directories to make before the container runs: missing -v sources, named volumes. */
  makeDirs: string[]
  /** What lonely tells the user before it runs (options it accepts and ignores). */
  notes: string[]
}

/** docker's --env-file and --label-file: each line but blank ones and `#` comments, leading blanks off. */
function fileLines(long: string, file: string, each: (line: string, bad: (why: string) => Error) => void): void {
  let text: string
  try {
    text = fs.readFileSync(file, 'utf8')
  } catch (e) {
    throw invalid(long, file, `cannot be read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`)
  }
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trimStart()
    if (line !== '' && !line.startsWith('#')) each(line, (why) => invalid(long, file, `line ${i + 1} ${why}`))
  })
}

export function buildPlan(p: Parsed): Plan {
  const last = (long: string) => p.values.get(long)?.at(-1)
  const all = (long: string) => p.values.get(long) ?? []
  const options: ContainerOptions = {}
  const mounts: Mount[] = []
  const mountFlags: string[] = []

  const rootfs = last('rootfs')
  if (rootfs !== undefined) options.rootfs = rootfs
  const store = last('store')
  if (store !== undefined) options.store = store
  let command = p.command
  let image = last('image')
  // docker's `run [OPTIONS] IMAGE [COMMAND]`, where --image and --rootfs do not name the root and
  // no explicit `--` ended the options (after one, every word is the command's: tini -- cmd).
  if (image === undefined && rootfs === undefined && !p.dashed && command.length >= 1) {
    if (command[1] === '--' || imageWord(command[0], store)) {
      image = command[0]
      command = command.slice(command[1] === '--' ? 2 : 1)
    }
  }
  if (image !== undefined) options.image = image
  const platform = last('platform')
  if (platform !== undefined) checkPlatform(platform, image, store)
  const entrypoint = last('entrypoint')
  if (entrypoint !== undefined) options.entrypoint = entrypoint === '' ? [] : [entrypoint]
  const hostname = last('hostname')
  if (hostname !== undefined) options.hostname = hostname

  const env: Record<string, string> = {}
  const setEnv = (e: string, bad: (why: string) => Error) => {
    const eq = e.indexOf('=')
    const key = eq < 0 ? e : e.slice(0, eq)
    if (key === '' || /\s/.test(key)) throw bad(`must be K=V or K, K without spaces (got ${JSON.stringify(e)})`)
    if (eq > 0) env[key] = e.slice(eq + 1)
    else if (process.env[e] !== undefined) env[e] = process.env[e]!
  }
  // docker's order: the files first, then -e, each later one winning.
  for (const file of all('env-file')) fileLines('env-file', file, setEnv)
  for (const e of all('env')) setEnv(e, (why) => invalid('env', e, why))
  if (Object.keys(env).length) options.env = env

  const workdir = last('workdir')
  if (workdir !== undefined) {
    if (!workdir.startsWith('/')) throw invalid('workdir', workdir, 'must be an absolute path inside the container')
    options.cwd = workdir
  }

  // Names and ids, looked up by the library in the container's own /etc/passwd and /etc/group.
  const user = last('user')
  if (user !== undefined) options.user = user
  const groupAdd = all('group-add')
  if (groupAdd.length) options.groups = groupAdd.map((g) => (/^\d+$/.test(g) ? Number(g) : g))

  // In the order given, each kind after the other as docker lists them: -v, --mount, --tmpfs.
  const notes: string[] = []
  const makeDirs: string[] = []
  const add = (flag: string, value: string, m: { mount: Mount; make?: string; notes: string[] }) => {
    mounts.push(m.mount)
    mountFlags.push(`${flagName(flag)} ${JSON.stringify(value)}`)
    notes.push(...m.notes)
    if (m.make !== undefined) makeDirs.push(m.make)
  }
  for (const v of all('volume')) add('volume', v, volumeFlag(v, store))
  for (const m of all('mount')) add('mount', m, mountFlag(m, store))
  for (const t of all('tmpfs')) add('tmpfs', t, tmpfsFlag(t))
  if (mounts.length) options.mounts = mounts

  if (p.bools.get('read-only')) options.readonlyRoot = true
  if (p.bools.get('init')) options.init = true

  const limits: NonNullable<ContainerOptions['limits']> = {}
  const memory = last('memory')
  if (memory !== undefined) limits.memory = memory
  const swap = last('memory-swap')
  if (swap !== undefined) limits.memorySwap = swap === '-1' ? -1 : swap
  const reservation = last('memory-reservation')
  if (reservation !== undefined) limits.memoryReservation = reservation
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

  for (const d of all('device')) {
    const [host, inside, access, ...more] = d.split(':')
    const perms = inside !== undefined && /^[rwm]+$/.test(inside) && access === undefined ? inside : access
    const target = perms === inside ? undefined : inside
    if (!host?.startsWith('/') || more.length || (target !== undefined && !target.startsWith('/dev/'))) throw invalid('device', d, 'must be HOST[:CONTAINER][:rwm], HOST an absolute path and CONTAINER under /dev')
    if (perms !== undefined && perms !== 'rwm' && perms !== 'mrw') throw invalid('device', d, `access ${JSON.stringify(perms)} needs a device cgroup rule lonely does not write: only rwm is supported`)
    options.devices = [...(options.devices ?? []), target === undefined ? host : { source: host, target }]
  }
  if (p.bools.get('privileged')) {
    // docker --privileged: all of it, on purpose (the help says DANGEROUS).
    options.capAdd = ['ALL']
    options.seccomp = 'unconfined'
    options.maskedPaths = []
    options.readonlyPaths = []
    options.devices = [...hostDevices().filter((h) => !STANDARD_DEVICES.has(h)), ...(options.devices ?? [])]
  }
  const sysctls: Record<string, string> = {}
  for (const kv of all('sysctl')) {
    const eq = kv.indexOf('=')
    if (eq <= 0) throw invalid('sysctl', kv, 'must be KEY=VALUE, like net.ipv4.ip_forward=1')
    sysctls[kv.slice(0, eq)] = kv.slice(eq + 1)
  }
  const domain = last('domainname')
  if (domain !== undefined) sysctls['kernel.domainname'] = domain
  if (Object.keys(sysctls).length) options.sysctls = sysctls
  const shm = last('shm-size')
  if (shm !== undefined) options.shmSize = shm
  const oom = last('oom-score-adj')
  if (oom !== undefined) {
    if (!/^-?\d+$/.test(oom)) throw invalid('oom-score-adj', oom, 'must be a whole number from -1000 to 1000')
    options.oomScoreAdj = Number(oom)
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
  // docker's grace: 10 s (the library's own default is 2 s).
  options.forceKillAfterDelay = stopTimeout === undefined ? 10_000 : Math.round(seconds('stop-timeout', stopTimeout) * 1000)

  let interactive = p.bools.get('interactive') ?? false
  let tty = p.bools.get('tty') ?? false
  if (!p.bools.has('interactive') && !p.bools.has('tty') && process.stdin.isTTY && command.length === 1 && SHELLS.has(path.basename(command[0]))) {
    interactive = true
    tty = true
  }
  const name = last('name')
  if (name !== undefined && !p.bools.get('detach')) throw invalid('name', name, 'goes with -d/--detach (only detached containers are found by name)')
  const labels: Record<string, string> = {}
  const setLabel = (line: string, bad: (why: string) => Error) => {
    const eq = line.indexOf('=')
    const key = eq < 0 ? line : line.slice(0, eq)
    if (key === '' || key.includes('\0')) throw bad(`must be KEY=VALUE or KEY (got ${JSON.stringify(line)})`)
    labels[key] = eq < 0 ? '' : line.slice(eq + 1)
  }
  for (const file of all('label-file')) fileLines('label-file', file, (line, bad) => setLabel(line.trimEnd(), bad))
  for (const l of all('label')) setLabel(l, (why) => invalid('label', l, why))
  return { command, options, interactive, tty, timeoutSeconds, printPlan: p.bools.get('print-plan') ?? false, mountFlags, makeDirs, notes, detach: p.bools.get('detach') ?? false, labels, ...(name !== undefined ? { name } : {}) }
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
      rootfs: 'rootfs', image: 'image', store: 'store', entrypoint: 'entrypoint', keep: 'image', hostname: 'hostname', env: 'env', cwd: 'workdir', user: 'user', uid: 'user', gid: 'user', groups: 'group-add',
      timeout: 'timeout', killSignal: 'stop-signal', forceKillAfterDelay: 'stop-timeout', rlimits: 'ulimit',
      'limits.memory': 'memory', 'limits.memorySwap': 'memory-swap', 'limits.memoryReservation': 'memory-reservation', 'limits.cpus': 'cpus', 'limits.cpuShares': 'cpu-shares',
      'limits.cpuset': 'cpuset-cpus', 'limits.cpusetMems': 'cpuset-mems', 'limits.pids': 'pids-limit',
      capAdd: 'cap-add', capDrop: 'cap-drop', devices: 'device', sysctls: 'sysctl', shmSize: 'shm-size', oomScoreAdj: 'oom-score-adj', seccomp: 'security-opt', noNewPrivileges: 'security-opt', allowSetuid: 'security-opt',
    }
    const long = byOption[option] ?? byOption[option.split(/[.[]/)[0]]
    if (long) flag = flagName(long)
  }
  return flag ? `invalid value for ${flag}: ${option} ${rest}` : e.message
}

