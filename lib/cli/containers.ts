// `lonely ps`, `exec`, `start`, `attach`, `logs`, `stop`, `kill`, `rm`, `wait`, `top`, `inspect`: docker's
// subcommands for detached containers (made with `lonely run -d`), from any process. The
// state directory is the library's (LONELY_STATE_DIR to choose another).
import { containers, type Container } from '../../index'
import { UsageError } from './flags'
import { exitStatus, runTty } from './run'
import { attachHere } from './attach'

/** Each subcommand's --help. */
export const SUBCOMMAND_HELP: Record<string, string> = {
  ps: 'Usage: lonely ps [-a|--all] [-q|--quiet]\n\nList detached containers (running ones; -a: all; -q: ids only).\n',
  exec: 'Usage: lonely exec [-i] [-t] [-u UID[:GID]] [-w DIR] [-e K[=V]] CONTAINER COMMAND [ARG...]\n\nRun a command in a running container: its namespaces, cgroup and privileges.\nThe exit status is the command\'s.\n',
  start: 'Usage: lonely start [-a|--attach] [-i|--interactive] CONTAINER...\n\nStart containers made with `lonely create`. -a: attach to its output (and with -i its\nstdin) and exit with its status.\n',
  attach: 'Usage: lonely attach [--no-stdin] CONTAINER\n\nAttach this terminal to a detached container: its output from now on, this stdin typed\ninto it (a terminal in raw mode; ^P^Q detaches and leaves it running). The exit status\nis the container\'s.\n',
  logs: 'Usage: lonely logs [-f|--follow] CONTAINER\n\nPrint a detached container\'s stdout and stderr (-f: and follow them until it ends).\n',
  stop: 'Usage: lonely stop [-t|--time SECONDS] CONTAINER...\n\nSIGTERM, then SIGKILL after SECONDS (default 10).\n',
  kill: 'Usage: lonely kill [-s|--signal SIGNAL] CONTAINER...\n\nSend a signal (default SIGKILL) to PID 1.\n',
  rm: 'Usage: lonely rm [-f|--force] CONTAINER...\n\nRemove ended containers (-f: running ones too, killed first) and their state.\n',
  wait: 'Usage: lonely wait CONTAINER...\n\nWait for containers to end; print their exit codes.\n',
  top: 'Usage: lonely top CONTAINER\n\nList a container\'s processes (host pid, pid inside, command).\n',
  inspect: 'Usage: lonely inspect CONTAINER...\n\nPrint what lonely knows of containers, as JSON.\n',
}

/** One subcommand's flags: `-x`/`--long` booleans and `-v VALUE`/`--long=VALUE` values, then operands. */
function parse(args: string[], booleans: Record<string, string>, values: Record<string, string>): { flags: Map<string, string[]>; rest: string[] } {
  const flags = new Map<string, string[]>()
  let i = 0
  for (; i < args.length; i++) {
    const a = args[i]
    if (a === '--') {
      i++
      break
    }
    if (!a.startsWith('-') || a === '-') break
    const [name, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined]
    if (booleans[name]) flags.set(booleans[name], ['true'])
    else if (values[name]) {
      const value = inline ?? args[++i]
      if (value === undefined) throw new UsageError(`flag needs an argument: ${name}`)
      flags.set(values[name], [...(flags.get(values[name]) ?? []), value])
    } else throw new UsageError(`unknown flag: ${name}`)
  }
  return { flags, rest: args.slice(i) }
}

/** docker ps's `--filter label=KEY` (the label is set) and `label=KEY=VALUE` (to that value). */
function labelFilter(filter: string): (labels: Record<string, string>) => boolean {
  if (!filter.startsWith('label=') || filter.length === 'label='.length) throw new UsageError(`invalid filter ${JSON.stringify(filter)}: lonely ps filters by label=KEY or label=KEY=VALUE`)
  const rule = filter.slice('label='.length)
  const eq = rule.indexOf('=')
  if (eq < 0) return (labels) => rule in labels
  const [key, value] = [rule.slice(0, eq), rule.slice(eq + 1)]
  return (labels) => labels[key] === value
}

function need(rest: string[], what: string, cmd: string): void {
  if (rest.length === 0) throw new UsageError(`"lonely ${cmd}" requires ${what}`)
}

const get = (id: string): Container => {
  try {
    return containers.get(id)
  } catch {
    throw new UsageError(`No such container: ${id}`)
  }
}

function ago(iso: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000))
  return s < 60 ? `${s} seconds ago` : s < 3600 ? `${Math.round(s / 60)} minutes ago` : `${Math.round(s / 3600)} hours ago`
}

export async function containerCommand(cmd: string, args: string[]): Promise<number> {
  if (args[0] === '--help' || args[0] === '-h') {
    process.stdout.write(SUBCOMMAND_HELP[cmd] ?? '')
    return 0
  }
  switch (cmd) {
    case 'start': {
      const { flags, rest } = parse(args, { '-a': 'attach', '--attach': 'attach', '-i': 'interactive', '--interactive': 'interactive' }, {})
      need(rest, 'at least one container', 'start')
      if (flags.has('attach') && rest.length > 1) throw new UsageError('you cannot start and attach multiple containers at once')
      for (const id of rest) {
        const c = get(id)
        if (!c.running) throw new UsageError(`container ${id} has ended: lonely cannot start it again (lonely create a new one)`)
        const start = async () => {
          if (c.created) await c.start()
        }
        if (flags.has('attach')) return attachHere(c, { stdin: flags.has('interactive'), then: start })
        await start()
        process.stdout.write(`${id}\n`)
      }
      return 0
    }
    case 'attach': {
      const { flags, rest } = parse(args, { '--no-stdin': 'no-stdin' }, {})
      need(rest, 'a container', 'attach')
      const c = get(rest[0])
      if (!c.running) throw new UsageError(`You cannot attach to a stopped container, start it first`)
      return attachHere(c, { stdin: !flags.has('no-stdin') })
    }
    case 'ps': {
      const { flags } = parse(args, { '-a': 'all', '--all': 'all', '-q': 'quiet', '--quiet': 'quiet' }, { '-f': 'filter', '--filter': 'filter' })
      const wanted = (flags.get('filter') ?? []).map(labelFilter)
      const all = containers.list().filter((c) => (c.running || flags.has('all')) && wanted.every((w) => w(c.labels)))
      if (flags.has('quiet')) {
        for (const c of all) process.stdout.write(`${c.id.slice(0, 12)}\n`)
        return 0
      }
      const rows = [['CONTAINER ID', 'COMMAND', 'CREATED', 'STATUS', 'NAMES'], ...all.map((c) => [
        c.id.slice(0, 12),
        JSON.stringify(c.command.join(' ').slice(0, 20)),
        ago(c.created),
        c.status === 'created' ? 'Created' : c.running ? 'Up' : `Exited (${c.exitCode ?? (c.signal ? c.signal : '?')})`,
        c.name ?? '',
      ])]
      const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)))
      for (const r of rows) process.stdout.write(`${r.map((v, i) => (i === r.length - 1 ? v : v.padEnd(widths[i] + 3))).join('')}\n`)
      return 0
    }
    case 'exec': {
      const { flags, rest } = parse(args, { '-i': 'interactive', '--interactive': 'interactive', '-t': 'tty', '--tty': 'tty', '-it': 'it', '-ti': 'it' }, { '-u': 'user', '--user': 'user', '-w': 'workdir', '--workdir': 'workdir', '-e': 'env', '--env': 'env' })
      need(rest, 'a container and a command', 'exec')
      const [id, ...command] = rest
      need(command, 'a command', 'exec')
      const c = get(id)
      const env: Record<string, string> = {}
      for (const e of flags.get('env') ?? []) {
        const eq = e.indexOf('=')
        if (eq > 0) env[e.slice(0, eq)] = e.slice(eq + 1)
        else if (process.env[e] !== undefined) env[e] = process.env[e]!
      }
      const user = flags.get('user')?.at(-1)
      const interactive = flags.has('interactive') || flags.has('it')
      // docker exec -u: a name or id, looked up in the container's own /etc/passwd and /etc/group.
      const options = {
        ...(Object.keys(env).length ? { env } : {}),
        ...(flags.get('workdir') ? { cwd: flags.get('workdir')!.at(-1)! } : {}),
        ...(user !== undefined ? { user } : {}),
      }
      if (flags.has('tty') || flags.has('it')) {
        return runTty({ interactive, timeoutSeconds: 0, options: {} }, () => c.exec(command, { ...options, tty: true }))
      }
      const proc = c.exec(command, { ...options, stdio: [interactive ? 'inherit' : 'ignore', 'inherit', 'inherit'] })
      return exitStatus(await proc.wait())
    }
    case 'logs': {
      const { flags, rest } = parse(args, { '-f': 'follow', '--follow': 'follow' }, {})
      need(rest, 'a container', 'logs')
      const c = get(rest[0])
      let shown = 0
      const more = () => {
        const text = Buffer.from(c.logs())
        if (text.length > shown) process.stdout.write(text.subarray(shown))
        shown = text.length
      }
      more()
      // -f: what it writes next, until it has ended (then what it wrote last).
      while (flags.has('follow') && c.running) {
        await new Promise((r) => setTimeout(r, 100))
        more()
      }
      if (flags.has('follow')) more()
      return 0
    }
    case 'stop':
    case 'kill':
    case 'rm':
    case 'wait': {
      const { flags, rest } = parse(args, { '-f': 'force', '--force': 'force' }, { '-t': 'time', '--time': 'time', '-s': 'signal', '--signal': 'signal' })
      need(rest, 'at least one container', cmd)
      for (const id of rest) {
        const c = get(id)
        if (cmd === 'stop') await c.stop({ timeout: Math.round(Number(flags.get('time')?.at(-1) ?? 10) * 1000) })
        else if (cmd === 'kill') {
          const s = flags.get('signal')?.at(-1) ?? 'SIGKILL'
          c.kill(/^\d+$/.test(s) ? Number(s) : ((s.startsWith('SIG') ? s : `SIG${s}`) as NodeJS.Signals))
        } else if (cmd === 'rm') {
          if (c.running && !flags.has('force')) throw new UsageError(`cannot remove container ${id}: it is running (stop it first, or rm -f)`)
          await c.remove({ force: true })
        } else {
          process.stdout.write(`${exitStatus(await c.wait())}\n`)
          continue
        }
        if (cmd !== 'kill') process.stdout.write(`${id}\n`)
      }
      return 0
    }
    case 'top': {
      const { rest } = parse(args, {}, {})
      need(rest, 'a container', 'top')
      process.stdout.write('PID       CONTAINER PID   COMMAND\n')
      for (const p of get(rest[0]).top()) process.stdout.write(`${String(p.pid).padEnd(10)}${String(p.containerPid).padEnd(16)}${p.command.join(' ')}\n`)
      return 0
    }
    case 'inspect': {
      const { rest } = parse(args, {}, {})
      need(rest, 'a container', 'inspect')
      const found = rest.map((id) => containers.list().find((c) => c.id.startsWith(id) || c.name === id) ?? (() => { throw new UsageError(`No such container: ${id}`) })())
      process.stdout.write(`${JSON.stringify(found, null, 2)}\n`)
      return 0
    }
  }
  throw new UsageError(`'${cmd}' is not a lonely command.\nSee 'lonely --help'.`)
}
