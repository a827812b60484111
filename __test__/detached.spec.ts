// Detached containers (create(..., { detached: true })): they outlive the Node process that
// made them, and any later process finds, enters, stops and removes them through their state
// directory. Every test uses a state directory of its own and leaves nothing behind.
import test from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { execFileSync } from 'node:child_process'

import { containers, create } from '../index'
import { makeBusyboxRoot, removeRoot, ownedChild, removeDetached } from './helpers'

let root = ''
let stateDir = ''

test.before(() => {
  root = makeBusyboxRoot()
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-state-'))
})

test.after.always(async () => {
  await removeDetached(stateDir)
  if (root) removeRoot(root)
})

/** A Node process that creates a container with `options`, prints its id and pid, and exits. */
function createInAnotherProcess(command: string[], options: Record<string, unknown>): { id: string; pid: number } {
  const script = `require(${JSON.stringify(path.join(__dirname, '..', 'index.ts'))}).create(${JSON.stringify(command)}, ${JSON.stringify(options)}).then((c) => console.log(JSON.stringify({ id: c.id, pid: c.pid })))`
  return JSON.parse(execFileSync(process.execPath, ['--import', 'tsx', '-e', script], { encoding: 'utf8', timeout: 60_000 }).trim())
}

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
  t.regex(cmdline ?? '', /^lonely-init --status \d+ -- sh -c /)
  // lonely-init is not dumpable: its status fd is no handle for the container (control: its own fds are).
  const fdNumber = /--status (\d+)/.exec(cmdline ?? '')![1]
  const peek = await c.run(['sh', '-c', `readlink /proc/1/fd/${fdNumber} || echo refused; readlink /proc/self/fd/0 >/dev/null && echo own-ok`], { reject: false })
  t.is(peek.stdout, 'refused\nown-ok', peek.stderr)
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
  const exec = c.exec(['sleep', '5'])
  try {
    t.is(cgroupOf(exec.pid), cgroupOf(made.pid), 'the same cgroups as PID 1')
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
  for (const key of ['tty', 'stdio', 'timeout'] as const) {
    const value = { tty: true, stdio: 'pipe', timeout: 10 }[key]
    await t.throwsAsync(create(['true'], { rootfs: root, detached: true, stateDir, [key]: value } as never), { instanceOf: RangeError, message: new RegExp(`Option \`${key}\` does not go with \`detached\``) })
  }
  await t.throwsAsync(create(['true'], { rootfs: root, name: 'x' } as never), { message: /Option `name` goes with `detached: true`/ })
  const c = await create(undefined, { rootfs: root, detached: true, name: 'twice', stateDir })
  try {
    await t.throwsAsync(create(undefined, { rootfs: root, detached: true, name: 'twice', stateDir }), { instanceOf: RangeError, message: /a container named 'twice' already exists/ })
    t.throws(() => containers.get('nothing-of-that-name', { stateDir }), { instanceOf: RangeError, message: /no detached container is "nothing-of-that-name"/ })
  } finally {
    await c.remove({ force: true })
  }
  t.deepEqual(fs.readdirSync(stateDir), [])
})
