// Rootless mode: a non-root host user (uid 65534 through setpriv) makes containers through a
// user namespace. Each check runs the library in a Node process of that user; attacks run only
// inside containers, each with a control.
import test from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { execFileSync, spawn as spawnHost, spawnSync } from 'node:child_process'

import { run, spawn as spawnLib } from '../index'
import { makeBusyboxRoot, removeDetached, removeRoot } from './helpers'
import { exchangeLoop, pathLookupWins, RACE_STARTS, RACES, type RaceSetup } from './races'

const REPO = path.join(__dirname, '..')
const NOBODY = 65534
const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => fs.existsSync(p))
let root: string
let shared: string

interface Outcome {
  exitCode?: number
  stdout?: string
  stderr?: string
  error?: string
  name?: string
}

/** Runs `run(command, options)` in a Node process of uid 65534 and returns what it got. */
function asNobody(command: string[], options: Record<string, unknown> = {}): Outcome {
  const script = `
    const { run } = require('./index.ts')
    run(${JSON.stringify(command)}, { reject: false, ...${JSON.stringify(options)} })
      // reject: false resolves with a ContainerError too (a setup failure): its message is the error.
      .then((r) => console.log(JSON.stringify({ exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, ...(r instanceof Error ? { error: r.message, name: r.name } : {}) })))
      .catch((e) => console.log(JSON.stringify({ error: e.message, name: e.name })))`
  const r = spawnSync(setpriv!, [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, '--import', 'tsx', '-e', script], {
    cwd: REPO,
    encoding: 'utf8',
    env: { ...process.env, HOME: os.tmpdir() },
  })
  const line = r.stdout.trim().split('\n').pop() ?? ''
  try {
    return JSON.parse(line) as Outcome
  } catch {
    throw new Error(`the uid ${NOBODY} process failed: ${r.stderr || r.stdout}`)
  }
}

const skip = !setpriv || process.geteuid?.() !== 0 || !fs.existsSync('/proc/self/ns/user')
const maybe = skip ? test.skip : test.serial

test.before(() => {
  if (skip) return
  root = makeBusyboxRoot()
  // The escape suite's attack program (it prints OK or the errno's name).
  execFileSync('gcc', ['-static', '-O0', '-o', path.join(root, 'attack'), path.join(__dirname, 'fixtures/attack.c')])
  shared = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-rootless-'))
  fs.chownSync(shared, NOBODY, NOBODY)
})

test.after.always(() => {
  if (root) removeRoot(root)
  if (shared) fs.rmSync(shared, { recursive: true, force: true })
})

maybe('a non-root user gets a container: root inside, mapped to the caller outside', (t) => {
  const r = asNobody(['sh', '-c', 'id -u; echo $$; hostname; cat /proc/self/uid_map'], { hostname: 'rootless' })
  const [uid, pid, host, map] = r.stdout!.split('\n')
  t.is(uid, '0')
  t.is(pid, '1')
  t.is(host, 'rootless')
  t.deepEqual(map.trim().split(/\s+/), ['0', String(NOBODY), '1'])
})

maybe('uid 0 inside is not uid 0 outside: a file made in a bind mount belongs to the caller on the host', (t) => {
  const r = asNobody(['sh', '-c', 'echo hi > /shared/made-inside && stat -c %u /shared/made-inside'], { mounts: [{ type: 'bind', source: shared, target: '/shared' }] })
  t.is(r.stdout, '0', 'root inside')
  t.is(fs.statSync(path.join(shared, 'made-inside')).uid, NOBODY, 'the caller outside')
})

maybe('root inside cannot read what only host root can: /etc/shadow (control: a root-run container can)', async (t) => {
  const rootless = asNobody(['cat', '/etc/shadow'])
  t.not(rootless.exitCode, 0)
  t.regex(rootless.stderr!, /Permission denied/)
  const control = await run(['sh', '-c', 'head -c 5 /etc/shadow'], { reject: false })
  t.is(control.exitCode, 0, 'a container made by host root reads it: the user namespace is what stops it')
})

maybe('the hardening holds rootless: capabilities, no_new_privs, seccomp', (t) => {
  const r = asNobody(['sh', '-c', 'grep -E "^(CapInh|CapEff|CapAmb|NoNewPrivs|Seccomp):" /proc/self/status'])
  t.is(r.stdout, 'CapInh:\t0000000000000000\nCapEff:\t00000000a80425fb\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2')
})

maybe('mount is refused by seccomp rootless; control: unconfined with SYS_ADMIN mounts inside its own namespace', (t) => {
  const attack = ['sh', '-c', 'mkdir -p /tmp/m && mount -t tmpfs none /tmp/m && echo mounted']
  // A scratch tmpfs at /tmp: the rootfs's own is root's, not the rootless user's (lonely mounts no /tmp there, as docker).
  const tmp = [{ type: 'tmpfs' as const, target: '/tmp' }]
  const denied = asNobody(attack, { rootfs: root, mounts: tmp })
  t.not(denied.exitCode, 0)
  t.regex(denied.stderr!, /operation not permitted|permission denied/i)
  const control = asNobody(attack, { rootfs: root, mounts: tmp, seccomp: 'unconfined', capAdd: ['SYS_ADMIN'] })
  t.is(control.stdout, 'mounted', control.stderr)
})

maybe('the network is only lo and the pid namespace hides the host, rootless too', (t) => {
  // A shell builtin lists /proc: no other process of ours exists to show up.
  const r = asNobody(['sh', '-c', 'ls /sys/class/net; echo /proc/[0-9]*'], { rootfs: root })
  t.is(r.stdout, 'lo\n/proc/1')
})

maybe('a tty works rootless (devpts owned by the user namespace)', (t) => {
  const r = asNobody(['sh', '-c', 'tty; [ -t 0 ] && echo terminal'], { rootfs: root, tty: true, input: '' })
  t.is(r.stdout!.replace(/\r/g, ''), '/dev/pts/0\nterminal')
})

maybe('limits without a delegated cgroup are an error that says so', (t) => {
  const r = asNobody(['true'], { limits: { pids: 8 } })
  t.regex(r.error!, /rootless: limits need a cgroup delegated to this user/)
})

maybe('rootless refuses ids it cannot map and cannot turn the user namespace off', (t) => {
  t.regex(asNobody(['true'], { uid: 1000 }).error!, /Option `uid` must be 0 in a user namespace/)
  t.regex(asNobody(['true'], { namespaces: { user: false } }).error!, /Option `namespaces.user` can only be turned off by root/)
})

maybe('host root can ask for a user namespace too', async (t) => {
  const r = await run(['sh', '-c', 'cat /proc/self/uid_map'], { namespaces: { user: true } })
  t.deepEqual(r.stdout.trim().split(/\s+/), ['0', '0', '1'])
})

/** Attacks of the escape suite, run by a non-root host user: each must fail as it does for root. */
const ATTACKS: Array<[string, string[], string]> = [
  ['mount', [], 'EPERM'], ['fsopen', [], 'EPERM'], ['open-tree', [], 'EPERM'], ['umount-proc', [], 'EPERM'], ['pivot-root', [], 'EPERM'],
  ['unshare-user', [], 'EPERM'], ['unshare-ns', [], 'EPERM'], ['setns-net', [], 'EPERM'], ['clone-newuser', [], 'EPERM'], ['clone3', [], 'ENOSYS'],
  ['keyctl', [], 'EPERM'], ['add-key', [], 'EPERM'], ['request-key', [], 'EPERM'], ['bpf', [], 'EPERM'], ['name-to-handle', [], 'EPERM'],
  ['kexec-load', [], 'EPERM'], ['init-module', [], 'EPERM'], ['userfaultfd', [], 'EPERM'], ['io-uring', [], 'EPERM'], ['perf-event-open', [], 'EPERM'],
  ['reboot', [], 'EPERM'], ['swapon', [], 'EPERM'], ['acct', [], 'EPERM'], ['settimeofday', [], 'EPERM'], ['x32-getpid', [], 'EPERM'],
  ['kill-all', [], 'ESRCH'],
]

maybe('rootless: the escape suite\'s system-call attacks fail as they do for root; control: unconfined lets some through', (t) => {
  const script = ATTACKS.map(([name, args]) => `/attack ${name} ${args.join(' ')}`).join('; ')
  const r = asNobody(['/bin/sh', '-c', script], { rootfs: root })
  const got = r.stdout!.split('\n').map((l) => l.split(' ')[0])
  t.deepEqual(got, ATTACKS.map(([, , expected]) => expected), r.stderr)
  // Control: without seccomp, the same user-namespace root gets through where seccomp was the wall.
  const control = asNobody(['/bin/sh', '-c', '/attack unshare-user; /attack keyctl; /attack clone3'], { rootfs: root, seccomp: 'unconfined' })
  t.deepEqual(control.stdout!.split('\n').map((l) => l.split(' ')[0]), ['OK', 'OK', 'OK'], control.stderr)
})

maybe('rootless: TIOCSTI (also with high bits) and TIOCLINUX are refused on the container\'s terminal', (t) => {
  const r = asNobody(['/bin/sh', '-c', '/attack tiocsti; /attack tiocsti-high; /attack tioclinux'], { rootfs: root, tty: true, input: '' })
  t.deepEqual(r.stdout!.replace(/\r/g, '').split('\n').map((l) => l.split(' ')[0]), ['EPERM', 'EPERM', 'EPERM'])
})

maybe('rootless: masked paths read empty; control maskedPaths [] shows the host\'s', (t) => {
  const r = asNobody(['/attack', 'read-size', '/proc/interrupts'], { rootfs: root })
  t.is(r.stdout, 'bytes=0')
  const control = asNobody(['/attack', 'read-size', '/proc/interrupts'], { rootfs: root, maskedPaths: [] })
  t.true(Number(control.stdout!.replace('bytes=', '')) > 0, control.stdout)
})

maybe('rootless: `ignore` stdio and an inherited stdout give the container nothing of the host to chmod or read back (control: root-run with the host file passed as an fd)', async (t) => {
  const hostNull = () => fs.statSync('/dev/null', { bigint: true }).ctimeNs
  const before = hostNull()
  const r = asNobody(['/bin/sh', '-c', 'chmod 666 /proc/self/fd/0 2>&1; stat -L -c %t:%T /proc/self/fd/0'], { rootfs: root, stdin: 'ignore' })
  t.regex(r.stdout ?? '', /1:3$/, r.stderr)
  t.is(hostNull(), before, 'the host\'s /dev/null')
  // An inherited stdout that is a host file the user can write: it reaches the container as a pipe.
  const file = path.join(shared, 'out')
  fs.writeFileSync(file, 'host secret\n')
  fs.chownSync(file, NOBODY, NOBODY)
  const fd = fs.openSync(file, 'a')
  try {
    const script = `require('./index.ts').run(['/bin/sh', '-c', 'x=$(timeout 1 cat /proc/1/fd/1); echo "read: $x" >&2; chmod 600 /proc/1/fd/1; : > /proc/1/fd/1; echo out'], { rootfs: ${JSON.stringify(root)}, stdin: 'ignore', stdout: 'inherit', stderr: 'inherit', reject: false })`
    const out = spawnSync(setpriv!, [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, '--import', 'tsx', '-e', script], { cwd: REPO, stdio: ['ignore', fd, 'pipe'], encoding: 'utf8', env: { ...process.env, HOME: os.tmpdir() } })
    t.false(out.stderr.includes('host secret'), out.stderr)
    t.is(fs.readFileSync(file, 'utf8'), 'host secret\nout\n')
    t.is(fs.statSync(file).mode & 0o777, 0o644)
  } finally {
    fs.closeSync(fd)
  }
  const given = fs.openSync(file, 'r')
  try {
    const control = await run(['/bin/sh', '-c', 'cat /proc/1/fd/0'], { rootfs: root, stdin: given })
    t.is(control.stdout, 'host secret\nout', 'control: a host file passed as an fd is readable through /proc/1/fd')
  } finally {
    fs.closeSync(given)
  }
})

maybe('rootless: create() then exec joins the container\'s user namespace too (root inside, the caller outside), its PID namespace and files', (t) => {
  const script = `
    const { create } = require('./index.ts')
    ;(async () => {
      const c = await create(['sh', '-c', 'echo pid1 > /tmp/f; exec sleep 3600'], { rootfs: ${JSON.stringify(root)}, mounts: [{ type: 'tmpfs', target: '/tmp' }] })
      let r
      for (let i = 0; i < 50; i++) { r = await c.run(['sh', '-c', 'cat /tmp/f && id -u && cat /proc/self/uid_map && readlink /proc/self/ns/pid && readlink /proc/1/ns/pid'], { reject: false }); if (r.exitCode === 0) break; await new Promise((ok) => setTimeout(ok, 20)) }
      console.log(JSON.stringify({ out: r.stdout, err: r.stderr }))
      await c.remove({ force: true })
    })().catch((e) => { console.log(JSON.stringify({ err: e.message })) })`
  const r = spawnSync(setpriv!, [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, '--import', 'tsx', '-e', script], { cwd: REPO, encoding: 'utf8', env: { ...process.env, HOME: os.tmpdir() } })
  const seen = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { out?: string; err?: string }
  const [file, uid, map, ownPid, pid1] = (seen.out ?? '').split('\n')
  t.is(file, 'pid1', JSON.stringify(seen) + r.stderr)
  t.is(uid, '0')
  t.regex(map ?? '', new RegExp(`^\\s*0\\s+${NOBODY}\\s+1$`))
  t.is(ownPid, pid1, 'the exec is in PID 1\'s PID namespace')
})

maybe('rootless: a detached container outlives its creator under its monitor, in $XDG_RUNTIME_DIR/lonely; another process of the user attaches, types into it, gets its exit, reads its log and removes it', async (t) => {
  const runtime = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-xdg-'))
  fs.chownSync(runtime, NOBODY, NOBODY)
  const asUser = (script: string) => spawnSync(setpriv!, [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, '--import', 'tsx', '-e', script], { cwd: REPO, encoding: 'utf8', env: { ...process.env, HOME: os.tmpdir(), XDG_RUNTIME_DIR: runtime } })
  try {
    const made = asUser(`require('./index.ts').create(['sh', '-c', 'id -u; read line; echo "got $line"; exit 7'], { rootfs: ${JSON.stringify(root)}, detached: true, name: 'mine', stdin: 'pipe' }).then((c) => console.log(c.id))`)
    const id = made.stdout.trim()
    t.regex(id, /^[0-9a-f]{16}$/, made.stderr)
    t.true(fs.existsSync(path.join(runtime, 'lonely', id, 'state.json')), 'its state is in $XDG_RUNTIME_DIR/lonely')
    const later = asUser(`
      const { containers } = require('./index.ts')
      ;(async () => {
        const c = containers.get('mine')
        const a = await c.attach()
        a.stdin.end('hello\\n')
        console.log(JSON.stringify({ exit: await a.exited, log: c.logs() }))
        await c.remove()
      })().catch((e) => console.log(JSON.stringify({ err: e.message })))`)
    const seen = JSON.parse(later.stdout.trim().split('\n').pop() ?? '{}')
    t.deepEqual(seen, { exit: { exitCode: 7 }, log: '0\ngot hello\n' }, later.stderr)
    t.deepEqual(fs.readdirSync(path.join(runtime, 'lonely')), [], 'removed')
  } finally {
    await removeDetached(path.join(runtime, 'lonely'))
    fs.rmSync(runtime, { recursive: true, force: true })
  }
})

// ---------------------------------------------------------------- setup races, rootless

/** A busybox root with the attack program (what races.ts's setups build on). */
function attackRoot(): string {
  const r = makeBusyboxRoot()
  fs.copyFileSync(path.join(root, 'attack'), path.join(r, 'attack'))
  fs.mkdirSync(path.join(r, 'mnt'))
  return r
}

/** races.ts's loop in a Node process of uid 65534 (asynchronous: the racer runs meanwhile). */
function raceAsNobody(setup: RaceSetup): Promise<Record<string, number>> {
  const script = `
    const { run } = require('./index.ts')
    const { raceLoop } = require('./__test__/races.ts')
    raceLoop(run, ${JSON.stringify(setup.command)}, ${JSON.stringify(setup.options)}, ${JSON.stringify(setup.judge)})
      .then((counts) => console.log(JSON.stringify(counts)), (e) => { console.error(e); process.exit(1) })`
  const child = spawnHost(setpriv!, [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, '--import', 'tsx', '-e', script], {
    cwd: REPO,
    env: { ...process.env, HOME: os.tmpdir() },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout!.on('data', (d) => (out += d))
  child.stderr!.on('data', (d) => (err += d))
  return new Promise((resolve, reject) => child.on('close', (code) => {
    try {
      resolve(JSON.parse(out.trim().split('\n').pop() ?? ''))
    } catch {
      reject(new Error(`the uid ${NOBODY} racer exited ${code}: ${err || out}`))
    }
  }))
}

for (const race of RACES) {
  maybe(`rootless race (${RACE_STARTS} starts): ${race.title}`, async (t) => {
    const r = race.setup(attackRoot)
    const loop = await exchangeLoop(path.join(root, 'attack'), r.dir, r.a, r.b)
    let counts: Record<string, number> = {}
    let control = 0
    try {
      control = pathLookupWins(r.lookup)
      counts = await raceAsNobody(r)
    } finally {
      t.log(`exchange loop: ${(await loop.stop()).trim() || 'killed'}`)
      r.cleanup()
    }
    t.log(JSON.stringify(counts, null, 1))
    t.true(control > 0, 'control: the racer changes what a lookup by path finds')
    t.deepEqual(Object.keys(counts).filter((k) => k.startsWith('WIN') || k.startsWith('ERROR')), [])
    t.true((counts[r.ran] ?? 0) >= RACE_STARTS / 20, `enough starts ran their check (${counts[r.ran] ?? 0})`)
  })
}

// ---------------------------------------------------------------- uid/gid ranges

const newuidmap = ['/usr/bin/newuidmap', '/bin/newuidmap'].find((p) => fs.existsSync(p))
const rangeTest = skip || !newuidmap ? test.skip : test.serial

/** Gives uid/gid 65534 a subordinate range for the test, and puts /etc/subuid and /etc/subgid back after. */
async function withSubordinateIds<T>(fn: () => T): Promise<T> {
  const saved = ['/etc/subuid', '/etc/subgid'].map((f) => [f, fs.existsSync(f) ? fs.readFileSync(f) : undefined] as const)
  try {
    for (const [f, text] of saved) fs.writeFileSync(f, `${text ?? ''}nobody:300000:65536\n`)
    return fn()
  } finally {
    for (const [f, text] of saved) {
      if (text === undefined) fs.rmSync(f, { force: true })
      else fs.writeFileSync(f, text)
    }
  }
}

rangeTest('ranges through newuidmap: a non-root caller maps 65536 ids; uid 1000 inside is 300999 outside', async (t) => {
  const maps = { uidMap: [{ containerId: 0, hostId: NOBODY, size: 1 }, { containerId: 1, hostId: 300000, size: 65536 }], gidMap: [{ containerId: 0, hostId: NOBODY, size: 1 }, { containerId: 1, hostId: 300000, size: 65536 }] }
  fs.chmodSync(shared, 0o777)
  const r = await withSubordinateIds(() => asNobody(['sh', '-c', 'id -u; id -g; touch /shared/by-1000; cat /proc/self/uid_map'], { ...maps, uid: 1000, gid: 1000, mounts: [{ type: 'bind', source: shared, target: '/shared' }] }))
  const [uid, gid, ...map] = r.stdout!.split('\n')
  t.is(uid, '1000', r.stderr ?? r.error)
  t.is(gid, '1000')
  t.is(map.length, 2, 'two ranges mapped')
  t.is(fs.statSync(path.join(shared, 'by-1000')).uid, 300999, 'uid 1000 inside is 300000 + 999 outside')
  // Control: without a range in /etc/subuid, newuidmap refuses and the error says so.
  const refused = asNobody(['true'], { ...maps })
  t.regex(refused.error!, /uid\/gid maps: .*newuidmap/)
})

rangeTest('ranges written directly by host root; ids outside every range are refused', async (t) => {
  const maps = { namespaces: { user: true }, uidMap: [{ containerId: 0, hostId: 400000, size: 65536 }], gidMap: [{ containerId: 0, hostId: 400000, size: 65536 }] }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-ranges-'))
  fs.chmodSync(dir, 0o777)
  try {
    const r = await run(['sh', '-c', 'touch /d/made; id -u'], { ...maps, uid: 7, gid: 7, mounts: [{ type: 'bind', source: dir, target: '/d' }] })
    t.is(r.stdout, '7')
    t.is(fs.statSync(path.join(dir, 'made')).uid, 400007)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
  t.throws(() => spawnLib(['true'], { ...maps, uid: 70000 }), { message: /Option `uid` must be inside a `uidMap` range; got 70000/ })
})
