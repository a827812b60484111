// lonely-runtime on the Kubernetes path: a private containerd (its own root, state, socket and
// runtime root in a temp dir) with the CRI plugin on and a runtime handler `lonely` (the runc
// shim with lonely-runtime as its BinaryName), driven by crictl as a kubelet would: runp,
// create, start, exec (sync, streamed, with a terminal), logs, stats, stop, rm, stopp, rmp.
// No CNI: the pods are host-network. No registry: the sandbox (pause) image and the container
// image are docker-archives of a busybox root, imported with ctr. Everything the suite made
// (containerd, shims, containers, cgroups, mounts, directories) is removed by pid and path.
import test from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { spawn, spawnSync, type ChildProcess, type ChildProcessWithoutNullStreams } from 'node:child_process'

import { BUSYBOX, dockerArchive, eventually, exclusive, makeBusyboxRoot, ourMounts, removeRoot } from './helpers'

// LONELY_RUNTIME: another build of it (a fix under test), else the repo's.
const RUNTIME = process.env.LONELY_RUNTIME || path.join(__dirname, '..', 'target', 'release', 'lonely-runtime')
const which = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim() || null

/** crictl from PATH, else where `go install sigs.k8s.io/cri-tools/cmd/crictl@v1.34.0` puts it ($GOBIN, $GOPATH/bin). */
function findCrictl(): string | null {
  const inPath = which('crictl')
  if (inPath) return inPath
  const go = which('go') ?? (fs.existsSync('/usr/local/go/bin/go') ? '/usr/local/go/bin/go' : null)
  const env = (name: string) => (go ? spawnSync(go, ['env', name], { encoding: 'utf8' }).stdout.trim() : '')
  const gopath = env('GOPATH').split(':')[0]
  const dirs = [env('GOBIN'), gopath && path.join(gopath, 'bin'), path.join(os.homedir(), 'go', 'bin')]
  return dirs.filter(Boolean).map((d) => path.join(d!, 'crictl')).find((bin) => fs.existsSync(bin)) ?? null
}
const CRICTL = findCrictl()

const missing = [
  ...['containerd', 'ctr', 'containerd-shim-runc-v2', 'script'].filter((c) => !which(c)),
  ...(CRICTL ? [] : ['crictl']),
  ...(BUSYBOX ? [] : ['busybox-static']),
  ...(fs.existsSync(RUNTIME) ? [] : [`${RUNTIME} (cargo build --release -p lonely-runtime)`]),
]
const ctest = missing.length ? test.skip : test.serial
if (missing.length) test(`crictl: skipped, ${missing.join(', ')} not installed (apt-get install containerd busybox-static; go install sigs.k8s.io/cri-tools/cmd/crictl@v1.34.0)`, (t) => t.pass())

const IMAGE = 'docker.io/lonely/busybox:test'
// The sandbox's PID 1: exits on TERM, reaps what a shared PID namespace leaves it (ash's wait).
const PAUSE = 'docker.io/lonely/pause:test'
const PAUSE_CMD = ['sh', '-c', 'trap "exit 0" TERM INT; while :; do sleep 2147483647 & wait; done']
const HIERARCHIES = fs.existsSync('/sys/fs/cgroup') ? fs.readdirSync('/sys/fs/cgroup').map((h) => path.join('/sys/fs/cgroup', h)) : []

let dir = ''
let daemon: ChildProcess | undefined
let mountsBefore = ''
let runDirBefore = true
let release = () => {}
/** The hierarchies that had a k8s.io directory before: the CRI plugin's cgroup parent. */
let k8sBefore = new Set<string>()
/** Every pod and container id the suite made: their cgroups and processes are ours to end. */
const ids = new Set<string>()

type Run = { status: number | null; stdout: string; stderr: string }
// SIGKILL on timeout: a hung exec must not hold the suite.
function crictl(args: string[], timeout = 60_000): Run {
  const r = spawnSync(CRICTL!, ['--config', path.join(dir, 'crictl.yaml'), ...args], { encoding: 'utf8', timeout, killSignal: 'SIGKILL' })
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' }
}
/** `exec -s`: crictl prints the process's stdout, then a newline of its own (and one for stderr). */
function execSync(id: string, command: string[], timeout = 20_000): Run & { out: string } {
  const r = crictl(['exec', '-s', '--timeout', String(timeout / 2000), id, ...command], timeout)
  return { ...r, out: r.stdout.replace(/\n+$/, '') }
}
/** Stops and removes a pod whatever a test did (a failed assertion ends the test). */
function removePod(id: string): void {
  crictl(['stopp', id], 40_000)
  crictl(['rmp', '-f', id], 40_000)
}
const ctr = (args: string[]) => spawnSync('ctr', ['-a', path.join(dir, 'c.sock'), '-n', 'k8s.io', ...args], { encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' })
/** What containerd and the runtime said, for an assertion's message. */
function diag(): string {
  const log = fs.existsSync(path.join(dir, 'containerd.log')) ? fs.readFileSync(path.join(dir, 'containerd.log'), 'utf8') : ''
  const errors = log.split('\n').filter((l) => /level=(error|warning)/.test(l) && !/devmapper|cni/.test(l)).slice(-6)
  const runtimeLogs = fs.existsSync(path.join(dir, 'state'))
    ? spawnSync('sh', ['-c', `cat ${dir}/state/io.containerd.runtime.v2.task/k8s.io/*/log.json 2>/dev/null | tail -5`], { encoding: 'utf8' }).stdout
    : ''
  return `containerd: ${errors.join('\n').slice(-3000)}\nruntime: ${runtimeLogs}`
}
const inspect = (id: string) => JSON.parse(crictl(['inspect', '-o', 'json', id]).stdout || '{}')
const inspectp = (id: string) => JSON.parse(crictl(['inspectp', '-o', 'json', id]).stdout || '{}')
const cmdline = (pid: number) => {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean)
  } catch {
    return null
  }
}
/** Host processes in a cgroup of one of our ids (any v1 or v2 line of /proc/PID/cgroup). */
function ourProcesses(): Array<{ pid: number; cmd: string[] }> {
  const found = []
  for (const p of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cg = fs.readFileSync(`/proc/${p}/cgroup`, 'utf8')
      if ([...ids].some((id) => cg.includes(`/k8s.io/${id}`))) found.push({ pid: Number(p), cmd: cmdline(Number(p)) ?? [] })
    } catch {
      // gone meanwhile
    }
  }
  return found
}
/** Our containerd's shims (their command line names our socket). */
const ourShims = () => fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).filter((p) => {
  const cmd = cmdline(p)
  return cmd?.[0]?.endsWith('containerd-shim-runc-v2') && cmd.includes(path.join(dir, 'c.sock'))
})
/** The cgroup directories of one of our ids, in every hierarchy. */
const cgroupsOf = (id: string) => HIERARCHIES.map((h) => path.join(h, 'k8s.io', id)).filter((d) => fs.existsSync(d))
const mountsUnder = (prefix: string) => fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((at): at is string => !!at && at.startsWith(prefix))


/** A pod's config: host network (no CNI); its PID namespace its own (CONTAINER) or the CRI default (POD, shared). */
function podConfig(name: string, pid: 'own' | 'shared'): string {
  const file = path.join(dir, `${name}.pod.json`)
  const namespaceOptions = pid === 'own' ? { network: 2, pid: 1 } : { network: 2 }
  fs.writeFileSync(file, JSON.stringify({
    metadata: { name, namespace: 'default', uid: `${name}-uid`, attempt: 1 },
    log_directory: path.join(dir, 'logs', name),
    linux: { security_context: { namespace_options: namespaceOptions } },
  }))
  return file
}
function containerConfig(name: string, command: string[], pid: 'own' | 'shared'): string {
  const file = path.join(dir, `${name}.ctr.json`)
  const namespaceOptions = pid === 'own' ? { network: 2, pid: 1 } : { network: 2 }
  fs.writeFileSync(file, JSON.stringify({
    metadata: { name },
    image: { image: IMAGE },
    command,
    log_path: `${name}.log`,
    linux: { security_context: { namespace_options: namespaceOptions } },
  }))
  return file
}

test.before(async () => {
  if (missing.length) return
  // containerd.spec.ts and crictl.spec.ts both start containerds that share /run/containerd.
  release = await exclusive('containerd')
  mountsBefore = ourMounts()
  runDirBefore = fs.existsSync('/run/containerd')
  k8sBefore = new Set(HIERARCHIES.filter((h) => fs.existsSync(path.join(h, 'k8s.io'))))
  // Short: a unix socket path has at most 107 bytes. Not /tmp/lonely-* (see containerd.spec.ts).
  dir = fs.mkdtempSync('/tmp/crictl-')
  for (const d of ['cni/bin', 'cni/conf', 'logs']) fs.mkdirSync(path.join(dir, d), { recursive: true })
  const cri = 'plugins."io.containerd.grpc.v1.cri"'
  fs.writeFileSync(path.join(dir, 'config.toml'), [
    'version = 2',
    `root = "${dir}/root"`,
    `state = "${dir}/state"`,
    '[grpc]',
    `  address = "${dir}/c.sock"`,
    '[plugins."io.containerd.internal.v1.opt"]',
    `  path = "${dir}/opt"`,
    `[${cri}]`,
    `  sandbox_image = "${PAUSE}"`,
    // The sandbox asks for oom_score_adj -998; root without CAP_SYS_RESOURCE cannot lower it.
    '  restrict_oom_score_adj = true',
    '  stream_server_address = "127.0.0.1"',
    '  stream_server_port = "0"',
    '  disable_apparmor = true',
    `[${cri}.cni]`,
    `  bin_dir = "${dir}/cni/bin"`,
    `  conf_dir = "${dir}/cni/conf"`,
    `[${cri}.containerd]`,
    '  default_runtime_name = "runc"',
    `[${cri}.containerd.runtimes.runc]`,
    '  runtime_type = "io.containerd.runc.v2"',
    `[${cri}.containerd.runtimes.lonely]`,
    '  runtime_type = "io.containerd.runc.v2"',
    `[${cri}.containerd.runtimes.lonely.options]`,
    `  BinaryName = "${RUNTIME}"`,
    // The runtime's --root: ours, not /run/containerd/runc.
    `  Root = "${dir}/runc"`,
    '',
  ].join('\n'))
  fs.writeFileSync(path.join(dir, 'crictl.yaml'), `runtime-endpoint: unix://${dir}/c.sock\nimage-endpoint: unix://${dir}/c.sock\ntimeout: 30\n`)
  daemon = spawn('containerd', ['--log-level', 'debug', '--config', path.join(dir, 'config.toml')], { stdio: ['ignore', 'ignore', fs.openSync(path.join(dir, 'containerd.log'), 'a')] })
  if (!(await eventually(() => crictl(['version'], 5000).status === 0, 30_000))) throw new Error(`containerd did not start: ${fs.readFileSync(path.join(dir, 'containerd.log'), 'utf8').slice(-2000)}`)
  // One archive, the busybox root as the layer of both images.
  const root = makeBusyboxRoot()
  const imported = ctr(['image', 'import', dockerArchive(root, dir, [{ tag: IMAGE, cmd: ['sh'] }, { tag: PAUSE, cmd: PAUSE_CMD }])])
  removeRoot(root)
  if (imported.status !== 0) throw new Error(`ctr image import: ${imported.stderr}`)
})

test.after.always(async () => {
  if (!dir) return
  // Through the CRI first (the runtime's delete removes each container's cgroup)...
  if (daemon?.exitCode === null) {
    for (const id of crictl(['ps', '-aq'], 20_000).stdout.split('\n').filter(Boolean)) crictl(['rm', '-f', id], 20_000)
    for (const id of crictl(['pods', '-q'], 20_000).stdout.split('\n').filter(Boolean)) {
      crictl(['stopp', id], 20_000)
      crictl(['rmp', '-f', id], 20_000)
    }
  }
  // A shim killed below leaves its socket in /run/containerd/s: its bundle names it.
  const tasks = path.join(dir, 'state', 'io.containerd.runtime.v2.task', 'k8s.io')
  const sockets = (fs.existsSync(tasks) ? fs.readdirSync(tasks) : []).flatMap((id) => {
    try {
      return [fs.readFileSync(path.join(tasks, id, 'address'), 'utf8').trim().replace(/^unix:\/\//, '')]
    } catch {
      return []
    }
  })
  // ...then by pid whatever is left: a container's processes, the shims, containerd.
  for (const { pid } of ourProcesses()) spawnSync('kill', ['-KILL', String(pid)])
  for (const pid of ourShims()) spawnSync('kill', ['-KILL', String(pid)])
  if (daemon?.pid) {
    daemon.kill('SIGTERM')
    await eventually(() => daemon!.exitCode !== null || daemon!.signalCode !== null, 20_000)
    if (daemon.exitCode === null && daemon.signalCode === null) daemon.kill('SIGKILL')
  }
  await eventually(() => ourProcesses().length === 0 && ourShims().length === 0, 10_000)
  // Snapshots, the sandbox's /dev/shm: all under our directory.
  for (const at of mountsUnder(dir).reverse()) spawnSync('umount', ['-l', at])
  for (const id of ids) {
    for (const d of cgroupsOf(id)) {
      try {
        fs.rmdirSync(d)
      } catch {
        // still busy: reported by the last test
      }
    }
  }
  for (const h of HIERARCHIES.filter((h) => !k8sBefore.has(h))) {
    try {
      fs.rmdirSync(path.join(h, 'k8s.io'))
    } catch {
      // not ours, or not empty
    }
  }
  fs.rmSync(dir, { recursive: true, force: true })
  for (const socket of sockets.filter((s) => s.startsWith('/run/containerd/s/'))) fs.rmSync(socket, { force: true })
  // The shims' sockets (/run/containerd/s): the directory goes if it was not there and is empty now.
  if (!runDirBefore) {
    for (const d of ['/run/containerd/s', '/run/containerd']) {
      try {
        fs.rmdirSync(d)
      } catch {
        // another containerd's, or gone
      }
    }
  }
  release()
})

// The pod with a PID namespace of its own and its container, shared by the serial tests below.
let pod = ''
let box = ''
let pausePid = 0

ctest('runp --runtime lonely: the sandbox is ready, its PID 1 is the pause image\'s command, started by lonely-runtime', (t) => {
  const r = crictl(['runp', '--runtime', 'lonely', podConfig('lonely-pod', 'own')])
  t.is(r.status, 0, `${r.stderr}\n${diag()}`)
  pod = r.stdout.trim()
  ids.add(pod)
  const info = inspectp(pod)
  t.is(info.status?.state, 'SANDBOX_READY')
  t.is(info.info?.runtimeHandler, 'lonely')
  t.is(info.info?.runtimeOptions?.binary_name, RUNTIME)
  pausePid = info.info?.pid
  t.deepEqual(cmdline(pausePid), PAUSE_CMD)
  t.is(fs.readlinkSync(`/proc/${pausePid}/ns/net`), fs.readlinkSync('/proc/self/ns/net'), 'host network')
  t.not(fs.readlinkSync(`/proc/${pausePid}/ns/pid`), fs.readlinkSync('/proc/self/ns/pid'))
  t.true(cgroupsOf(pod).length > 0, 'the sandbox is in its cgroupsPath (/k8s.io/<id>)')
})

const COMMAND = ['sh', '-c', 'echo "started as $$"; trap "echo got-term; exit 0" TERM; while :; do sleep 0.1; done']

ctest('create and start: CONTAINER_CREATED, then CONTAINER_RUNNING with the command as its PID 1', async (t) => {
  const created = crictl(['create', pod, containerConfig('box', COMMAND, 'own'), path.join(dir, 'lonely-pod.pod.json')])
  t.is(created.status, 0, `${created.stderr}\n${diag()}`)
  box = created.stdout.trim()
  ids.add(box)
  t.is(inspect(box).status?.state, 'CONTAINER_CREATED')
  const started = crictl(['start', box])
  t.is(started.status, 0, `${started.stderr}\n${diag()}`)
  const info = inspect(box)
  t.is(info.status?.state, 'CONTAINER_RUNNING')
  t.is(info.info?.runtimeOptions?.binary_name, RUNTIME)
  t.deepEqual(cmdline(info.info?.pid), COMMAND, 'the host pid containerd knows runs the command')
  t.true(await eventually(() => /started as 1\n/.test(crictl(['logs', box]).stdout), 10_000), 'PID 1 in its own PID namespace: its log says so')
  t.true(fs.existsSync(path.join(dir, 'runc', 'k8s.io', box, 'state.json')), 'the runtime\'s state is under the handler\'s Root')
  t.true(cgroupsOf(box).length > 0, 'the container is in its cgroupsPath')
})

ctest('exec -s: output, stderr and exit code of a process in the container; it sees the command as PID 1; quick commands never hang', (t) => {
  const hi = execSync(box, ['echo', 'hi'])
  t.is(hi.status, 0, `${hi.stderr}\n${diag()}`)
  t.is(hi.out, 'hi')
  const pid1 = execSync(box, ['sh', '-c', 'tr "\\0" " " < /proc/1/cmdline'])
  t.is(pid1.out, `${COMMAND.join(' ')} `)
  // A failure: crictl exits 1 and names the code and the process's stderr.
  const failed = execSync(box, ['sh', '-c', 'echo err >&2; exit 3'])
  t.is(failed.status, 1)
  t.regex(failed.stderr, /exited with 3: err/)
  // A command that ends before lonely-runtime `exec --detach` returns: its exit is the shim's
  // to reap; reaped by the runtime instead, ExecSync waits for ever.
  const lost: number[] = []
  for (let i = 0; i < 20; i++) {
    if (execSync(box, ['true']).status !== 0) lost.push(i)
  }
  t.deepEqual(lost, [], `exec -s true: these runs never returned\n${diag()}`)
})

ctest('exec (streamed, no terminal): output and exit code through containerd\'s stream server', (t) => {
  const r = crictl(['exec', box, 'sh', '-c', 'echo streamed; exit 4'], 20_000)
  t.is(r.stdout, 'streamed\n', `${r.stderr}\n${diag()}`)
  t.not(r.status, 0)
  t.regex(r.stderr, /exit code 4/)
})

ctest('exec -it: an interactive shell on the terminal the runtime sends over the console socket', async (t) => {
  const term = spawn('script', ['-qec', `${CRICTL} --config ${dir}/crictl.yaml exec -it ${box} sh`, '/dev/null']) as ChildProcessWithoutNullStreams
  let out = ''
  term.stdout.setEncoding('utf8').on('data', (d: string) => (out += d))
  const guard = setTimeout(() => term.kill('SIGKILL'), 30_000)
  const exited = new Promise<number | null>((resolve) => term.on('close', (code) => resolve(code)))
  t.true(await eventually(() => out.includes('/ # '), 15_000), `no prompt: ${JSON.stringify(out)}\n${diag()}`)
  term.stdin.write('tty; echo "in-$$-$(cat /proc/1/comm)"; exit 3\n')
  const code = await exited
  clearTimeout(guard)
  t.regex(out, /\/dev\/pts\/\d+\r?\n/)
  t.regex(out, /in-\d+-sh\r?\n/)
  t.regex(out, /exit code 3/)
  t.not(code, 0)
})

ctest('stats: CPU and memory of the container\'s cgroup', (t) => {
  const r = crictl(['stats', '-o', 'json', box])
  t.is(r.status, 0, r.stderr)
  const stats = JSON.parse(r.stdout).stats as Array<Record<string, any>>
  t.is(stats.length, 1)
  t.is(stats[0]!.attributes.id, box)
  t.true(Number(stats[0]!.cpu?.usageCoreNanoSeconds?.value) > 0, JSON.stringify(stats[0]))
  t.true(Number(stats[0]!.memory?.workingSetBytes?.value) > 0, JSON.stringify(stats[0]))
})

ctest('stop: SIGTERM reaches the trap, CONTAINER_EXITED with its exit code, the log has both lines; the sandbox runs on', (t) => {
  const r = crictl(['stop', '-t', '10', box])
  t.is(r.status, 0, `${r.stderr}\n${diag()}`)
  const info = inspect(box)
  t.is(info.status?.state, 'CONTAINER_EXITED')
  t.is(info.status?.exitCode, 0)
  t.regex(crictl(['logs', box]).stdout, /^started as 1\ngot-term\n$/)
  t.is(inspectp(pod).status?.state, 'SANDBOX_READY')
  t.deepEqual(cmdline(pausePid), PAUSE_CMD)
})

ctest('rm: the container, its runtime state and its cgroups are gone', (t) => {
  const r = crictl(['rm', box])
  t.is(r.status, 0, `${r.stderr}\n${diag()}`)
  t.false(crictl(['ps', '-aq']).stdout.includes(box))
  t.false(fs.existsSync(path.join(dir, 'runc', 'k8s.io', box)))
  t.deepEqual(cgroupsOf(box), [])
})

ctest('a pod sharing its PID namespace (the CRI default): the container sees the sandbox, stop ends what it left running, nothing else', async (t) => {
  const config = podConfig('shared-pod', 'shared')
  const p = crictl(['runp', '--runtime', 'lonely', config])
  t.is(p.status, 0, `${p.stderr}\n${diag()}`)
  const shared = p.stdout.trim()
  ids.add(shared)
  t.teardown(() => removePod(shared))
  const sharedPause = inspectp(shared).info?.pid
  const c = crictl(['create', shared, containerConfig('bg', ['sh', '-c', 'sleep 1000 & trap "exit 0" TERM; while :; do sleep 0.1; done'], 'shared'), config])
  t.is(c.status, 0, `${c.stderr}\n${diag()}`)
  const bg = c.stdout.trim()
  ids.add(bg)
  t.is(crictl(['start', bg]).status, 0)
  const ps = execSync(bg, ['sh', '-c', 'tr "\\0" " " < /proc/1/cmdline'])
  t.is(ps.out, `${PAUSE_CMD.join(' ')} `, 'PID 1 is the sandbox\'s')
  t.true(await eventually(() => ourProcesses().some((p) => p.cmd.join(' ') === 'sleep 1000'), 5000))
  // The shim's `kill --all` after PID 1's exit must end `sleep 1000` (runc: by the cgroup);
  // left running, it holds the container's stdout and the shim's delete never returns.
  const stopped = crictl(['stop', '-t', '10', bg], 40_000)
  t.is(stopped.status, 0, `${stopped.stderr}\n${diag()}`)
  t.is(inspect(bg).status?.state, 'CONTAINER_EXITED')
  t.true(await eventually(() => !ourProcesses().some((p) => p.cmd.join(' ') === 'sleep 1000'), 5000), `left running: ${JSON.stringify(ourProcesses())}`)
  t.deepEqual(cmdline(sharedPause), PAUSE_CMD, 'the sandbox\'s PID 1 lives on')
  t.is(crictl(['rm', bg]).status, 0)
  t.deepEqual(cgroupsOf(bg), [])
  t.is(crictl(['stopp', shared]).status, 0)
  t.is(crictl(['rmp', shared]).status, 0)
  t.deepEqual(cgroupsOf(shared), [])
})

ctest('stopp and rmp: the sandbox goes NOTREADY, its PID 1 ends, then the pod is gone', async (t) => {
  const stopped = crictl(['stopp', pod])
  t.is(stopped.status, 0, `${stopped.stderr}\n${diag()}`)
  t.is(inspectp(pod).status?.state, 'SANDBOX_NOTREADY')
  t.true(await eventually(() => cmdline(pausePid)?.join(' ') !== PAUSE_CMD.join(' '), 5000), 'the pause process ended')
  const removed = crictl(['rmp', pod])
  t.is(removed.status, 0, `${removed.stderr}\n${diag()}`)
  t.false(crictl(['pods', '-q']).stdout.includes(pod))
  t.deepEqual(cgroupsOf(pod), [])
})

ctest('nothing of the pods is left: no process, no cgroup, no mount, no runtime state, no shim', async (t) => {
  t.true(await eventually(() => ourShims().length === 0, 10_000), `shims still run: ${ourShims().join(' ')}`)
  t.deepEqual(ourProcesses(), [])
  t.deepEqual([...ids].flatMap(cgroupsOf), [])
  t.deepEqual(mountsUnder(dir), [], 'a snapshot or /dev/shm is still mounted')
  t.deepEqual(ourMounts(), mountsBefore)
  t.deepEqual(fs.existsSync(path.join(dir, 'runc', 'k8s.io')) ? fs.readdirSync(path.join(dir, 'runc', 'k8s.io')) : [], [])
})
