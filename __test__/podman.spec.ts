// lonely-runtime under podman: a private podman (its own containers.conf and storage.conf,
// storage, run root, tmpdir, runtime state and network config, all in one temp dir; cgroupfs,
// file events, no network) whose conmon calls lonely-runtime instead of crun/runc: run --rm on
// a --rootfs and on an image (podman load), run -d with exec, ps/top, pause/unpause, kill,
// stop, rm, terminals (exec -t, run -t, run -it), --init, --privileged and /sys/fs/cgroup.
// Everything it made is removed: containers, conmon, mounts under its dir, libpod cgroups.
import test, { type ExecutionContext } from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { spawn, spawnSync } from 'node:child_process'

import { BUSYBOX, dockerArchive, eventually, makeBusyboxRoot, ourMounts } from './helpers'

const RUNTIME = path.join(__dirname, '..', 'target', 'release', 'lonely-runtime')
const which = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim() || null
const missing = ['podman', 'conmon', 'script', 'unshare'].filter((c) => !which(c))
if (!BUSYBOX) missing.push('busybox-static')
if (!fs.existsSync(RUNTIME)) missing.push(`${RUNTIME} (cargo build --release -p lonely-runtime)`)
const ptest = missing.length ? test.skip : test.serial
if (missing.length) test(`podman: skipped, ${missing.join(', ')} not installed (apt-get install podman busybox-static)`, (t) => t.pass())

/** podman's --init (Debian: a recommended package of podman's). */
const initTest = !missing.length && ['/usr/libexec/podman/catatonit', '/usr/bin/catatonit'].some((p) => fs.existsSync(p)) ? test.serial : test.skip

const IMAGE = 'localhost/lonely/busybox:test'
/** Not /tmp/lonely-*: podman mounts a tmpfs per container (userdata/shm) in this mount namespace, which the other suites' leak checks (ourMounts) would take for theirs; this suite checks them itself. */
let dir = ''
let rootfs = ''
let mountsBefore = ''
let mountinfoBefore: string[] = []
/** Host paths podman (as root) makes by default, whatever its options: ours to remove if they were not there. */
const HOST_PATHS = ['/run/containers', '/run/libpod', '/var/lib/containers', '/var/lib/containers/cache', '/var/lib/cni', '/etc/cni', '/run/netns']
let hostPathsBefore = new Map<string, boolean>()
/** The libpod_parent cgroup of each hierarchy (podman's cgroupfs parent), if it was there before, and its entries then. */
let parentsBefore = new Map<string, string[] | null>()
const made = new Set<string>()

const conf = () => path.join(dir, 'containers.conf')
const env = () => ({ ...process.env, CONTAINERS_CONF: conf(), CONTAINERS_STORAGE_CONF: path.join(dir, 'storage.conf') })
/** The runtime podman is given: lonely-runtime with its state in our dir. A wrapper, as podman passes root's runtimes no --root and does not hand its --runtime-flag to the `podman container cleanup` conmon runs on exit (its delete would look in /run/lonely-runtime); named lonely-runtime, which runtime_supports_json lists (then conmon passes --log FILE --log-format json). */
const wrapper = () => path.join(dir, 'bin', 'lonely-runtime')
const globals = () => ['--root', path.join(dir, 'storage'), '--runroot', path.join(dir, 'runroot'), '--tmpdir', path.join(dir, 'tmp'), '--storage-driver', 'vfs', '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--runtime', wrapper()]
/** SIGKILL on timeout: podman forwards a SIGTERM to the container and goes on waiting. */
const podman = (args: string[], opts: { input?: string; timeout?: number } = {}) =>
  spawnSync('podman', [...globals(), ...args], { encoding: 'utf8', env: env(), input: opts.input ?? '', timeout: opts.timeout ?? 60_000, killSignal: 'SIGKILL' })
/** The same command line for a shell (`script -c`): every word is a plain path or flag. */
const podmanLine = (args: string) => `podman ${globals().join(' ')} ${args}`
const inspect = (name: string, format: string) => podman(['inspect', '--format', format, name]).stdout.trim()
const runDetached = (name: string, args: string[]) => {
  const r = podman(['run', '-d', '--name', name, '--network', 'none', ...args])
  if (r.status === 0) made.add(r.stdout.trim())
  return r
}

/** Removes the detached containers a test made, whatever happened (a failed assertion throws). */
const removeAfter = async <T>(names: string[], body: () => Promise<T> | T): Promise<T> => {
  try {
    return await body()
  } finally {
    podman(['rm', '-f', '-t', '0', ...names])
  }
}

/** `cmd` in a fresh pseudo-terminal (util-linux script): its output and exit code. */
function inTerminal(cmd: string, timeout = 30_000) {
  return spawnSync('script', ['-qec', cmd, '/dev/null'], { encoding: 'utf8', env: env(), input: '', timeout, killSignal: 'SIGKILL' })
}

/** The host's cgroup directory of `pid` for `controller` (v1), or its v2 directory. */
function cgroupDir(pid: number, controller: string): string | null {
  const lines = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')
  const v1 = lines.find((l) => l.split(':')[1]?.split(',').includes(controller))
  if (v1) {
    const hierarchy = fs.readdirSync('/sys/fs/cgroup').find((h) => h.split(',').includes(controller))
    return hierarchy ? path.join('/sys/fs/cgroup', hierarchy, v1.split(':')[2]!) : null
  }
  const v2 = lines.find((l) => l.startsWith('0::'))
  return v2 && fs.existsSync('/sys/fs/cgroup/cgroup.controllers') ? path.join('/sys/fs/cgroup', v2.slice(3)) : null
}


/** mountinfo without the ids (they are not ours to compare). */
const mountinfo = () => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ').slice(2).join(' '))
const mountedUnder = (top: string) => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((at): at is string => !!at && at.startsWith(top))
/** conmon's console sockets: it unlinks one when the runtime connects (runc always does). */
const consoleSockets = () => fs.readdirSync(os.tmpdir()).filter((e) => e.startsWith('conmon-term.'))
const conmons = () => spawnSync('pgrep', ['-f', `conmon.*${dir}`], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number)
const hierarchies = () => fs.readdirSync('/sys/fs/cgroup').filter((h) => fs.existsSync(path.join('/sys/fs/cgroup', h, 'cgroup.procs')))
/** The container cgroups (libpod-<id>) under a hierarchy's libpod_parent, null without one. */
const libpodParent = (h: string) => {
  const parent = path.join('/sys/fs/cgroup', h, 'libpod_parent')
  return fs.existsSync(parent) ? fs.readdirSync(parent).filter((e) => e.startsWith('libpod-')) : null
}

test.before(() => {
  if (missing.length) return
  mountsBefore = ourMounts()
  mountinfoBefore = mountinfo()
  hostPathsBefore = new Map(HOST_PATHS.map((p) => [p, fs.existsSync(p)]))
  parentsBefore = new Map(hierarchies().map((h) => [h, libpodParent(h)]))
  dir = fs.mkdtempSync('/tmp/pdm-')
  // The busybox root inside our dir (podman writes its mount points into a --rootfs).
  rootfs = path.join(dir, 'rootfs')
  fs.renameSync(makeBusyboxRoot(), rootfs)
  fs.mkdirSync(path.join(dir, 'bin'))
  fs.writeFileSync(wrapper(), `#!/bin/sh\nexec ${RUNTIME} --root ${dir}/state "$@"\n`, { mode: 0o755 })
  fs.writeFileSync(conf(), [
    '[containers]',
    // podman's defaults raise nofile/nproc to the kernel's maximum: EPERM without CAP_SYS_RESOURCE.
    'default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]',
    'log_driver = "k8s-file"',
    '[network]',
    // cni: netavark would make /run/containers/networks, whatever the options (root's fixed run dir).
    'network_backend = "cni"',
    `network_config_dir = "${dir}/net"`,
    '[engine]',
    'runtime_supports_json = ["crun", "runc", "lonely-runtime"]',
    'cgroup_manager = "cgroupfs"',
    'events_logger = "file"',
    `events_logfile_path = "${dir}/tmp/events.log"`,
    // Not shm: libpod's lock segment would be /dev/shm/libpod_lock, shared with the host's podman.
    'lock_type = "file"',
    `tmp_dir = "${dir}/tmp"`,
    `static_dir = "${dir}/storage/libpod"`,
    `volume_path = "${dir}/storage/volumes"`,
    '',
  ].join('\n'))
  fs.writeFileSync(path.join(dir, 'storage.conf'), `[storage]\ndriver = "vfs"\ngraphroot = "${dir}/storage"\nrunroot = "${dir}/runroot"\n`)
  // The image, as `podman load` of a docker-archive. Its copy records blobs in root's
  // /var/lib/containers/cache (no option moves it): a tmpfs of a private mount namespace
  // covers it when it is there (when not, after.always removes what the load made).
  const archive = dockerArchive(rootfs, dir, [{ tag: IMAGE, cmd: ['sh'] }])
  const load = hostPathsBefore.get('/var/lib/containers/cache')
    ? spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs tmpfs /var/lib/containers/cache && exec ${podmanLine(`load -q -i ${archive}`)}`], { encoding: 'utf8', env: env() })
    : podman(['load', '-q', '-i', archive])
  if (load.status !== 0) throw new Error(`podman load: ${load.stderr}`)
})

test.after.always(async () => {
  if (!dir) return
  const ids = new Set([...made, ...podman(['ps', '-aq', '--no-trunc']).stdout.split('\n').filter(Boolean)])
  podman(['rm', '-af', '-t', '0'])
  // conmon outlives a podman that was killed: ours by pid (its command line names our dir).
  for (const pid of conmons()) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
  }
  await eventually(() => conmons().length === 0, 10_000)
  // A container's runtime state and cgroups, had podman not deleted it.
  for (const id of ids) spawnSync(wrapper(), ['delete', '--force', id])
  for (const at of mountedUnder(dir).reverse()) spawnSync('umount', ['-l', at])
  // rmdir: a cgroup's files go with it, a busy one stays. Ours: our containers' and any that
  // appeared since (a failed create's); podman's own libpod_parent/conmon (every conmon's)
  // and the parent too if they were not there before. A conmon that exited stays in its
  // cgroup until reaped: its parent is init by then, which may take its time.
  const cgroups = hierarchies().flatMap((h) => {
    const parent = path.join('/sys/fs/cgroup', h, 'libpod_parent')
    const before = parentsBefore.get(h)
    const appeared = (libpodParent(h) ?? []).filter((e) => !before?.includes(e))
    const ours = [...new Set([...[...ids].map((id) => `libpod-${id}`), ...appeared])].map((e) => path.join(parent, e))
    return before ? ours : [...ours, path.join(parent, 'conmon'), parent]
  })
  await eventually(() => {
    for (const d of cgroups) {
      try {
        fs.rmdirSync(d)
      } catch {}
    }
    return cgroups.every((d) => !fs.existsSync(d))
  }, 30_000)
  fs.rmSync(dir, { recursive: true, force: true })
  // Deepest first: /var/lib/containers/cache before /var/lib/containers.
  for (const p of [...HOST_PATHS].reverse()) if (!hostPathsBefore.get(p)) fs.rmSync(p, { recursive: true, force: true })
})

ptest('podman run --rm: the command is PID 1 of a --rootfs and of a loaded image, its output and exit code reach podman', (t) => {
  const r = podman(['run', '--rm', '--network', 'none', '--rootfs', rootfs, 'sh', '-c', 'echo "hi from $$ as $(id -u)"; exit 3'])
  t.is(r.status, 3, r.stderr)
  t.is(r.stdout, 'hi from 1 as 0\n')
  const img = podman(['run', '--rm', '--network', 'none', '--hostname', 'pbox', '-e', 'FOO=bar', '-w', '/tmp', IMAGE, 'sh', '-c', 'echo "$$ $(hostname) $FOO $(pwd)"; ls /bin/busybox'])
  t.is(img.status, 0, img.stderr)
  t.is(img.stdout, '1 pbox bar /tmp\n/bin/busybox\n')
  const piped = podman(['run', '--rm', '-i', '--network', 'none', IMAGE, 'sh', '-c', 'read x; echo "got $x"'], { input: 'piped\n' })
  t.is(piped.stdout, 'got piped\n', piped.stderr)
  const notFound = podman(['run', '--rm', '--network', 'none', IMAGE, 'no-such-program'])
  t.is(notFound.status, 127, 'podman\'s code for a command not found')
  t.regex(notFound.stderr, /executable file not found in \$PATH/, 'the runtime\'s error (its --log record) reaches podman\'s user')
  t.is(podman(['ps', '-aq']).stdout, '', '--rm removed them')
})

ptest('a detached container: exec joins it, ps/top list it, pause/unpause freeze and thaw its cgroup, kill reaches its trap, start, stop, rm', (t) => removeAfter(['bg', 'stubborn'], async () => {
  const started = runDetached('bg', [IMAGE, 'sh', '-c', 'trap "echo got-term; exit 7" TERM; while :; do sleep 0.1; done'])
  t.is(started.status, 0, started.stderr)
  const pid = Number(inspect('bg', '{{.State.Pid}}'))
  t.true(pid > 0)
  t.is(inspect('bg', '{{.State.Status}}'), 'running')
  t.regex(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8'), /^sh\0-c\0trap /, 'podman\'s pid is the container\'s PID 1 (the command itself)')
  t.regex(podman(['ps', '--format', '{{.Names}} {{.Status}}']).stdout, /^bg Up /m)

  const exec = podman(['exec', 'bg', 'sh', '-c', 'echo "in $$"; tr "\\0" " " < /proc/1/cmdline; echo; exit 4'])
  t.is(exec.status, 4, exec.stderr)
  t.regex(exec.stdout, /^in \d+\nsh -c trap "echo got-term; exit 7" TERM; while :; do sleep 0.1; done \n$/, 'the exec sees PID 1 of the container')
  const asUser = podman(['exec', '--user', '65534', '-e', 'A=1', '-w', '/tmp', 'bg', 'sh', '-c', 'echo "$(id -u) $A $(pwd)"'])
  t.is(asUser.stdout, '65534 1 /tmp\n', asUser.stderr)
  t.is(podman(['exec', '-d', 'bg', 'sh', '-c', 'echo detached > /tmp/mark']).status, 0)
  t.true(await eventually(() => podman(['exec', 'bg', 'cat', '/tmp/mark']).stdout === 'detached\n', 5000), 'exec -d ran')
  const missingCmd = podman(['exec', 'bg', 'no-such-program'])
  t.is(missingCmd.status, 127, missingCmd.stderr)

  const top = podman(['top', 'bg', 'pid', 'args'])
  t.is(top.status, 0, top.stderr)
  t.regex(top.stdout, /^1\s+sh -c trap /m, 'PID 1 in podman top')
  t.regex(top.stdout, /^\d+\s+sleep 0\.1/m, 'and its sleep')

  const paused = podman(['pause', 'bg'])
  t.is(paused.status, 0, paused.stderr)
  t.is(inspect('bg', '{{.State.Status}}'), 'paused')
  const freezer = cgroupDir(pid, 'freezer')
  if (freezer && fs.existsSync(path.join(freezer, 'freezer.state'))) t.is(fs.readFileSync(path.join(freezer, 'freezer.state'), 'utf8').trim(), 'FROZEN', 'the cgroup podman named is frozen')
  else if (freezer) t.is(fs.readFileSync(path.join(freezer, 'cgroup.freeze'), 'utf8').trim(), '1')
  t.is(JSON.parse(spawnSync(wrapper(), ['state', inspect('bg', '{{.Id}}')], { encoding: 'utf8' }).stdout).status, 'paused', 'lonely-runtime state')
  t.not(podman(['exec', 'bg', 'true']).status, 0, 'no exec into a paused container')
  t.is(podman(['unpause', 'bg']).status, 0)
  t.is(inspect('bg', '{{.State.Status}}'), 'running')
  t.true(await eventually(() => podman(['exec', 'bg', 'true']).status === 0, 5000), 'it runs again')

  t.is(podman(['kill', '-s', 'TERM', 'bg']).status, 0)
  t.is(podman(['wait', 'bg']).stdout.trim(), '7', 'the trap\'s exit code')
  t.is(inspect('bg', '{{.State.Status}}'), 'exited')
  t.regex(podman(['logs', 'bg']).stdout, /got-term/)

  t.is(podman(['start', 'bg']).status, 0, 'started again')
  t.is(inspect('bg', '{{.State.Status}}'), 'running')
  const stop = podman(['stop', '-t', '5', 'bg'])
  t.is(stop.status, 0, stop.stderr)
  t.is(inspect('bg', '{{.State.ExitCode}}'), '7', 'stop\'s SIGTERM reached the trap')

  const stubborn = runDetached('stubborn', [IMAGE, 'sleep', '1000'])
  t.is(stubborn.status, 0, stubborn.stderr)
  t.is(podman(['stop', '-t', '1', 'stubborn']).status, 0)
  t.is(inspect('stubborn', '{{.State.ExitCode}}'), '137', 'SIGKILL after the timeout')

  const rm = podman(['rm', 'bg', 'stubborn'])
  t.is(rm.status, 0, rm.stderr)
  t.is(podman(['ps', '-aq']).stdout, '')
  t.deepEqual(fs.readdirSync(path.join(dir, 'state')), [], 'lonely-runtime deleted its state (the cleanup reached our --root)')
}))

ptest('exec\'s exit code reaches podman every time: conmon, the subreaper, reaps the exec (a quick one ends before the runtime does)', (t) => removeAfter(['quick'], () => {
  t.is(runDetached('quick', [IMAGE, 'sleep', '1000']).status, 0)
  // false: over before the runtime has written the pid file and exited.
  const codes = Array.from({ length: 30 }, () => podman(['exec', 'quick', 'false']).status)
  t.deepEqual(codes, Array(30).fill(1), 'podman says 255 when conmon found no exit status')
}))

ptest('terminals: exec -t gets a pty from the console socket, at the size of podman\'s terminal', (t) => removeAfter(['tty'], () => {
  t.is(runDetached('tty', [IMAGE, 'sleep', '1000']).status, 0)
  const exec = inTerminal(podmanLine('exec -t tty sh -c "tty; exit 5"'))
  t.is(exec.status, 5, exec.stderr)
  t.regex(exec.stdout, /^\/dev\/pts\/\d+\r+\n$/, 'exec -t: a terminal (script adds its own CR)')
  // conmon sets the size once it has the master: the command must not run before (runc's
  // order). stty as the command itself: the first thing it does is ask.
  const size = inTerminal(`stty rows 31 cols 101; ${podmanLine('exec -t tty stty size')}`)
  t.is(size.stdout, '31 101\r\n', 'exec -t: the size of podman\'s terminal')
}))

ptest('terminals: run -t gets a pty at the size of podman\'s terminal; run -it is interactive', async (t) => {
  const run = inTerminal(`stty rows 32 cols 102; ${podmanLine(`run --rm -t --network none ${IMAGE} sh -c "tty; stty size; exit 6"`)}`)
  t.is(run.status, 6, run.stderr)
  t.regex(run.stdout, /^\/dev\/pts\/\d+\r+\n32 102\r+\n$/, 'run -t')

  // -it: typed input reaches the shell, its exit code podman.
  const child = spawn('script', ['-qec', podmanLine(`run --rm -it --network none -e PS1=PODMAN-PROMPT\\> ${IMAGE} sh`), '/dev/null'], { env: env() })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    out += d
  })
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)))
  try {
    t.true(await eventually(() => out.includes('PODMAN-PROMPT>'), 20_000), out)
    child.stdin.write('echo "typed $((6*7)) on $(tty)"\r')
    t.true(await eventually(() => /typed 42 on \/dev\/pts\/\d+/.test(out), 10_000), out)
    child.stdin.write('exit 9\r')
    t.is(await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 20_000, 'timeout'))]), 9, out)
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') // conmon goes with podman rm -a (after)
  }
})

ptest('terminals: a command not found under -t is podman\'s 127 with the runtime\'s error, and leaves no console socket of conmon\'s', (t) => {
  const before = consoleSockets()
  const left = () => consoleSockets().filter((s) => !before.includes(s))
  return removeAfter(['tty2'], () => {
    const run = inTerminal(podmanLine(`run --rm -t --network none ${IMAGE} no-such-program`))
    t.is(run.status, 127, run.stdout)
    t.regex(run.stdout, /executable file not found in \$PATH/)
    t.is(runDetached('tty2', [IMAGE, 'sleep', '1000']).status, 0)
    const exec = inTerminal(podmanLine('exec -t tty2 no-such-program'))
    t.is(exec.status, 127, exec.stdout)
    t.deepEqual(left(), [], `${os.tmpdir()}/conmon-term.* left`)
  }).finally(() => {
    // What a failing runtime left (conmon unlinks only what it accepted): the runs' of this test.
    for (const s of left()) fs.rmSync(path.join(os.tmpdir(), s), { force: true })
  })
})

initTest('run --init: podman\'s catatonit (bound at /run/podman-init from a symlinked path) is PID 1, the command its child', (t) => {
  const r = podman(['run', '--rm', '--network', 'none', '--init', IMAGE, 'sh', '-c', 'tr "\\0" " " < /proc/1/cmdline; echo; echo "sh is $$"'])
  t.is(r.status, 0, r.stderr)
  t.is(r.stdout, '/run/podman-init -- sh -c tr "\\0" " " < /proc/1/cmdline; echo; echo "sh is $$" \nsh is 2\n')
})

ptest('run --privileged: every host device node (/dev/cpu/0/cpuid, /dev/net/tun...) and every capability', (t) => {
  const r = podman(['run', '--rm', '--network', 'none', '--privileged', IMAGE, 'sh', '-c', 'grep CapEff /proc/self/status; ls /dev/null /dev/tty'])
  t.is(r.status, 0, r.stderr)
  const bounding = /^CapBnd:\s+(\S+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]
  t.is(r.stdout, `CapEff:\t${bounding}\n/dev/null\n/dev/tty\n`, 'every capability this host has')
  const nested = fs.existsSync('/dev/cpu/0/cpuid') ? podman(['run', '--rm', '--network', 'none', '--privileged', IMAGE, 'ls', '/dev/cpu/0/cpuid']) : undefined
  if (nested) t.is(nested.stdout, '/dev/cpu/0/cpuid\n', nested.stderr)
})

ptest('the container\'s cgroup: podman\'s limits are in the host\'s files and in its own /sys/fs/cgroup, read-only, as runc shows it', (t) => removeAfter(['limited'], () => {
  const r = runDetached('limited', ['--memory', '64m', '--pids-limit', '50', IMAGE, 'sleep', '1000'])
  t.is(r.status, 0, r.stderr)
  const pid = Number(inspect('limited', '{{.State.Pid}}'))
  const v2 = fs.existsSync('/sys/fs/cgroup/cgroup.controllers')
  const [memFile, pidsFile] = v2 ? ['memory.max', 'pids.max'] : ['memory/memory.limit_in_bytes', 'pids/pids.max']
  const memory = cgroupDir(pid, 'memory')
  t.truthy(memory)
  t.is(fs.readFileSync(path.join(memory!, path.basename(memFile)), 'utf8').trim(), '67108864', 'the host\'s cgroup has the limit')
  const inside = podman(['exec', 'limited', 'sh', '-c', `cat /sys/fs/cgroup/${memFile} /sys/fs/cgroup/${pidsFile}; echo 1 > /sys/fs/cgroup/${pidsFile}`])
  t.is(inside.stdout, '67108864\n50\n', `the container's /sys/fs/cgroup: ${inside.stderr}`)
  t.regex(inside.stderr, /Read-only file system/)
}))

ptest('nothing of the containers is left: no container, conmon, mount, runtime state or libpod cgroup', (t: ExecutionContext) => {
  t.is(podman(['ps', '-a', '--format', '{{.Names}} {{.Status}} {{.Command}}']).stdout, '', 'a container is left')
  t.deepEqual(conmons(), [], 'a conmon still runs')
  t.deepEqual(mountedUnder(dir), [], 'a container\'s shm (or a root) is still mounted')
  t.deepEqual(ourMounts(), mountsBefore)
  const added = mountinfo().filter((l) => !mountinfoBefore.includes(l))
  t.deepEqual(added.filter((l) => /\/(pdm-|containers|libpod|netns)/.test(l)), [], `mounts podman made: ${added.join('\n')}`)
  t.deepEqual(fs.readdirSync(path.join(dir, 'state')), [])
  const left = hierarchies().flatMap((h) => {
    const parent = path.join('/sys/fs/cgroup', h, 'libpod_parent')
    return fs.existsSync(parent) ? fs.readdirSync(parent).filter((e) => [...made].some((id) => e === `libpod-${id}`)).map((e) => path.join(parent, e)) : []
  })
  t.deepEqual(left, [], 'a container\'s cgroup is left')
  t.true(made.size > 0, 'control: the tests made containers')
  for (const p of HOST_PATHS.filter((p) => !hostPathsBefore.get(p) && p !== '/var/lib/containers' && p !== '/var/lib/containers/cache')) t.false(fs.existsSync(p), `podman made ${p}`)
})
