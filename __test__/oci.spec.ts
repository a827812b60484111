// lonely-runtime, driven as containerd's runc shim and podman drive runc: a bundle, then
// `create --bundle B --pid-file P ID` (its stdio is the runtime's), `start`, `state`, `kill`,
// `exec --process`, `ps`, `delete [--force]`, a terminal through `--console-socket`, and errors
// as one line on stderr plus a JSON record in `--log`. Every test leaves nothing behind.
import test, { type ExecutionContext } from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { execFileSync, spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process'

import { eventually, makeBusyboxRoot, ourMounts, removeRoot } from './helpers'

const RUNTIME = process.env.LONELY_RUNTIME ?? path.join(__dirname, '..', 'target', 'release', 'lonely-runtime')
let work = ''
let rootfs = ''
let stateRoot = ''
let mountsBefore = ''

test.before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-oci-'))
  rootfs = makeBusyboxRoot()
  stateRoot = path.join(work, 'state')
  mountsBefore = ourMounts()
})

test.after.always(() => {
  for (const id of fs.existsSync(stateRoot) ? fs.readdirSync(stateRoot) : []) runtime(['delete', '--force', id])
  if (rootfs) removeRoot(rootfs)
  if (work) fs.rmSync(work, { recursive: true, force: true })
})

/** runc's default config.json (`runc spec`), on the busybox root, running `args`. */
function bundle(name: string, args: string[], change: (c: Record<string, any>) => void = () => {}): string {
  const dir = path.join(work, name)
  fs.mkdirSync(dir)
  const caps = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE']
  const config: Record<string, any> = {
    ociVersion: '1.2.0',
    process: {
      terminal: false, user: { uid: 0, gid: 0 }, args, env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'TERM=xterm'], cwd: '/',
      capabilities: { bounding: caps, effective: caps, permitted: caps }, rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }], noNewPrivileges: true,
    },
    root: { path: rootfs, readonly: true },
    hostname: 'runc',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
    ],
    linux: {
      resources: { devices: [{ allow: false, access: 'rwm' }] },
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'cgroup' }],
      maskedPaths: ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/sys/firmware'],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  }
  change(config)
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config))
  return dir
}

const global = () => ['--root', stateRoot, '--log', path.join(work, 'log.json'), '--log-format', 'json']

function runtime(args: string[]): SpawnSyncReturns<string> {
  return spawnSync(RUNTIME, [...global(), ...args], { encoding: 'utf8', timeout: 30_000 })
}

/** `create` with its stdio a pipe we read, as the shim's: the container keeps it after create exits. */
function createWithPipe(t: ExecutionContext, b: string, id: string): { output: () => string; closed: Promise<void> } {
  const child = spawn(RUNTIME, [...global(), 'create', '--bundle', b, '--pid-file', path.join(b, 'init.pid'), id], { stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (out += d))
  // The pipe closes as PID 1 exits, a moment before its exit completes: wait for both, as an engine waits on the pid.
  const closed = new Promise<void>((resolve) => child.stdout!.on('close', () => resolve())).then(async () => {
    await eventually(() => !running(id), 10_000)
  })
  t.teardown(() => void runtime(['delete', '--force', id]))
  return { output: () => out, closed }
}

/** Whether `state` reports the container created, running or paused (a deleted one is not). */
function running(id: string): boolean {
  const r = runtime(['state', id])
  return r.status === 0 && JSON.parse(r.stdout).status !== 'stopped'
}

const state = (id: string) => JSON.parse(runtime(['state', id]).stdout)

function noLeaks(t: ExecutionContext): void {
  t.deepEqual(ourMounts(), mountsBefore, 'no mount left')
  t.deepEqual(fs.existsSync(stateRoot) ? fs.readdirSync(stateRoot) : [], [], 'no state left')
}

test.serial('create, start, state, delete as containerd\'s shim calls them: PID 1 waits until start, its stdio is the runtime\'s, delete --force twice succeeds', async (t) => {
  const b = bundle('life', ['sh', '-c', 'echo "hello from $(hostname) as $(id -u), pid $$"; exit 3'])
  const c = createWithPipe(t, b, 'life')
  t.true(await eventually(() => fs.existsSync(path.join(b, 'init.pid')) && state('life').status === 'created', 10_000), runtime(['state', 'life']).stderr)
  const pid = Number(fs.readFileSync(path.join(b, 'init.pid'), 'utf8'))
  t.like(state('life'), { ociVersion: '1.2.0', id: 'life', status: 'created', pid, bundle: b })
  await new Promise((r) => setTimeout(r, 100))
  t.is(c.output(), '', 'created: the command has not run')
  t.is(runtime(['start', 'life']).status, 0)
  await c.closed
  t.is(c.output(), 'hello from runc as 0, pid 1\n', 'started: it ran as PID 1 on the runtime\'s stdout')
  t.true(await eventually(() => state('life').status === 'stopped'))
  t.regex(runtime(['start', 'life']).stderr, /cannot start a container that has stopped/)
  t.is(runtime(['delete', 'life']).status, 0)
  t.is(runtime(['delete', '--force', 'life']).status, 0, 'delete --force of an id already deleted succeeds')
  const gone = runtime(['state', 'life'])
  t.is(gone.status, 1)
  t.regex(gone.stderr, /container "life" does not exist/)
  noLeaks(t)
})

test.serial('kill ID 15 reaches a trap; kill --all ID 9 ends every process; ps --format json lists them; kill and delete of what is not running say so in runc\'s words', async (t) => {
  const b = bundle('killed', ['sh', '-c', 'trap "echo term; exit 7" TERM; sleep 1000 & while :; do sleep 0.05; done'])
  const c = createWithPipe(t, b, 'killed')
  t.true(await eventually(() => fs.existsSync(path.join(b, 'init.pid')) && state('killed').status === 'created', 10_000))
  t.is(runtime(['start', 'killed']).status, 0)
  const pids = () => JSON.parse(runtime(['ps', '--format', 'json', 'killed']).stdout) as number[]
  t.true(await eventually(() => pids().length >= 3), `PID 1, sleep 1000 and a sleep 0.05: ${pids()}`)
  t.is(pids()[0], state('killed').pid, 'PID 1 first')
  t.regex(runtime(['delete', 'killed']).stderr, /cannot delete container killed that is not stopped: running/)
  t.is(runtime(['kill', 'killed', '15']).status, 0)
  await c.closed.catch(() => {})
  t.true(await eventually(() => state('killed').status === 'stopped'))
  t.regex(c.output(), /term\n/)
  t.regex(runtime(['kill', 'killed', '9']).stderr, /container not running/)
  t.is(runtime(['delete', 'killed']).status, 0)
  // --all: every process of the container gets the signal.
  const b2 = bundle('all', ['sh', '-c', 'sleep 1000 & sleep 1000 & wait'])
  createWithPipe(t, b2, 'all')
  t.true(await eventually(() => fs.existsSync(path.join(b2, 'init.pid')) && state('all').status === 'created', 10_000))
  runtime(['start', 'all'])
  t.true(await eventually(() => JSON.parse(runtime(['ps', '--format', 'json', 'all']).stdout).length === 3))
  const all = JSON.parse(runtime(['ps', '--format', 'json', 'all']).stdout) as number[]
  t.is(runtime(['kill', '--all', 'all', 'KILL']).status, 0)
  // Gone, or a zombie (an empty cmdline); a process may vanish between two reads (ESRCH).
  const gone = (p: number) => {
    try {
      return fs.readFileSync(`/proc/${p}/cmdline`, 'utf8') === ''
    } catch {
      return true
    }
  }
  t.true(await eventually(() => all.every(gone)))
  // A dying PID 1's cmdline is empty before its exit is done: stopped is what an engine waits for.
  t.true(await eventually(() => state('all').status === 'stopped'))
  t.is(runtime(['delete', 'all']).status, 0)
  noLeaks(t)
})

test.serial('no mount namespace (the spec: inherit the runtime\'s): the container is in the caller\'s mount namespace, its root a detached tree; nothing is mounted there, a chroot escape stays inside (a plain chroot\'s does not), exec enters the same root', async (t) => {
  const attack = path.join(work, 'attack')
  execFileSync('gcc', ['-static', '-O0', '-Wall', '-o', attack, path.join(__dirname, 'fixtures', 'attack.c')])
  const root = path.join(work, 'detached-root')
  fs.cpSync(rootfs, root, { recursive: true, verbatimSymlinks: true })
  fs.copyFileSync(attack, path.join(root, 'attack'))
  fs.chmodSync(path.join(root, 'attack'), 0o755)
  const marker = path.join(work, 'host-only-marker')
  fs.writeFileSync(marker, '')
  // Control: a plain chroot into the same root (no detached tree) is climbed out of.
  t.is(execFileSync('chroot', [root, '/attack', 'chroot-escape', '/tmp/jail', marker], { encoding: 'utf8' }), 'OK host-marker-visible\n')
  fs.rmSync(path.join(root, 'tmp', 'jail'), { recursive: true, force: true })
  const caps = ['CAP_SYS_CHROOT', 'CAP_KILL']
  const b = bundle('nomnt', ['sh', '-c', 'readlink /proc/self/ns/mnt; ls /; sleep 1000'], (c) => {
    c.root = { path: root, readonly: true }
    c.linux.namespaces = c.linux.namespaces.filter((n: { type: string }) => n.type !== 'mount')
    c.mounts.push({ destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev'] })
    c.process.capabilities = { bounding: caps, effective: caps, permitted: caps }
  })
  const c = createWithPipe(t, b, 'nomnt')
  t.true(await eventually(() => fs.existsSync(path.join(b, 'init.pid')) && state('nomnt').status === 'created', 10_000), c.output())
  t.is(runtime(['start', 'nomnt']).status, 0)
  t.true(await eventually(() => c.output().includes('sys\n'), 10_000), c.output())
  t.is(c.output().split('\n')[0], fs.readlinkSync('/proc/self/ns/mnt'), 'the caller\'s mount namespace')
  t.true(c.output().includes('attack\n'), 'the rootfs is its root')
  t.deepEqual(ourMounts(), mountsBefore, 'its /proc, /dev, /sys and /tmp are in no mount table of the caller\'s')
  const proc = (args: string[]) => {
    const file = path.join(work, `process-${Date.now()}.json`)
    fs.writeFileSync(file, JSON.stringify({ terminal: false, user: { uid: 0, gid: 0 }, args, env: ['PATH=/bin'], cwd: '/', capabilities: { bounding: caps, effective: caps, permitted: caps } }))
    return file
  }
  const climbed = runtime(['exec', '--process', proc(['/attack', 'chroot-escape', '/tmp/jail', marker]), 'nomnt'])
  t.is(climbed.stdout, 'OK host-marker-hidden\n', climbed.stderr)
  const seen = runtime(['exec', '--process', proc(['sh', '-c', 'cd /; cd ../..; ls /attack; readlink /proc/self/ns/mnt']), 'nomnt'])
  t.is(seen.stdout, `/attack\n${fs.readlinkSync('/proc/self/ns/mnt')}\n`, seen.stderr)
  t.is(runtime(['delete', '--force', 'nomnt']).status, 0)
  await c.closed
  noLeaks(t)
})

test.serial('exec --process FILE: in the container\'s PID namespace with its own exit code; --detach --pid-file returns at once', async (t) => {
  const b = bundle('execd', ['sleep', '1000'])
  createWithPipe(t, b, 'execd')
  t.true(await eventually(() => fs.existsSync(path.join(b, 'init.pid')) && state('execd').status === 'created', 10_000))
  runtime(['start', 'execd'])
  const proc = (args: string[]) => {
    const file = path.join(work, `process-${Date.now()}.json`)
    fs.writeFileSync(file, JSON.stringify({ terminal: false, user: { uid: 0, gid: 0 }, args, env: ['PATH=/bin'], cwd: '/tmp', capabilities: { bounding: ['CAP_KILL'] } }))
    return file
  }
  const r = runtime(['exec', '--process', proc(['sh', '-c', 'echo in $$ $(pwd); tr "\\0" " " < /proc/1/cmdline; exit 5']), 'execd'])
  t.is(r.status, 5, r.stderr)
  t.regex(r.stdout, /^in \d+ \/tmp\nsleep 1000 $/)
  const pidFile = path.join(work, 'exec.pid')
  // Not our pipes: a detached exec keeps the stdio it is given (the shim's), for as long as it runs.
  const d = spawnSync(RUNTIME, [...global(), 'exec', '--process', proc(['sleep', '1000']), '--detach', '--pid-file', pidFile, 'execd'], { stdio: 'ignore', timeout: 30_000 })
  t.is(d.status, 0)
  const execPid = Number(fs.readFileSync(pidFile, 'utf8'))
  t.is(fs.readlinkSync(`/proc/${execPid}/ns/pid`), fs.readlinkSync(`/proc/${state('execd').pid}/ns/pid`), 'the detached exec runs in the container')
  t.is(runtime(['delete', '--force', 'execd']).status, 0)
  t.false(fs.existsSync(`/proc/${execPid}/cmdline`) && fs.readFileSync(`/proc/${execPid}/cmdline`, 'utf8') !== '', 'the exec ended with the container')
  noLeaks(t)
})

test.serial('process.terminal: the pty master arrives over --console-socket (SCM_RIGHTS), and the command has a terminal of process.consoleSize', async (t) => {
  const b = bundle('tty', ['sh', '-c', 'tty; test -t 0 && echo yes; stty size'], (c) => {
    c.process.terminal = true
    c.process.consoleSize = { height: 30, width: 100 }
  })
  const sock = path.join(work, 'console.sock')
  // The engine's side: receive the master, read the terminal to its end.
  const receiver = spawn('python3', ['-c', `
import socket, os, array, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM); s.bind(${JSON.stringify(sock)}); s.listen(1)
print('ready', flush=True)
c, _ = s.accept()
fds = array.array('i')
msg, anc, _, _ = c.recvmsg(64, socket.CMSG_LEN(fds.itemsize))
fds.frombytes(anc[0][2][:fds.itemsize])
os.write(1, b'name=' + msg + b'\\n')
out = b''
while True:
    try:
        d = os.read(fds[0], 4096)
    except OSError:
        break
    if not d: break
    out += d
os.write(1, out)`], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.teardown(() => void receiver.kill('SIGKILL'))
  let got = ''
  receiver.stdout!.on('data', (d) => (got += d))
  t.true(await eventually(() => got.includes('ready'), 10_000))
  const created = runtime(['create', '--bundle', b, '--pid-file', path.join(b, 'init.pid'), '--console-socket', sock, 'tty'])
  t.is(created.status, 0, created.stderr)
  t.is(runtime(['start', 'tty']).status, 0)
  await new Promise((r) => receiver.on('close', r))
  // The size is there before the command runs (a pty starts at 0x0).
  t.regex(got, /name=\/dev\/ptmx\n\/dev\/pts\/\d+\r\nyes\r\n30 100\r\n/)
  t.true(await eventually(() => state('tty').status === 'stopped'))
  t.is(runtime(['delete', 'tty']).status, 0)
  noLeaks(t)
})

test.serial('errors: one line on stderr and a JSON record in --log (the shim shows its msg); a missing command is a create error, as runc\'s; nothing is left', (t) => {
  const logFile = path.join(work, 'log.json')
  fs.rmSync(logFile, { force: true })
  const missing = runtime(['create', '--bundle', bundle('missing', ['no-such-program'], (c) => (c.process.apparmorProfile = 'lonely-test')), 'missing'])
  t.is(missing.status, 1)
  t.is(missing.stderr, 'lonely-runtime: exec: "no-such-program": executable file not found in $PATH\n')
  const bad = runtime(['create', '--bundle', bundle('bad', ['true'], (c) => c.mounts.push({ destination: '/x', type: 'nfs', source: 'server:/x' })), 'bad'])
  t.regex(bad.stderr, /mount \/x: type "nfs" is not supported yet/)
  const all = fs.readFileSync(logFile, 'utf8').trim().split('\n').map((l) => JSON.parse(l))
  t.true(all.some((r) => r.level === 'warning' && /apparmor/.test(r.msg)), 'what is not applied is noted in the log, never on the container\'s stderr')
  const records = all.filter((r) => r.level === 'error')
  t.like(records[0], { level: 'error', msg: 'exec: "no-such-program": executable file not found in $PATH' })
  t.like(records[1], { level: 'error' })
  t.regex(records[1].msg, /nfs/)
  t.truthy(Date.parse(records[0].time), 'an RFC 3339 time')
  t.regex(runtime(['create', '--bundle', bundle('bad-id', ['true']), '../escape']).stderr, /invalid container id/)
  noLeaks(t)
})

test('--version and features answer as runc\'s do', (t) => {
  t.regex(runtime(['--version']).stdout, /^lonely-runtime version \d+\.\d+\.\d+\nspec: 1\.2\.0\n$/)
  const f = JSON.parse(runtime(['features']).stdout)
  t.like(f, { ociVersionMin: '1.0.0', ociVersionMax: '1.2.0' })
  t.true(f.linux.namespaces.includes('pid'))
  t.true(f.linux.capabilities.includes('CAP_SYS_ADMIN'))
})

test.serial('linux.namespaces[].path: PID, network, IPC and UTS are joined (a pod\'s containers share its sandbox\'s; its PID 1 is the sandbox\'s); control: without the paths it gets its own', async (t) => {
  const sandbox = spawn('unshare', ['--net', '--uts', '--ipc', '--pid', '--fork', '--kill-child', 'sh', '-c', 'hostname podname; exec sleep 1000'], { stdio: 'ignore' })
  t.teardown(() => void sandbox.kill('SIGKILL'))
  t.true(await eventually(() => fs.existsSync(`/proc/${sandbox.pid}/ns/net`) && fs.readlinkSync(`/proc/${sandbox.pid}/ns/net`) !== fs.readlinkSync('/proc/self/ns/net')))
  const ns = (kind: string) => fs.readlinkSync(`/proc/${sandbox.pid}/ns/${kind}`)
  const probe = ['sh', '-c', 'hostname; for k in net ipc uts pid; do readlink /proc/self/ns/$k; done; tr "\\0" " " < /proc/1/cmdline']
  const joined = bundle('joined', probe, (c) => {
    for (const n of c.linux.namespaces) {
      const kind = { network: 'net', ipc: 'ipc', uts: 'uts', pid: 'pid_for_children' }[n.type as string]
      if (kind) n.path = `/proc/${sandbox.pid}/ns/${kind}`
    }
  })
  const c = createWithPipe(t, joined, 'joined')
  t.true(await eventually(() => fs.existsSync(path.join(joined, 'init.pid')) && state('joined').status === 'created', 10_000), c.output())
  runtime(['start', 'joined'])
  await c.closed
  t.is(c.output(), `podname\n${ns('net')}\n${ns('ipc')}\n${ns('uts')}\n${ns('pid_for_children')}\nsleep 1000 `)
  t.is(runtime(['delete', '--force', 'joined']).status, 0)
  const ownBundle = bundle('own', probe)
  const own = createWithPipe(t, ownBundle, 'own')
  t.true(await eventually(() => fs.existsSync(path.join(ownBundle, 'init.pid')) && state('own').status === 'created', 10_000))
  runtime(['start', 'own'])
  await own.closed
  const lines = own.output().split('\n')
  t.is(lines[0], 'runc', 'control: its own UTS namespace has the config\'s hostname')
  t.not(lines[1], ns('net'), 'control: its own network namespace')
  t.regex(lines[5], /^tr /, 'control: its own PID namespace, the probe its PID 1 (sh execs its last command)')
  t.is(runtime(['delete', '--force', 'own']).status, 0)
  noLeaks(t)
})

test.serial('linux.namespaces[].path of a mount namespace: the root is made in it (the container\'s mnt is the pod\'s, nothing lands in the caller\'s); a joined namespace whose rootfs path is another directory is refused (ESTALE), never entered', async (t) => {
  const pod = spawn('unshare', ['--mount', '--fork', '--kill-child', 'sleep', '1000'], { stdio: 'ignore' })
  t.teardown(() => void pod.kill('SIGKILL'))
  const mine = fs.readlinkSync('/proc/self/ns/mnt')
  t.true(await eventually(() => fs.existsSync(`/proc/${pod.pid}/ns/mnt`) && fs.readlinkSync(`/proc/${pod.pid}/ns/mnt`) !== mine))
  const podNs = fs.readlinkSync(`/proc/${pod.pid}/ns/mnt`)
  const joinMnt = (pid: number | undefined) => (c: Record<string, any>) => (c.linux.namespaces.find((n: { type: string }) => n.type === 'mount').path = `/proc/${pid}/ns/mnt`)
  const b = bundle('mnt-path', ['sh', '-c', 'readlink /proc/self/ns/mnt; cat /etc/os-release 2>/dev/null | head -1; ls /bin/busybox'], joinMnt(pod.pid))
  const c = createWithPipe(t, b, 'mnt-path')
  t.true(await eventually(() => fs.existsSync(path.join(b, 'init.pid')) && state('mnt-path').status === 'created', 10_000), c.output())
  runtime(['start', 'mnt-path'])
  await c.closed
  t.is(c.output().split('\n')[0], podNs, c.output())
  t.regex(c.output(), /\/bin\/busybox/, 'the bundle\'s root, found in the pod\'s namespace')
  t.is(runtime(['delete', '--force', 'mnt-path']).status, 0)
  // The attack: in the namespace to join, the rootfs path is another directory.
  const swapped = spawn('unshare', ['--mount', '--fork', '--kill-child', 'sh', '-c', `mount -t tmpfs swapped ${rootfs} && exec sleep 1000`], { stdio: 'ignore' })
  t.teardown(() => void swapped.kill('SIGKILL'))
  t.true(await eventually(() => fs.existsSync(`/proc/${swapped.pid}/ns/mnt`) && fs.readFileSync(`/proc/${swapped.pid}/mountinfo`, 'utf8').includes(' swapped ')))
  const refused = runtime(['create', '--bundle', bundle('mnt-swapped', ['true'], joinMnt(swapped.pid)), 'mnt-swapped'])
  t.not(refused.status, 0)
  t.regex(refused.stderr, /enter rootfs `[^`]+`: .*ESTALE/, refused.stderr)
  noLeaks(t)
})

test.serial('events --stats: one runc stats event from the container\'s cgroup (its pids, its memory limit, CPU time); events --interval streams them until the container stops; a stopped container has none', async (t) => {
  const b = bundle('events', ['sh', '-c', 'i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 1000'], (c) => {
    c.linux.cgroupsPath = `/lonely-oci-events-${process.pid}`
    c.linux.resources = { memory: { limit: 48 << 20 }, pids: { limit: 30 } }
  })
  const c = createWithPipe(t, b, 'events')
  t.true(await eventually(() => fs.existsSync(path.join(b, 'init.pid')) && state('events').status === 'created', 10_000), c.output())
  runtime(['start', 'events'])
  await new Promise((r) => setTimeout(r, 300))
  const one = runtime(['events', '--stats', 'events'])
  t.is(one.status, 0, one.stderr)
  const event = JSON.parse(one.stdout)
  t.like(event, { type: 'stats', id: 'events', data: { memory: { usage: { limit: 48 << 20 } }, pids: { limit: 30 } } })
  t.true(event.data.pids.current >= 1, one.stdout)
  t.true(event.data.cpu.usage.total > 0 && event.data.memory.usage.usage > 0, one.stdout)
  const stream = spawn(RUNTIME, [...global(), 'events', '--interval', '100ms', 'events'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let lines = ''
  stream.stdout.on('data', (d) => (lines += d))
  const ended = new Promise<number | null>((r) => stream.on('close', (code) => r(code)))
  t.true(await eventually(() => lines.split('\n').filter(Boolean).length >= 3, 5000), lines)
  runtime(['kill', 'events', '9'])
  t.is(await ended, 0, 'the stream ends with the container')
  t.not(runtime(['events', '--stats', 'events']).status, 0)
  t.is(runtime(['delete', 'events']).status, 0)
  noLeaks(t)
})

test.serial('linux.personality: LINUX32 is the command\'s execution domain (uname -m says the 32-bit machine); control: LINUX and none say the host\'s; flags are refused by name', async (t) => {
  const machine = async (id: string, personality?: Record<string, unknown>) => {
    const b = bundle(id, ['uname', '-m'], (c) => {
      if (personality) c.linux.personality = personality
    })
    const c = createWithPipe(t, b, id)
    t.true(await eventually(() => fs.existsSync(path.join(b, 'init.pid')) && state(id).status === 'created', 10_000), c.output())
    runtime(['start', id])
    await c.closed
    t.is(runtime(['delete', id]).status, 0)
    return c.output().trim()
  }
  const host = os.machine()
  t.is(await machine('pers-none'), host)
  t.is(await machine('pers-linux', { domain: 'LINUX' }), host)
  t.is(await machine('pers-32', { domain: 'LINUX32' }), { x86_64: 'i686', aarch64: 'armv8l' }[host] ?? 'a 32-bit machine')
  const flags = runtime(['create', '--bundle', bundle('pers-flags', ['true'], (c) => (c.linux.personality = { domain: 'LINUX', flags: ['ADDR_NO_RANDOMIZE'] })), 'pers-flags'])
  t.regex(flags.stderr, /linux\.personality\.flags are not supported/)
  noLeaks(t)
})

test.serial('linux.cgroupsPath and resources: the cgroup is at the path in every hierarchy, the OCI values are in its files, update writes new ones, delete removes it; a denied device stays denied while lonely\'s /dev works', async (t) => {
  const cgPath = `/lonely-oci-test-${process.pid}`
  const v2 = fs.existsSync('/sys/fs/cgroup/cgroup.controllers')
  const b = bundle('cg', ['sh', '-c', 'cat /proc/self/cgroup; echo x > /dev/null && echo null-ok; head -c1 /dev/zero >/dev/null && echo zero-ok; sleep 1000'], (c) => {
    c.linux.cgroupsPath = cgPath
    c.linux.resources = {
      devices: [{ allow: false, access: 'rwm' }],
      memory: { limit: 64 << 20 },
      pids: { limit: 40 },
      cpu: { shares: 512, quota: 25000, period: 100000 },
    }
  })
  const c = createWithPipe(t, b, 'cg')
  t.true(await eventually(() => fs.existsSync(path.join(b, 'init.pid')) && state('cg').status === 'created', 10_000), c.output())
  const pid = state('cg').pid
  const own = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8')
  const dir = (controller: string) => (v2 ? `/sys/fs/cgroup${cgPath}` : `/sys/fs/cgroup/${controller}${cgPath}`)
  if (v2) {
    t.regex(own, new RegExp(`^0::${cgPath}$`, 'm'))
    t.is(fs.readFileSync(`${dir('')}/memory.max`, 'utf8').trim(), String(64 << 20))
    t.is(fs.readFileSync(`${dir('')}/cpu.max`, 'utf8').trim(), '25000 100000')
  } else {
    for (const controller of ['memory', 'pids', 'devices', 'freezer']) t.regex(own, new RegExp(`:${controller}:${cgPath}$`, 'm'), `every controller: ${controller}`)
    t.is(fs.readFileSync(`${dir('memory')}/memory.limit_in_bytes`, 'utf8').trim(), String(64 << 20))
    t.is(fs.readFileSync(`${dir('cpu')}/cpu.shares`, 'utf8').trim(), '512')
    t.is(fs.readFileSync(`${dir('cpu')}/cpu.cfs_quota_us`, 'utf8').trim(), '25000')
    const devices = fs.readFileSync(`${dir('devices')}/devices.list`, 'utf8')
    t.regex(devices, /^c 1:3 rwm$/m, 'lonely\'s /dev/null allowed')
    t.notRegex(devices, /^a \*:\* rwm$/m, 'control: not everything is allowed')
  }
  t.is(fs.readFileSync(`${dir('pids')}/pids.max`, 'utf8').trim(), '40')
  runtime(['start', 'cg'])
  t.true(await eventually(() => /zero-ok/.test(c.output())), c.output())
  t.regex(c.output(), /null-ok/)
  // update --resources -: new values into the same files, as containerd's Update sends them.
  const updated = spawnSync(RUNTIME, [...global(), 'update', '--resources', '-', 'cg'], { encoding: 'utf8', input: JSON.stringify({ memory: { limit: 32 << 20 }, pids: { limit: 20 } }) })
  t.is(updated.status, 0, updated.stderr)
  t.is(fs.readFileSync(`${dir('pids')}/pids.max`, 'utf8').trim(), '20')
  t.is(fs.readFileSync(`${dir('memory')}/${v2 ? 'memory.max' : 'memory.limit_in_bytes'}`, 'utf8').trim(), String(32 << 20))
  t.is(runtime(['delete', '--force', 'cg']).status, 0)
  t.false(fs.existsSync(dir('pids')), 'delete removed the cgroup')
  t.false(fs.existsSync(dir('memory')))
  // A systemd slice path is refused by name (lonely-runtime drives cgroupfs).
  const s = bundle('slice', ['true'], (c) => (c.linux.cgroupsPath = 'system.slice:lonely:x'))
  const r = runtime(['create', '--bundle', s, 'slice'])
  t.regex(r.stderr, /linux\.cgroupsPath "system\.slice:lonely:x" is a systemd slice path/)
  noLeaks(t)
})

test.serial('process.capabilities\' four sets, oomScoreAdj and linux.sysctl are applied as given (for a non-root uid too); the host\'s sysctl is untouched; a sysctl that is not namespaced is refused', async (t) => {
  const hostForward = fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8')
  const b = bundle('caps', ['sh', '-c', 'grep -E "^Cap(Inh|Prm|Eff|Amb)" /proc/self/status; cat /proc/self/oom_score_adj /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni'], (c) => {
    c.process.user = { uid: 1000, gid: 1000 }
    const bounding = ['CAP_NET_RAW', 'CAP_NET_BIND_SERVICE', 'CAP_KILL']
    c.process.capabilities = { bounding, effective: ['CAP_NET_BIND_SERVICE'], permitted: ['CAP_NET_BIND_SERVICE', 'CAP_NET_RAW'], inheritable: ['CAP_NET_BIND_SERVICE'], ambient: ['CAP_NET_BIND_SERVICE'] }
    c.process.oomScoreAdj = 500
    c.linux.sysctl = { 'net.ipv4.ip_forward': hostForward.trim() === '1' ? '0' : '1', 'kernel.shmmni': '2048' }
  })
  const c = createWithPipe(t, b, 'caps')
  t.true(await eventually(() => fs.existsSync(path.join(b, 'init.pid')) && state('caps').status === 'created', 10_000), c.output())
  runtime(['start', 'caps'])
  await c.closed
  const bit = (n: number) => (1n << BigInt(n)).toString(16).padStart(16, '0')
  const bind = 10 // CAP_NET_BIND_SERVICE
  const raw = 13 // CAP_NET_RAW
  t.regex(c.output(), new RegExp(`CapInh:\\t${bit(bind)}`))
  // The exec of a file without capabilities leaves a non-root uid its ambient set only: CAP_NET_RAW, permitted before, is gone (the kernel's rule, as under runc).
  t.regex(c.output(), new RegExp(`CapPrm:\\t${bit(bind)}`), `raw ${raw} is not kept`)
  t.regex(c.output(), new RegExp(`CapEff:\\t${bit(bind)}`))
  t.regex(c.output(), new RegExp(`CapAmb:\\t${bit(bind)}`), 'ambient: survives the exec of a non-root uid')
  const [, , , , adj, forward, shmmni] = c.output().trim().split('\n')
  t.is(adj, '500')
  t.is(forward, hostForward.trim() === '1' ? '0' : '1', 'the container\'s own net.ipv4.ip_forward')
  t.is(shmmni, '2048')
  t.is(fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8'), hostForward, 'control: the host\'s is as it was')
  t.is(runtime(['delete', 'caps']).status, 0)
  const bad = runtime(['create', '--bundle', bundle('sysctl-bad', ['true'], (c) => (c.linux.sysctl = { 'kernel.panic': '1' })), 'sysctl-bad'])
  t.regex(bad.stderr, /sysctl `kernel.panic` is not namespaced/)
  noLeaks(t)
})

test.serial('runc spec\'s capabilities (ambient listed without inheritable) run as under runc: the ambient ones the kernel cannot raise are skipped with a note in the log', async (t) => {
  const runcDefault = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE']
  const b = bundle('runc-caps', ['sh', '-c', 'grep -E "^Cap(Eff|Amb)" /proc/self/status'], (c) => {
    c.process.capabilities = { bounding: runcDefault, effective: runcDefault, permitted: runcDefault, ambient: runcDefault }
  })
  const c = createWithPipe(t, b, 'runc-caps')
  t.true(await eventually(() => fs.existsSync(path.join(b, 'init.pid')) && state('runc-caps').status === 'created', 10_000), c.output())
  runtime(['start', 'runc-caps'])
  await c.closed
  t.is(c.output(), 'CapEff:\t0000000020000420\nCapAmb:\t0000000000000000\n')
  t.regex(fs.readFileSync(path.join(work, 'log.json'), 'utf8'), /process.capabilities.ambient: CAP_AUDIT_WRITE, CAP_KILL, CAP_NET_BIND_SERVICE not raised/)
  t.is(runtime(['delete', 'runc-caps']).status, 0)
  noLeaks(t)
})

test.serial('linux.uidMappings/gidMappings: a user namespace with the config\'s ranges (root inside is uid 1000 outside); no /tmp of lonely\'s own; mappings without a user namespace are refused by name', async (t) => {
  const b = bundle('userns', ['sh', '-c', 'id -u; cat /proc/self/uid_map /proc/self/gid_map; awk \'$5 == "/tmp"\' /proc/self/mountinfo; sleep 2'], (c) => {
    c.linux.namespaces.push({ type: 'user' })
    c.linux.uidMappings = [{ containerID: 0, hostID: 1000, size: 2000 }]
    c.linux.gidMappings = [{ containerID: 0, hostID: 1000, size: 3000 }]
  })
  const c = createWithPipe(t, b, 'userns')
  t.true(await eventually(() => fs.existsSync(path.join(b, 'init.pid')) && state('userns').status === 'created', 10_000), c.output())
  runtime(['start', 'userns'])
  t.true(await eventually(() => c.output().split('\n').length >= 4, 5_000), c.output())
  const pid = state('userns').pid
  t.regex(fs.readFileSync(`/proc/${pid}/status`, 'utf8'), /^Uid:\t1000\t1000\t1000\t1000$/m, 'its root is host uid 1000')
  await c.closed
  t.regex(c.output(), /^0\n +0 +1000 +2000\n +0 +1000 +3000\n$/)
  t.is(runtime(['delete', 'userns']).status, 0)
  const bad = runtime(['create', '--bundle', bundle('maps-no-ns', ['true'], (c) => (c.linux.uidMappings = [{ containerID: 0, hostID: 1000, size: 1 }])), 'maps-no-ns'])
  t.regex(bad.stderr, /linux.uidMappings\/gidMappings need a user namespace/)
  noLeaks(t)
})

test.serial('mount options: a bind\'s ro, nosuid and noexec and a tmpfs\'s noexec reach the kernel (binds are always nodev); mountinfo lists the mounts in the config\'s order (a tmpfs before the binds); a tmpfs\'s `shared` makes it shared, `rprivate` and no option leave a bind private', async (t) => {
  const b = bundle('mount-opts', ['sh', '-c', 'awk \'$5 ~ /^\\/mnt\\// { print $5, $6, $7 }\' /proc/self/mountinfo'], (c) => {
    c.mounts.push(
      { destination: '/mnt/scratch', type: 'tmpfs', source: 'tmpfs', options: ['noexec', 'size=1m', 'shared'] },
      { destination: '/mnt/bin', type: 'bind', source: '/usr/bin', options: ['rbind', 'ro', 'nosuid', 'noexec', 'rprivate'] },
      { destination: '/mnt/plain', type: 'bind', source: '/usr/bin', options: ['rbind', 'ro'] },
    )
  })
  const c = createWithPipe(t, b, 'mount-opts')
  t.true(await eventually(() => fs.existsSync(path.join(b, 'init.pid')) && state('mount-opts').status === 'created', 10_000), c.output())
  runtime(['start', 'mount-opts'])
  await c.closed
  const opts = new Map(c.output().trim().split('\n').map((l) => [l.split(' ')[0], l.split(' ')[1].split(',')]))
  t.like(Object.fromEntries(['ro', 'nosuid', 'nodev', 'noexec'].map((o) => [o, opts.get('/mnt/bin')?.includes(o)])), { ro: true, nosuid: true, nodev: true, noexec: true }, c.output())
  t.false(opts.get('/mnt/plain')?.includes('noexec'), 'control: without the option it is not noexec')
  t.true(opts.get('/mnt/scratch')?.includes('noexec'), c.output())
  // Since Linux 6.8 mountinfo is in creation order: the binds' sources, cloned before the root
  // is covered, are cloned again as they are attached (runtime-tools' `mounts` checks this).
  t.deepEqual([...opts.keys()], ['/mnt/scratch', '/mnt/bin', '/mnt/plain'], c.output())
  const tags = new Map(c.output().trim().split('\n').map((l) => [l.split(' ')[0], l.split(' ')[2]]))
  t.regex(tags.get('/mnt/scratch') ?? '', /^shared:\d+$/, c.output())
  t.deepEqual([tags.get('/mnt/bin'), tags.get('/mnt/plain')], ['-', '-'], c.output())
  t.is(runtime(['delete', 'mount-opts']).status, 0)
  noLeaks(t)
})

test.serial('mount propagation, on a caller whose mounts are all shared (as systemd leaves a host): rslave and rshared binds receive the host\'s mounts made after create, an rshared one also sends its own back, a bind without an option does neither; rootfsPropagation rslave makes the root receive them; none of lonely\'s own mounts reaches the caller', (t) => {
  const kinds = ['slave', 'shared', 'none']
  const sources = kinds.map((k) => path.join(work, `prop-src-${k}`))
  for (const s of sources) fs.mkdirSync(s)
  fs.mkdirSync(path.join(rootfs, 'late'))
  t.teardown(() => fs.rmdirSync(path.join(rootfs, 'late')))
  const caps = ['CAP_SYS_ADMIN']
  const bundleFor = (id: string, options: Record<string, string[]>, rootfsPropagation?: string) => bundle(id, ['sh', '-c', [
    `for d in ${kinds.join(' ')}; do cat /$d/late/f 2>/dev/null || echo "$d: nothing"; mkdir /$d/in-${id}; mount -t tmpfs in /$d/in-${id}; done`,
    'cat /late/f 2>/dev/null || echo "root: nothing"',
    'awk \'$5 == "/" { print "root", $7 }\' /proc/self/mountinfo',
  ].join('; ')], (c) => {
    c.process.capabilities = { bounding: caps, effective: caps, permitted: caps }
    kinds.forEach((k, i) => c.mounts.push({ destination: `/${k}`, type: 'bind', source: sources[i], options: ['rbind', ...(options[k] ?? [])] }))
    if (rootfsPropagation) c.linux.rootfsPropagation = rootfsPropagation
  })
  bundleFor('prop', { slave: ['rslave'], shared: ['rshared'] }, 'rslave')
  bundleFor('plain', {}) // control: the same binds without an option
  t.teardown(() => ['prop', 'plain'].forEach((id) => runtime(['delete', '--force', id])))
  // The caller: a mount namespace of its own (gone with it), every mount in it shared.
  const script = [
    'set -eu',
    'mount --make-rshared /',
    'for s in "$@"; do mount -t tmpfs src "$s"; mount --make-shared "$s"; done',
    'before=$(wc -l < /proc/self/mountinfo)',
    'for id in prop plain; do "$R" $G create --bundle "$W/$id" --pid-file "$W/$id/pid" $id > "$W/$id.out" 2>&1; done',
    'echo "caller mounts: $before before create, $(wc -l < /proc/self/mountinfo) after"',
    'for s in "$@" "$ROOTFS"; do mkdir -p "$s/late"; mount -t tmpfs late "$s/late"; echo "$(basename "$s"): from the host" > "$s/late/f"; done',
    'for id in prop plain; do "$R" $G start $id; done',
    'for i in $(seq 100); do "$R" $G state prop | grep -q stopped && "$R" $G state plain | grep -q stopped && break; sleep 0.1; done',
    'for s in "$@"; do for id in prop plain; do if mountpoint -q "$s/in-$id"; then echo "caller sees $(basename "$s")/in-$id"; fi; done; done',
  ].join('\n')
  const r = spawnSync('unshare', ['-m', '--propagation', 'unchanged', 'sh', '-c', script, 'sh', ...sources], {
    encoding: 'utf8', timeout: 30_000, env: { ...process.env, R: RUNTIME, G: global().join(' '), W: work, ROOTFS: rootfs },
  })
  t.is(r.status, 0, r.stderr)
  const [before, after] = r.stdout.match(/caller mounts: (\d+) before create, (\d+) after/)!.slice(1)
  t.is(after, before, 'lonely\'s /proc, /dev, /sys and binds are in no table of the caller\'s, its / shared or not')
  t.deepEqual(r.stdout.split('\n').filter((l) => l.startsWith('caller sees')), ['caller sees prop-src-shared/in-prop'], r.stdout)
  const prop = fs.readFileSync(path.join(work, 'prop.out'), 'utf8')
  t.is(prop.replace(/root master:\d+/, 'root master:N'), 'prop-src-slave: from the host\nprop-src-shared: from the host\nnone: nothing\nlonely-root: from the host\nroot master:N\n'.replace('lonely-root', path.basename(rootfs)), prop)
  t.is(fs.readFileSync(path.join(work, 'plain.out'), 'utf8'), 'slave: nothing\nshared: nothing\nnone: nothing\nroot: nothing\nroot -\n', 'control: private binds and root')
  for (const id of ['prop', 'plain']) t.is(runtime(['delete', id]).status, 0)
  noLeaks(t)
})

test.serial('hooks: prestart, createRuntime, poststart and poststop run in the runtime\'s namespaces in order with the state on stdin; createContainer and startContainer run in the container\'s (its hostname, its /dev/shm); a failing prestart fails create and leaves nothing; a failing poststart or poststop is a warning and the hooks after it still run', async (t) => {
  const out = path.join(work, 'hooks.log')
  const host = (name: string) => ({ path: '/bin/sh', args: ['sh', '-c', `read -r state; echo "${name} $state" >> ${out}`] })
  // A static binary of the rootfs, opened on the host and exec'd inside (its path is the host's).
  const inside = (name: string) => ({ path: path.join(rootfs, 'bin/busybox'), args: ['sh', '-c', `echo "${name} in $(hostname)" >> /dev/shm/hooks`] })
  const b = bundle('hooked', ['sh', '-c', 'cat /dev/shm/hooks'], (c) => {
    c.hooks = {
      prestart: [host('prestart')],
      createRuntime: [host('createRuntime')],
      createContainer: [inside('createContainer')],
      startContainer: [inside('startContainer')],
      poststart: [host('poststart'), { path: '/bin/false' }, host('poststart-after')],
      poststop: [{ path: '/bin/false' }, host('poststop')],
    }
  })
  const c = createWithPipe(t, b, 'hooked')
  t.true(await eventually(() => fs.existsSync(path.join(b, 'init.pid')) && state('hooked').status === 'created', 10_000), c.output())
  const pid = state('hooked').pid
  t.is(runtime(['start', 'hooked']).status, 0, 'a failing poststart does not fail start')
  await c.closed
  t.is(c.output(), 'createContainer in runc\nstartContainer in runc\n')
  t.is(runtime(['delete', 'hooked']).status, 0)
  const lines = fs.readFileSync(out, 'utf8').trim().split('\n')
  t.deepEqual(lines.map((l) => l.split(' ')[0]), ['prestart', 'createRuntime', 'poststart', 'poststart-after', 'poststop'])
  const stateOf = (l: string) => JSON.parse(l.slice(l.indexOf(' ') + 1))
  t.like(stateOf(lines[0]), { id: 'hooked', status: 'creating', pid, bundle: b })
  t.like(stateOf(lines[2]), { status: 'running', pid })
  t.like(stateOf(lines[4]), { status: 'stopped' })
  const log = fs.readFileSync(path.join(work, 'log.json'), 'utf8')
  t.regex(log, /"level":"warning","msg":"poststart hook \/bin\/false: exit status: 1"/)
  t.regex(log, /"level":"warning","msg":"poststop hook \/bin\/false: exit status: 1"/)
  // A failing prestart: create fails naming it, and no container, cgroup or state is left.
  const failing = bundle('hook-fails', ['true'], (c) => (c.hooks = { prestart: [{ path: '/bin/sh', args: ['sh', '-c', 'echo nope >&2; exit 3'] }] }))
  const r = runtime(['create', '--bundle', failing, 'hook-fails'])
  t.is(r.status, 1)
  t.regex(r.stderr, /prestart hook \/bin\/sh: exit status: 3: nope/)
  t.false(fs.existsSync(path.join(stateRoot, 'hook-fails')))
  noLeaks(t)
})

test.serial('while create-time hooks run the container is `creating`: start is refused and the pid file is not there yet (engines wait for it); then created, as runc', async (t) => {
  const b = bundle('slow-hook', ['true'], (c) => (c.hooks = { createRuntime: [{ path: '/bin/sh', args: ['sh', '-c', 'sleep 1'] }] }))
  const c = createWithPipe(t, b, 'slow-hook')
  t.true(await eventually(() => fs.existsSync(path.join(stateRoot, 'slow-hook', 'state.json')) && state('slow-hook').status === 'creating', 5_000), c.output())
  t.false(fs.existsSync(path.join(b, 'init.pid')), 'no pid file while the hooks run')
  t.regex(runtime(['start', 'slow-hook']).stderr, /cannot start an already creating container/)
  t.true(await eventually(() => fs.existsSync(path.join(b, 'init.pid')) && state('slow-hook').status === 'created', 10_000), c.output())
  t.is(runtime(['start', 'slow-hook']).status, 0)
  await c.closed
  t.is(runtime(['delete', '--force', 'slow-hook']).status, 0)
  noLeaks(t)
})

test.serial('linux.devices: the config\'s nodes exist in the container\'s /dev with their type, numbers, mode and owner (a directory made for /dev/net/tun), and the device cgroup lets them open', async (t) => {
  const b = bundle('devs', ['sh', '-c', 'stat -c "%n %F %t:%T %a %u:%g" /dev/fuse /dev/net/tun; : < /dev/net/tun && echo tun-opens; ls /dev/kmsg 2>&1'], (c) => {
    c.linux.devices = [
      { path: '/dev/fuse', type: 'c', major: 10, minor: 229, fileMode: 0o640, uid: 1000, gid: 1000 },
      { path: '/dev/net/tun', type: 'c', major: 10, minor: 200, fileMode: 0o600, uid: 0, gid: 0 },
    ]
    c.linux.resources = { devices: [{ allow: false, access: 'rwm' }, { allow: true, type: 'c', major: 10, minor: 200, access: 'rwm' }] }
  })
  const c = createWithPipe(t, b, 'devs')
  t.true(await eventually(() => fs.existsSync(path.join(b, 'init.pid')) && state('devs').status === 'created', 10_000), c.output())
  runtime(['start', 'devs'])
  await c.closed
  t.regex(c.output(), /^\/dev\/fuse character special file a:e5 640 1000:1000$/m)
  t.regex(c.output(), /^\/dev\/net\/tun character special file a:c8 600 0:0$/m)
  t.regex(c.output(), /^tun-opens$/m)
  t.regex(c.output(), /\/dev\/kmsg.*No such file/, 'control: a node the config does not list is not there')
  t.is(runtime(['delete', 'devs']).status, 0)
  const bad = runtime(['create', '--bundle', bundle('devs-bad', ['true'], (c) => (c.linux.devices = [{ path: '/etc/evil', type: 'c', major: 1, minor: 1 }])), 'devs-bad'])
  t.regex(bad.stderr, /devices: `\/etc\/evil`: must be \/dev\/<name>/)
  noLeaks(t)
})

test.serial('pause and resume: the freezer stops every process (no output while paused) and lets it go; state says paused; delete --force of a paused container works; without a cgroup pause says what it needs', async (t) => {
  const b = bundle('frozen', ['sh', '-c', 'while :; do echo tick; sleep 0.01; done'], (c) => (c.linux.cgroupsPath = `/lonely-oci-freeze-${process.pid}`))
  const c = createWithPipe(t, b, 'frozen')
  t.true(await eventually(() => fs.existsSync(path.join(b, 'init.pid')) && state('frozen').status === 'created', 10_000), c.output())
  runtime(['start', 'frozen'])
  t.true(await eventually(() => c.output().length > 20))
  const paused = runtime(['pause', 'frozen'])
  t.is(paused.status, 0, paused.stderr)
  t.is(state('frozen').status, 'paused')
  // What was written before the freeze may still be in the pipe: let this process read it.
  await new Promise((r) => setTimeout(r, 150))
  const before = c.output().length
  await new Promise((r) => setTimeout(r, 300))
  t.is(c.output().length, before, 'no tick while paused')
  t.is(runtime(['resume', 'frozen']).status, 0)
  t.is(state('frozen').status, 'running')
  t.true(await eventually(() => c.output().length > before), 'ticks again')
  t.regex(runtime(['resume', 'frozen']).stderr, /cannot resume a container that is running/)
  t.is(runtime(['pause', 'frozen']).status, 0)
  t.is(runtime(['delete', '--force', 'frozen']).status, 0, 'a paused container is deleted')
  t.false(fs.existsSync(`/sys/fs/cgroup/freezer/lonely-oci-freeze-${process.pid}`))
  // No cgroupsPath, no limits: no cgroup to freeze.
  const plain = bundle('unfrozen', ['sleep', '1000'], (c) => (c.linux.resources = {}))
  createWithPipe(t, plain, 'unfrozen')
  t.true(await eventually(() => fs.existsSync(path.join(plain, 'init.pid')) && state('unfrozen').status === 'created', 10_000))
  runtime(['start', 'unfrozen'])
  t.regex(runtime(['pause', 'unfrozen']).stderr, /pause needs a freezer cgroup: give the container linux.cgroupsPath/)
  t.is(runtime(['delete', '--force', 'unfrozen']).status, 0)
  noLeaks(t)
})
