// The `lonely` command, run as `node cli.js ...` from the repo root (build first with
// `npx tsc -p tsconfig.json`). Every flag is shown to take effect inside a real container,
// next to a control without it; exit codes follow docker; the interactive shell is driven
// through a real pseudo-terminal made by util-linux `script`.
import test, { type ExecutionContext } from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { execFileSync, spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process'

import { makeBusyboxRoot, ourMounts, removeRoot, removeDetached } from './helpers'

const REPO = path.resolve(__dirname, '..')
const CLI = path.join(REPO, 'cli.js')
/** The installed command: a launcher that keeps Node's own flags (--env-file) away from lonely's. */
const LAUNCHER = path.join(REPO, 'bin/lonely')
const HAS_SCRIPT = (() => {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()

let root = ''
let host = '' // a host directory for binds, never the rootfs
let hostMounts = ''

interface Outcome {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

/** Runs `lonely ...args` (bin/lonely, as npm installs it) and resolves when it has exited. Its stdin is a pipe, never a terminal. */
function lonely(args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; onStdout?: (all: string, child: ReturnType<typeof spawn>) => void } = {}): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(LAUNCHER, args, { cwd: REPO, env: opts.env ?? process.env, stdio: 'pipe' })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d
      opts.onStdout?.(stdout, child)
    })
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    child.stdin.end(opts.input ?? '')
    const guard = setTimeout(() => child.kill('SIGKILL'), 30_000)
    child.on('error', reject)
    child.on('close', (code, signal) => {
      clearTimeout(guard)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

/** `lonely run --rootfs <busybox root> ...args`. */
const inBox = (args: string[], opts?: Parameters<typeof lonely>[1]) => lonely(['run', '--rootfs', root, ...args], opts)

/** Nothing of the container outlives the CLI: no host mount, no process still running `marker`. */
function noLeaks(t: ExecutionContext, marker?: string): void {
  t.is(ourMounts(), hostMounts, 'our mounts changed')
  if (!marker) return
  const alive = fs.readdirSync('/proc').filter((pid) => {
    if (!/^\d+$/.test(pid)) return false
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(marker)
    } catch {
      return false
    }
  })
  t.deepEqual(alive, [], `a container process (${marker}) outlived the CLI`)
}

test.before(() => {
  if (!fs.existsSync(CLI)) throw new Error('cli.js is missing: run `npx tsc -p tsconfig.json` first')
  root = makeBusyboxRoot()
  fs.chmodSync(root, 0o755) // mkdtemp makes it 0700: a non-root user could not even chdir to /
  host = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-cli-host-'))
  fs.writeFileSync(path.join(host, 'greeting'), 'hello from the host\n')
  fs.writeFileSync(path.join(root, 'not-executable'), '#!/bin/sh\necho ran\n', { mode: 0o644 })
  fs.writeFileSync(path.join(root, 'not-a-program'), 'this is text, not a program\n', { mode: 0o755 })
  fs.chmodSync(path.join(root, 'not-a-program'), 0o755)
  hostMounts = ourMounts()
})

test.after.always(() => {
  if (root) removeRoot(root)
  if (host) fs.rmSync(host, { recursive: true, force: true })
})

// ---------------------------------------------------------------- help, version, errors

const EVERY_FLAG = [
  '--rootfs DIR', '-h, --hostname NAME', '-e, --env K=V', '-w, --workdir DIR', '-u, --user NAME|UID[:GROUP|GID]', '--group-add GROUP', '--env-file FILE',
  '-v, --volume SRC:DST[:OPTS]', '--mount type=T,...', '--tmpfs DST[:OPTS]', '--read-only', '--network none|host',
  '--timeout SECONDS', '--stop-signal SIGNAL', '--stop-timeout SECONDS', '--init', '--rm', '-i, --interactive', '-t, --tty',
  '-d, --detach', '--name NAME', '-l, --label KEY=VALUE', '--label-file FILE', '--print-plan', '--help', '-m, --memory BYTES', '--memory-swap BYTES', '--cpus N', '-c, --cpu-shares N',
  '--cpuset-cpus LIST', '--cpuset-mems LIST', '--pids-limit N', '--ulimit NAME=SOFT[:HARD]',
  '--cap-add CAP', '--cap-drop CAP', '--device HOST[:CONTAINER][:rwm]', '--privileged', '--shm-size BYTES', '--oom-score-adj N', '--memory-reservation BYTES', '--sysctl KEY=VALUE', '--domainname NAME', '--platform OS/ARCH[/VARIANT]', '--security-opt OPT', '--image NAME[:TAG]|ID', '--store DIR', '--entrypoint CMD',
]

test('lonely run --help documents every flag, its default, and the exit codes', async (t) => {
  const r = await lonely(['run', '--help'])
  t.is(r.code, 0)
  for (const flag of EVERY_FLAG) t.true(r.stdout.includes(flag), `--help does not list ${flag}`)
  const flagLines = r.stdout.split('\n').filter((l) => /^ {2}(-\w, |    )--[\w-]+/.test(l))
  t.is(flagLines.length, EVERY_FLAG.length, 'a flag is listed that this test does not know about')
  const flat = r.stdout.replace(/\s+/g, ' ')
  for (const text of ['Default "lonely"', 'else /.', 'else root (0:0)', 'none (default)', 'else SIGTERM', 'Default 10, as docker', 'stdin is', 'lonely run -it -- /bin/sh']) {
    t.true(flat.includes(text), `--help does not say ${JSON.stringify(text)}`)
  }
  for (const code of ['125', '126', '127', '128+n', '137', '143']) t.true(r.stdout.includes(code), `--help does not explain exit status ${code}`)
  t.is(r.stderr, '')
})

test('a reader that went away (lonely images | head -1): lonely ends quietly with 141, as a CLI killed by SIGPIPE, never an EPIPE stack trace', async (t) => {
  const store = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-epipe-'))
  t.teardown(() => fs.rmSync(store, { recursive: true, force: true }))
  for (const args of [['--help'], ['images', '--store', store], ['run', '--', '/bin/sh', '-c', 'echo hi']]) {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    // The read end closes before lonely has started: its first write meets a closed pipe.
    child.stdout!.destroy()
    let err = ''
    child.stderr!.on('data', (d) => (err += d))
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
    t.is(err, '', `lonely ${args.join(' ')}`)
    t.is(code, 141, `lonely ${args.join(' ')}: ${err}`)
  }
})

test('a `--` inside the command is the command\'s: after an explicit `--` and with --rootfs it never names an image (tini -- cmd, ls -- /)', async (t) => {
  const afterDash = await lonely(['run', '--rootfs', root, '--', '/bin/ls', '--', '/bin/busybox'])
  t.is(afterDash.stdout, '/bin/busybox\n', afterDash.stderr)
  t.is(afterDash.code, 0)
  const withRootfs = await lonely(['run', '--rootfs', root, '/bin/ls', '--', '/bin/busybox'])
  t.is(withRootfs.stdout, '/bin/busybox\n', withRootfs.stderr)
  // No --rootfs (the built-in root), an explicit `--` first: `ls -- DIR` is still the command.
  const mirror = await lonely(['run', '--', '/usr/bin/ls', '--', '/usr/bin/ls'])
  t.is(mirror.stdout, '/usr/bin/ls\n', mirror.stderr)
})

test('lonely --help names the run command; --version prints package.json\'s version', async (t) => {
  const help = await lonely(['--help'])
  t.is(help.code, 0)
  t.regex(help.stdout, /Usage: lonely/)
  t.regex(help.stdout, /^ {2}run\b/m)
  const version = JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')).version as string
  const v = await lonely(['--version'])
  t.is(v.code, 0)
  t.is(v.stdout, `lonely ${version}\n`)
})

test('unknown flags, missing values and bad values exit 125 with one `lonely:` error naming the flag', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['run', '--bogus', 'true'], /unknown flag: --bogus/],
    [['run', '-iq', 'true'], /unknown shorthand flag: 'q' in -iq/],
    [['run', '--hostname'], /flag needs an argument: --hostname/],
    [['run', '-it', '-u'], /flag needs an argument: 'u' in -u/],
    [['run', '-h', 'bad name!', 'true'], /-h\/--hostname: hostname must be letters, digits.*'bad name!'/],
    [['run', '-u', 'a:b:c', 'true'], /invalid value for -u\/--user: user must be `name`, `uid`, `name:group` or `uid:gid`; got 'a:b:c'/],
    [['run', '--network', 'bridge', 'true'], /"bridge" for --network: must be none/],
    [['run', '--timeout', 'soon', 'true'], /"soon" for --timeout/],
    [['run', '--timeout', '3000000', 'true'], /"3000000" for --timeout: must be at most 2147483 seconds/],
    [['run', '--stop-signal', 'SIGNOPE', 'true'], /"SIGNOPE" for --stop-signal/],
    [['run', '--mount', 'type=bind,src=/no/such/dir,dst=/x', 'true'], /--mount "type=bind,src=\/no\/such\/dir,dst=\/x": mounts\[0\]\.source must exist on the host/],
    [['run', '-v', 'bad name:/x', 'true'], /"bad name" is neither a host path .* nor a volume name/],
    [['run', '-v', '/tmp:/x:rsharde', 'true'], /unknown option "rsharde": use ro, rw, private, rprivate, slave, rslave, shared, rshared/],
    [['run', '--mount', 'type=bind,src=/tmp,dst=/x,bind-propagation=up', 'true'], /bind-propagation must be one of private, .*rshared \(got "up"\)/],
    [['run', '--mount', 'type=nfs,dst=/x', 'true'], /type must be bind, volume or tmpfs/],
    [['run', '--tmpfs', '/x:suid', 'true'], /suid is refused: lonely's tmpfs mounts are always nosuid and nodev/],
    [['run', '--tmpfs', '/x:size=lots', 'true'], /--tmpfs "\/x:size=lots": mounts\[0\]\.size/],
    [['run', '-w', 'relative', 'true'], /"relative" for -w\/--workdir: must be an absolute path/],
    [['run', '--rootfs', '/no/such/root', 'true'], /--rootfs: rootfs must be an existing directory/],
    [['run'], /"lonely run" requires an image or a command/],
    [['frobnicate'], /'frobnicate' is not a lonely command/],
  ]
  for (const [args, message] of cases) {
    const r = await lonely(args)
    t.is(r.code, 125, `${args.join(' ')}: ${r.stderr}`)
    t.regex(r.stderr, /^lonely: /, args.join(' '))
    t.regex(r.stderr, message, args.join(' '))
    t.is(r.stdout, '', args.join(' '))
  }
})

test('a bad flag is refused before anything runs', async (t) => {
  const probe = path.join(host, 'bad-flag-probe')
  const r = await lonely(['run', '-v', `${host}:/out`, '--bogus', '--', 'touch', '/out/bad-flag-probe'])
  t.is(r.code, 125)
  t.false(fs.existsSync(probe))
  const control = await lonely(['run', '-v', `${host}:/out`, '--', 'touch', '/out/bad-flag-probe'])
  t.is(control.code, 0, control.stderr)
  t.true(fs.existsSync(probe))
  fs.rmSync(probe)
  noLeaks(t)
})

// ---------------------------------------------------------------- flags take effect

test('-h/--hostname sets the name seen inside; the default is "lonely"', async (t) => {
  t.is((await inBox(['-h', 'box-one', '--', 'hostname'])).stdout, 'box-one\n')
  t.is((await inBox(['--hostname=box-two', 'hostname'])).stdout, 'box-two\n')
  t.is((await inBox(['-hbox-three', 'hostname'])).stdout, 'box-three\n')
  const control = await inBox(['hostname'])
  t.is(control.stdout, 'lonely\n')
  t.not(os.hostname(), 'box-one')
  noLeaks(t)
})

test('-e/--env sets variables, -e K copies K from the caller, and nothing else of the caller leaks', async (t) => {
  const env: NodeJS.ProcessEnv = { ...process.env, FROM_CALLER: 'copied', NOT_PASSED: 'secret' }
  delete env.NEVER_SET
  const r = await inBox(['-e', 'GREETING=hi there', '--env=EMPTY=', '-e', 'FROM_CALLER', '-e', 'NEVER_SET', '--', 'env'], { env })
  t.is(r.code, 0, r.stderr)
  const vars = r.stdout.split('\n')
  t.true(vars.includes('GREETING=hi there'))
  t.true(vars.includes('EMPTY='))
  t.true(vars.includes('FROM_CALLER=copied'))
  t.false(r.stdout.includes('NEVER_SET'))
  t.false(r.stdout.includes('NOT_PASSED'))
  const control = await inBox(['env'], { env })
  t.false(control.stdout.includes('GREETING'))
  t.false(control.stdout.includes('FROM_CALLER'))
  noLeaks(t)
})

test('-w/--workdir sets the working directory; the default is /', async (t) => {
  t.is((await inBox(['-w', '/tmp', '--', 'pwd'])).stdout, '/tmp\n')
  t.is((await inBox(['--workdir=/etc', 'pwd'])).stdout, '/etc\n')
  t.is((await inBox(['pwd'])).stdout, '/\n')
  noLeaks(t)
})

test('-u/--user UID:GID sets the credentials; UID alone takes its group from the container\'s /etc/passwd', async (t) => {
  const r = await inBox(['-u', '65534:65534', '--', 'sh', '-c', 'id -u; id -g'])
  t.is(r.stdout, '65534\n65534\n', r.stderr)
  const mixed = await inBox(['--user=1234:5678', 'sh', '-c', 'id -u; id -g'])
  t.is(mixed.stdout, '1234\n5678\n', mixed.stderr)
  const alone = await inBox(['-u', '65534', 'id', '-g'])
  t.is(alone.stdout, '65534\n', alone.stderr)
  const unknown = await inBox(['-u', '4321', 'id', '-g'])
  t.is(unknown.stdout, '0\n', unknown.stderr)
  const control = await inBox(['id', '-u'])
  t.is(control.stdout, '0\n')
  noLeaks(t)
})

test('-v/--volume binds a host path read-write; :ro makes writes fail with EROFS', async (t) => {
  const rw = await inBox(['-v', `${host}:/data`, '--', 'sh', '-c', 'cat /data/greeting && echo written > /data/from-rw'])
  t.is(rw.code, 0, rw.stderr)
  t.is(rw.stdout, 'hello from the host\n')
  t.is(fs.readFileSync(path.join(host, 'from-rw'), 'utf8'), 'written\n')

  const ro = await inBox(['-v', `${host}:/data:ro`, '--', 'sh', '-c', 'cat /data/greeting; echo nope > /data/from-ro'])
  t.is(ro.stdout, 'hello from the host\n')
  t.not(ro.code, 0)
  t.regex(ro.stderr, /Read-only file system/)
  t.false(fs.existsSync(path.join(host, 'from-ro')))

  const control = await inBox(['cat', '/data/greeting'])
  t.not(control.code, 0)
  noLeaks(t)
})

test('--tmpfs mounts a fresh tmpfs with the given size and mode', async (t) => {
  const r = await inBox(['--tmpfs', '/scratch:size=1m,mode=700', '--', 'sh', '-c', 'grep " /scratch " /proc/mounts; stat -c %a /scratch; echo x > /scratch/f && cat /scratch/f'])
  t.is(r.code, 0, r.stderr)
  const [mount, mode, content] = r.stdout.split('\n')
  t.regex(mount, /^\S+ \/scratch tmpfs /)
  t.regex(mount, /size=1024k/)
  t.is(mode, '700')
  t.is(content, 'x')
  const plain = await inBox(['--tmpfs=/scratch2', 'grep', ' /scratch2 ', '/proc/mounts'])
  t.regex(plain.stdout, /^\S+ \/scratch2 tmpfs /)
  const control = await inBox(['grep', ' /scratch ', '/proc/mounts'])
  t.is(control.stdout, '')
  noLeaks(t)
})

test('--read-only makes writes to / fail; without it the rootfs is writable', async (t) => {
  const probe = path.join(root, 'read-only-probe')
  const ro = await inBox(['--read-only', '--', 'touch', '/read-only-probe'])
  t.not(ro.code, 0)
  t.regex(ro.stderr, /Read-only file system/)
  t.false(fs.existsSync(probe))
  const control = await inBox(['touch', '/read-only-probe'])
  t.is(control.code, 0, control.stderr)
  t.true(fs.existsSync(probe))
  fs.rmSync(probe)
  noLeaks(t)
})

test('--network host shares the host\'s interfaces; the default (none) has only lo', async (t) => {
  const script = 'readlink /proc/self/ns/net; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d " "'
  const hostNs = fs.readlinkSync('/proc/self/ns/net')
  const hostIfaces = fs.readdirSync('/sys/class/net').sort()

  const def = await inBox(['sh', '-c', script])
  const [defNs, ...defIfaces] = def.stdout.trim().split('\n')
  t.not(defNs, hostNs)
  t.deepEqual(defIfaces, ['lo'])

  const none = await inBox(['--network', 'none', 'sh', '-c', script])
  t.not(none.stdout.split('\n')[0], hostNs)

  const shared = await inBox(['--network=host', 'sh', '-c', script])
  const [sharedNs, ...sharedIfaces] = shared.stdout.trim().split('\n')
  t.is(sharedNs, hostNs)
  t.deepEqual(sharedIfaces.sort(), hostIfaces)
  noLeaks(t)
})

test('-i passes stdin through (also combined as -ie); without it the container reads nothing', async (t) => {
  const r = await inBox(['-ie', 'A=1', '--', 'sh', '-c', 'echo "A=$A"; cat'], { input: 'piped in\n' })
  t.is(r.code, 0, r.stderr)
  t.is(r.stdout, 'A=1\npiped in\n')
  const control = await inBox(['sh', '-c', 'cat; echo end'], { input: 'piped in\n' })
  t.is(control.stdout, 'end\n')
  noLeaks(t)
})

test('--rm is accepted and changes nothing', async (t) => {
  const r = await inBox(['--rm', '-h', 'rm-box', 'hostname'])
  t.is(r.code, 0, r.stderr)
  t.is(r.stdout, 'rm-box\n')
  noLeaks(t)
})

test('--print-plan prints the setup steps and runs nothing', async (t) => {
  const probe = path.join(host, 'plan-probe')
  const r = await inBox(['--print-plan', '-h', 'planned', '-v', `${host}:/out`, '--', 'touch', '/out/plan-probe'])
  t.is(r.code, 0, r.stderr)
  for (const step of ['pivot_root', 'sethostname', 'mount `/out`', 'mount proc']) t.true(r.stdout.includes(step), `plan lacks ${step}`)
  t.false(fs.existsSync(probe))
  const control = await inBox(['-v', `${host}:/out`, '--', 'touch', '/out/plan-probe'])
  t.is(control.code, 0, control.stderr)
  t.true(fs.existsSync(probe))
  fs.rmSync(probe)
  noLeaks(t)
})

// ---------------------------------------------------------------- exit codes and signals

test('the container\'s exit code is passed through', async (t) => {
  t.is((await inBox(['sh', '-c', 'exit 7'])).code, 7)
  t.is((await inBox(['sh', '-c', 'exit 0'])).code, 0)
  t.is((await inBox(['false'])).code, 1)
  noLeaks(t)
})

test('127 when the command does not exist, 126 when it cannot be executed', async (t) => {
  const missing = await inBox(['/no/such/command'])
  t.is(missing.code, 127)
  t.regex(missing.stderr, /^lonely: .*\/no\/such\/command.*ENOENT/)
  const missingOnPath = await inBox(['no-such-command'])
  t.is(missingOnPath.code, 127)

  const noExecBit = await inBox(['/not-executable'])
  t.is(noExecBit.code, 126, noExecBit.stderr)
  t.regex(noExecBit.stderr, /^lonely: .*EACCES/)
  const notAProgram = await inBox(['/not-a-program'])
  t.is(notAProgram.code, 126, notAProgram.stderr)
  t.regex(notAProgram.stderr, /^lonely: .*ENOEXEC/)

  // Controls: the same files do run once they are executable programs.
  const control = await inBox(['sh', '/not-executable'])
  t.is(control.stdout, 'ran\n')
  noLeaks(t)
})

test('--memory: an OOM kill is reported on one line and exits 137; the same work fits in more memory', async (t) => {
  // tmpfs pages are charged to the container's memory and cannot be reclaimed without swap.
  const bomb = ['sh', '-c', 'dd if=/dev/zero of=/fill/x bs=1M count=100 2>/dev/null && echo survived']
  const r = await inBox(['--memory', '32m', '--tmpfs', '/fill', '--', ...bomb])
  t.is(r.code, 137)
  t.is(r.stderr, 'lonely: container was killed: out of memory (--memory 32m)\n')
  const control = await inBox(['--memory', '512m', '--tmpfs', '/fill', '--', ...bomb])
  t.is(control.code, 0, control.stderr)
  t.is(control.stdout, 'survived\n')
  noLeaks(t)
})

test('--pids-limit makes fork fail past the limit (0 and -1: no limit, as docker); --ulimit sets rlimits; --cpus is accepted (0: no limit)', async (t) => {
  const forks = ['sh', '-c', 'for i in $(seq 40); do sleep 1 & done; echo forked']
  const limited = await inBox(['--pids-limit', '16', '--', ...forks])
  t.not(limited.code, 0)
  t.regex(limited.stderr, /fork|Resource temporarily unavailable/i)
  const control = await inBox(['--pids-limit', '100', '--', ...forks])
  t.is(control.stdout, 'forked\n', control.stderr)
  // docker's "no limit" values: 0 and -1 for --pids-limit, 0 for --cpus.
  for (const none of ['0', '-1']) {
    const unlimited = await inBox(['--pids-limit', none, '--cpus', '0', '--', ...forks])
    t.is(unlimited.stdout, 'forked\n', `--pids-limit ${none}: ${unlimited.stderr}`)
  }
  const ulimit = await inBox(['--ulimit', 'nofile=100:200', '--ulimit', 'core=0', '--', 'sh', '-c', 'ulimit -n; ulimit -Hn; ulimit -c'])
  t.is(ulimit.stdout, '100\n200\n0\n', ulimit.stderr)
  const cpus = await inBox(['--cpus', '0.5', '--cpu-shares', '512', '--cpuset-cpus', '0', '--', 'true'])
  t.is(cpus.code, 0, cpus.stderr)
  noLeaks(t)
})

test('--cap-add/--cap-drop change the capability set; --security-opt relaxes seccomp, no_new_privs, masked paths and the setuid guard', async (t) => {
  const status = ['sh', '-c', 'grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status']
  const byDefault = await inBox(status)
  // A writable rootfs: docker's 14 but FSETID and SETFCAP (the setuid guard); allow-setuid gives them back.
  t.is(byDefault.stdout, 'CapEff:\t00000000280425eb\nNoNewPrivs:\t1\nSeccomp:\t2\n')
  const docker = await inBox(['--security-opt', 'allow-setuid', '--', ...status])
  t.is(docker.stdout, 'CapEff:\t00000000a80425fb\nNoNewPrivs:\t1\nSeccomp:\t2\n', docker.stderr)
  const plant = ['sh', '-c', 'touch /x && chmod 4755 /x']
  t.is((await inBox(['--', ...plant])).code, 1, 'chmod 4755 in a writable rootfs: EPERM')
  t.is((await inBox(['--security-opt', 'allow-setuid', '--', ...plant])).code, 0, 'control: allow-setuid')
  const relaxed = await inBox(['--cap-drop', 'ALL', '--cap-add', 'CAP_KILL', '--security-opt', 'seccomp=unconfined', '--security-opt', 'no-new-privileges=false', '--', ...status])
  t.is(relaxed.stdout, 'CapEff:\t0000000000000020\nNoNewPrivs:\t0\nSeccomp:\t0\n', relaxed.stderr)
  const bad = await inBox(['--cap-add', 'SUPERPOWER', '--', 'true'])
  t.is(bad.code, 125)
  t.regex(bad.stderr, /^lonely: invalid value for --cap-add: capAdd\[0\] is not a capability/)
  const badOpt = await inBox(['--security-opt', 'apparmor=x', '--', 'true'])
  t.is(badOpt.code, 125)
  noLeaks(t)
})

test('--init runs lonely-init as PID 1 with the command as its child, and passes its exit status on', async (t) => {
  const r = await inBox(['--init', '--', 'sh', '-c', 'tr "\\0" " " < /proc/1/cmdline; echo; echo $$; exit 5'])
  t.is(r.code, 5, r.stderr)
  t.is(r.stdout, 'lonely-init -- sh -c tr "\\0" " " < /proc/1/cmdline; echo; echo $$; exit 5 \n2\n')
  noLeaks(t)
})

test('run -d, ps, exec (-t), logs, top, stop, wait, rm: docker\'s subcommands for a detached container, from separate lonely processes', async (t) => {
  const env = { ...process.env, LONELY_STATE_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-state-')) }
  const sub = (args: string[]) => lonely(args, { env })
  try {
    const started = await sub(['run', '-d', '--name', 'web', '--rootfs', root, '--', 'sh', '-c', 'echo hello; trap "exit 3" TERM; while :; do sleep 0.05; done'])
    t.is(started.code, 0, started.stderr)
    const id = started.stdout.trim()
    t.regex(id, /^[0-9a-f]{16}$/)
    const ps = await sub(['ps'])
    t.regex(ps.stdout, new RegExp(`^CONTAINER ID .*NAMES\n${id.slice(0, 12)} .* Up +web\n$`, 's'))
    // The loop forks a sleep every 50 ms, so the exec's own pid grows with time: PID 1 is what proves the namespace.
    const inside = await sub(['exec', 'web', 'sh', '-c', 'test -d /proc/$$ && echo in $$; tr "\\0" " " < /proc/1/cmdline'])
    t.regex(inside.stdout, /^in \d+\nsh -c echo hello; trap /, `PID 1 of the container's own PID namespace: ${inside.stdout}${inside.stderr}`)
    t.is((await sub(['exec', 'web', 'sh', '-c', 'exit 7'])).code, 7, 'exec passes the exit status on')
    t.is((await sub(['exec', id.slice(0, 6), 'true'])).code, 0, 'an id prefix names it too')
    t.regex((await sub(['exec', '-t', 'web', 'tty'])).stdout, /^\/dev\/pts\/\d+\r?\n$/, 'exec -t: a terminal of the container\'s devpts')
    t.is((await sub(['logs', 'web'])).stdout, 'hello\n')
    // logs -f: what a second container writes later, until it ends.
    await sub(['run', '-d', '--name', 'ticker', '--rootfs', root, '--', 'sh', '-c', 'for i in 1 2 3; do echo tick $i; sleep 0.3; done'])
    t.is((await sub(['logs', '-f', 'ticker'])).stdout, 'tick 1\ntick 2\ntick 3\n')
    t.is((await sub(['rm', 'ticker'])).stdout, 'ticker\n')
    t.regex((await sub(['top', 'web'])).stdout, /^PID +CONTAINER PID +COMMAND\n\d+ +1 +sh -c echo hello/)
    t.is((await sub(['rm', 'web'])).code, 125, 'rm of a running container is refused')
    t.is((await sub(['stop', '-t', '5', 'web'])).stdout, 'web\n')
    t.is((await sub(['wait', 'web'])).stdout, '3\n', 'the command\'s trap ran and its status was recorded')
    t.regex((await sub(['ps', '-a'])).stdout, /Exited \(3\) +web/)
    t.is((await sub(['rm', 'web'])).stdout, 'web\n')
    t.is((await sub(['ps', '-a', '-q'])).stdout, '')
    const gone = await sub(['exec', 'web', 'true'])
    t.is(gone.code, 125)
    t.is(gone.stderr, 'lonely: No such container: web\n')
  } finally {
    await removeDetached(env.LONELY_STATE_DIR)
  }
  noLeaks(t)
})

test('run -di + attach, create + start -a, run -dit: docker\'s attach model, through lonely-monitor', async (t) => {
  const env = { ...process.env, LONELY_STATE_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-state-')) }
  const sub = (args: string[], input?: string) => lonely(args, { env, ...(input !== undefined ? { input } : {}) })
  try {
    t.is((await sub(['run', '-di', '--name', 'reader', '--rootfs', root, '--', 'sh', '-c', 'read a; echo got $a; exit 2'])).code, 0)
    const attached = await sub(['attach', 'reader'], 'hi\n')
    t.deepEqual([attached.code, attached.stdout], [2, 'got hi\n'], 'attach typed into its stdin and exited with its status')
    t.is((await sub(['create', '--name', 'later', '--rootfs', root, '--', 'sh', '-c', 'echo ran; exit 3'])).code, 0)
    t.regex((await sub(['ps', '-a'])).stdout, /Created +later/)
    t.is((await sub(['logs', 'later'])).stdout, '', 'created: nothing ran')
    const started = await sub(['start', '-a', 'later'])
    t.deepEqual([started.code, started.stdout], [3, 'ran\n'], 'start -a attaches before it starts: no output is missed')
    t.is((await sub(['run', '-dit', '--name', 'shell', '--rootfs', root, '--', 'sh'])).code, 0)
    const shell = await sub(['attach', 'shell'], 'tty; exit 4\n')
    t.is(shell.code, 4)
    t.regex(shell.stdout, /\/dev\/pts\/\d+\r\n/, 'a terminal of its own')
    for (const cmd of ['create', 'start', 'attach', 'ps', 'exec', 'logs', 'stop', 'kill', 'rm', 'wait', 'top', 'inspect']) {
      const help = await sub([cmd, '--help'])
      t.is(help.code, 0, cmd)
      t.regex(help.stdout, new RegExp(`^Usage: lonely ${cmd} `), cmd)
    }
  } finally {
    await removeDetached(env.LONELY_STATE_DIR)
  }
  noLeaks(t)
})

test('cp: a host tree into a container, back out under a new name, a file to a new name, a tar on stdout and from stdin', async (t) => {
  const env = { ...process.env, LONELY_STATE_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-state-')) }
  const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-cp-'))
  const sub = (args: string[], input?: string) => lonely(args, { env, ...(input !== undefined ? { input } : {}) })
  try {
    fs.mkdirSync(path.join(scratch, 'src/sub'), { recursive: true })
    fs.writeFileSync(path.join(scratch, 'src/sub/f'), 'hi\n')
    t.is((await sub(['run', '-d', '--name', 'box', '--rootfs', root, '--', 'sleep', '3600'])).code, 0)
    t.is((await sub(['cp', path.join(scratch, 'src'), 'box:/tmp'])).code, 0, 'into an existing directory')
    t.is((await sub(['exec', 'box', 'cat', '/tmp/src/sub/f'])).stdout, 'hi\n')
    t.is((await sub(['cp', path.join(scratch, 'src/sub/f'), 'box:/tmp/renamed'])).code, 0, 'to a name that does not exist yet')
    t.is((await sub(['exec', 'box', 'cat', '/tmp/renamed'])).stdout, 'hi\n')
    const back = await sub(['cp', 'box:/tmp/src', path.join(scratch, 'back')])
    t.is(back.code, 0, back.stderr)
    t.is(fs.readFileSync(path.join(scratch, 'back/sub/f'), 'utf8'), 'hi\n')
    const tar = execFileSync(process.execPath, [CLI, 'cp', 'box:/tmp/renamed', '-'], { env })
    t.is(execFileSync('tar', ['-t'], { input: tar, encoding: 'utf8' }), 'renamed\n', 'a tar of it on stdout')
    const fromStdin = spawnSync(process.execPath, [CLI, 'cp', '-', 'box:/'], { env, input: tar })
    t.is(fromStdin.status, 0, String(fromStdin.stderr))
    t.is((await sub(['exec', 'box', 'cat', '/renamed'])).stdout, 'hi\n', 'a tar from stdin')
    t.is((await sub(['cp', 'nobox:/x', scratch])).stderr, 'lonely: No such container: nobox\n')
    t.regex((await sub(['cp', '--help'])).stdout, /^Usage: lonely cp /)
  } finally {
    await removeDetached(env.LONELY_STATE_DIR)
    fs.rmSync(scratch, { recursive: true, force: true })
  }
  noLeaks(t)
})

test('bad limit values exit 125 naming the flag', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--memory', 'lots'], /^lonely: invalid value for -m\/--memory: limits.memory must be a positive number of bytes/],
    [['--cpus', 'many'], /^lonely: invalid value "many" for --cpus: must be a number of CPUs/],
    [['--pids-limit', '-5'], /^lonely: invalid value "-5" for --pids-limit: must be a whole number, or 0 or -1 for no limit/],
    [['--ulimit', 'nofile'], /^lonely: invalid value "nofile" for --ulimit: must be NAME=SOFT\[:HARD\]/],
    [['--ulimit', 'files=3'], /^lonely: invalid value for --ulimit: rlimits /],
  ]
  for (const [flags, message] of cases) {
    const r = await inBox([...flags, '--', 'true'])
    t.is(r.code, 125, flags.join(' '))
    t.regex(r.stderr, message, flags.join(' '))
  }
})

test('--timeout stops the container: SIGTERM is ignored by PID 1, SIGKILL follows, exit 137 and one line', async (t) => {
  // A sleep far longer than the test's own bound: 137 and the line can only come from the kill.
  const r = await inBox(['--timeout', '0.3', '--stop-timeout', '0.5', '--', 'sleep', '3600.137'])
  t.is(r.code, 137)
  t.is(r.stderr, 'lonely: container timed out after 0.3 s\n')
  noLeaks(t, '3600.137')
})

test('--stop-signal is what --timeout sends; a PID 1 that handles it and exits still ends lonely with 128+signal, as --help says (138 for SIGUSR1)', async (t) => {
  const loop = 'trap "echo stopped; exit 3" USR1; while :; do sleep 0.05; done'
  const r = await inBox(['--timeout', '0.3', '--stop-signal', 'SIGUSR1', '--', 'sh', '-c', loop])
  t.is(r.code, 138)
  t.is(r.stdout, 'stopped\n')
  t.is(r.stderr, 'lonely: container timed out after 0.3 s\n')
  const kill = await inBox(['--timeout', '0.2', '--stop-signal=KILL', '--', 'sh', '-c', loop])
  t.is(kill.code, 137)
  t.is(kill.stdout, '')
  noLeaks(t)
})

test('--stop-timeout is the grace before SIGKILL (default 10 s, as docker)', async (t) => {
  // sh ignores SIGTERM as PID 1: with a long grace it finishes on its own (143: it timed out)...
  const patient = await inBox(['--timeout', '0.2', '--stop-timeout', '30', '--', 'sh', '-c', 'sleep 2.5; echo finished'])
  t.is(patient.code, 143)
  t.is(patient.stdout, 'finished\n')
  t.is(patient.stderr, 'lonely: container timed out after 0.2 s\n')
  // ...and so it does with the default grace (docker's 10 s, not the library's 2 s)...
  const byDefault = await inBox(['--timeout', '0.2', '--', 'sh', '-c', 'sleep 2.5; echo finished'])
  t.is(byDefault.stdout, 'finished\n')
  // ...with no grace it is killed at once.
  const impatient = await inBox(['--timeout', '0.2', '--stop-timeout', '0', '--', 'sleep', '2.51'])
  t.is(impatient.code, 137)
  noLeaks(t, '2.51')
})

test('SIGTERM and SIGINT sent to lonely are forwarded to the container', async (t) => {
  for (const [signal, status] of [['SIGTERM', 42], ['SIGINT', 43]] as const) {
    const name = signal.slice(3)
    const loop = `trap "echo got-${name}; exit ${status}" ${name}; echo ready; while :; do sleep 0.05; done`
    let sent = false
    // The backstop timeout sends SIGKILL: a signal that was not forwarded ends in 137.
    const r = await inBox(['--timeout', '10', '--stop-signal', 'SIGKILL', '--', 'sh', '-c', loop], {
      onStdout: (all, child) => {
        if (!sent && all.includes('ready\n')) {
          sent = true
          child.kill(signal)
        }
      },
    })
    t.is(r.code, status, `${signal}: ${r.signal} ${r.stderr}`)
    t.is(r.stdout, `ready\ngot-${name}\n`)
  }
  // A PID 1 without a handler is killed after the grace period: 128 + SIGKILL.
  let sent = false
  const plain = await inBox(['--stop-timeout', '0.1', '--', 'sh', '-c', 'echo ready; exec sleep 20.5'], {
    onStdout: (all, child) => {
      if (!sent && all.includes('ready')) {
        sent = true
        setTimeout(() => child.kill('SIGTERM'), 100)
      }
    },
  })
  t.is(plain.code, 137)
  noLeaks(t, '20.5')
})

// ---------------------------------------------------------------- the terminal

/** `cmd` run by sh inside a fresh pseudo-terminal made by util-linux `script`. */
class Terminal {
  out = ''
  readonly child: ChildProcessWithoutNullStreams
  readonly exited: Promise<number | null>
  #waiters: Array<() => void> = []

  constructor(cmd: string) {
    this.child = spawn('script', ['-qec', cmd, '/dev/null'], { cwd: REPO })
    this.child.stdout.setEncoding('utf8').on('data', (d: string) => {
      this.out += d
      for (const w of this.#waiters) w()
    })
    const guard = setTimeout(() => this.child.kill('SIGKILL'), 30_000)
    this.exited = new Promise((resolve) => this.child.on('close', (code) => {
      clearTimeout(guard)
      resolve(code)
    }))
  }

  /** Resolves with the output once it matches `re` (searching from `from`). */
  waitFor(re: RegExp, from = 0, ms = 10_000): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = re.exec(this.out.slice(from))
        if (m) {
          this.#waiters = this.#waiters.filter((w) => w !== check)
          clearTimeout(timer)
          resolve(m)
        }
      }
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${re}; got ${JSON.stringify(this.out)}`)), ms)
      this.#waiters.push(check)
      check()
    })
  }

  type(text: string): void {
    this.child.stdin.write(text)
  }
}

const PROMPT = 'LONELY-PROMPT> '
const lines = (s: string) => s.split(/\r*\n/)

const ptyTest = HAS_SCRIPT ? test : test.skip
if (!HAS_SCRIPT) console.warn('cli.spec.ts: util-linux `script` is missing (Debian package bsdutils): terminal tests skipped')

ptyTest('-it gives an interactive shell on a terminal: its hostname, its own PIDs, exit 0', async (t) => {
  const term = new Terminal(`node ${CLI} run -it --rootfs ${root} -h tty-box -e 'PS1=${PROMPT}' -- /bin/sh`)
  await term.waitFor(new RegExp(PROMPT))
  const from = term.out.length
  term.type('hostname; ps; test -t 0 && echo stdin-is-a-terminal; exit\r')
  t.is(await term.exited, 0, term.out)
  const out = lines(term.out.slice(from))
  t.true(out.includes('tty-box'), term.out)
  t.true(out.includes('stdin-is-a-terminal'), term.out)
  const header = out.findIndex((l) => /^\s*PID\s+USER/.test(l))
  t.true(header >= 0, term.out)
  const procs = out.slice(header + 1).filter((l) => /^\s*\d+\s/.test(l))
  t.regex(procs[0] ?? '', /^\s*1\s.*sh/, 'PID 1 is the shell')
  t.true(procs.length >= 2 && procs.length <= 3, `only the shell and ps: ${JSON.stringify(procs)}`)
  noLeaks(t)
})

ptyTest('-it forwards the terminal size at start and on SIGWINCH', async (t) => {
  const term = new Terminal(`stty rows 33 cols 111; tty; node ${CLI} run -it --rootfs ${root} -e 'PS1=${PROMPT}' -- /bin/sh`)
  const [, outer] = await term.waitFor(/(\/dev\/pts\/\d+)/)
  await term.waitFor(new RegExp(PROMPT))
  let from = term.out.length
  term.type('stty size\r')
  await term.waitFor(/^33 111\r?\r?$/m, from)
  // Resize the outer terminal: the kernel sends SIGWINCH to lonely, which resizes the container's.
  execFileSync('stty', ['-F', outer, 'rows', '44', 'cols', '122'])
  let resized = false
  for (let i = 0; i < 25 && !resized; i++) {
    from = term.out.length
    term.type('stty size\r')
    const [size] = await term.waitFor(/^\d+ \d+\r?\r?$/m, from)
    resized = size.startsWith('44 122')
    if (!resized) await new Promise((r) => setTimeout(r, 100))
  }
  t.true(resized, term.out)
  term.type('exit 5\r')
  t.is(await term.exited, 5)
  noLeaks(t)
})

ptyTest('-it --timeout: exit 137 with one line, and the terminal is back in cooked mode', async (t) => {
  const cli = `node ${CLI} run -it --rootfs ${root} -e 'PS1=${PROMPT}' --timeout 0.5 --stop-timeout 0 -- /bin/sh`
  const term = new Terminal(`${cli}; echo "cli-exit=$?"; stty -a`)
  t.is(await term.exited, 0, term.out)
  const out = lines(term.out)
  t.true(out.includes('lonely: container timed out after 0.5 s'), term.out)
  t.true(out.includes('cli-exit=137'), term.out)
  const modes = term.out.slice(term.out.indexOf('cli-exit='))
  t.regex(modes, /(^|\s)icanon(\s|$)/m, 'canonical mode restored')
  t.regex(modes, /(^|\s)echo(\s|$)/m, 'echo restored')
  t.regex(modes, /(^|\s)isig(\s|$)/m, 'Ctrl-C is a signal again')
  noLeaks(t)
})

ptyTest('on a terminal, `lonely run -- /bin/sh` implies -it; a shell with arguments does not', async (t) => {
  const term = new Terminal(`node ${CLI} run --rootfs ${root} -h implied -e 'PS1=${PROMPT}' -- /bin/sh`)
  await term.waitFor(new RegExp(PROMPT))
  const from = term.out.length
  term.type('test -t 0 && echo stdin-is-a-terminal; hostname\r')
  // Read before `exit`: what this test is about is the terminal, not the drain at the end (CI once lost the last line here).
  await term.waitFor(/\nimplied\r*\n/, from)
  term.type('exit\r')
  t.is(await term.exited, 0, term.out)
  const out = lines(term.out.slice(from))
  t.true(out.includes('stdin-is-a-terminal'), term.out)
  t.true(out.includes('implied'), term.out)

  const control = new Terminal(`node ${CLI} run --rootfs ${root} -- /bin/sh -c 'test -t 0 && echo terminal || echo no-terminal'`)
  t.is(await control.exited, 0)
  t.true(lines(control.out).includes('no-terminal'), control.out)
  noLeaks(t)
})

test('-t without a terminal on stdin still runs, with stdin EOF passed on as ^D', async (t) => {
  const r = await inBox(['-it', '-e', `PS1=${PROMPT}`, '--', '/bin/sh'], { input: 'echo "from $(hostname)"\n' })
  t.is(r.code, 0, r.stderr)
  t.true(lines(r.stdout).includes('from lonely'), r.stdout)
  t.is(r.stderr, '')
  noLeaks(t)
})
