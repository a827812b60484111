// lonely-runtime under a real engine: a private containerd (its own root, state and socket in
// a temp dir, CRI off) whose runc shim calls lonely-runtime instead of runc (`ctr run
// --runc-binary`): run --rm, a detached task with exec, ps and kill, and a terminal (-t).
// containerd is stopped by pid and its directory removed; nothing is left.
import test from 'ava'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'

import { dockerArchive, eventually, exclusive, makeBusyboxRoot, ourMounts, removeRoot } from './helpers'

const RUNTIME = path.join(__dirname, '..', 'target', 'release', 'lonely-runtime')
const which = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim() || null
const missing = ['containerd', 'ctr', 'containerd-shim-runc-v2', 'script'].filter((c) => !which(c))
const ctest = missing.length ? test.skip : test.serial
if (missing.length) test(`containerd: skipped, ${missing.join(', ')} not installed (apt-get install containerd)`, (t) => t.pass())

const IMAGE = 'docker.io/lonely/busybox:test'
let dir = ''
let daemon: ChildProcess | undefined
let mountsBefore = ''
/** The shim and ctr make /run/containerd (sockets, fifos, the runtime's --root): ours to remove if it was not there. */
let runDirBefore = true
let release = () => {}

// SIGKILL on timeout: ctr forwards a SIGTERM to the task and goes on waiting.
// A namespace of our own: containerd puts its tasks' cgroups under /<namespace>/, which the
// after hook removes (the runtime deletes each task's own directory).
const NAMESPACE = `lonely-test-${process.pid}`
const ctr = (args: string[], timeout = 30_000) => spawnSync('ctr', ['-a', path.join(dir, 'c.sock'), '-n', NAMESPACE, ...args], { encoding: 'utf8', timeout, killSignal: 'SIGKILL' })
/** The namespace's cgroup directories containerd asked for, in every hierarchy. */
const namespaceCgroups = () => fs.readdirSync('/sys/fs/cgroup').map((h) => path.join('/sys/fs/cgroup', h, NAMESPACE)).filter((d) => fs.existsSync(d))


test.before(async () => {
  if (missing.length) return
  // containerd.spec.ts and crictl.spec.ts both start containerds that share /run/containerd.
  release = await exclusive('containerd')
  mountsBefore = ourMounts()
  runDirBefore = fs.existsSync('/run/containerd')
  // Short: a unix socket path has at most 107 bytes. Not /tmp/lonely-*: containerd's snapshot
  // mounts live in this namespace while a task runs, and the other suites' leak checks
  // (ourMounts) would take them for theirs; this suite checks them itself.
  dir = fs.mkdtempSync('/tmp/ctrd-')
  fs.writeFileSync(path.join(dir, 'config.toml'), [
    'version = 2',
    `root = "${dir}/root"`,
    `state = "${dir}/state"`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    '[grpc]',
    `  address = "${dir}/c.sock"`,
    '',
  ].join('\n'))
  daemon = spawn('containerd', ['--config', path.join(dir, 'config.toml')], { stdio: ['ignore', 'ignore', fs.openSync(path.join(dir, 'containerd.log'), 'a')] })
  if (!(await eventually(() => ctr(['version'], 5000).status === 0, 30_000))) throw new Error(`containerd did not start: ${fs.readFileSync(path.join(dir, 'containerd.log'), 'utf8').slice(-2000)}`)
  const root = makeBusyboxRoot()
  const imported = ctr(['image', 'import', dockerArchive(root, dir, [{ tag: IMAGE, cmd: ['sh'] }])])
  removeRoot(root)
  if (imported.status !== 0) throw new Error(`ctr image import: ${imported.stderr}`)
})

test.after.always(async () => {
  if (!dir) return
  for (const id of ctr(['task', 'ls', '-q']).stdout.split('\n').filter(Boolean)) ctr(['task', 'kill', '-s', 'SIGKILL', id])
  for (const id of ctr(['container', 'ls', '-q']).stdout.split('\n').filter(Boolean)) {
    ctr(['task', 'delete', '-f', id])
    ctr(['container', 'rm', id])
  }
  if (daemon?.pid) {
    daemon.kill('SIGTERM')
    await eventually(() => daemon!.exitCode !== null || daemon!.signalCode !== null, 20_000)
    if (daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL')
  }
  // What containerd may have left mounted under its root (a snapshot of a killed task).
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').reverse()) {
    const at = line.split(' ')[4]
    if (at?.startsWith(dir)) spawnSync('umount', ['-l', at])
  }
  for (const d of namespaceCgroups()) fs.rmdirSync(d)
  fs.rmSync(dir, { recursive: true, force: true })
  // The shim's runc root for our namespace is ours by name, even where /run/containerd was there.
  fs.rmSync(path.join('/run/containerd/runc', NAMESPACE), { recursive: true, force: true })
  if (!runDirBefore) fs.rmSync('/run/containerd', { recursive: true, force: true })
  release()
})

ctest('ctr run --rm with lonely-runtime: the command runs as PID 1 in the image, its output and exit code reach ctr', (t) => {
  const r = ctr(['run', '--rm', '--runc-binary', RUNTIME, IMAGE, 'rm1', 'sh', '-c', 'echo "pid $$ as $(id -u)"; ls /bin/busybox; exit 0'])
  t.is(r.status, 0, r.stderr)
  t.is(r.stdout, 'pid 1 as 0\n/bin/busybox\n')
  const failed = ctr(['run', '--rm', '--runc-binary', RUNTIME, IMAGE, 'rm2', 'sh', '-c', 'exit 3'])
  t.is(failed.status, 3, 'the exit code')
  const notFound = ctr(['run', '--rm', '--runc-binary', RUNTIME, IMAGE, 'rm3', 'no-such-program'])
  t.not(notFound.status, 0)
  t.regex(notFound.stderr, /OCI runtime create failed: .*executable file not found in \$PATH/, 'the runtime\'s error reaches ctr\'s user in one line')
  t.deepEqual(ctr(['container', 'ls', '-q']).stdout, '', 'nothing left in containerd')
})

ctest('a detached task: ctr task exec joins it, task ps lists its processes, task pause/resume freeze and thaw it, task kill reaches its trap, delete cleans up', async (t) => {
  const started = ctr(['run', '-d', '--runc-binary', RUNTIME, IMAGE, 'bg', 'sh', '-c', 'trap "exit 3" TERM; while :; do sleep 0.1; done'])
  t.is(started.status, 0, started.stderr)
  // A failed assertion must not leave the task for the leak check that follows.
  t.teardown(() => {
    ctr(['task', 'delete', '-f', 'bg'])
    ctr(['container', 'rm', 'bg'])
  })
  t.true(await eventually(() => /bg\s+\d+\s+RUNNING/.test(ctr(['task', 'ls']).stdout), 10_000), ctr(['task', 'ls']).stdout)
  const exec = ctr(['task', 'exec', '--exec-id', 'e1', 'bg', 'sh', '-c', 'echo "in $$"; tr "\\0" " " < /proc/1/cmdline'])
  t.is(exec.status, 0, exec.stderr)
  t.regex(exec.stdout, /^in \d+\nsh -c trap "exit 3" TERM; while :; do sleep 0.1; done $/, 'the exec sees PID 1 of the task')
  // Between two sleeps PID 1 is alone for a moment: wait for a listing that shows both.
  t.true(await eventually(() => ctr(['task', 'ps', 'bg']).stdout.trim().split('\n').length >= 3, 10_000), 'PID 1 and its sleep at least')
  // ctr task pause/resume: lonely-runtime's freezer, in the cgroup containerd named.
  const paused = ctr(['task', 'pause', 'bg'])
  t.is(paused.status, 0, paused.stderr)
  t.regex(ctr(['task', 'ls']).stdout, /bg\s+\d+\s+PAUSED/)
  t.is(ctr(['task', 'resume', 'bg']).status, 0)
  t.regex(ctr(['task', 'ls']).stdout, /bg\s+\d+\s+RUNNING/)
  t.is(ctr(['task', 'kill', 'bg']).status, 0)
  t.true(await eventually(() => /bg\s+\d+\s+STOPPED/.test(ctr(['task', 'ls']).stdout), 10_000))
  t.is(ctr(['task', 'delete', 'bg']).status, 0)
  t.is(ctr(['container', 'rm', 'bg']).status, 0)
})

ctest('ctr run -t: the terminal lonely-runtime sends over the console socket is the task\'s', (t) => {
  // ctr wants a terminal of its own: `script` gives it one.
  const r = spawnSync('script', ['-qec', `ctr -a ${path.join(dir, 'c.sock')} -n ${NAMESPACE} run --rm -t --runc-binary ${RUNTIME} ${IMAGE} tty1 sh -c 'tty; echo tty-ok'`, '/dev/null'], { encoding: 'utf8', timeout: 30_000, input: '', killSignal: 'SIGKILL' })
  t.is(r.status, 0, r.stderr)
  t.regex(r.stdout, /\/dev\/pts\/\d+\r+\n+tty-ok\r+\n/, '(script adds its own CR)')
})

ctest('nothing of the containers is left: no mount in this namespace, no shim', (t) => {
  t.deepEqual(ourMounts(), mountsBefore)
  const under = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.split(' ')[4]?.startsWith(dir))
  t.deepEqual(under, [], 'a snapshot is still mounted')
  const shims = spawnSync('pgrep', ['-f', `containerd-shim-runc-v2.*${dir}`], { encoding: 'utf8' }).stdout.trim()
  t.is(shims, '', 'a shim still runs')
  const tasks = namespaceCgroups().flatMap((d) => fs.readdirSync(d, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => path.join(d, e.name)))
  t.deepEqual(tasks, [], 'a task\'s cgroup is left')
  t.true(namespaceCgroups().length > 0, 'control: the tasks had cgroups at containerd\'s cgroupsPath')
})
