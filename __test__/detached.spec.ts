// Detached containers (create(..., { detached: true })): they outlive the Node process that
// made them, and any later process finds, enters, stops and removes them through their state
// directory. Every test uses a state directory of its own and leaves nothing behind.
import test from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { execFileSync } from 'node:child_process'

import { containers, create } from '../index'
import { eventually, makeBusyboxRoot, removeRoot, ownedChild, removeDetached } from './helpers'

let root = ''
let stateDir = ''

test.before(() => {
  root = makeBusyboxRoot()
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-state-'))
})

// A test that failed half-way must not leave its containers to the next (names are unique).
test.afterEach.always(() => removeDetached(stateDir, { keepDir: true }))

test.after.always(async () => {
  await removeDetached(stateDir)
  if (root) removeRoot(root)
})

/** A Node process that creates a container with `options`, prints its id and pid, and exits. */
function createInAnotherProcess(command: string[], options: Record<string, unknown>): { id: string; pid: number } {
  const script = `require(${JSON.stringify(path.join(__dirname, '..', 'index.ts'))}).create(${JSON.stringify(command)}, ${JSON.stringify(options)}).then((c) => console.log(JSON.stringify({ id: c.id, pid: c.pid })))`
  return JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', '-e', script], { encoding: 'utf8', timeout: 60_000 }).trim())
}

const parentOf = (pid: number) => Number(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1])

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return !/^\S+ \S+ Z/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/\(.*\)/, 'x'))
  } catch {
    return false
  }
}

test.serial('a detached container outlives its creator; another process finds it by name, execs into it, reads and writes its files, stops it, reads its log and status, and removes it; control: an attached one dies with its creator', async (t) => {
  const loop = ['sh', '-c', 'echo started; trap "echo bye; exit 4" TERM; while :; do sleep 0.05; done']
  const made = createInAnotherProcess(loop, { rootfs: root, detached: true, name: 'web', stateDir })
  t.true(alive(made.pid), 'its creator has exited, it runs')
  // Control: a creator with an attached container stays alive for it; killed, it takes the container along.
  const script = `require(${JSON.stringify(path.join(__dirname, '..', 'index.ts'))}).create(['sleep', '3600'], { rootfs: ${JSON.stringify(root)} }).then((c) => console.log(c.pid))`
  const creator = ownedChild(t, process.execPath, ['--import', 'tsx', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  const attached = Number(await new Promise<string>((resolve) => creator.stdout!.once('data', (d) => resolve(String(d)))))
  t.true(alive(attached))
  creator.kill('SIGKILL')
  for (let i = 0; i < 100 && alive(attached); i++) await new Promise((r) => setTimeout(r, 20))
  t.false(alive(attached), 'control: an attached container ended with its creator')

  t.like(containers.list({ stateDir }), [{ id: made.id, name: 'web', pid: made.pid, running: true }])
  const c = containers.get('web', { stateDir })
  t.is(c.id, made.id)
  t.is(containers.get(made.id.slice(0, 6), { stateDir }).id, made.id, 'an id prefix finds it too')
  const inside = await c.run(['sh', '-c', 'readlink /proc/self/ns/pid; tr "\\0" " " < /proc/1/cmdline'])
  const [ns, cmdline] = inside.stdout.split('\n')
  t.is(ns, fs.readlinkSync(`/proc/${made.pid}/ns/pid`), 'the exec is in PID 1\'s PID namespace')
  t.is(cmdline, 'sh -c echo started; trap "echo bye; exit 4" TERM; while :; do sleep 0.05; done ', 'PID 1 is the command itself (no init unless asked)')
  // Its parent is lonely-monitor: a sealed memfd (no host binary), a few pages, its own fds only.
  const monitor = parentOf(made.pid)
  t.regex(fs.readFileSync(`/proc/${monitor}/cmdline`, 'utf8'), new RegExp(`^lonely-monitor\0${made.pid}\0pipes\0running\0$`))
  t.regex(fs.readlinkSync(`/proc/${monitor}/exe`), /^\/memfd:lonely-monitor/)
  const rss = Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${monitor}/status`, 'utf8'))![1])
  t.true(rss < 2048, `monitor RSS ${rss} kB`)
  const fds = fs.readdirSync(`/proc/${monitor}/fd`).map(Number).sort((a, b) => a - b)
  t.deepEqual(fds, [0, 1, 2, 3, 4, 5, 6, 8, 9], 'null x3, status, log, attach socket, pidfd, stdout, stderr: nothing of its creator')
  t.is(fs.readlinkSync(`/proc/${monitor}/fd/0`), '/dev/null')
  await c.writeFile('/tmp/note', 'from the host')
  t.is(await c.readFile('/tmp/note'), 'from the host')
  const exit = await c.stop({ timeout: 5000 })
  t.is(exit.exitCode, 4, 'lonely-init recorded the command\'s status (its trap ran)')
  t.is(c.logs(), 'started\nbye\n')
  t.like(containers.list({ stateDir }), [{ id: made.id, running: false, exitCode: 4 }])
  await c.remove()
  t.deepEqual(containers.list({ stateDir }), [])
  t.deepEqual(fs.readdirSync(stateDir), [], 'its state directory is gone')
})

test.serial('detached with limits: an exec from another process joins its cgroup and counts against its limit; remove takes the cgroup along once its creator is gone', async (t) => {
  const made = createInAnotherProcess(['sleep', '3600'], { rootfs: root, detached: true, name: 'limited', stateDir, limits: { pids: 20 } })
  const c = containers.get('limited', { stateDir })
  const cgroupOf = (pid: number) => fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8')
  // Another process's first limited container sweeps the cgroups of dead lonely processes: a
  // detached container's, whose creator has exited, is not one of them.
  const sweeper = `require(${JSON.stringify(path.join(__dirname, '..', 'index.ts'))}).run(['true'], { rootfs: ${JSON.stringify(root)}, limits: { pids: 10 } }).then((r) => console.log(r.exitCode))`
  t.is(execFileSync(process.execPath, ['--import', 'tsx', '-e', sweeper], { encoding: 'utf8', timeout: 60_000 }).trim(), '0')
  t.true(alive(made.pid), 'the sweep of another process killed the detached container')
  t.like(c.stats(), { pids: 1 }, 'stats() from another process: its recorded cgroup (PID 1 alone)')
  const exec = c.exec(['sleep', '5'])
  try {
    t.is(cgroupOf(exec.pid), cgroupOf(made.pid), 'the same cgroups as PID 1')
    t.like(c.stats(), { pids: 2 }, 'the exec counts')
    t.true((c.stats()?.memoryBytes ?? 0) > 0, 'memory accounted')
  } finally {
    exec.kill('SIGKILL')
    await exec
  }
  const forks = await c.run(['sh', '-c', 'i=0; while [ $i -lt 30 ]; do sleep 5 & i=$((i+1)); done; echo done'], { reject: false, timeout: 20_000 })
  t.regex(forks.stderr, /can't fork/, 'the limit holds for an exec of another process')
  const recorded = (JSON.parse(fs.readFileSync(path.join(stateDir, made.id, 'state.json'), 'utf8')) as { cgroups: string[] }).cgroups
  t.true(recorded.length > 0 && recorded.every((d) => fs.existsSync(path.join(d, 'cgroup.procs'))), `its cgroup directories are recorded: ${recorded}`)
  await c.remove({ force: true })
  t.deepEqual(recorded.filter((d) => fs.existsSync(d)), [], 'its creator is gone: remove() took the cgroups along')
  t.deepEqual(containers.list({ stateDir }), [])
})

test.serial('detached: options that cannot go with it are refused naming them; names are unique; an unknown id is a RangeError', async (t) => {
  for (const key of ['input', 'stdio', 'timeout'] as const) {
    const value = { input: 'x', stdio: 'pipe', timeout: 10 }[key]
    await t.throwsAsync(create(['true'], { rootfs: root, detached: true, stateDir, [key]: value } as never), { instanceOf: RangeError, message: new RegExp(`Option \`${key}\` does not go with \`detached\``) })
  }
  await t.throwsAsync(create(['true'], { rootfs: root, name: 'x' } as never), { message: /Option `name` goes with `detached: true`/ })
  await t.throwsAsync(create(['true'], { rootfs: root, detached: true, stateDir, stdin: 'inherit' }), { instanceOf: RangeError, message: /Option `stdin` of a detached container is 'ignore' \(default\) or 'pipe'.*got "inherit"/ })
  const c = await create(undefined, { rootfs: root, detached: true, name: 'twice', stateDir })
  try {
    await t.throwsAsync(create(undefined, { rootfs: root, detached: true, name: 'twice', stateDir }), { instanceOf: RangeError, message: /a container named 'twice' already exists/ })
    t.throws(() => containers.get('nothing-of-that-name', { stateDir }), { instanceOf: RangeError, message: /no detached container is "nothing-of-that-name"/ })
  } finally {
    await c.remove({ force: true })
  }
  t.deepEqual(fs.readdirSync(stateDir), [])
})

test.serial('attach from another process: it types into a detached container\'s stdin, reads stdout and stderr live and apart, and gets the exit; the log has it all', async (t) => {
  const made = createInAnotherProcess(['sh', '-c', 'while read line; do echo "got $line"; echo "err $line" >&2; done; echo done; exit 3'], { rootfs: root, detached: true, stateDir, stdin: 'pipe' })
  const c = containers.get(made.id, { stateDir })
  const a = await c.attach()
  let out = ''
  let err = ''
  a.stdout.on('data', (d) => (out += d))
  a.stderr.on('data', (d) => (err += d))
  a.stdin.write('one\n')
  for (let i = 0; i < 250 && !out.includes('got one'); i++) await new Promise((r) => setTimeout(r, 20))
  t.is(out, 'got one\n', 'live: before stdin ends')
  const second = await c.attach() // a second client sees the same output from now on
  let seen = ''
  second.stdout.on('data', (d) => (seen += d))
  a.stdin.end('two\n') // ending stdin closes the container's: `read` sees EOF
  t.deepEqual(await a.exited, { exitCode: 3 })
  t.deepEqual(await second.exited, { exitCode: 3 })
  t.is(out, 'got one\ngot two\ndone\n')
  t.is(err, 'err one\nerr two\n')
  t.is(seen, 'got two\ndone\n')
  // The log has both streams; two pipes have no order between them (as docker's), each stream's own order holds.
  const log = c.logs().split('\n').filter(Boolean)
  t.deepEqual(log.filter((l) => !l.startsWith('err ')), ['got one', 'got two', 'done'])
  t.deepEqual(log.filter((l) => l.startsWith('err ')), ['err one', 'err two'])
  t.like(await c.wait(), { exitCode: 3 })
  await c.remove()
})

test.serial('attach with a terminal (tty: true): a shell on the container\'s pty, the size resize() sets, its exit status', async (t) => {
  const made = createInAnotherProcess(['sh'], { rootfs: root, detached: true, stateDir, tty: true })
  t.regex(fs.readFileSync(`/proc/${parentOf(made.pid)}/cmdline`, 'utf8'), /\0tty\0running\0$/)
  const c = containers.get(made.id, { stateDir })
  const a = await c.attach()
  let out = ''
  a.stdout.on('data', (d) => (out += d))
  a.resize(101, 33)
  a.stdin.write('stty size; tty; exit 5\n')
  t.deepEqual(await a.exited, { exitCode: 5 })
  t.regex(out, /\r\n33 101\r\n\/dev\/pts\/\d+\r\n/)
  await c.remove()
})

test.serial('the monitor records what lonely-init could not: a SIGKILL of PID 1, seen by another process and by the creator\'s own handle', async (t) => {
  const c = await create(['sleep', '3600'], { rootfs: root, detached: true, stateDir })
  const other = containers.get(c.id, { stateDir })
  t.true(other.kill('SIGKILL'))
  t.like(await other.wait(), { signal: 'SIGKILL', exitCode: undefined })
  t.like(await c.wait(), { signal: 'SIGKILL' })
  t.like(containers.list({ stateDir }), [{ id: c.id, running: false, signal: 'SIGKILL' }])
  await c.remove()
})

test.serial('a detached container whose setup fails leaves no monitor, no state and no process', async (t) => {
  const before = fs.readdirSync(stateDir)
  const error = await t.throwsAsync(create(['/no/such/program'], { rootfs: root, detached: true, stateDir }))
  t.like(error, { stage: 'exec', code: 'ENOENT' } as never)
  t.deepEqual(fs.readdirSync(stateDir), before)
  // Ours only (other suites run meanwhile): a monitor left by this process would be its child, or its zombie.
  const monitors = fs.readdirSync('/proc').filter((p) => {
    try {
      return /^\d+$/.test(p) && parentOf(Number(p)) === process.pid && fs.readFileSync(`/proc/${p}/stat`, 'utf8').includes('(lonely-monitor)')
    } catch {
      return false
    }
  })
  t.deepEqual(monitors, [], 'a monitor is left')
  // Control: the scan sees a monitor of ours while one lives.
  const live = await create(['sleep', '3600'], { rootfs: root, detached: true, stateDir })
  t.true(fs.readdirSync('/proc').some((p) => /^\d+$/.test(p) && p === String(parentOf(live.pid)) && parentOf(Number(p)) === process.pid), 'control: a live monitor is our child')
  await live.remove({ force: true })
})

test.serial('start: false creates a container whose PID 1 waits with its setup done (exec works, its command has not run); start() from another process runs it as PID 1 itself, or under init with init: true', async (t) => {
  const c = await create(['sh', '-c', 'echo ran as $$; exit 6'], { rootfs: root, detached: true, stateDir, start: false })
  t.true(c.created)
  t.like(containers.list({ stateDir }), [{ id: c.id, status: 'created', running: true }])
  const inside = await c.run(['sh', '-c', 'hostname; tr "\\0" " " < /proc/1/cmdline'])
  t.regex(inside.stdout, /\nlonely-init --hold \d+ --exec -- sh -c /, 'an exec joins the waiting container; PID 1 waits in lonely-init')
  await new Promise((r) => setTimeout(r, 100))
  t.is(c.logs(), '', 'control: its command has not run')
  const other = containers.get(c.id, { stateDir })
  await other.start()
  t.like(await c.wait(), { exitCode: 6 })
  t.is(c.logs(), 'ran as 1\n', 'the command became PID 1 itself')
  await t.throwsAsync(other.start(), { message: /is not waiting to start/ })
  await c.remove()

  const withInit = await create(['sleep', '3600'], { rootfs: root, detached: true, stateDir, start: false, init: true })
  await withInit.start()
  t.false(withInit.created)
  t.like(containers.list({ stateDir }), [{ status: 'running' }])
  // start() returns once PID 1 was let go; its fork follows.
  const tree = () => JSON.stringify(withInit.top().map((p) => [p.containerPid, p.command[0]]))
  t.true(await eventually(() => tree() === '[[1,"lonely-init"],[2,"sleep"]]'), `init: true: lonely-init runs it as its child: ${tree()}`)
  await withInit.remove({ force: true })
})

test.serial('the monitor copies heavy output whole to the log, the last bytes before PID 1 ends included (stdout and stderr at once)', async (t) => {
  const c = await create(['sh', '-c', 'i=0; while [ $i -lt 2000 ]; do echo "line $i of stdout, padded to be long enough to matter"; echo "line $i of stderr" >&2; i=$((i+1)); done; echo last'], { rootfs: root, detached: true, stateDir })
  t.like(await c.wait(), { exitCode: 0 })
  const log = c.logs().split('\n')
  t.is(log.filter((l) => l.endsWith('of stdout, padded to be long enough to matter')).length, 2000)
  t.is(log.filter((l) => / of stderr$/.test(l)).length, 2000)
  // Two pipes: stderr's last line may come before or after stdout's; stdout's own order holds.
  t.is(log.filter((l) => !l.endsWith(' of stderr')).at(-2), 'last')
  await c.remove()
})
