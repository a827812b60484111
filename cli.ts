#!/usr/bin/env node
// The `lonely` command: `docker run` flag names over spawn()/explain() from ./index.
// Options are parsed by hand because docker takes them only before the command: the
// first word that is not an option, or everything after `--`, is the command.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { constants } from 'node:os'

import { ContainerError, explain, images, spawn, type ContainerExit, type ContainerOptions, type ContainerProcess, type Mount } from './index'
import { native } from './lib/native'
import { optionOf, type OptionError } from './lib/optionerror'

/** docker's exit statuses for failures of its own (see `lonely run --help`). */
const EXIT_RUNTIME = 125
const EXIT_CANNOT_EXECUTE = 126
const EXIT_NOT_FOUND = 127

/** A bad command line: printed as `lonely: <message>`, exit 125. */
class UsageError extends Error {}

interface Flag {
  long: string
  short?: string
  /** The value's name in --help; absent for a boolean flag. */
  arg?: string
  help: string
}

const RUN_FLAGS: Flag[] = [
  { long: 'image', arg: 'NAME[:TAG]|ID', help: 'Run an image loaded with `lonely load`: its layers read-only under a fresh writable layer that goes when the container ends; its Entrypoint, Cmd, Env, WorkingDir and User apply, flags override them. `lonely run IMAGE -- COMMAND` works too.' },
  { long: 'store', arg: 'DIR', help: 'The image store (default /var/lib/lonely for root, ~/.local/share/lonely otherwise).' },
  { long: 'entrypoint', arg: 'CMD', help: 'Replace the image\'s Entrypoint ("" clears it).' },
  { long: 'rootfs', arg: 'DIR', help: 'Root filesystem of the container (a directory). Default: a read-only mirror of the host\'s /usr, /bin, /lib*, /sbin and /etc with a fresh /proc, a minimal /dev and a tmpfs /tmp; the rest of the host\'s files are not visible.' },
  { long: 'hostname', short: 'h', arg: 'NAME', help: 'Host name inside the container. Default "lonely", in its own UTS namespace: the host\'s name is neither visible nor changeable.' },
  { long: 'env', short: 'e', arg: 'K=V', help: 'Set an environment variable (repeatable). `-e K` alone copies K from your environment (skipped if unset). Default: only PATH, HOSTNAME and HOME (and TERM with -t); none of your variables leak in.' },
  { long: 'workdir', short: 'w', arg: 'DIR', help: 'Working directory inside the container (absolute). Default /.' },
  { long: 'user', short: 'u', arg: 'UID[:GID]', help: 'Numeric user and group id (names are not looked up). Default 0:0: root inside the container, with docker\'s default capabilities only. Without GID: the UID\'s group in the container\'s /etc/passwd, else 0.' },
  { long: 'volume', short: 'v', arg: 'SRC:DST[:ro|rw]', help: 'Bind-mount the host path SRC (absolute, or starting with `.`) at DST (repeatable). Default rw; `ro` makes it read-only. By default no host path is shared but the read-only mirror.' },
  { long: 'tmpfs', arg: 'DST[:size=N[,mode=M]]', help: 'Mount a fresh tmpfs at DST (repeatable). size in bytes or with a k/m/g suffix (default: the kernel\'s, half of RAM), mode in octal (default 1777).' },
  { long: 'read-only', help: 'Mount the root filesystem read-only (--rootfs is writable by default; the default mirror root is always read-only).' },
  { long: 'network', arg: 'none|host', help: 'none (default): a network namespace of its own with only the loopback interface up, no route out. host: share the host\'s network stack and interfaces.' },
  { long: 'timeout', arg: 'SECONDS', help: 'Stop the container after SECONDS (fractions allowed): send --stop-signal, then SIGKILL after --stop-timeout. Prints "lonely: container timed out after N s" and exits 128+signal (143 for SIGTERM, 137 for SIGKILL). Default 0: no limit.' },
  { long: 'stop-signal', arg: 'SIGNAL', help: 'Signal sent on --timeout (a name like SIGTERM or a number). Default SIGTERM.' },
  { long: 'stop-timeout', arg: 'SECONDS', help: 'Grace period after --stop-signal or a forwarded SIGINT/SIGTERM/SIGHUP before SIGKILL (PID 1 ignores signals it has no handler for). Default 2.' },
  { long: 'memory', short: 'm', arg: 'BYTES', help: 'Memory limit (bytes, or with a b/k/m/g suffix; at least 6m). The container gets a cgroup; when it runs out, the kernel\'s OOM killer ends it, lonely says so on stderr and exits 137. Default: no limit, no cgroup.' },
  { long: 'memory-swap', arg: 'BYTES', help: 'Memory plus swap (with --memory); -1 for unlimited swap. Default: no swap, so --memory means what it says.' },
  { long: 'cpus', arg: 'N', help: 'CPU limit as a number of CPUs, fractions allowed (0.5 = half of one CPU). Default: no limit.' },
  { long: 'cpu-shares', short: 'c', arg: 'N', help: 'Relative CPU weight (2 to 262144; 1024 is the default weight).' },
  { long: 'cpuset-cpus', arg: 'LIST', help: 'CPUs the container may run on, like 0-2,4.' },
  { long: 'cpuset-mems', arg: 'LIST', help: 'Memory nodes the container may use, like 0.' },
  { long: 'pids-limit', arg: 'N', help: 'Most processes and threads alive at once; fork fails beyond it. Default: no limit.' },
  { long: 'ulimit', arg: 'NAME=SOFT[:HARD]', help: 'A resource limit (setrlimit) by name: nofile, nproc, core, fsize, stack, as, cpu, data, memlock, ... (repeatable); -1 or unlimited for none. Default: inherited from lonely.' },
  { long: 'cap-add', arg: 'CAP', help: 'Add a Linux capability (repeatable; CAP_ prefix optional; ALL for all). Default: docker\'s 14 (CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP) for root; none for other users.' },
  { long: 'cap-drop', arg: 'CAP', help: 'Drop a Linux capability (repeatable; ALL drops every one, then --cap-add picks).' },
  { long: 'security-opt', arg: 'OPT', help: 'seccomp=unconfined, seccomp=PROFILE.json (docker/OCI format), no-new-privileges[=true|false] (default true), systempaths=unconfined (no masked or read-only /proc and /sys paths), allow-setuid (docker\'s setuid rules: the rootfs and -v binds not nosuid, setuid/setgid files may be made in them). Default: the built-in seccomp profile (docker\'s allowlist, plus TIOCSTI/TIOCLINUX blocked), no_new_privs, docker\'s masked paths.' },
  { long: 'rm', help: 'Accepted for docker compatibility and ignored: a container is always removed when it exits.' },
  { long: 'interactive', short: 'i', help: 'Keep stdin open: the container reads your stdin. Default: stdin is /dev/null.' },
  { long: 'tty', short: 't', help: 'Allocate a pseudo-terminal for the container\'s stdin/stdout/stderr (stderr is merged into stdout). With -i your terminal is put in raw mode while it runs and restored after; its size follows yours. Default: no terminal, the container writes straight to your stdout/stderr.' },
  { long: 'print-plan', help: 'Print the setup steps the container would get and exit 0 without running anything.' },
  { long: 'help', help: 'Print this help.' },
]

const SHELLS = new Set(['sh', 'ash', 'bash', 'dash', 'ksh', 'mksh', 'zsh', 'fish'])

function wrap(text: string, width: number, indent: number): string {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(' ')) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else {
      line = line ? `${line} ${word}` : word
    }
  }
  if (line) lines.push(line)
  return lines.join('\n' + ' '.repeat(indent))
}

function flagList(): string {
  const col = 32
  return RUN_FLAGS.map((f) => {
    const names = `${f.short ? `-${f.short}, ` : '    '}--${f.long}${f.arg ? ` ${f.arg}` : ''}`
    const head = `  ${names}`
    const body = wrap(f.help, 100 - col, col)
    return head.length < col ? head.padEnd(col) + body : `${head}\n${' '.repeat(col)}${body}`
  }).join('\n')
}

const MAIN_HELP = `Usage: lonely COMMAND

Linux containers from kernel primitives, no daemon: docker run as a command.

Commands:
  run        Run a command in a new container (lonely run --help)
  load       Load an image from a docker save archive, an OCI archive or an OCI layout
             directory: lonely load [--store DIR] -i FILE
  images     List the loaded images: lonely images [--store DIR]
  rmi        Remove images by name or id: lonely rmi [--store DIR] IMAGE...

Options:
  -h, --help      Print this help
  -v, --version   Print the version
`

function runHelp(): string {
  return `Usage: lonely run [OPTIONS] [--] COMMAND [ARG...]

Run COMMAND in a new container, as \`docker run IMAGE COMMAND\` without the image.
Options come before the command: the first word that is not an option, and
everything after \`--\`, is the command with its arguments. Short flags combine
(-it), and values may be attached (--hostname=box, -hbox, -ebox=1).

With no options the container is isolated by default: its own pid, mount, uts,
ipc, net and cgroup namespaces; the read-only host mirror as root; loopback-only
network; hostname "lonely"; root with docker's default capabilities,
no_new_privs, the default seccomp profile and masked /proc and /sys paths;
no stdin; every fd but 0-2 closed. It is removed when it exits.

Options:
${flagList()}

Interactive shell:
  lonely run -it -- /bin/sh
  As a shortcut, when your stdin is a terminal and neither -i nor -t is given,
  a command that is just a shell (sh, ash, bash, dash, ksh, mksh, zsh or fish,
  without arguments) implies -i -t: \`lonely run -- /bin/sh\` is interactive.

Signals:
  SIGINT, SIGTERM and SIGHUP sent to lonely are forwarded to the container's
  PID 1, and SIGKILL follows after --stop-timeout. With -it, Ctrl-C is a key
  for the container's terminal, not a signal for lonely.

Exit status (as docker run):
  125      lonely failed: a bad option or value, or the container could not be set up
  126      the command was found but cannot be executed (EACCES, ENOEXEC...)
  127      the command was not found (ENOENT)
  128+n    the container's PID 1 was killed by signal n (137 SIGKILL, 143 SIGTERM),
           also after --timeout
  else     the command's own exit status
`
}

function version(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, 'package.json'), 'utf8')) as { version: string }
  return pkg.version
}

interface Parsed {
  values: Map<string, string[]>
  bools: Map<string, boolean>
  command: string[]
}

/** docker's grammar (pflag with interspersed arguments off): options, then the command. */
function parseRun(args: string[]): Parsed {
  const values = new Map<string, string[]>()
  const bools = new Map<string, boolean>()
  const set = (flag: Flag, value: string | undefined, shown: string) => {
    if (flag.arg === undefined) {
      if (value !== undefined && value !== 'true' && value !== 'false') {
        throw new UsageError(`invalid argument ${JSON.stringify(value)} for ${shown}: a boolean flag takes true or false`)
      }
      bools.set(flag.long, value !== 'false')
    } else {
      values.set(flag.long, [...(values.get(flag.long) ?? []), value!])
    }
  }
  let i = 0
  for (; i < args.length; i++) {
    const arg = args[i]
    if (arg === '--') {
      i++
      break
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=')
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq)
      const flag = RUN_FLAGS.find((f) => f.long === name)
      if (!flag) throw new UsageError(`unknown flag: --${name}\nSee 'lonely run --help'.`)
      let value = eq < 0 ? undefined : arg.slice(eq + 1)
      if (flag.arg !== undefined && value === undefined) {
        if (i + 1 >= args.length) throw new UsageError(`flag needs an argument: --${name}\nSee 'lonely run --help'.`)
        value = args[++i]
      }
      set(flag, value, `--${name}`)
      continue
    }
    if (arg.startsWith('-') && arg.length > 1) {
      for (let j = 1; j < arg.length; j++) {
        const c = arg[j]
        const flag = RUN_FLAGS.find((f) => f.short === c)
        if (!flag) throw new UsageError(`unknown shorthand flag: '${c}' in ${arg}\nSee 'lonely run --help'.`)
        if (flag.arg === undefined) {
          set(flag, undefined, `-${c}`)
          continue
        }
        let value = arg.slice(j + 1)
        if (value.startsWith('=')) value = value.slice(1)
        else if (value === '') {
          if (i + 1 >= args.length) throw new UsageError(`flag needs an argument: '${c}' in -${c}\nSee 'lonely run --help'.`)
          value = args[++i]
        }
        set(flag, value, `-${c}`)
        break
      }
      continue
    }
    break
  }
  return { values, bools, command: args.slice(i) }
}

function flagName(long: string): string {
  const f = RUN_FLAGS.find((x) => x.long === long)!
  return f.short ? `-${f.short}/--${f.long}` : `--${f.long}`
}

function invalid(long: string, value: string, why: string): UsageError {
  return new UsageError(`invalid value ${JSON.stringify(value)} for ${flagName(long)}: ${why}`)
}

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

/** The primary group of `uid` in the container's /etc/passwd (the host's /etc for the mirror root), as docker. */
function primaryGroup(rootfs: string | undefined, uid: number): number {
  try {
    const file = path.join(rootfs ?? '/', 'etc/passwd')
    if (fs.lstatSync(file).isSymbolicLink()) return 0
    for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
      const f = line.split(':')
      if (f.length >= 4 && f[2] === String(uid) && /^\d+$/.test(f[3])) return Number(f[3])
    }
  } catch {
    // no passwd file: gid 0, as docker
  }
  return 0
}

interface Plan {
  command: string[]
  options: ContainerOptions
  interactive: boolean
  tty: boolean
  timeoutSeconds: number
  printPlan: boolean
  /** Which flag and value produced mounts[i], to name it in errors. */
  mountFlags: string[]
}

function buildPlan(p: Parsed): Plan {
  const last = (long: string) => p.values.get(long)?.at(-1)
  const all = (long: string) => p.values.get(long) ?? []
  const options: ContainerOptions = {}
  const mounts: Mount[] = []
  const mountFlags: string[] = []

  const rootfs = last('rootfs')
  if (rootfs !== undefined) options.rootfs = rootfs
  // `lonely run IMAGE -- COMMAND`: a word right before `--` names the image.
  let command = p.command
  let image = last('image')
  if (image === undefined && command.length >= 2 && command[1] === '--') {
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
    options.gid = g === undefined ? primaryGroup(rootfs, options.uid) : numericId('user', user, g)
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

  const limits: NonNullable<ContainerOptions['limits']> = {}
  const memory = last('memory')
  if (memory !== undefined) limits.memory = memory
  const swap = last('memory-swap')
  if (swap !== undefined) limits.memorySwap = swap === '-1' ? -1 : swap
  const cpus = last('cpus')
  if (cpus !== undefined) {
    if (!/^(\d+\.?\d*|\.\d+)$/.test(cpus)) throw invalid('cpus', cpus, 'must be a number of CPUs, like 1.5')
    limits.cpus = Number(cpus)
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
  if (pids !== undefined) limits.pids = integerFlag('pids-limit', pids)
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
  return { command, options, interactive, tty, timeoutSeconds, printPlan: p.bools.get('print-plan') ?? false, mountFlags }
}

/** Names the flag behind a library validation error (its `option`: `hostname`, `mounts[0].source`...). */
function translate(e: OptionError, plan: Plan | undefined): string {
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

function exitStatus(exit: { exitCode?: number; signal?: NodeJS.Signals }): number {
  if (exit.signal) {
    // Real-time signals have no name: the library reports them as `SIG34`.
    const n = constants.signals[exit.signal] ?? Number(/^SIG(\d+)$/.exec(exit.signal)?.[1])
    return Number.isInteger(n) ? 128 + n : EXIT_RUNTIME
  }
  return exit.exitCode ?? EXIT_RUNTIME
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']

/**
 * Forwards SIGINT/SIGTERM/SIGHUP to the container. Installed before the container starts,
 * so that no signal can kill lonely with its default action and orphan the container:
 * one that arrives while spawn() runs is dispatched by the event loop after attach().
 */
class SignalForwarder {
  #proc: ContainerProcess | undefined
  #offs = FORWARDED.map((sig) => {
    const handler = () => {
      this.#proc?.kill(sig)
    }
    process.on(sig, handler)
    return () => process.off(sig, handler)
  })

  attach(proc: ContainerProcess): void {
    this.#proc = proc
  }

  close(): void {
    this.#offs.forEach((off) => off())
  }
}

async function runPlain(plan: Plan): Promise<number> {
  const signals = new SignalForwarder()
  let exit: ContainerExit
  try {
    const proc = spawn(plan.command, { ...plan.options, stdio: [plan.interactive ? 'inherit' : 'ignore', 'inherit', 'inherit'] })
    signals.attach(proc)
    exit = await proc.wait()
  } finally {
    signals.close()
  }
  if (exit.timedOut) process.stderr.write(`lonely: container timed out after ${plan.timeoutSeconds} s\n`)
  if (exit.oomKilled) {
    process.stderr.write(`lonely: container was killed: out of memory (--memory ${plan.options.limits?.memory})\n`)
    return 137 // as docker, whichever process of the container the kernel picked
  }
  return exitStatus(exit)
}

async function runTty(plan: Plan): Promise<number> {
  const signals = new SignalForwarder()
  let proc: ContainerProcess
  try {
    proc = spawn(plan.command, { ...plan.options, tty: true })
  } catch (e) {
    signals.close()
    throw e
  }
  signals.attach(proc)
  const stdin = process.stdin
  const stdout = process.stdout
  const fd = proc.ttyFd
  const resize = () => {
    if (fd === null || !stdout.isTTY) return
    const [cols, rows] = stdout.getWindowSize()
    try {
      native().setWindowSize(fd, rows, cols)
    } catch {
      // the container's terminal is already gone
    }
  }
  resize()
  if (stdout.isTTY) stdout.on('resize', resize)

  let raw = false
  const restore = () => {
    if (raw) stdin.setRawMode(false)
    raw = false
  }
  process.on('exit', restore)
  const onData = (chunk: Buffer) => proc.stdin?.write(chunk)
  // EOF of a non-terminal stdin becomes the terminal's EOF for the container (lib/terminal.ts).
  const onEnd = () => proc.stdin?.end()
  if (plan.interactive) {
    if (stdin.isTTY) {
      stdin.setRawMode(true)
      raw = true
    }
    stdin.on('data', onData)
    stdin.on('end', onEnd)
    stdin.resume()
  }

  const out = proc.stdout!
  const drained = new Promise<void>((resolve) => {
    out.on('end', resolve)
    out.on('close', resolve)
  })
  out.pipe(stdout, { end: false })
  try {
    const exit = await proc.wait()
    // PID 1's end kills every process holding the terminal: its output ends soon after.
    await Promise.race([drained, new Promise((r) => setTimeout(r, 1000).unref())])
    if (exit.timedOut) {
      const wasRaw = raw
      restore()
      process.stderr.write(`${wasRaw ? '\r\n' : ''}lonely: container timed out after ${plan.timeoutSeconds} s\n`)
    }
    if (exit.oomKilled) {
      restore()
      process.stderr.write(`\r\nlonely: container was killed: out of memory (--memory ${plan.options.limits?.memory})\n`)
    }
    return exitStatus(exit)
  } finally {
    signals.close()
    restore()
    process.off('exit', restore)
    stdout.off('resize', resize)
    stdin.off('data', onData)
    stdin.off('end', onEnd)
    stdin.pause()
    out.unpipe(stdout)
    out.destroy()
    proc.stdin?.destroy()
  }
}

async function run(args: string[]): Promise<number> {
  const parsed = parseRun(args)
  if (parsed.bools.get('help')) {
    process.stdout.write(runHelp())
    return 0
  }
  if (parsed.command.length === 0 && !parsed.values.has('image')) {
    throw new UsageError(`"lonely run" requires a command.\nUsage: lonely run [OPTIONS] [--] COMMAND [ARG...]\nSee 'lonely run --help'.`)
  }
  let plan: Plan | undefined
  try {
    plan = buildPlan(parsed)
    if (plan.printPlan) {
      const text = explain(plan.command, { ...plan.options, tty: plan.tty, stdio: [plan.interactive ? 'inherit' : 'ignore', 'inherit', 'inherit'] })
      process.stdout.write(text.endsWith('\n') ? text : text + '\n')
      return 0
    }
    return await (plan.tty ? runTty(plan) : runPlain(plan))
  } catch (e) {
    if (optionOf(e)) throw new UsageError(translate(e as OptionError, plan))
    throw e
  }
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
  switch (cmd) {
    case undefined:
    case '-h':
    case '--help':
      process.stdout.write(MAIN_HELP)
      return 0
    case 'help':
      process.stdout.write(rest[0] === 'run' ? runHelp() : MAIN_HELP)
      return 0
    case '-v':
    case '--version':
    case 'version':
      process.stdout.write(`lonely ${version()}\n`)
      return 0
    case 'run':
      return run(rest)
    case 'load':
    case 'images':
    case 'rmi':
      return imageCommand(cmd, rest)
    default:
      if (cmd.startsWith('-')) throw new UsageError(`unknown flag: ${cmd}\nSee 'lonely --help'.`)
      throw new UsageError(`'${cmd}' is not a lonely command.\nSee 'lonely --help'.`)
  }
}

/** `lonely load|images|rmi` with docker's flags (-i/--input, --store). */
async function imageCommand(cmd: 'load' | 'images' | 'rmi', args: string[]): Promise<number> {
  let store: string | undefined
  let input: string | undefined
  const rest: string[] = []
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    const value = () => {
      if (a.includes('=')) return a.slice(a.indexOf('=') + 1)
      if (i + 1 >= args.length) throw new UsageError(`flag needs an argument: ${a}`)
      return args[++i]
    }
    if (a === '--store' || a.startsWith('--store=')) store = value()
    else if (cmd === 'load' && (a === '-i' || a === '--input' || a.startsWith('--input='))) input = value()
    else if (a === '-h' || a === '--help') {
      process.stdout.write(MAIN_HELP)
      return 0
    } else if (a.startsWith('-')) throw new UsageError(`unknown flag: ${a}\nSee 'lonely --help'.`)
    else rest.push(a)
  }
  const opts = store === undefined ? {} : { store }
  if (cmd === 'load') {
    if (!input) throw new UsageError('"lonely load" requires -i FILE (a docker save archive, an OCI archive or an OCI layout directory)')
    const bar = process.stderr.isTTY
    const loaded = await images.load(input, {
      ...opts,
      onProgress: bar
        ? (p) => process.stderr.write(`\r\x1b[Klayer ${p.layer + 1}/${p.layers} ${p.diffId.slice(7, 19)}: ${p.reused ? 'already stored' : p.state} ${p.total ? Math.floor((100 * p.done) / p.total) : 100}%`)
        : undefined,
    })
    if (bar) process.stderr.write('\r\x1b[K')
    for (const img of loaded.images) {
      process.stdout.write(img.names.length ? img.names.map((n) => `Loaded image: ${n}\n`).join('') : `Loaded image ID: ${img.id}\n`)
    }
    return 0
  }
  if (cmd === 'images') {
    const rows = images.list(opts).flatMap((img) => (img.names.length ? img.names : ['<none>:<none>']).map((n) => {
      const colon = n.lastIndexOf(':')
      return [n.slice(0, colon), n.slice(colon + 1), img.id.slice(7, 19), `${(img.size / 1e6).toFixed(1)}MB`]
    }))
    const all = [['REPOSITORY', 'TAG', 'IMAGE ID', 'SIZE'], ...rows]
    const widths = [0, 1, 2].map((c) => Math.max(...all.map((r) => r[c].length)))
    for (const r of all) process.stdout.write(`${r.slice(0, 3).map((v, c) => v.padEnd(widths[c] + 3)).join('')}${r[3]}\n`)
    return 0
  }
  if (rest.length === 0) throw new UsageError('"lonely rmi" requires at least one image')
  for (const ref of rest) {
    const removed = await images.remove(ref, opts)
    for (const n of removed.untagged) process.stdout.write(`Untagged: ${n}\n`)
    for (const id of removed.deleted) process.stdout.write(`Deleted: ${id}\n`)
  }
  return 0
}

/** docker's statuses: 127 not found, 126 found but not executable, 125 everything else of ours. */
function failureStatus(e: unknown): number {
  if (e instanceof ContainerError && e.stage === 'exec') return e.code === 'ENOENT' ? EXIT_NOT_FOUND : EXIT_CANNOT_EXECUTE
  return EXIT_RUNTIME
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code
      // A paused stdin (after -i) must not keep lonely alive.
      process.stdout.write('', () => process.exit(code))
    },
    (e: unknown) => {
      const message = e instanceof Error ? e.message : String(e)
      process.stderr.write(`lonely: ${message}\n`)
      process.exit(failureStatus(e))
    },
  )
}
