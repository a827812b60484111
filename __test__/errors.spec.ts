// Errors: every bad option is refused before any process exists (spawn() and explain()
// throw, run() rejects), with the right class and a message naming the option and echoing
// the value; every setup failure inside the child is a ContainerError with the exact stage,
// code, errno and path, and leaves nothing behind. Serial: the tests count processes and fds.
import test, { type ExecutionContext } from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { execFileSync } from 'node:child_process'

import { ContainerError, explain, liveContainers, run, spawn, type RunOptions } from '../index'
import { makeBusyboxRoot, removeRoot, settled, snapshot, type Snapshot, expectNoLeak, warmUp, endSuite } from './helpers'

let root = '' // busybox rootfs, 0755
let scratch = '' // host temp dir with a file and a directory to bind
let warm: Snapshot

test.before(async () => {
  root = makeBusyboxRoot()
  fs.chmodSync(root, 0o755)
  fs.writeFileSync(path.join(root, 'notexec'), '#!/bin/sh\necho ran\n', { mode: 0o644 })
  fs.symlinkSync('/etc', path.join(root, 'evil'))
  fs.symlinkSync('../../../../etc', path.join(root, 'evil-relative'))
  fs.symlinkSync('tmp', path.join(root, 'good'))
  fs.chmodSync(path.join(root, 'root'), 0o700)
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-errors-'))
  fs.writeFileSync(path.join(scratch, 'file.txt'), 'a file\n')
  fs.mkdirSync(path.join(scratch, 'dir'))
  warm = await warmUp([['true']], [['true'], { rootfs: root }])
})

test.after.always((t) => endSuite(t, warm, () => root && removeRoot(root), () => scratch && fs.rmSync(scratch, { recursive: true, force: true })))

/** Our child processes in any state: a refused option must not have made one. */
function children(): number[] {
  const out: number[] = []
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === process.pid) out.push(Number(pid))
    } catch {
      // raced with its exit
    }
  }
  return out
}

// ---------------------------------------------------------------- bad options

interface Bad {
  title: string
  command?: unknown
  options: () => unknown
  error: typeof TypeError | typeof RangeError
  /** The exact message, or a pattern (it must name the option and echo the value). */
  message: string | RegExp | (() => string)
}

const file = () => path.join(scratch, 'file.txt')

const BAD: Bad[] = [
  { title: 'missing rootfs', options: () => ({ rootfs: '/nonexistent/lonely-root' }), error: RangeError, message: "Option `rootfs` must be an existing directory; got '/nonexistent/lonely-root'." },
  { title: 'rootfs that is a file', options: () => ({ rootfs: file() }), error: RangeError, message: () => `Option \`rootfs\` must be a directory; got '${file()}'.` },
  { title: 'empty rootfs', options: () => ({ rootfs: '' }), error: TypeError, message: "Option `rootfs` must be a path to a directory; got ''." },
  { title: 'rootfs with a NUL byte', options: () => ({ rootfs: '/tmp\0x' }), error: RangeError, message: /^Option `rootfs` must not contain a NUL byte; got '\/tmp\\x00x'\.$/ },
  { title: 'hostname over 64 bytes', options: () => ({ hostname: 'a'.repeat(65) }), error: RangeError, message: `Option \`hostname\` must be at most 64 bytes; got '${'a'.repeat(65)}'.` },
  { title: 'hostname over 64 bytes in UTF-8 (33 characters)', options: () => ({ hostname: 'é'.repeat(33) }), error: RangeError, message: /^Option `hostname` must be at most 64 bytes; got 'é{33}'\.$/ },
  { title: 'hostname with invalid characters', options: () => ({ hostname: 'bad_host!' }), error: RangeError, message: "Option `hostname` must be letters, digits, `-` and `.` (RFC 1123); got 'bad_host!'." },
  { title: 'hostname with a leading dash', options: () => ({ hostname: '-box' }), error: RangeError, message: /^Option `hostname` .*got '-box'\.$/ },
  { title: 'hostname that is not a string', options: () => ({ hostname: 42 }), error: TypeError, message: 'Option `hostname` must be a string; got 42.' },
  { title: 'empty command', command: [], options: () => ({}), error: TypeError, message: 'Option `command` must be a non-empty array of strings; got [].' },
  { title: 'command that is not an array', command: 'ls -l', options: () => ({}), error: TypeError, message: "Option `command` must be a non-empty array of strings; got 'ls -l'." },
  { title: 'empty command[0]', command: [''], options: () => ({}), error: RangeError, message: "Option `command[0]` must not be empty; got ''." },
  { title: 'non-string argument', command: ['echo', 42], options: () => ({}), error: TypeError, message: 'Option `command[1]` must be a string; got 42.' },
  { title: 'NUL in argv', command: ['echo', 'a\0b'], options: () => ({}), error: RangeError, message: "Option `command[1]` must not contain a NUL byte; got 'a\\x00b'." },
  { title: 'NUL in an env value', options: () => ({ env: { FOO: 'a\0b' } }), error: RangeError, message: "Option `env.FOO` must not contain a NUL byte; got 'a\\x00b'." },
  { title: '`=` in an env name', options: () => ({ env: { 'A=B': 'x' } }), error: RangeError, message: /^Option `env` has an invalid name 'A=B'; got \{ 'A=B': 'x' \}\.$/ },
  { title: 'empty env name', options: () => ({ env: { '': 'x' } }), error: RangeError, message: /^Option `env` has an invalid name ''/ },
  { title: 'non-string env value', options: () => ({ env: { FOO: 1 } }), error: TypeError, message: 'Option `env.FOO` must be a string; got 1.' },
  { title: 'env that is an array', options: () => ({ env: ['A=b'] }), error: TypeError, message: "Option `env` must be an object of strings; got [ 'A=b' ]." },
  { title: 'relative cwd', options: () => ({ cwd: 'tmp' }), error: RangeError, message: "Option `cwd` must be an absolute path inside the container; got 'tmp'." },
  { title: 'cwd with ..', options: () => ({ cwd: '/tmp/../etc' }), error: RangeError, message: "Option `cwd` must not contain `..`; got '/tmp/../etc'." },
  { title: 'relative mount target', options: () => ({ mounts: [{ type: 'tmpfs', target: 'data' }] }), error: RangeError, message: "Option `mounts[0].target` must be an absolute path inside the container; got 'data'." },
  { title: 'mount target with ..', options: () => ({ mounts: [{ type: 'bind', source: scratch, target: '/mnt/../etc' }] }), error: RangeError, message: "Option `mounts[0].target` must not contain `..`; got '/mnt/../etc'." },
  { title: 'mount target through an absolute symlink out of the rootfs', options: () => ({ rootfs: root, mounts: [{ type: 'bind', source: scratch, target: '/evil/x' }] }), error: RangeError, message: "Option `mounts[0].target` goes through the symlink /evil -> /etc, which points out of the rootfs; got '/evil/x'." },
  { title: 'mount target through a relative symlink out of the rootfs', options: () => ({ rootfs: root, mounts: [{ type: 'tmpfs', target: '/evil-relative/x' }] }), error: RangeError, message: /^Option `mounts\[0\]\.target` leaves the rootfs through a symlink; got '\/evil-relative\/x'\.$/ },
  { title: 'missing mount source', options: () => ({ mounts: [{ type: 'bind', source: '/nonexistent/lonely-src', target: '/data' }] }), error: RangeError, message: "Option `mounts[0].source` must exist on the host; got '/nonexistent/lonely-src'." },
  { title: 'unknown mount type', options: () => ({ mounts: [{ type: 'overlay', target: '/data' }] }), error: RangeError, message: "Option `mounts[0].type` must be \"bind\" or \"tmpfs\"; got 'overlay'." },
  { title: 'unknown key in a mount', options: () => ({ mounts: [{ type: 'bind', source: scratch, target: '/data', ro: true }] }), error: RangeError, message: /^Option `mounts\[0\]` has an unknown key `ro`; got / },
  { title: 'invalid tmpfs size', options: () => ({ mounts: [{ type: 'tmpfs', target: '/data', size: '10 MB' }] }), error: TypeError, message: "Option `mounts[0].size` must be a positive number of bytes or a size like \"64m\"; got '10 MB'." },
  { title: 'unknown option', options: () => ({ bogus: 1 }), error: TypeError, message: /^Unknown option `bogus`( for spawn\(\))?\.$/ },
  { title: 'options that are not an object', options: () => 'rootfs', error: TypeError, message: "Option `options` must be an object; got 'rootfs'." },
  { title: 'unknown namespace key', options: () => ({ namespaces: { time: false } }), error: RangeError, message: 'Option `namespaces` has an unknown key `time` (known: pid, mount, uts, ipc, net, cgroup, user); got { time: false }.' },
  { title: 'uid other than 0 in a user namespace', options: () => ({ namespaces: { user: true }, uid: 1000 }), error: RangeError, message: "Option `uid` must be 0 in a user namespace without `uidMap`/`gidMap` (only the caller's id is mapped, as root inside); got 1000." },
  { title: 'namespace value that is not a boolean', options: () => ({ namespaces: { pid: 'no' } }), error: TypeError, message: "Option `namespaces.pid` must be a boolean; got 'no'." },
  { title: 'bad stdio value', options: () => ({ stdio: 'pipes' }), error: TypeError, message: `Option \`stdio\` must be "pipe", "inherit", "ignore" or a file descriptor; got 'pipes'.` },
  { title: 'stdio array of the wrong length', options: () => ({ stdio: ['pipe', 'pipe'] }), error: RangeError, message: "Option `stdio` must have exactly 3 entries; got [ 'pipe', 'pipe' ]." },
  { title: 'stdout fd beyond any fd number', options: () => ({ stdout: 2 ** 31 }), error: RangeError, message: `Option \`stdout\` must be a file descriptor number (at most 2147483647); got 2147483648.` },
  { title: 'negative stdout fd', options: () => ({ stdout: -1 }), error: TypeError, message: `Option \`stdout\` must be "pipe", "inherit", "ignore" or a file descriptor; got -1.` },
  { title: 'input with stdin ignore', options: () => ({ input: 'x', stdin: 'ignore' }), error: RangeError, message: "Option `input` needs `stdin: \"pipe\"`; got 'ignore'." },
  { title: 'bad killSignal name', options: () => ({ killSignal: 'SIGFOO' }), error: TypeError, message: `Option \`killSignal\` must be a signal name like "SIGTERM" or a signal number from 1 to 64; got 'SIGFOO'.` },
  { title: 'killSignal 0', options: () => ({ killSignal: 0 }), error: TypeError, message: /^Option `killSignal` .*; got 0\.$/ },
  // Right type, value out of range: RangeError (Node's ERR_OUT_OF_RANGE, e.g. child_process's `timeout: -1`).
  { title: 'negative timeout', options: () => ({ timeout: -1 }), error: RangeError, message: /^Option `timeout` .*; got -1\.$/ },
  { title: 'timeout that is not a number', options: () => ({ timeout: '10' }), error: TypeError, message: "Option `timeout` must be a non-negative number of milliseconds; got '10'." },
  { title: 'uid -1', options: () => ({ uid: -1 }), error: RangeError, message: /^Option `uid` .*; got -1\.$/ },
  { title: 'uid 1.5', options: () => ({ uid: 1.5 }), error: RangeError, message: /^Option `uid` .*; got 1\.5\.$/ },
  { title: 'uid that is not a number', options: () => ({ uid: '0' }), error: TypeError, message: "Option `uid` must be an integer from 0 to 4294967294; got '0'." },
  { title: 'gid that is not a number', options: () => ({ gid: null }), error: TypeError, message: 'Option `gid` must be an integer from 0 to 4294967294; got null.' },
  { title: 'groups that is not an array', options: () => ({ groups: 5 }), error: TypeError, message: 'Option `groups` must be an array of group ids; got 5.' },
  { title: 'rootfs with namespaces.mount false', options: () => ({ rootfs: root, namespaces: { mount: false } }), error: RangeError, message: 'Option `namespaces.mount` must stay on to use `rootfs` or `mounts`; got false.' },
  { title: 'mounts with namespaces.mount false', options: () => ({ namespaces: { mount: false }, mounts: [{ type: 'tmpfs', target: '/x' }] }), error: RangeError, message: 'Option `namespaces.mount` must stay on to use `rootfs` or `mounts`; got false.' },
  { title: 'tty that is not a boolean', options: () => ({ tty: 'yes' }), error: TypeError, message: "Option `tty` must be a boolean or { columns, rows }; got 'yes'." },
  { title: 'tty with a size of 0 columns', options: () => ({ tty: { columns: 0, rows: 24 } }), error: RangeError, message: 'Option `tty.columns` must be an integer from 1 to 65535; got 0.' },
  { title: 'sysctls that is not an object', options: () => ({ sysctls: 'net.ipv4.ip_forward=1' }), error: TypeError, message: /^Option `sysctls` must be an object of sysctl names to values.*; got 'net.ipv4.ip_forward=1'\.$/ },
  { title: 'readonlyRoot that is not a boolean', options: () => ({ readonlyRoot: 1 }), error: TypeError, message: 'Option `readonlyRoot` must be a boolean; got 1.' },
]

for (const bad of BAD) {
  test.serial(`bad option refused before any process exists: ${bad.title}`, async (t) => {
    const before = await settled(warm, 10)
    const kids = children()
    const command = (bad.command ?? ['true']) as string[]
    const expect = { instanceOf: bad.error, message: typeof bad.message === 'function' ? bad.message() : bad.message }
    const thrown = t.throws(() => spawn(command, bad.options() as RunOptions), expect)
    if (thrown) t.is(thrown.constructor, bad.error, `exactly ${bad.error.name}`)
    // The option it names, as a property (the message's own `Option \`x\`` or `Unknown option \`x\``).
    const named = /[Oo]ption `([^`]+)`/.exec(thrown?.message ?? '')?.[1]
    t.is((thrown as { option?: string } | undefined)?.option, named, 'error.option')
    t.throws(() => explain(command, bad.options() as RunOptions), expect)
    let promise: Promise<unknown> | undefined
    t.notThrows(() => {
      promise = run(command, bad.options() as RunOptions)
    }, 'run() is async: it rejects rather than throws')
    const rejected = await t.throwsAsync(promise!, expect)
    if (rejected) t.is(rejected.constructor, bad.error, `exactly ${bad.error.name}`)
    t.is(liveContainers(), 0)
    t.deepEqual(children(), kids, 'no process was made')
    const now = snapshot()
    t.true(now.fds <= before.fds, `fds: ${now.fds} now, ${before.fds} before`)
    t.is(now.zombies, 0)
    t.is(now.mounts, before.mounts)
  })
}

test.serial('run-only options are refused by spawn() and explain(), accepted by run()', async (t) => {
  const before = await settled(warm, 10)
  for (const [key, value] of [['encoding', 'buffer'], ['maxBuffer', 10], ['reject', false], ['stripFinalNewline', false]] as const) {
    t.throws(() => spawn(['true'], { [key]: value } as RunOptions), { instanceOf: TypeError, message: `Unknown option \`${key}\` for spawn().` })
    t.throws(() => explain(['true'], { [key]: value } as RunOptions), { instanceOf: TypeError, message: `Unknown option \`${key}\` for spawn().` })
    const r = await run(['true'], { [key]: value, stdin: 'ignore' } as RunOptions)
    t.is(r.exitCode, 0)
  }
  await expectNoLeak(t, before)
})

test.serial('a relative rootfs is resolved against the current directory', async (t) => {
  const before = await settled(warm, 10)
  const rel = path.relative(process.cwd(), root)
  t.false(path.isAbsolute(rel))
  const r = await run(['/bin/sh', '-c', 'echo ok; ls /notexec'], { rootfs: rel, stdin: 'ignore' })
  t.is(r.stdout, 'ok\n/notexec')
  t.true(explain(['true'], { rootfs: rel }).includes(`open_tree \`${fs.realpathSync(root)}\``))
  await expectNoLeak(t, before)
})

test.serial('control: a hostname of exactly 64 bytes is accepted', async (t) => {
  const before = await settled(warm, 10)
  const name = `${'a'.repeat(31)}.${'b'.repeat(32)}`
  t.is(Buffer.byteLength(name), 64)
  const r = await run(['hostname'], { hostname: name, stdin: 'ignore' })
  t.is(r.stdout, name)
  await expectNoLeak(t, before)
})

test.serial('control: a mount target through a symlink that stays inside the rootfs is accepted and lands inside', async (t) => {
  const before = await settled(warm, 10)
  // /good -> tmp, so /good/x is /tmp/x inside the container.
  const r = await run(['cat', '/tmp/x/file.txt'], { rootfs: root, stdin: 'ignore', mounts: [{ type: 'bind', source: scratch, target: '/good/x' }] })
  t.is(r.stdout, 'a file')
  t.false(fs.existsSync('/etc/x'), 'nothing was created on the host through the link')
  await expectNoLeak(t, before)
})

// ---------------------------------------------------------------- setup failures

interface Failure {
  title: string
  command: string[]
  options: () => RunOptions
  stage: string
  code: string
  errno: number
  path: string
  strerror: string
}

const FAILURES: Failure[] = [
  { title: 'exec of a missing command (absolute path)', command: ['/no/such/command'], options: () => ({}), stage: 'exec', code: 'ENOENT', errno: 2, path: '/no/such/command', strerror: 'No such file or directory' },
  { title: 'exec of a missing command (PATH search)', command: ['lonely-no-such-command'], options: () => ({}), stage: 'exec', code: 'ENOENT', errno: 2, path: 'lonely-no-such-command', strerror: 'No such file or directory' },
  { title: 'exec of a missing command in a rootfs', command: ['/usr/bin/env'], options: () => ({ rootfs: root }), stage: 'exec', code: 'ENOENT', errno: 2, path: '/usr/bin/env', strerror: 'No such file or directory' },
  { title: 'exec of a non-executable file', command: ['/notexec'], options: () => ({ rootfs: root }), stage: 'exec', code: 'EACCES', errno: 13, path: '/notexec', strerror: 'Permission denied' },
  { title: 'exec of a directory', command: ['/bin'], options: () => ({ rootfs: root }), stage: 'exec', code: 'EACCES', errno: 13, path: '/bin', strerror: 'Permission denied' },
  { title: 'exec of a directory (mirror root)', command: ['/usr'], options: () => ({}), stage: 'exec', code: 'EACCES', errno: 13, path: '/usr', strerror: 'Permission denied' },
  { title: 'cwd that does not exist in a read-only rootfs (a writable one gets it made, as docker)', command: ['true'], options: () => ({ rootfs: root, readonlyRoot: true, cwd: '/no/such/dir' }), stage: 'chdir', code: 'ENOENT', errno: 2, path: '/no/such/dir', strerror: 'No such file or directory' },
  { title: 'cwd that does not exist in the mirror root', command: ['true'], options: () => ({ cwd: '/no/such/dir' }), stage: 'chdir', code: 'ENOENT', errno: 2, path: '/no/such/dir', strerror: 'No such file or directory' },
  { title: 'cwd that is a file', command: ['true'], options: () => ({ rootfs: root, cwd: '/etc/passwd' }), stage: 'chdir', code: 'ENOTDIR', errno: 20, path: '/etc/passwd', strerror: 'Not a directory' },
  { title: 'cwd the user may not enter', command: ['true'], options: () => ({ rootfs: root, cwd: '/root', uid: 1000, gid: 1000 }), stage: 'chdir', code: 'EACCES', errno: 13, path: '/root', strerror: 'Permission denied' },
  // mount(2), runc and docker all say "not a directory" for a kind mismatch.
  { title: 'bind of a directory onto an existing regular file', command: ['true'], options: () => ({ rootfs: root, mounts: [{ type: 'bind', source: path.join(scratch, 'dir'), target: '/etc/passwd' }] }), stage: 'mount', code: 'ENOTDIR', errno: 20, path: '/etc/passwd', strerror: 'Not a directory' },
  { title: 'bind of a file onto an existing directory', command: ['true'], options: () => ({ rootfs: root, mounts: [{ type: 'bind', source: file(), target: '/etc' }] }), stage: 'mount', code: 'ENOTDIR', errno: 20, path: '/etc', strerror: 'Not a directory' },
]

function checkFailure(t: ExecutionContext, e: unknown, f: Failure, command: string): void {
  t.true(e instanceof ContainerError, 'a ContainerError')
  const err = e as ContainerError
  t.is(err.name, 'ContainerError')
  t.is(err.message, `${f.stage} \`${f.path}\`: ${f.strerror} (${f.code})`)
  t.like(err, { stage: f.stage, code: f.code, errno: f.errno, path: f.path, pid: 0, failed: true, exitCode: undefined, signal: undefined, command, timedOut: false, isCanceled: false })
}

for (const f of FAILURES) {
  test.serial(`setup failure: ${f.title}`, async (t) => {
    const before = await settled(warm, 10)
    const command = f.command.join(' ')
    // Exercise every stdio kind's cleanup path: pipes (default), and /dev/null.
    const sync = t.throws(() => spawn(f.command, f.options()), { instanceOf: ContainerError })
    checkFailure(t, sync, f, command)
    const rejected = await t.throwsAsync(run(f.command, f.options()), { instanceOf: ContainerError })
    checkFailure(t, rejected, f, command)
    const resolved = await run(f.command, { ...f.options(), stdio: 'ignore', reject: false })
    checkFailure(t, resolved, f, command)
    t.is(resolved.stdout, '')
    t.is(resolved.stderr, '')
    await expectNoLeak(t, before)
  })
}

test.serial('setup failures leave nothing behind even when repeated', async (t) => {
  const before = await settled(warm, 10)
  for (let i = 0; i < 20; i++) {
    const r = await run(['/no/such/command'], { reject: false, rootfs: root, mounts: [{ type: 'bind', source: scratch, target: '/data' }] })
    t.is((r as ContainerError).code, 'ENOENT')
  }
  fs.rmSync(path.join(root, 'data'), { recursive: true, force: true })
  await expectNoLeak(t, before)
})

test.serial('out of file descriptors: every stage that needs one (the parent\'s pipes, the rootfs, the child\'s mounts) is a ContainerError that says the Node process ran out; control: with fds back it runs', (t) => {
  // In a fresh Node process: the fds are filled there, never in this one.
  const script = `
    const lib = require(${JSON.stringify(path.join(__dirname, '..', 'index.ts'))})
    const fs = require('node:fs')
    ;(async () => {
      await lib.run(['true'], { stdin: 'ignore' }) // the addon, its threads and its pidfd first
      const filler = []
      try { for (;;) filler.push(fs.openSync('/dev/null', 'r')) } catch {}
      const seen = []
      for (const options of [{}, { rootfs: ${JSON.stringify(root)}, stdio: 'ignore' }, { stdio: 'ignore' }]) {
        const r = await lib.run(['true'], { reject: false, ...options })
        seen.push({ name: r.name, stage: r.stage, code: r.code, message: r.message })
      }
      for (const fd of filler) fs.closeSync(fd)
      seen.push({ exitCode: (await lib.run(['true'], { stdin: 'ignore' })).exitCode })
      console.log(JSON.stringify(seen))
    })()`
  const out = execFileSync(process.execPath, ['--import', 'tsx', '-e', script], { encoding: 'utf8', timeout: 60_000 })
  const [pipes, rootfs, child, control] = JSON.parse(out.trim().split('\n').pop()!)
  for (const [what, seen, stage] of [['pipes', pipes, /^pipe2$/], ['rootfs', rootfs, /^open rootfs$/], ['child', child, /^(mount( \w+)?|open_tree|write `\/proc\/sys\/net\/ipv4\/ip_unprivileged_port_start`)$/]] as const) {
    t.is(seen.name, 'ContainerError', `${what}: ${JSON.stringify(seen)}`)
    t.is(seen.code, 'EMFILE', what)
    t.regex(seen.stage, stage, what)
    t.regex(seen.message, /this Node process has run out of file descriptors/, what)
  }
  t.is(control.exitCode, 0, 'control: with its fds back the same process runs containers')
})
