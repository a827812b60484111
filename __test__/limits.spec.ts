// Resource limits: every limit is shown to bite (with a control where it does not),
// accounting is plausible, and no cgroup is left behind on any path.
import test from 'ava'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { spawnSync } from 'node:child_process'

import { cgroupMode, run, spawn, ContainerError } from '../index'
import { snapshot, settled, type Snapshot } from './helpers'

/** Where our containers' cgroups go in every hierarchy, from /proc/self/cgroup and the mount table. */
function cgroupDirs(): string[] {
  const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => / - cgroup2? /.test(l))
  const dirs: string[] = []
  for (const line of fs.readFileSync('/proc/self/cgroup', 'utf8').trim().split('\n')) {
    const [, names, own] = line.split(':')
    for (const m of mounts) {
      const [left, right] = m.split(' - ')
      const point = left.split(' ')[4]
      const [fstype, , opts] = right.split(' ')
      const match = names === '' ? fstype === 'cgroup2' : fstype === 'cgroup' && names.split(',').some((n) => opts.split(',').includes(n))
      // On v2 the library moves us into a `lonely-supervisor` leaf and nests containers beside it.
      if (match) dirs.push(path.join(point, fstype === 'cgroup2' && path.basename(own) === 'lonely-supervisor' ? path.dirname(own) : own))
    }
  }
  return [...new Set(dirs)].filter((d) => fs.existsSync(d))
}

/** This process's container cgroups (`lonely-<pid>-<n>`): other suites' live ones are not ours. */
function ourCgroups(): string[] {
  return cgroupDirs().flatMap((d) => fs.readdirSync(d).filter((n) => n.startsWith(`lonely-${process.pid}-`)).map((n) => path.join(d, n)))
}

let before: Snapshot
test.before(async () => {
  await run(['true'], { limits: { pids: 10 } })
  before = snapshot()
})

test.afterEach.always('no cgroup, mount, fd or zombie is left', async (t) => {
  const after = await settled(before)
  t.deepEqual(ourCgroups(), [])
  t.is(after.mounts, before.mounts)
  t.true(after.fds <= before.fds, `fds ${before.fds} -> ${after.fds}`)
  t.is(after.zombies, 0)
  t.is(after.live, 0)
})

test.serial('the host cgroup layout is detected', (t) => {
  const unified = fs.existsSync('/sys/fs/cgroup/cgroup.controllers')
  const v1 = fs.readFileSync('/proc/self/mountinfo', 'utf8').includes(' - cgroup ')
  t.is(cgroupMode(), unified ? 'unified' : v1 && fs.existsSync('/sys/fs/cgroup/unified') ? 'hybrid' : 'legacy')
})

test.serial('a memory bomb is OOM-killed inside its cgroup; the same work fits under a larger limit', async (t) => {
  // GNU tail holds its last line: /dev/zero has none, so it grows until the limit.
  const pid1 = await t.throwsAsync(run(['tail', '/dev/zero'], { limits: { memory: '32m' } }), { instanceOf: ContainerError })
  t.true(pid1!.oomKilled)
  t.is(pid1!.signal, 'SIGKILL')
  t.true(pid1!.usage!.memoryPeakBytes! >= 30 * 1024 * 1024)
  // A bomb below PID 1: the run fails as OOM-killed even if the shell would exit 0.
  const bomb = ['sh', '-c', 'head -c 200000000 /dev/zero | tail >/dev/null; echo survived']
  const e = await t.throwsAsync(run(bomb, { limits: { memory: '32m' } }), { instanceOf: ContainerError })
  t.true(e!.oomKilled)
  t.true(e!.failed)
  t.regex(e!.message, /out of memory/)
  const control = await run(bomb, { limits: { memory: '512m' } })
  t.false(control.oomKilled)
  t.is(control.stdout, 'survived')
  t.is((await run(['echo', 'ok'])).stdout, 'ok', 'the library and host are fine afterwards')
})

test.serial('an OOM in a grandchild ends the whole container, not one process', async (t) => {
  const r = await run(['sh', '-c', '(head -c 200000000 /dev/zero | tail >/dev/null) ; sleep 30'], { limits: { memory: '32m' }, reject: false, timeout: 20000 })
  t.true(r.oomKilled)
  t.is(r.signal, 'SIGKILL', 'PID 1 (the shell) was killed too')
  t.false(r.timedOut)
})

test.serial('a fork bomb under pids: 32 cannot fork past the limit; 200 can', async (t) => {
  const limited = await run(['sh', '-c', 'for i in $(seq 60); do sleep 3 & done; echo forked'], { limits: { pids: 32 }, reject: false })
  t.not(limited.exitCode, 0)
  t.regex(limited.stderr, /fork|Resource temporarily unavailable/i)
  const control = await run(['sh', '-c', 'for i in $(seq 60); do sleep 0.2 & done; wait; echo forked'], { limits: { pids: 200 } })
  t.is(control.stdout, 'forked')
})

test.serial('cpus: 0.25 holds a busy loop to about a quarter of one CPU; unlimited uses a whole one', async (t) => {
  const loop = ['timeout', '2', 'sh', '-c', 'while :; do :; done']
  const cpu = (r: { usage?: { cpuUserMs: number; cpuSystemMs: number } }) => r.usage!.cpuUserMs + r.usage!.cpuSystemMs
  const limited = await run(loop, { limits: { cpus: 0.25 }, reject: false })
  t.is(limited.exitCode, 124)
  t.true(cpu(limited) > 300 && cpu(limited) < 750, `limited: ${cpu(limited)} ms of CPU in 2 s`)
  const free = await run(loop, { reject: false })
  t.true(cpu(free) > 1200, `unlimited: ${cpu(free)} ms of CPU in 2 s`)
})

test.serial('usage shows a 50 MB allocation, and stats() reads a running container', async (t) => {
  const c = spawn(['sh', '-c', 'dd if=/dev/zero of=/dev/shm/fill bs=1M count=50 2>/dev/null; sleep 0.5'], { limits: { memory: '256m', pids: 16 } })
  await new Promise((r) => setTimeout(r, 300))
  const live = c.stats()
  t.truthy(live)
  t.true(live!.pids! >= 1 && live!.pids! <= 3, `pids ${live!.pids}`)
  const r = await c
  t.true(r.usage!.memoryPeakBytes! >= 50 * 1024 * 1024, `peak ${r.usage!.memoryPeakBytes}`)
  t.is(c.stats(), null, 'no stats once it ended')
  t.is(spawn(['true']).stats(), null, 'no stats without limits')
})

test.serial('rlimits are visible inside', async (t) => {
  const r = await run(['sh', '-c', 'ulimit -n; ulimit -Hn; ulimit -c'], { rlimits: { nofile: [123, 456], core: 0 } })
  t.is(r.stdout, '123\n456\n0')
  const unlimited = await run(['sh', '-c', 'ulimit -c'], { rlimits: { core: 'unlimited' } })
  t.is(unlimited.stdout, 'unlimited')
})

test.serial('the container sees its own cgroup as the root', async (t) => {
  const r = await run(['cat', '/proc/self/cgroup'], { limits: { memory: '64m' } })
  const memory = r.stdout.split('\n').find((l) => /:memory:|^0::/.test(l))
  t.regex(memory!, /:\/$/)
})

test.serial('docker mounts the container\'s own cgroup read-only at /sys/fs/cgroup: Node\'s process.constrainedMemory() (libuv reads it there, as JVMs, .NET and Go do) is the limit; nothing there is writable; control: without it the limit is unseen', async (t) => {
  const probe = ['node', '-e', 'console.log(process.constrainedMemory())']
  const limited = await run(probe, { limits: { memory: '64m' } })
  t.is(limited.stdout, String(64 * 1024 * 1024), limited.stderr)
  const unified = cgroupMode() === 'unified'
  // v2: cgroup2 itself; v1: a tmpfs of hierarchies, each rooted at the container's cgroup.
  const files = unified ? ['memory.max', 'cpu.max', 'pids.max'] : ['memory/memory.limit_in_bytes', 'cpu/cpu.cfs_quota_us', 'pids/pids.max']
  const seen = await run(['sh', '-c', `cat ${files.map((f) => `/sys/fs/cgroup/${f}`).join(' ')}; awk '$5 ~ /^\\/sys\\/fs\\/cgroup/ { print $6 }' /proc/self/mountinfo | sort -u; mkdir /sys/fs/cgroup/${unified ? '' : 'memory/'}sub 2>&1 | grep -c Read-only`], { limits: { memory: '64m', cpus: 0.5, pids: 50 } })
  const lines = seen.stdout.trim().split('\n')
  t.deepEqual(lines.slice(0, 3), unified ? ['67108864', '50000 100000', '50'] : ['67108864', '50000', '50'], seen.stdout + seen.stderr)
  t.true(lines.slice(3, -1).every((o) => o.split(',')[0] === 'ro'), `every mount there is read-only: ${seen.stdout}`)
  t.is(lines.at(-1), '1', 'a cgroup cannot be made inside')
  // Control: in the caller's cgroup namespace it is not mounted (it would show the host's tree).
  const shared = await run(probe, { limits: { memory: '64m' }, namespaces: { cgroup: false } })
  t.not(shared.stdout, String(64 * 1024 * 1024), 'without the mount the limit is not seen')
  // No limits, no cgroup of its own: nothing to show.
  t.is((await run(['ls', '/sys/fs/cgroup'])).stdout, '')
})

test.serial('bad limit values are refused before anything runs, naming the limit', (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ memory: 'lots' }, /`limits.memory` must be a positive number of bytes.*'lots'/],
    [{ memory: '1k' }, /`limits.memory` must be at least 6 MiB.*'1k'/],
    [{ memory: '64m', memorySwap: '32m' }, /`limits.memorySwap` must be at least limits.memory/],
    [{ memorySwap: '64m' }, /`limits.memorySwap` must be given together with `limits.memory`/],
    [{ cpus: 0 }, /`limits.cpus` must be a number from 0.01/],
    [{ cpus: 1000 }, /`limits.cpus` must be a number from 0.01 to \d+/],
    [{ pids: 0 }, /`limits.pids` must be an integer from 1/],
    [{ cpuShares: 1 }, /`limits.cpuShares` must be an integer from 2 to 262144/],
    [{ cpuset: 'all' }, /`limits.cpuset` must be a list like "0-2,4"; got 'all'/],
    [{ swap: 1 }, /`limits` has an unknown key `swap`/],
  ]
  for (const [limits, message] of cases) {
    t.throws(() => spawn(['true'], { limits: limits as never }), { message }, JSON.stringify(limits))
  }
  t.throws(() => spawn(['true'], { rlimits: { files: 3 } as never }), { message: /`rlimits` has an unknown resource `files`/ })
  t.throws(() => spawn(['true'], { rlimits: { nofile: [10, 5] } }), { message: /`rlimits.nofile` must be a soft limit no higher than the hard limit/ })
  t.is(snapshot().live, 0)
})

test.serial('a limit this host cannot enforce is a ContainerError naming it (stage cgroup), run() with reject: false resolves with it, and nothing is left', async (t) => {
  // CPU 63 passes validation (a well-formed list) but this host has fewer CPUs: the kernel refuses it.
  const cpus = require('node:os').availableParallelism()
  t.true(cpus < 64)
  const message = /^limits.cpuset: the kernel refused "63" for `[^`]+cpuset.cpus`/
  t.throws(() => spawn(['true'], { limits: { cpuset: '63' } }), { instanceOf: ContainerError, message })
  const r = await run(['true'], { limits: { cpuset: '63' }, reject: false })
  t.true(r instanceof ContainerError)
  t.like(r, { failed: true, stage: 'cgroup' } as never)
  t.regex((r as ContainerError).code ?? '', /^E(INVAL|RANGE)$/, 'the kernel\'s errno')
  t.is(snapshot().live, 0)
  const control = spawn(['true'], { limits: { cpuset: '0' } })
  t.true(control.pid > 0)
  return control.wait().then(() => undefined)
})

test.serial('no cgroup is left after 200 limited containers, timeouts and setup failures', async (t) => {
  for (let i = 0; i < 200; i++) await run(['true'], { limits: { memory: '64m', pids: 8 } })
  for (let i = 0; i < 5; i++) {
    const r = await run(['sleep', '5'], { limits: { pids: 8 }, timeout: 50, forceKillAfterDelay: 50, reject: false })
    t.true(r.timedOut)
  }
  for (let i = 0; i < 5; i++) {
    await t.throwsAsync(run(['/nonexistent'], { limits: { pids: 8 } }), { message: /ENOENT/ })
  }
  t.deepEqual(ourCgroups(), [])
})

test.serial('a cgroup left by a crashed process is swept by the next one', (t) => {
  const memory = cgroupDirs().find((d) => fs.existsSync(path.join(d, 'memory.limit_in_bytes')) || fs.existsSync(path.join(d, 'memory.max')))
  if (!memory) {
    t.pass('no memory hierarchy here')
    return
  }
  const stale = path.join(memory, 'lonely-999999999-7')
  fs.mkdirSync(stale)
  const child = spawnSync(process.execPath, ['--import', 'tsx', '-e', "require('./index.ts').run(['true'], { limits: { pids: 4 } }).then(() => console.log('ran'))"], { cwd: path.join(__dirname, '..'), encoding: 'utf8' })
  t.is(child.stdout.trim(), 'ran', child.stderr)
  t.false(fs.existsSync(stale))
})
