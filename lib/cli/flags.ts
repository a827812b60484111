// The `lonely` command line: docker's run flags (one table), their help, docker's grammar
// (options, then the command), and the usage errors and exit statuses.
import * as fs from 'node:fs'
import * as path from 'node:path'

/** docker's exit statuses for failures of its own (see `lonely run --help`). */
export const EXIT_RUNTIME = 125
export const EXIT_CANNOT_EXECUTE = 126
export const EXIT_NOT_FOUND = 127

/** A bad command line: printed as `lonely: <message>`, exit 125. */
export class UsageError extends Error {}

export interface Flag {
  long: string
  short?: string
  /** The value's name in --help; absent for a boolean flag. */
  arg?: string
  help: string
}

export const RUN_FLAGS: Flag[] = [
  { long: 'image', arg: 'NAME[:TAG]|ID', help: 'Run an image loaded with `lonely load`: its layers read-only under a fresh writable layer that goes when the container ends; its Entrypoint, Cmd, Env, WorkingDir and User apply, flags override them. Same as docker\'s `lonely run IMAGE [COMMAND]` (and `lonely run IMAGE -- COMMAND`).' },
  { long: 'store', arg: 'DIR', help: 'The image store (default /var/lib/lonely for root, ~/.local/share/lonely otherwise).' },
  { long: 'entrypoint', arg: 'CMD', help: 'Replace the image\'s Entrypoint ("" clears it).' },
  { long: 'rootfs', arg: 'DIR', help: 'Root filesystem of the container (a directory). Default: a read-only mirror of the host\'s /usr, /bin, /lib*, /sbin and /etc with a fresh /proc, a minimal /dev and a tmpfs /tmp; the rest of the host\'s files are not visible.' },
  { long: 'hostname', short: 'h', arg: 'NAME', help: 'Host name inside the container. Default "lonely", in its own UTS namespace: the host\'s name is neither visible nor changeable.' },
  { long: 'env', short: 'e', arg: 'K=V', help: 'Set an environment variable (repeatable). `-e K` alone copies K from your environment (skipped if unset). Default: only PATH, HOSTNAME and HOME (and TERM with -t); none of your variables leak in.' },
  { long: 'env-file', arg: 'FILE', help: 'Read environment variables from FILE (repeatable), as docker: one K=V or K per line (K alone copies K from your environment), lines starting with # and blank lines skipped, no quotes or expansion. -e flags override it.' },
  { long: 'workdir', short: 'w', arg: 'DIR', help: 'Working directory inside the container (absolute); made if missing, owned by the user, as docker (not on a read-only root). Default: the image\'s WorkingDir, else /.' },
  { long: 'user', short: 'u', arg: 'NAME|UID[:GROUP|GID]', help: 'The user (and group) to run as, names looked up in the container\'s own /etc/passwd and /etc/group, as docker: its primary group unless GROUP is given, the groups /etc/group lists it in, and its passwd home as HOME. A UID with no entry gets group 0, no groups and HOME=/. Default: the image\'s User, else root (0:0) with docker\'s default capabilities only.' },
  { long: 'group-add', arg: 'GROUP', help: 'Another supplementary group, a GID or a name in the container\'s /etc/group (repeatable).' },
  { long: 'volume', short: 'v', arg: 'SRC:DST[:OPTS]', help: 'Bind-mount the host path SRC (absolute, or starting with `.`; made as a directory if missing, as docker) at DST, or mount the named volume SRC (a directory of the store, made on first use; see `lonely volume`) (repeatable). OPTS, comma-separated: ro or rw (default); private and rprivate are what lonely does anyway; z, Z, cached, delegated, consistent and nocopy are accepted and ignored with a note; shared and slave propagation are refused. By default no host path is shared but the read-only mirror.' },
  { long: 'mount', arg: 'type=T,...', help: 'docker\'s long form (repeatable): type=bind,source=SRC,target=DST[,readonly] (SRC must exist); type=volume,source=NAME,target=DST[,readonly]; type=tmpfs,target=DST[,tmpfs-size=N][,tmpfs-mode=M]. dst and destination stand for target, src for source, ro for readonly.' },
  { long: 'tmpfs', arg: 'DST[:OPTS]', help: 'Mount a fresh tmpfs at DST (repeatable). OPTS, comma-separated as docker\'s: size=N (bytes, or with a k/m/g suffix; default: the kernel\'s, half of RAM), mode=M (octal, default 1777), uid=N, gid=N, ro or rw, exec or noexec (default noexec, as docker). It is always nosuid and nodev (suid and dev are refused).' },
  { long: 'read-only', help: 'Mount the root filesystem read-only (--rootfs is writable by default; the default mirror root is always read-only).' },
  { long: 'network', arg: 'none|host', help: 'none (default): a network namespace of its own with only the loopback interface up, no route out. host: share the host\'s network stack and interfaces.' },
  { long: 'timeout', arg: 'SECONDS', help: 'Stop the container after SECONDS (fractions allowed): send --stop-signal, then SIGKILL after --stop-timeout. Prints "lonely: container timed out after N s" and exits 128+signal (143 for SIGTERM, 137 for SIGKILL), also when the command handled the signal and exited on its own. Default 0: no limit.' },
  { long: 'stop-signal', arg: 'SIGNAL', help: 'Signal sent on --timeout and by `lonely stop` of a -d container (a name like SIGTERM or a number). Default: the image\'s StopSignal, else SIGTERM.' },
  { long: 'stop-timeout', arg: 'SECONDS', help: 'Grace period after --stop-signal or a forwarded SIGINT/SIGTERM/SIGHUP before SIGKILL (PID 1 ignores signals it has no handler for). Default 10, as docker.' },
  { long: 'memory', short: 'm', arg: 'BYTES', help: 'Memory limit (bytes, or with a b/k/m/g suffix; at least 6m). The container gets a cgroup; when it runs out, the kernel\'s OOM killer ends it, lonely says so on stderr and exits 137. Default: no limit, no cgroup.' },
  { long: 'memory-swap', arg: 'BYTES', help: 'Memory plus swap (with --memory); -1 for unlimited swap. Default: no swap, so --memory means what it says.' },
  { long: 'memory-reservation', arg: 'BYTES', help: 'A soft memory limit (docker\'s units): under memory pressure the kernel reclaims the container down to it (v1 memory.soft_limit_in_bytes, v2 memory.low). At most --memory.' },
  { long: 'cpus', arg: 'N', help: 'CPU limit as a number of CPUs, fractions allowed (0.5 = half of one CPU). Default: no limit.' },
  { long: 'cpu-shares', short: 'c', arg: 'N', help: 'Relative CPU weight (2 to 262144; 1024 is the default weight).' },
  { long: 'cpuset-cpus', arg: 'LIST', help: 'CPUs the container may run on, like 0-2,4.' },
  { long: 'cpuset-mems', arg: 'LIST', help: 'Memory nodes the container may use, like 0.' },
  { long: 'pids-limit', arg: 'N', help: 'Most processes and threads alive at once; fork fails beyond it. Default: no limit.' },
  { long: 'ulimit', arg: 'NAME=SOFT[:HARD]', help: 'A resource limit (setrlimit) by name: nofile, nproc, core, fsize, stack, as, cpu, data, memlock, ... (repeatable); -1 or unlimited for none. Default: inherited from lonely.' },
  { long: 'cap-add', arg: 'CAP', help: 'Add a Linux capability (repeatable; CAP_ prefix optional; ALL for all). Default: docker\'s 14 (CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, NET_RAW, SYS_CHROOT, MKNOD, AUDIT_WRITE, SETFCAP) for root; none for other users.' },
  { long: 'cap-drop', arg: 'CAP', help: 'Drop a Linux capability (repeatable; ALL drops every one, then --cap-add picks).' },
  { long: 'security-opt', arg: 'OPT', help: 'seccomp=unconfined, seccomp=PROFILE.json (docker/OCI format), no-new-privileges[=true|false] (default true), systempaths=unconfined (no masked or read-only /proc and /sys paths), allow-setuid (docker\'s setuid rules: the rootfs, an image\'s layers and -v binds not nosuid, setuid/setgid files may be made in them; a setuid binary such as sudo raises privileges only with no-new-privileges=false too, and in an image loaded with lonely load --keep-setuid). Default: the built-in seccomp profile (docker\'s allowlist, plus TIOCSTI/TIOCLINUX blocked), no_new_privs, docker\'s masked paths.' },
  { long: 'device', arg: 'HOST[:CONTAINER][:rwm]', help: 'Make the host device node HOST (e.g. /dev/fuse, /dev/net/tun, /dev/kvm, a GPU\'s nodes) in the container\'s /dev, at CONTAINER (default the same path), with the host\'s numbers, mode and owner (repeatable). Only rwm access (the default) is supported.' },
  { long: 'privileged', help: 'DANGEROUS: what docker --privileged gives: every capability, no seccomp, no masked or read-only /proc and /sys paths, every host device node in /dev. Root in such a container can take the host over; use it only for code you trust.' },
  { long: 'sysctl', arg: 'KEY=VALUE', help: 'A namespaced sysctl (repeatable), as docker: net.* (with the container\'s own network), kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*; others are refused. By default net.ipv4.ip_unprivileged_port_start=0 and net.ipv4.ping_group_range="0 2147483647", as docker.' },
  { long: 'domainname', arg: 'NAME', help: 'The NIS domain name inside the container (its own UTS namespace; kernel.domainname).' },
  { long: 'platform', arg: 'OS/ARCH[/VARIANT]', help: 'Refuse to run unless the image (or, without one, this host) is this platform, like linux/amd64 or linux/arm64/v8: lonely emulates nothing and pulls no other variant.' },
  { long: 'shm-size', arg: 'BYTES', help: 'Size of /dev/shm (bytes, or with a k/m/g suffix). Default 64m, as docker.' },
  { long: 'oom-score-adj', arg: 'N', help: 'The container\'s OOM score adjustment, -1000 to 1000 (lowering it below lonely\'s needs CAP_SYS_RESOURCE).' },
  { long: 'init', help: 'Run lonely-init as PID 1 (as docker --init, tini): it runs COMMAND as its child, forwards signals to it, reaps zombies, and exits with its status. Default: COMMAND is PID 1.' },
  { long: 'rm', help: 'Accepted for docker compatibility and ignored: a container is always removed when it exits.' },
  { long: 'interactive', short: 'i', help: 'Keep stdin open: the container reads your stdin. Default: stdin is /dev/null.' },
  { long: 'tty', short: 't', help: 'Allocate a pseudo-terminal for the container\'s stdin/stdout/stderr (stderr is merged into stdout). With -i your terminal is put in raw mode while it runs and restored after; its size follows yours. Default: no terminal, the container writes straight to your stdout/stderr.' },
  { long: 'detach', short: 'd', help: 'Run the container in the background, detached from lonely: print its id and exit 0. It outlives lonely, watched by lonely-monitor; find it with `lonely ps`, enter it with `lonely exec`, attach to it with `lonely attach` (-i keeps its stdin open, -t gives it a terminal), end it with `lonely stop` and `lonely rm`. Its stdout and stderr go to `lonely logs`.' },
  { long: 'name', arg: 'NAME', help: 'A unique name for a detached container (-d), usable wherever an id is.' },
  { long: 'label', short: 'l', arg: 'KEY=VALUE', help: 'Metadata kept with a detached container (repeatable; KEY alone: an empty value), over the image\'s labels, as docker: `lonely ps --filter label=KEY[=VALUE]` finds it, `lonely inspect` shows it. Accepted on a foreground run, where nothing lists it.' },
  { long: 'label-file', arg: 'FILE', help: 'Labels from FILE (repeatable): one KEY=VALUE per line, lines starting with # and blank lines skipped. --label flags override it.' },
  { long: 'print-plan', help: 'Print the setup steps the container would get and exit 0 without running anything.' },
  { long: 'help', help: 'Print this help.' },
]

export const SHELLS = new Set(['sh', 'ash', 'bash', 'dash', 'ksh', 'mksh', 'zsh', 'fish'])

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

export const MAIN_HELP = `Usage: lonely COMMAND

Linux containers from kernel primitives, no daemon: docker run as a command.

Commands:
  run        Run a command in a new container (lonely run --help)
  load       Load an image from a docker save archive, an OCI archive or an OCI layout
             directory: lonely load [--store DIR] [--keep-setuid] -i FILE (setuid/setgid
             bits are cleared unless --keep-setuid; what was changed is printed as notes)
  images     List the loaded images: lonely images [--store DIR] [--check [--repair]] (every layer whole; --repair clears damage for the next load)
  rmi        Remove images by name or id: lonely rmi [-f] [--store DIR] IMAGE... (one a running container uses is refused; -f removes one only kept containers use)
  volume     Named volumes, directories of the store: lonely volume ls|create|inspect|rm [--store DIR]
  create     Create a detached container, not started (run's flags): lonely create [OPTIONS] COMMAND...
  start      Start created containers (-a: attached): lonely start [-a] [-i] ID...
  attach     Attach this terminal to a detached container (^P^Q detaches): lonely attach ID
  cp         Copy files between a container and the host: lonely cp ID:SRC DEST, lonely cp SRC ID:DEST
  ps         List detached containers (lonely run -d): lonely ps [-a] [-q] [--filter label=KEY[=VALUE]]
  exec       Run a command in a detached container: lonely exec [-i] [-t] [-u UID[:GID]] [-w DIR] [-e K=V] ID CMD...
  logs       Print a detached container's stdout and stderr (-f: and follow them): lonely logs [-f] ID
  stop       SIGTERM, then SIGKILL after -t seconds (default 10): lonely stop [-t S] ID...
  kill       Send a signal (default SIGKILL): lonely kill [-s SIG] ID...
  rm         Remove stopped containers (-f: running ones too): lonely rm [-f] ID...
  wait       Wait for containers to end and print their exit codes: lonely wait ID...
  top        List a container's processes: lonely top ID
  inspect    Print what lonely knows of containers, as JSON: lonely inspect ID...
  runtime-path
             Print the path of lonely-runtime, the OCI runtime for containerd, Kubernetes and podman
  (The state of detached containers lives in /run/lonely for root, $XDG_RUNTIME_DIR/lonely
  otherwise; LONELY_STATE_DIR chooses another.)

Options:
  -h, --help      Print this help
  -v, --version   Print the version
`

export function runHelp(): string {
  return `Usage: lonely run [OPTIONS] IMAGE [COMMAND] [ARG...]
       lonely run [OPTIONS] [--] COMMAND [ARG...]

Run COMMAND in a new container, as \`docker run\`. Options come before the
rest: the first word that is not an option is IMAGE when it names an image of
the store (\`lonely images\`), as docker's; its Cmd runs if no COMMAND follows.
A word only an image reference looks like (name:tag, name@sha256:...), or any
word with --store, that the store does not have is an error saying how to load
it. Any other first word, everything after an explicit \`--\`, and everything
with --rootfs or --image, is the command with its arguments, in the default
root (the read-only host mirror) or the one given. Short flags combine (-it),
and values may be attached (--hostname=box, -hbox, -ebox=1).

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

export function version(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', 'package.json'), 'utf8')) as { version: string }
  return pkg.version
}

export interface Parsed {
  values: Map<string, string[]>
  bools: Map<string, boolean>
  command: string[]
  /** The options ended at an explicit `--`: every word after it is the command's own. */
  dashed: boolean
}

/** docker's grammar (pflag with interspersed arguments off): options, then the command. */
export function parseRun(args: string[]): Parsed {
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
  let dashed = false
  for (; i < args.length; i++) {
    const arg = args[i]
    if (arg === '--') {
      i++
      dashed = true
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
  return { values, bools, command: args.slice(i), dashed }
}

export function flagName(long: string): string {
  const f = RUN_FLAGS.find((x) => x.long === long)!
  return f.short ? `-${f.short}/--${f.long}` : `--${f.long}`
}

export function invalid(long: string, value: string, why: string): UsageError {
  return new UsageError(`invalid value ${JSON.stringify(value)} for ${flagName(long)}: ${why}`)
}

