// Escape attempts. Every attack runs INSIDE a container with the default hardening and must be
// refused with the expected errno; every one has a control that turns off just the protection
// under test and shows the same attempt then gets through, or at least past that protection to
// the kernel's own answer. The attacks are one static multi-call C program (fixtures/attack.c,
// `attack <name> [args]` prints `OK` or the errno's name), compiled in test.before and copied
// into a busybox root. Controls that could harm the host use inert arguments (a wrong reboot
// magic, an invalid kexec segment count, a 64-byte non-ELF "module", settimeofday(NULL, NULL));
// nothing here writes to core_pattern or sysrq-trigger. The only process run on the host is the
// program's `exchange-loop`, which renames two entries of a temp rootfs this file made.
// Tests are serial: they measure host-wide counts (mounts, fds, zombies, live containers).
import test, { type ExecutionContext } from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { randomBytes } from 'node:crypto'
import { execFileSync, spawn as spawnHost, spawnSync as spawnSyncHost, type ChildProcess } from 'node:child_process'

import { CAPABILITIES, run, spawn, type ContainerResult, type RunOptions } from '../index'
import { makeBusyboxRoot, ourMounts, removeRoot, settled, type Snapshot, expectNoLeak, warmUp, endSuite, ownedChild, eventually } from './helpers'
import { exchangeLoop, pathLookupWins, raceLoop, RACE_STARTS, RACES, removeWithLinks } from './races'

const SOURCE = path.join(__dirname, 'fixtures', 'attack.c')

let scratch = '' // host-only temp dir: the compiled program and a host-only marker; never bound
let attackBin = '' // the program on the host (only `exchange-loop` ever runs there)
let marker = '' // a file that exists on the host only
let root = '' // a busybox root with /attack, /bin/attack-suid (setuid root) and /mnt
let warm: Snapshot

/** The passwd makeBusyboxRoot writes: anything else in a container's /etc/passwd came from the host. */
const ROOTFS_PASSWD = 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n'

function copyAttack(into: string): void {
  fs.copyFileSync(attackBin, path.join(into, 'attack'))
  fs.chmodSync(path.join(into, 'attack'), 0o755)
}

/** A busybox root with the attack program at /attack; removed by the caller. */
function attackRoot(): string {
  const r = makeBusyboxRoot()
  copyAttack(r)
  fs.mkdirSync(path.join(r, 'mnt'))
  return r
}

test.before(async () => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-escape-host-'))
  marker = path.join(scratch, 'host-only-marker')
  fs.writeFileSync(marker, 'host secret\n')
  attackBin = path.join(scratch, 'attack')
  execFileSync('gcc', ['-static', '-O0', '-Wall', '-o', attackBin, SOURCE])
  root = attackRoot()
  // A setuid-root copy: owned by root (we are root), mode 4755, on the rootfs (not nosuid).
  fs.copyFileSync(attackBin, path.join(root, 'bin/attack-suid'))
  fs.chownSync(path.join(root, 'bin/attack-suid'), 0, 0)
  fs.chmodSync(path.join(root, 'bin/attack-suid'), 0o4755)
  warm = await warmUp([['/attack', 'noop'], { rootfs: root }])
})

test.after.always((t) => endSuite(t, warm, () => root && removeRoot(root), () => scratch && fs.rmSync(scratch, { recursive: true, force: true })))

/**
 * A serial test that makes containers and checks afterwards that none of them leaked anything,
 * also when the test failed (ava's assertions throw: a weakness found must not skip the leak check).
 */
function ctest(title: string, fn: (t: ExecutionContext) => Promise<void>): void {
  test.serial(title, async (t) => {
    const before = await settled(warm)
    let failure: unknown
    try {
      await fn(t)
    } catch (e) {
      failure = e
    }
    const after = await expectNoLeak(t, before)
    if (failure) t.log(`leak check after the failure: ${JSON.stringify({ before, after })}`)
    if (failure) throw failure
  })
}

function go(command: string[], options: RunOptions = {}): Promise<ContainerResult> {
  // The attacks' scratch space: a private tmpfs /tmp (a rootfs has none of lonely's, as docker).
  return run(command, { rootfs: root, reject: false, stdin: 'ignore', mounts: [{ type: 'tmpfs', target: '/tmp' }], ...options }) as Promise<ContainerResult>
}

/** Runs `attack <call> [args]` as PID 1 and returns what it printed (`OK`, `EPERM`...). */
async function attack(t: ExecutionContext, call: string, args: string[] = [], options: RunOptions = {}): Promise<string> {
  const r = await go(['/attack', call, ...args], options)
  t.is(r.exitCode, 0, `attack ${call} ${JSON.stringify(options)}: exit ${r.exitCode} ${r.signal ?? ''} ${r.stderr}`)
  return r.stdout
}

const readSysctl = (p: string): string | undefined => {
  try {
    return fs.readFileSync(p, 'utf8').trim()
  } catch {
    return undefined
  }
}

const hostMountinfo = () => fs.readFileSync('/proc/self/mountinfo', 'utf8')
/** The host's mounts on `/` itself (field 5 is the mount point). */
const mountsOnSlash = (info: string) => info.split('\n').filter((l) => l.split(' ')[4] === '/')

// ---------------------------------------------------------------- seccomp

interface SeccompCase {
  /** The attack's name in attack.c, and its arguments. */
  call: string
  args?: string[]
  what: string
  /** The capability the kernel asks for (for the "seccomp alone" and control rows). */
  cap: string
  /** The default profile's answer. */
  denied?: string
  /**
   * As docker: the profile allows the call to a container with `cap` (docker's per-capability
   * rule, `includes.caps` in moby's default.json), and this is what it answers then. Without
   * it, the default profile denies it with `cap` too.
   */
  withCap?: string[]
  /** What unconfined without `cap` may answer: shows whether capabilities are a second wall. */
  uncapped: string[]
  /** What unconfined + `cap` may answer (inert arguments: the kernel's own refusal is fine). */
  control: string[]
  skip?: string
}

const ioUringDisabled = readSysctl('/proc/sys/kernel/io_uring_disabled')

const SECCOMP: SeccompCase[] = [
  { call: 'mount', what: 'mount(2) of a tmpfs on /mnt', cap: 'SYS_ADMIN', withCap: ['OK'], uncapped: ['EPERM'], control: ['OK'] },
  { call: 'fsopen', what: 'fsopen("tmpfs") (the new mount API)', cap: 'SYS_ADMIN', withCap: ['OK'], uncapped: ['EPERM'], control: ['OK'] },
  { call: 'open-tree', what: 'open_tree(/tmp, OPEN_TREE_CLONE)', cap: 'SYS_ADMIN', withCap: ['OK'], uncapped: ['EPERM'], control: ['OK'] },
  { call: 'umount-proc', what: 'umount2("/proc", MNT_DETACH)', cap: 'SYS_ADMIN', withCap: ['OK'], uncapped: ['EPERM'], control: ['OK'] },
  { call: 'pivot-root', what: 'pivot_root("/tmp", "/tmp")', cap: 'SYS_ADMIN', uncapped: ['EPERM'], control: ['OK'] },
  { call: 'unshare-user', what: 'unshare(CLONE_NEWUSER) (needs no capability: seccomp is the only wall)', cap: 'SYS_ADMIN', withCap: ['OK'], uncapped: ['OK'], control: ['OK'] },
  { call: 'unshare-ns', what: 'unshare(CLONE_NEWNS)', cap: 'SYS_ADMIN', withCap: ['OK'], uncapped: ['EPERM'], control: ['OK'] },
  { call: 'setns-net', what: 'setns(/proc/self/ns/net, CLONE_NEWNET)', cap: 'SYS_ADMIN', withCap: ['OK'], uncapped: ['EPERM'], control: ['OK'] },
  { call: 'clone-newuser', what: 'raw clone(CLONE_NEWUSER)', cap: 'SYS_ADMIN', withCap: ['OK'], uncapped: ['OK'], control: ['OK'] },
  { call: 'clone3', what: 'clone3 (flags hidden in memory: ENOSYS so libc falls back to clone)', cap: 'SYS_ADMIN', denied: 'ENOSYS', withCap: ['OK'], uncapped: ['OK'], control: ['OK'] },
  { call: 'keyctl', what: 'keyctl(KEYCTL_GET_KEYRING_ID, session)', cap: 'SYS_ADMIN', uncapped: ['OK'], control: ['OK'] },
  { call: 'add-key', what: 'add_key("user") to the process keyring', cap: 'SYS_ADMIN', uncapped: ['OK'], control: ['OK'] },
  { call: 'request-key', what: 'request_key("user", absent key)', cap: 'SYS_ADMIN', uncapped: ['ENOKEY'], control: ['ENOKEY'] },
  { call: 'bpf', what: 'bpf(BPF_PROG_LOAD) with a garbage attr', cap: 'BPF', withCap: ['E2BIG', 'EINVAL'], uncapped: ['EPERM', 'E2BIG', 'EINVAL'], control: ['E2BIG', 'EINVAL'] },
  { call: 'name-to-handle', what: 'name_to_handle_at("/") (the shocker exploit\'s first step)', cap: 'DAC_READ_SEARCH', withCap: ['OK'], uncapped: ['OK'], control: ['OK'] },
  { call: 'kexec-load', what: 'kexec_load with 1000 segments (inert)', cap: 'SYS_BOOT', uncapped: ['EPERM', 'ENOSYS'], control: ['EINVAL', 'ENOSYS', 'EBUSY'] },
  { call: 'init-module', what: 'init_module with a 64-byte non-ELF image (inert)', cap: 'SYS_MODULE', withCap: ['ENOEXEC', 'ENOSYS', 'EINVAL', 'EBADMSG', 'EKEYREJECTED', 'ENOKEY'], uncapped: ['EPERM', 'ENOSYS'], control: ['ENOEXEC', 'ENOSYS', 'EINVAL', 'EBADMSG', 'EKEYREJECTED', 'ENOKEY'] },
  { call: 'finit-module', what: 'finit_module on a memfd of 64 zero bytes (inert)', cap: 'SYS_MODULE', withCap: ['ENOEXEC', 'ENOSYS', 'EINVAL', 'EBADMSG', 'EKEYREJECTED', 'ENOKEY'], uncapped: ['EPERM', 'ENOSYS'], control: ['ENOEXEC', 'ENOSYS', 'EINVAL', 'EBADMSG', 'EKEYREJECTED', 'ENOKEY'] },
  { call: 'userfaultfd', what: 'userfaultfd(UFFD_USER_MODE_ONLY)', cap: 'SYS_PTRACE', uncapped: ['OK'], control: ['OK'] },
  {
    call: 'io-uring', what: 'io_uring_setup', cap: 'SYS_ADMIN', uncapped: ['OK', 'EPERM'], control: ['OK'],
    skip: ioUringDisabled === '2' ? 'kernel.io_uring_disabled=2: the kernel refuses io_uring to everyone' : undefined,
  },
  { call: 'perf-event-open', what: 'perf_event_open (task clock of itself)', cap: 'PERFMON', withCap: ['OK'], uncapped: ['OK', 'EACCES'], control: ['OK'] },
  { call: 'reboot', what: 'reboot(2) with a wrong magic (inert)', cap: 'SYS_BOOT', withCap: ['EINVAL'], uncapped: ['EPERM'], control: ['EINVAL'] },
  { call: 'swapon', what: 'swapon of a missing file (inert)', cap: 'SYS_ADMIN', uncapped: ['EPERM'], control: ['ENOENT'] },
  { call: 'acct', what: 'acct of a missing file (inert)', cap: 'SYS_PACCT', withCap: ['ENOENT'], uncapped: ['EPERM'], control: ['ENOENT'] },
  { call: 'settimeofday', what: 'settimeofday(NULL, NULL) (sets nothing)', cap: 'SYS_TIME', withCap: ['OK'], uncapped: ['EPERM'], control: ['OK'] },
  { call: 'clock-settime', what: 'clock_settime(CLOCK_REALTIME) with an invalid tv_nsec (inert)', cap: 'SYS_TIME', withCap: ['EINVAL'], uncapped: ['EINVAL'], control: ['EINVAL'] },
  { call: 'socket', args: ['vsock'], what: 'socket(AF_VSOCK)', cap: 'SYS_ADMIN', uncapped: ['OK', 'EAFNOSUPPORT'], control: ['OK', 'EAFNOSUPPORT'] },
  { call: 'socket', args: ['alg'], what: 'socket(AF_ALG)', cap: 'SYS_ADMIN', uncapped: ['OK', 'EAFNOSUPPORT'], control: ['OK', 'EAFNOSUPPORT'] },
  { call: 'socket', args: ['vsock+hi'], what: 'socket(AF_VSOCK | 1<<32) (the kernel reads an int: a 64-bit compare let it through)', cap: 'SYS_ADMIN', uncapped: ['OK', 'EAFNOSUPPORT'], control: ['OK', 'EAFNOSUPPORT'] },
  { call: 'socket', args: ['alg+hi'], what: 'socket(AF_ALG | 1<<32)', cap: 'SYS_ADMIN', uncapped: ['OK', 'EAFNOSUPPORT'], control: ['OK', 'EAFNOSUPPORT'] },
  { call: 'personality', args: ['0x0400000'], what: 'personality(READ_IMPLIES_EXEC)', cap: 'SYS_ADMIN', uncapped: ['OK'], control: ['OK'] },
  { call: 'x32-getpid', what: 'getpid through the x32 ABI (nr | 0x40000000)', cap: 'SYS_ADMIN', uncapped: ['OK', 'ENOSYS'], control: ['OK', 'ENOSYS'] },
  { call: 'ia32-getpid', what: 'getpid through the i386 ABI (int $0x80)', cap: 'SYS_ADMIN', uncapped: ['OK', 'ENOSYS'], control: ['OK', 'ENOSYS'] },
]

for (const c of SECCOMP) {
  const denied = c.denied ?? 'EPERM'
  const withCap = c.withCap
    ? `; as docker, CAP_${c.cap} allows it (its per-capability rule): ${c.withCap.join('|')}`
    : `, with CAP_${c.cap} too`
  const title = `seccomp: ${c.what} is ${denied}${withCap}; control (unconfined + ${c.cap}): ${c.control.join('|')}`
  if (c.skip) {
    test.skip(`${title} — skipped: ${c.skip}`, () => {})
    continue
  }
  ctest(title, async (t) => {
    const args = c.args ?? []
    const results = {
      default: await attack(t, c.call, args),
      seccompOnly: await attack(t, c.call, args, { capAdd: [c.cap] }),
      capsOnly: await attack(t, c.call, args, { seccomp: 'unconfined' }),
      control: await attack(t, c.call, args, { seccomp: 'unconfined', capAdd: [c.cap] }),
    }
    t.log(JSON.stringify(results))
    t.is(results.default, denied, 'the default container')
    if (c.withCap) {
      t.true(c.withCap.includes(results.seccompOnly), `as docker, the default profile with CAP_${c.cap} allows it: ${results.seccompOnly}, expected one of ${c.withCap}`)
    } else {
      t.is(results.seccompOnly, denied, `with CAP_${c.cap} but the default profile: seccomp alone holds`)
    }
    t.true(c.uncapped.includes(results.capsOnly), `unconfined without CAP_${c.cap}: ${results.capsOnly}, expected one of ${c.uncapped}`)
    t.true(c.control.includes(results.control), `control: ${results.control}, expected one of ${c.control}`)
    t.not(results.control, denied, 'the control gets past the filter')
  })
}

ctest('seccomp: socket(AF_INET), socket(AF_UNIX) and personality(0) stay allowed (the filter is not a blanket deny)', async (t) => {
  t.is(await attack(t, 'socket', ['inet']), 'OK')
  t.is(await attack(t, 'socket', ['unix']), 'OK')
  t.is(await attack(t, 'personality', ['0']), 'OK')
  t.is(await attack(t, 'personality', ['0xffffffff']), 'OK', 'the query')
})

ctest('shocker: open_by_handle_at with a forged handle of the filesystem root is EPERM; as docker, capAdd DAC_READ_SEARCH allows it (its per-capability rule) and gets what the control gets; control (unconfined + DAC_READ_SEARCH) opens the HOST root', async (t) => {
  // The forged handle is ext4's (FILEID_INO32_GEN, inode 2): the marker's path is taken
  // relative to the root of the filesystem that holds the container's rootfs.
  const st = fs.statSync(root)
  const fsMount = hostMountinfo()
    .split('\n')
    .map((l) => l.split(' '))
    .filter((f) => f.length > 9 && `${st.dev >> 8 & 0xfff}:${st.dev & 0xff}` === f[2] && f[3] === '/')
    .map((f) => ({ at: f[4], type: f[f.indexOf('-') + 1] }))
    .filter((m) => root.startsWith(m.at))
    .sort((a, b) => b.at.length - a.at.length)[0]
  const sameFs = fs.statSync(marker).dev === st.dev
  const rel = fsMount && sameFs ? path.relative(fsMount.at, marker) : undefined
  const args = rel ? [rel] : []
  t.log(`rootfs filesystem: ${fsMount?.type} at ${fsMount?.at}; marker (host) ${marker}${rel ? `, relative ${rel}` : ''}`)

  t.is(await attack(t, 'shocker', args), 'EPERM', 'default')
  // As docker: the default profile allows open_by_handle_at to a container with the capability.
  const withCap = await attack(t, 'shocker', args, { capAdd: ['DAC_READ_SEARCH'] })
  t.is(await attack(t, 'shocker', args, { seccomp: 'unconfined' }), 'EPERM', 'capabilities alone hold')
  // The control: the marker is not reachable by path inside, but is through the forged handle.
  t.is(await attack(t, 'read-size', [`/${rel ?? 'x'}`], { seccomp: 'unconfined', capAdd: ['DAC_READ_SEARCH'] }), 'ENOENT')
  const control = await attack(t, 'shocker', args, { seccomp: 'unconfined', capAdd: ['DAC_READ_SEARCH'] })
  if (rel && /^ext[234]$/.test(fsMount?.type ?? '')) {
    t.is(control, 'OK host-marker-visible', 'with both protections off the container reaches the host filesystem')
  } else {
    t.not(control, 'EPERM', `control on ${fsMount?.type}: ${control}`)
  }
  t.is(withCap, control, 'as docker: CAP_DAC_READ_SEARCH widens the default profile by open_by_handle_at')
})

ctest('seccomp, as docker: a syscall number newer than the profile (1000, and 468, file_getattr of Linux 6.17) is ENOSYS so libc falls back; kexec_load and add_key (denied on purpose) and the x32 range stay EPERM; control (unconfined): 468 reaches the kernel', async (t) => {
  const nr = (n: number, o: RunOptions = {}) => attack(t, 'syscall', [String(n)], o)
  t.is(await nr(1000), 'ENOSYS', 'above the highest number the profile knows')
  t.is(await nr(1000, { capAdd: ['SYS_ADMIN'] }), 'ENOSYS', 'whatever the capabilities')
  t.is(await nr(1000, { seccomp: 'unconfined' }), 'ENOSYS', 'the kernel\'s own answer to a number it lacks: the same')
  t.is(await nr(468), 'ENOSYS', 'file_getattr is newer than the profile')
  const [major, minor] = os.release().split('.').map(Number)
  if (major > 6 || (major === 6 && minor >= 17)) {
    t.not(await nr(468, { seccomp: 'unconfined' }), 'ENOSYS', 'control: this kernel has file_getattr, so ENOSYS came from the filter')
  } else {
    t.log(`kernel ${os.release()} lacks file_getattr: no control for 468`)
  }
  t.is(await attack(t, 'kexec-load'), 'EPERM', 'denied on purpose')
  t.is(await attack(t, 'add-key'), 'EPERM', 'denied on purpose')
  t.is(await attack(t, 'add-key', [], { capAdd: ['SYS_ADMIN'] }), 'EPERM', 'denied on purpose, whatever the capabilities')
  if (process.arch === 'x64') {
    t.is(await nr(0x40000000 + 1000), 'EPERM', 'the x32 ABI is refused, whatever the number')
    t.is(await attack(t, 'x32-getpid'), 'EPERM')
  }
})

ctest('seccomp, as docker: capAdd SYS_ADMIN widens the default profile (noNewPrivileges as default): `mount -t tmpfs none /mnt` succeeds in the container; control: without the cap, EPERM', async (t) => {
  const script = 'mount -t tmpfs none /mnt && grep -c " /mnt " /proc/self/mountinfo'
  const mounted = await go(['/bin/sh', '-c', script], { capAdd: ['SYS_ADMIN'] })
  t.is(mounted.exitCode, 0, mounted.stderr)
  t.is(mounted.stdout, '1', 'a mount on /mnt, in the container\'s own mount namespace')
  t.is(statusOf(await attack(t, 'status', [], { capAdd: ['SYS_ADMIN'] })).NoNewPrivs, '1', 'with no_new_privs')
  t.is(await attack(t, 'mount', [], { capAdd: ['SYS_ADMIN'] }), 'OK')
  // The control: the same without the capability.
  const refused = await go(['/bin/sh', '-c', script])
  t.not(refused.exitCode, 0)
  t.regex(refused.stderr, /permission denied|not permitted/i, 'busybox words EPERM as "permission denied (are you root?)"')
  t.is(await attack(t, 'mount'), 'EPERM', 'the errno, from the same call')
  // What stays ours whatever the capabilities (the tty test checks TIOCSTI with SYS_ADMIN).
  t.is(await attack(t, 'socket', ['vsock'], { capAdd: ['SYS_ADMIN'] }), 'EPERM')
  t.is(await attack(t, 'keyctl', [], { capAdd: ['SYS_ADMIN'] }), 'EPERM')
})

// ---------------------------------------------------------------- terminal injection

ctest('tty: TIOCSTI, TIOCSTI|1<<32 and TIOCLINUX on the container\'s terminal are EPERM; control (unconfined) injects a character', async (t) => {
  const legacy = readSysctl('/proc/sys/dev/tty/legacy_tiocsti')
  t.log(`dev.tty.legacy_tiocsti=${legacy ?? 'absent'}`)
  const script = '[ -t 0 ] && echo in-tty; /attack tiocsti; /attack tiocsti-high; /attack tioclinux'
  const inTty = (o: RunOptions) => go(['/bin/sh', '-c', script], { tty: true, input: '', stdin: undefined, ...o })
  const lines = (r: ContainerResult) => r.stdout.split('\r\n')

  const denied = await inTty({})
  t.deepEqual(lines(denied), ['in-tty', 'EPERM', 'EPERM', 'EPERM'])
  const withAdmin = await inTty({ capAdd: ['SYS_ADMIN'] })
  t.deepEqual(lines(withAdmin), ['in-tty', 'EPERM', 'EPERM', 'EPERM'], 'the terminal guard holds with CAP_SYS_ADMIN')

  // The control: with legacy_tiocsti=1 the kernel lets a process push input into its own
  // controlling terminal (no capability needed); with 0 it wants CAP_SYS_ADMIN (else EIO).
  const control = await inTty(legacy === '0' ? { seccomp: 'unconfined', capAdd: ['SYS_ADMIN'] } : { seccomp: 'unconfined' })
  const [tty, sti, stiHigh, linux] = lines(control)
  t.is(tty, 'in-tty')
  // The injected '#' is echoed by the line discipline before the program's own `OK`.
  t.is(sti, '#OK', 'TIOCSTI injected a character into the terminal')
  t.is(stiHigh, '#OK', 'TIOCSTI with bit 32 set is the same ioctl to the tty layer')
  t.not(linux, 'EPERM', `TIOCLINUX reaches the tty layer: ${linux} (a pty is not a VT)`)
  t.log(`control: TIOCSTI ${sti}, TIOCSTI|1<<32 ${stiHigh}, TIOCLINUX ${linux}`)
})

// ---------------------------------------------------------------- capabilities

const statusOf = (out: string) => Object.fromEntries(out.split('\n').map((l) => l.split(':\t')))

// Docker's 14, and 12 (without FSETID and SETFCAP: the setuid guard) when the rootfs or a bind is writable.
const DOCKER_CAPS = '00000000a80425fb'
const GUARDED_CAPS = '00000000280425eb'

ctest('capabilities: docker\'s 14 (0xa80425fb) effective/permitted/bounding with a read-only rootfs, 12 with a writable one (no FSETID, SETFCAP), none inheritable/ambient, no_new_privs, seccomp filter mode', async (t) => {
  const expected = (caps: string) => ({
    CapInh: '0000000000000000',
    CapPrm: caps,
    CapEff: caps,
    CapBnd: caps,
    CapAmb: '0000000000000000',
    NoNewPrivs: '1',
    Seccomp: '2',
    Seccomp_filters: '1', // the default profile is one program
  })
  t.deepEqual(statusOf(await attack(t, 'status', [], { readonlyRoot: true })), expected(DOCKER_CAPS))
  t.deepEqual(statusOf(await attack(t, 'status')), expected(GUARDED_CAPS))
  t.deepEqual(statusOf(await attack(t, 'status', [], { allowSetuid: true })), expected(DOCKER_CAPS), 'allowSetuid: docker\'s')
  const named = statusOf(await attack(t, 'status', [], { capAdd: ['FSETID'] }))
  t.is(named.CapEff, (0x280425eb + 0x10).toString(16).padStart(16, '0'), 'named in capAdd, FSETID is the caller\'s choice')
})

ctest('capabilities: capDrop ALL gives 0, capAdd SYS_ADMIN adds bit 21, uid 1000 has none effective; controls for no_new_privs and seccomp', async (t) => {
  const none = statusOf(await attack(t, 'status', [], { capDrop: ['ALL'] }))
  for (const k of ['CapInh', 'CapPrm', 'CapEff', 'CapBnd', 'CapAmb']) t.is(none[k], '0000000000000000', `capDrop ALL: ${k}`)
  const admin = statusOf(await attack(t, 'status', [], { capAdd: ['SYS_ADMIN'] }))
  t.is(admin.CapEff, (0x280425eb + 2 ** 21).toString(16).padStart(16, '0'))
  t.is(admin.CapBnd, admin.CapEff)
  const user = statusOf(await attack(t, 'status', [], { uid: 1000, gid: 1000 }))
  t.is(user.CapEff, '0000000000000000', 'uid 1000: effective')
  t.is(user.CapPrm, '0000000000000000', 'uid 1000: permitted')
  t.is(user.CapAmb, '0000000000000000', 'uid 1000: ambient')
  t.is(user.CapBnd, GUARDED_CAPS, 'the bounding set still caps what a setuid binary could regain')
  t.is(statusOf(await attack(t, 'status', [], { noNewPrivileges: false })).NoNewPrivs, '0', 'control: noNewPrivileges false')
  const unconfined = statusOf(await attack(t, 'status', [], { seccomp: 'unconfined' }))
  t.is(unconfined.Seccomp, '0', 'control: seccomp unconfined')
})

// ---------------------------------------------------------------- devices

/** The first block device the host itself can open read-only (the test's probe opens and closes it, nothing more). */
function openableBlockDevice(): { name: string; major: number; minor: number; tried: string[] } | undefined {
  const tried: string[] = []
  let names: string[] = []
  try {
    names = fs.readdirSync('/sys/class/block')
  } catch {
    return undefined
  }
  // Real disks first, loop devices last.
  names.sort((a, b) => Number(a.startsWith('loop')) - Number(b.startsWith('loop')) || a.localeCompare(b))
  for (const name of names) {
    const [major, minor] = fs.readFileSync(`/sys/class/block/${name}/dev`, 'utf8').trim().split(':').map(Number)
    try {
      fs.closeSync(fs.openSync(`/dev/${name}`, 'r'))
      return { name, major, minor, tried }
    } catch (e) {
      tried.push(`${name} (${major}:${minor}): ${(e as NodeJS.ErrnoException).code}`)
    }
  }
  return undefined
}

const blockDevice = openableBlockDevice()

;(blockDevice ? ctest : (title: string) => test.skip(`${title} — skipped: the host itself can open no block device`, () => {}))(
  'devices: a block device made with mknod (CAP_MKNOD is in docker\'s set) cannot be opened: /dev is read-only, every writable filesystem nodev; controls: capDrop MKNOD refuses mknod, a non-nodev tmpfs opens it',
  async (t) => {
    const { name, major, minor, tried } = blockDevice!
    t.log(`host: ${tried.join('; ') || 'the first one opened'}; using ${name} (${major}:${minor}), which host root can open`)
    const script = (dir: string) => `/attack mknod ${dir}/lonely-blk b ${major} ${minor}; /attack read-dev ${dir}/lonely-blk`
    const [madeDev, openDev] = (await go(['/bin/sh', '-c', script('/dev')])).stdout.split('\n')
    const [madeRoot, openRoot] = (await go(['/bin/sh', '-c', script('')])).stdout.split('\n')
    const inTmp = (await go(['/bin/sh', '-c', script('/tmp')])).stdout.split('\n')
    // The default host-mirror root too: its /dev is a tmpfs that must allow device nodes.
    const mirror = await run(['/bin/sh', '-c', `mknod /dev/lonely-blk b ${major} ${minor} && exec 3</dev/lonely-blk && echo opened`], { reject: false, stdin: 'ignore' })
    const control = await attack(t, 'mknod', ['/tmp/lonely-blk', 'b', String(major), String(minor)], { capDrop: ['MKNOD'] })
    t.log(`mknod+open ${name}: in /dev ${madeDev}, ${openDev}; in the rootfs ${madeRoot}, ${openRoot}; in /tmp ${inTmp.join(', ')}; mirror root: ${mirror.stdout || mirror.stderr}; capDrop MKNOD: ${control}`)
    t.is(madeDev, 'EROFS', '/dev, where nodes open, is read-only once its six devices exist')
    t.is(madeRoot, 'OK', 'mknod itself is allowed by CAP_MKNOD, as in docker')
    t.deepEqual(inTmp, ['OK', 'EACCES'], '/tmp is nodev')
    t.is(control, 'EPERM', 'control: without CAP_MKNOD there is no node to open')
    // Every filesystem a container can write is nodev (its six devices are bound from the host):
    // a node it makes cannot be opened. docker's devices cgroup answers EPERM; nodev answers EACCES.
    t.is(openDev, 'ENOENT', `WEAKNESS: the container opened host block device ${major}:${minor} (${name}) through a node it made in /dev: ${openDev}`)
    t.is(openRoot, 'EACCES', `WEAKNESS: the container opened host block device ${major}:${minor} (${name}) through a node it made in its rootfs: ${openRoot}`)
    t.not(mirror.stdout, 'opened', `WEAKNESS: the default mirror root opened ${name} too`)
    // Control: on a filesystem mounted without nodev (possible only with SYS_ADMIN and seccomp off,
    // inside the container's own mount namespace) the same node opens: nodev is what stops it.
    const unguarded = await go(['/bin/sh', '-c', `mkdir -p /tmp/d && mount -t tmpfs none /tmp/d && ${script('/tmp/d')}`], { capAdd: ['SYS_ADMIN'], seccomp: 'unconfined' })
    t.deepEqual(unguarded.stdout.split('\n').map((l) => l.split(' ')[0]), ['OK', 'OK'], unguarded.stderr)
  },
)

// ---------------------------------------------------------------- no_new_privs

ctest('no_new_privs and a nosuid rootfs: a setuid-root binary run as uid 1000 stays euid 1000 with either; control: both off (noNewPrivileges false, allowSetuid) gets euid 0', async (t) => {
  const st = fs.statSync(path.join(root, 'bin/attack-suid'))
  t.is(st.uid, 0)
  t.is(st.mode & 0o7777, 0o4755)
  const r = await go(['/bin/attack-suid', 'ids'], { uid: 1000, gid: 1000 })
  t.is(r.stdout, 'uid=1000 euid=1000', r.stderr)
  const nosuid = await go(['/bin/attack-suid', 'ids'], { uid: 1000, gid: 1000, noNewPrivileges: false })
  t.is(nosuid.stdout, 'uid=1000 euid=1000', 'without no_new_privs the rootfs is still nosuid')
  const control = await go(['/bin/attack-suid', 'ids'], { uid: 1000, gid: 1000, noNewPrivileges: false, allowSetuid: true })
  t.is(control.stdout, 'uid=1000 euid=0', 'control: the setuid bit works with both protections off')
})

// ---------------------------------------------------------------- setuid plants in host directories

/** Every file under `dir` (on the host) with a setuid or setgid bit. */
function setidFiles(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => (fs.lstatSync(path.join(dir, f)).mode & 0o6000) !== 0)
}

/** `attack plant DIR` lines (`how ERRNO|OK mode|-`) whose file kept a setuid or setgid bit. */
const planted = (stdout: string) => stdout.split('\n').filter((l) => /^\S+ \S+ [0-7]+$/.test(l) && (parseInt(l.split(' ')[2], 8) & 0o6000) !== 0)

ctest('a root container cannot leave a setuid or setgid file in a writable bind or rootfs (12 ways: creat, open, openat, openat2, O_TMPFILE, mknod(at), chmod, fchmod, fchmodat(2)); control allowSetuid: every way works', async (t) => {
  const shared = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-shared-'))
  fs.mkdirSync(path.join(root, 'plant'), { recursive: true })
  try {
    const mounts = [{ type: 'bind' as const, source: shared, target: '/mnt' }]
    for (const [where, dir] of [['bind', '/mnt'], ['rootfs', '/plant']]) {
      const r = await go(['/attack', 'plant', dir], { mounts })
      t.is(r.stdout.split('\n').length, 12, r.stdout + r.stderr)
      t.deepEqual(planted(r.stdout), [], `${where}: ${r.stdout}`)
    }
    t.deepEqual(setidFiles(shared), [], 'host view of the bind')
    t.deepEqual(setidFiles(path.join(root, 'plant')), [], 'host view of the rootfs')
    const control = await go(['/attack', 'plant', '/mnt'], { mounts, allowSetuid: true })
    t.is(planted(control.stdout).length, 12, `control: ${control.stdout}`)
    t.is(setidFiles(shared).length, 12, 'control: the host sees them')
    // Scoped to host directories: a private tmpfs (with a read-only rootfs and no bind) keeps them.
    const scratchOnly = await go(['/attack', 'plant', '/tmp'], { readonlyRoot: true })
    t.is(planted(scratchOnly.stdout).length, 12, `a read-only rootfs, nothing of the host writable: ${scratchOnly.stdout}`)
  } finally {
    fs.rmSync(shared, { recursive: true, force: true })
    fs.rmSync(path.join(root, 'plant'), { recursive: true, force: true })
  }
})

ctest('writing into an existing setuid-root file of a bind clears its bit (no CAP_FSETID); control allowSetuid: the bit stays', async (t) => {
  const shared = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-shared-'))
  try {
    const file = path.join(shared, 'tool')
    const mounts = [{ type: 'bind' as const, source: shared, target: '/mnt' }]
    for (const [options, mode] of [[{}, '755'], [{ allowSetuid: true }, '4755']] as const) {
      fs.writeFileSync(file, 'binary')
      fs.chmodSync(file, 0o4755)
      const r = await go(['/attack', 'overwrite', '/mnt/tool'], { mounts, ...options })
      t.is(r.stdout, mode, `${JSON.stringify(options)}: ${r.stderr}`)
      t.is((fs.statSync(file).mode & 0o7777).toString(8), mode, 'on the host')
    }
  } finally {
    fs.rmSync(shared, { recursive: true, force: true })
  }
})

// ---------------------------------------------------------------- masked and read-only paths

const MASKED_FILES = ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/proc/interrupts', '/proc/latency_stats', '/proc/timer_stats', '/proc/sched_debug']

ctest('masked paths: /proc/kcore, keys, timer_list, interrupts... read empty, /sys/firmware is empty; control maskedPaths [] shows host content', async (t) => {
  const present = MASKED_FILES.filter((p) => fs.existsSync(p))
  const missing = MASKED_FILES.filter((p) => !fs.existsSync(p))
  t.log(`on this kernel: ${present.join(', ')}; absent (not checked): ${missing.join(', ') || 'none'}`)
  t.true(present.length > 0)
  let shown = 0
  for (const p of present) {
    t.is(await attack(t, 'read-size', [p]), 'bytes=0', `${p} is masked`)
    const control = await attack(t, 'read-size', [p], { maskedPaths: [] })
    t.log(`${p}: masked bytes=0, control ${control}`)
    if (/^bytes=[1-9]/.test(control)) shown++
  }
  t.true(shown > 0, 'control: at least one masked file has content once unmasked')
  t.is(await attack(t, 'ls', ['/sys/firmware']), 'EMPTY')
  const host = fs.readdirSync('/sys/firmware')
  if (host.length) {
    t.deepEqual((await attack(t, 'ls', ['/sys/firmware'], { maskedPaths: [] })).split(' ').sort(), host.sort(), 'control: the host\'s /sys/firmware')
  } else {
    t.log('the host\'s /sys/firmware is empty: no control for it')
  }
})

/** The container's own mountinfo line for `at`, from `cat /proc/self/mountinfo`. */
async function containerMount(t: ExecutionContext, at: string, options: RunOptions = {}): Promise<string[] | undefined> {
  const r = await go(['/bin/cat', '/proc/self/mountinfo'], options)
  t.is(r.exitCode, 0, r.stderr)
  return r.stdout.split('\n').map((l) => l.split(' ')).filter((f) => f[4] === at).pop()
}

ctest('read-only paths: open(/proc/sys/kernel/core_pattern, O_WRONLY) is EROFS, with CAP_SYS_ADMIN too (which may remount it, as under docker); control readonlyPaths [] leaves /proc/sys writable (checked, never written)', async (t) => {
  const file = '/proc/sys/kernel/core_pattern'
  t.is(await attack(t, 'open-wr', [file]), 'EROFS')
  t.is(await attack(t, 'access-w', [file]), 'EROFS')
  // (A container given CAP_SYS_ADMIN may remount it, as docker's profile allows mount then: see the README.)
  t.is(await attack(t, 'open-wr', [file], { capAdd: ['SYS_ADMIN'] }), 'EROFS', 'the bind is read-only for CAP_SYS_ADMIN too')
  const ro = await containerMount(t, '/proc/sys')
  t.truthy(ro, 'a mount on /proc/sys')
  t.true(ro![5].split(',').includes('ro'), `its per-mount options: ${ro?.[5]}`)
  // The control: no write, only `test -w` (access W_OK) and the mount table.
  for (const o of [{ readonlyPaths: [] }, { readonlyPaths: [], capAdd: ['SYS_ADMIN'] }] as RunOptions[]) {
    t.is(await containerMount(t, '/proc/sys', o), undefined, `${JSON.stringify(o)}: no read-only mount on /proc/sys`)
    const proc = await containerMount(t, '/proc', o)
    t.true(proc![5].split(',').includes('rw'), `${JSON.stringify(o)}: /proc is ${proc?.[5]}`)
    t.is(await attack(t, 'access-w', [file], o), 'OK', `${JSON.stringify(o)}: core_pattern is writable for container root: the read-only bind is the only wall`)
  }
})

const sysrq = fs.existsSync('/proc/sysrq-trigger')
;(sysrq ? ctest : (title: string) => test.skip(`${title} — skipped: /proc/sysrq-trigger does not exist on this kernel (CONFIG_MAGIC_SYSRQ off)`, () => {}))(
  'read-only paths: open(/proc/sysrq-trigger, O_WRONLY) is EROFS; control readonlyPaths [] unmounts the read-only bind (checked in mountinfo, never written)',
  async (t) => {
    t.is(await attack(t, 'open-wr', ['/proc/sysrq-trigger']), 'EROFS')
    const ro = await containerMount(t, '/proc/sysrq-trigger')
    t.true(ro![5].split(',').includes('ro'))
    t.is(await containerMount(t, '/proc/sysrq-trigger', { readonlyPaths: [] }), undefined, 'control: no read-only bind')
  },
)

// ---------------------------------------------------------------- host processes

/** A host process only this test knows by its argv: `sleep 1000.<random>`. */
async function sentinel(t: ExecutionContext): Promise<{ child: ChildProcess; needle: string; stop: () => Promise<void> }> {
  const arg = `1000.${randomBytes(4).readUInt32BE(0)}`
  const child = spawnHost('sleep', [arg], { stdio: 'ignore' })
  await new Promise<void>((resolve, reject) => child.once('spawn', resolve).once('error', reject))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
  }
  t.teardown(stop)
  return { child, needle: `sleep ${arg}`, stop }
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

ctest('host processes: a host sentinel is invisible inside and survives kill(-1, SIGKILL) from inside; control pid namespace off lists it', async (t) => {
  const s = await sentinel(t)
  try {
    const pid = s.child.pid!
    t.deepEqual((await attack(t, 'scan', [s.needle])).split('\n'), ['pids=1', 'NOTFOUND'], 'only PID 1 exists inside')
    t.is(await attack(t, 'kill-all'), 'ESRCH', 'kill(-1) finds nobody to kill in the pid namespace')
    await new Promise((r) => setTimeout(r, 50))
    t.true(alive(pid) && s.child.exitCode === null && s.child.signalCode === null, 'the sentinel is alive')
    // The control only looks: it neither kills nor traces.
    const control = (await attack(t, 'scan', [s.needle], { namespaces: { pid: false } })).split('\n')
    t.true(control.includes(`FOUND ${pid}`), `control: ${control.join(', ')}`)
    t.true(alive(pid))
  } finally {
    await s.stop()
  }
})

ctest('host processes: ptrace(PTRACE_ATTACH) and process_vm_readv on a host pid are ESRCH (not in the pid namespace); control pid namespace off sees that pid', async (t) => {
  const s = await sentinel(t)
  try {
    const pid = String(s.child.pid!)
    t.is(await attack(t, 'ptrace', [pid]), 'ESRCH')
    t.is(await attack(t, 'vm-readv', [pid]), 'ESRCH')
    t.true(alive(s.child.pid!), 'the sentinel is alive')
    const control = (await attack(t, 'scan', [s.needle], { namespaces: { pid: false } })).split('\n')
    t.true(control.includes(`FOUND ${pid}`), 'control: the same pid names the sentinel once the pid namespace is off (not traced)')
  } finally {
    await s.stop()
  }
})

ctest('fds: PID 1 holds only 0, 1, 2 (and the fd of its own listing); control: the lister shows an extra fd it opened', async (t) => {
  t.is(await attack(t, 'fds'), '0 1 2 3')
  t.is(await attack(t, 'fds', ['extra']), '0 1 2 3 4', 'control: an extra open fd is seen')
  const tty = await go(['/attack', 'fds'], { tty: true, input: '', stdin: undefined })
  t.is(tty.stdout, '0 1 2 3', 'with a tty too')
})

// ---------------------------------------------------------------- rootfs symlinks

ctest('rootfs: /proc, /sys, /dev or /dev/null as a symlink is refused (RangeError naming rootfs); control: the same root without the symlink runs', async (t) => {
  for (const link of ['proc', 'sys', 'dev', 'dev/null']) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-escape-links-'))
    try {
      fs.chmodSync(dir, 0o755)
      copyAttack(dir)
      for (const d of ['proc', 'sys', 'dev']) if (d !== link) fs.mkdirSync(path.join(dir, d))
      fs.symlinkSync(`/${link}`, path.join(dir, link))
      await t.throwsAsync(run(['/attack', 'noop'], { rootfs: dir, stdin: 'ignore' }), {
        instanceOf: RangeError,
        message: new RegExp(`Option \`rootfs\` has /${link} as a symlink`),
      }, `/${link} -> /${link}`)
      fs.unlinkSync(path.join(dir, link))
      if (link !== 'dev/null') fs.mkdirSync(path.join(dir, link))
      const r = await run(['/attack', 'noop'], { rootfs: dir, stdin: 'ignore', reject: false })
      t.is(r.stdout, 'OK', `control without the /${link} symlink: ${r.stderr}`)
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
    }
  }
})

// ---------------------------------------------------------------- races

ctest('race: renameat2(RENAME_EXCHANGE) of a bind target with a symlink to / never lands the bind outside the rootfs (100 containers)', async (t) => {
  const dir = attackRoot()
  const source = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-escape-bind-'))
  fs.writeFileSync(path.join(source, 'bound-marker'), 'bound\n')
  fs.mkdirSync(path.join(dir, 'target'))
  fs.symlinkSync('/', path.join(dir, 'evil'))
  const loop = await exchangeLoop(attackBin, dir, 'target', 'evil')
  const counts: Record<string, number> = {}
  const count = (k: string) => (counts[k] = (counts[k] ?? 0) + 1)
  const slashBefore = mountsOnSlash(hostMountinfo())
  const oursBefore = ourMounts()
  let containers = 0
  try {
    for (let attempt = 0; containers < 100 && attempt < 100000; attempt++) {
      let r: ContainerResult
      try {
        r = await go(['/bin/cat', '/proc/self/mountinfo'], { rootfs: dir, mounts: [{ type: 'bind', source, target: '/target' }] })
      } catch (e) {
        // Validation saw /target as the symlink: refused before any process existed.
        t.true(e instanceof RangeError && /points out of the rootfs/.test((e as Error).message), String(e))
        count('refused by validation (RangeError)')
        continue
      }
      containers++
      const hostNow = hostMountinfo()
      t.is(ourMounts(), oursBefore, 'our mounts after this run')
      t.deepEqual(mountsOnSlash(hostNow), slashBefore, 'nothing mounted on the host\'s /')
      t.false(hostNow.includes(source) || hostNow.includes(dir), 'no host mount of the bind source or the rootfs')
      if (r.exitCode !== 0) {
        t.truthy((r as { stage?: string }).stage, `a failure is a clean setup failure: ${r.stderr}`)
        count(`failed cleanly: ${(r as { stage?: string }).stage} ${(r as { code?: string }).code}`)
        continue
      }
      // The container's mountinfo: the bind's root (field 4) is the source's path on its filesystem.
      const bind = r.stdout.split('\n').map((l) => l.split(' ')).find((f) => f[3] && source.endsWith(f[3]) && f[3] !== '/')
      t.truthy(bind, `the bind is in the container's own mount tree:\n${r.stdout}`)
      const at = bind?.[4] ?? 'nowhere'
      t.true(['/target', '/evil', '/'].includes(at), `the bind landed at ${at}`)
      count(`landed at ${at}`)
    }
  } finally {
    const swaps = await loop.stop()
    t.log(`exchange loop: ${swaps.trim() || 'killed'}`)
    removeWithLinks(dir, ['target', 'evil'])
    fs.rmSync(source, { recursive: true, force: true })
  }
  t.log(JSON.stringify(counts, null, 1))
  t.is(containers, 100, 'enough runs got past validation')
})

ctest('race: swapping the rootfs\'s /proc with a symlink to / after validation never gives the container the host\'s sysfs or any host path', async (t) => {
  // The CVE-2019-16884/19921 class: a second writer (another container sharing the rootfs
  // through a volume, here the host-side loop) swaps /proc between the check and the mounts.
  const hostNet = fs.readdirSync('/sys/class/net').filter((n) => n !== 'lo')
  if (!hostNet.length) {
    t.log('the host has no network interface but lo: its sysfs would look like the container\'s; nothing to detect')
    t.pass()
    return
  }
  const dir = attackRoot()
  fs.symlinkSync('/', path.join(dir, 'proc-evil'))
  const loop = await exchangeLoop(attackBin, dir, 'proc', 'proc-evil')
  const counts: Record<string, number> = {}
  const count = (k: string) => (counts[k] = (counts[k] ?? 0) + 1)
  const leaks: string[] = []
  const oursBefore = ourMounts()
  let containers = 0
  try {
    for (let attempt = 0; containers < 100 && attempt < 100000; attempt++) {
      let r: ContainerResult
      try {
        r = await go(['/bin/sh', '-c', 'echo sys: $(ls /sys/class/net); echo proc-sys: $(ls /proc/sys/class/net 2>/dev/null)'], { rootfs: dir })
      } catch (e) {
        t.true(e instanceof RangeError && /has \/proc as a symlink/.test((e as Error).message), String(e))
        count('refused by validation (RangeError)')
        continue
      }
      containers++
      t.is(ourMounts(), oursBefore, 'our mounts after this run')
      const stage = (r as { stage?: string }).stage
      if (stage) {
        count(`failed cleanly: ${stage} ${(r as { code?: string }).code} ${(r as { path?: string }).path}`)
        continue
      }
      const seen = r.stdout.split(/\s+/).filter((w) => hostNet.includes(w))
      if (seen.length) {
        leaks.push(r.stdout.replace(/\n/g, '; '))
        count('ran and saw the HOST sysfs')
      } else {
        count('ran, own sysfs only')
      }
    }
  } finally {
    const swaps = await loop.stop()
    t.log(`exchange loop: ${swaps.trim() || 'killed'}`)
    removeWithLinks(dir, ['proc', 'proc-evil'])
  }
  t.log(JSON.stringify(counts, null, 1))
  t.true(containers >= 20, `${containers} runs got past validation`)
  t.deepEqual(leaks, [], 'WEAKNESS: the read-only bind of /proc/sys was cloned from a path resolved against the host root (open_tree without RESOLVE_IN_ROOT): the host\'s /sys landed in the container')
})

// The setup races (races.ts), as root; rootless.spec.ts runs them as a non-root user.
for (const race of RACES) {
  ctest(`race (${RACE_STARTS} starts): ${race.title}`, async (t) => {
    const r = race.setup(attackRoot)
    const loop = await exchangeLoop(attackBin, r.dir, r.a, r.b)
    let counts: Record<string, number> = {}
    let control = 0
    try {
      control = pathLookupWins(r.lookup)
      counts = await raceLoop(run as never, r.command, r.options, r.judge)
    } finally {
      t.log(`exchange loop: ${(await loop.stop()).trim() || 'killed'}`)
      r.cleanup()
    }
    t.log(JSON.stringify(counts, null, 1))
    t.log(`control: ${control} of 20000 lookups by path met what the racer swapped in`)
    t.true(control > 0, 'control: the racer changes what a lookup by path finds')
    t.deepEqual(Object.keys(counts).filter((k) => k.startsWith('WIN') || k.startsWith('ERROR')), [])
    t.true((counts[r.ran] ?? 0) >= RACE_STARTS / 20, `enough starts ran their check (${counts[r.ran] ?? 0})`)
  })
}

ctest('readonlyPaths: a rootfs symlink (/data -> /etc) must not bind the host\'s /etc into the container', async (t) => {
  const dir = attackRoot()
  try {
    fs.symlinkSync('/etc', path.join(dir, 'data'))
    const hostPasswd = fs.readFileSync('/etc/passwd', 'utf8')
    t.not(hostPasswd, ROOTFS_PASSWD, 'precondition: the host\'s passwd differs from the rootfs\'s')
    const control = await go(['/bin/cat', '/etc/passwd'], { rootfs: dir, stripFinalNewline: false })
    t.is(control.stdout, ROOTFS_PASSWD, 'without readonlyPaths: the rootfs\'s own /etc')
    let r: ContainerResult | undefined
    try {
      r = await go(['/bin/sh', '-c', 'cat /etc/passwd; grep " /etc " /proc/self/mountinfo'], { rootfs: dir, readonlyPaths: ['/data'], stripFinalNewline: false })
    } catch (e) {
      t.log(`refused: ${(e as Error).message}`)
      t.true(e instanceof RangeError, String(e))
      return
    }
    if ((r as { stage?: string }).stage) {
      t.log(`refused in setup: ${r.stderr}`)
      return
    }
    t.false(
      r.stdout.includes(hostPasswd),
      `WEAKNESS: readonlyPaths ['/data'] with data -> /etc put the HOST's /etc (read-only) at the container's /etc:\n${r.stdout.slice(r.stdout.indexOf(hostPasswd) + hostPasswd.length)}`,
    )
    t.true(r.stdout.startsWith(ROOTFS_PASSWD))
  } finally {
    removeWithLinks(dir, ['data'])
  }
})

// Rootless: __test__/rootless.spec.ts runs this suite's system-call, terminal and masked-path
// attacks as uid 65534, plus "uid 0 inside is not uid 0 outside".



/** Runs `code` in a fresh Node process (never this one: the pollution would reach every test) with the library as `lib`. */
function inFreshNode(code: string): string {
  const script = `const lib = require(${JSON.stringify(path.join(__dirname, '..', 'index.ts'))}); (async () => { ${code} })().catch((e) => { console.error(e); process.exit(1) })`
  return execFileSync(process.execPath, ['--import', 'tsx', '-e', script], { encoding: 'utf8', timeout: 60_000 })
}

test.serial('prototype pollution (Object.prototype.seccomp = "unconfined", capAdd, noNewPrivileges, maskedPaths, namespaces) turns nothing off; control: the same values as own options do', (t) => {
  const status = `const r = await lib.run(['/bin/sh', '-c', 'grep -E "^(CapEff|NoNewPrivs|Seccomp):" /proc/self/status; head -c 4 /proc/timer_list | wc -c; ls /proc | grep -c "^[0-9]"'], OPTIONS); console.log(JSON.stringify(r.stdout))`
  const relaxed = "{ seccomp: 'unconfined', capAdd: ['ALL'], noNewPrivileges: false, maskedPaths: [], namespaces: { pid: false } }"
  const polluted = JSON.parse(inFreshNode(`Object.assign(Object.prototype, ${relaxed}); Array.prototype[0] = 'ALL'; ${status.replace('OPTIONS', '{}')}`))
  const lines = polluted.split('\n')
  t.is(lines[0], 'CapEff:\t00000000a80425fb', polluted)
  t.is(lines[1], 'NoNewPrivs:\t1')
  t.is(lines[2], 'Seccomp:\t2')
  t.is(lines[3], '0', '/proc/timer_list still masked')
  t.true(Number(lines[4]) < 10, `its own PID namespace: the shell's pipeline only (${lines[4]})`)
  const control = JSON.parse(inFreshNode(status.replace('OPTIONS', relaxed))).split('\n')
  t.not(control[0], 'CapEff:\t00000000a80425fb', 'control: capAdd ALL as an own option')
  t.is(control[1], 'NoNewPrivs:\t0')
  t.is(control[2], 'Seccomp:\t0')
  t.not(control[3], '0', 'control: /proc/timer_list unmasked')
  t.true(Number(control[4]) >= 10, `control: the host PID namespace (${control[4]})`)
})

ctest('a non-root container keeps its parent-death signal (setresuid clears it; it is armed again after); control: a credential change of its own clears it', async (t) => {
  t.is(await attack(t, 'pdeathsig'), '9', 'root: SIGKILL')
  t.is(await attack(t, 'pdeathsig', [], { uid: 1000, gid: 1000 }), '9', 'uid 1000: armed again after the credential change')
  t.is(await attack(t, 'pdeathsig', ['1000']), '0', 'control: setresuid(1000) inside clears it')
})

test.serial('Node stays dumpable after containers with another uid (the vfork child shares its mm, and a credential change marks an mm non-dumpable); control: a fresh Node is dumpable', (t) => {
  const probe = (options: string) => inFreshNode(`const { native } = require(${JSON.stringify(path.join(__dirname, '..', 'lib', 'native.ts'))}); const before = native().processDumpable(); ${options ? `for (let i = 0; i < 3; i++) await lib.run(['true'], ${options});` : ''} console.log(JSON.stringify([before, native().processDumpable()]))`)
  t.deepEqual(JSON.parse(probe('')), [true, true], 'control: dumpable without containers')
  t.deepEqual(JSON.parse(probe('{ uid: 1000, gid: 1000 }')), [true, true], 'after three uid-1000 containers')
})

test.serial('kill -9 of the Node process ends its non-root containers too (uid 1000, three of them)', async (t) => {
  const tag = `3600.${process.pid}${Date.now() % 100000}`
  const script = `const lib = require(${JSON.stringify(path.join(__dirname, '..', 'index.ts'))}); for (let i = 0; i < 3; i++) lib.spawn(['sleep', '${tag}'], { uid: 1000, gid: 1000, stdio: 'ignore' }); console.log('ready'); setInterval(() => {}, 1000)`
  const node = ownedChild(t, process.execPath, ['--import', 'tsx', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
  const sleepers = () => fs.readdirSync('/proc').filter((pid) => {
    try {
      return /^\d+$/.test(pid) && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(tag)
    } catch {
      return false
    }
  })
  t.teardown(() => {
    for (const pid of sleepers()) process.kill(Number(pid), 'SIGKILL') // never leave them behind
  })
  await new Promise<void>((resolve, reject) => {
    node.stdout!.on('data', (d) => String(d).includes('ready') && resolve())
    node.once('exit', () => reject(new Error('the Node process ended before its containers started')))
  })
  // spawn() returns before each child has exec'd `sleep` (until then its argv is Node's).
  t.true(await eventually(() => sleepers().length === 3, 30_000), `control: the three containers run (${sleepers().length})`)
  node.kill('SIGKILL')
  t.true(await eventually(() => sleepers().length === 0, 10_000), `containers outlived their Node process: ${sleepers()}`)
})

test.serial('an inherited stdin that is a directory (`lonely run -i ... 0</dir`) is refused as an explicit one is; control: an inherited file runs', (t) => {
  const attempt = `lib.run(['/bin/sh', '-c', 'cd /proc/self/fd/0 && ls'], { stdio: 'inherit', reject: false }).then((r) => console.log('ran ' + r.exitCode), (e) => console.log('refused: ' + e.message))`
  const script = `const lib = require(${JSON.stringify(path.join(__dirname, '..', 'index.ts'))}); ${attempt}`
  const withStdin = (fd: number) => {
    try {
      return spawnSyncHost(process.execPath, ['--import', 'tsx', '-e', script], { stdio: [fd, 'pipe', 'pipe'], encoding: 'utf8', timeout: 60_000 }).stdout
    } finally {
      fs.closeSync(fd)
    }
  }
  t.regex(withStdin(fs.openSync(scratch, 'r')), /^refused: .*stdio fd 0 is a directory/)
  t.regex(withStdin(fs.openSync('/etc/hostname', 'r')), /^ran 2$/m, 'control: a file runs (and cd into it fails)')
  const cli = spawnSyncHost('/bin/sh', ['-c', `exec node ${path.join(__dirname, '..', 'cli.js')} run -i --rootfs ${root} -- /bin/sh -c 'cd /proc/self/fd/0 && ls' 0<${scratch}`], { encoding: 'utf8' })
  t.is(cli.status, 125, cli.stdout + cli.stderr)
  t.false(cli.stdout.includes('host-only-marker'), 'the host directory was listed')
})

test.serial('an inherited stdout that is a host file cannot be read back, truncated or chmodded through /proc/1/fd/1 (it is a relayed pipe); control: the same file given as an explicit fd can', (t) => {
  // The attack: read what the file held before, make it setuid, truncate it, then write.
  // (A subshell reads PID 1's fd: busybox runs `cat` in-process, with its redirections applied to PID 1.)
  const attack = 'x=$(timeout 1 cat /proc/1/fd/1); echo "read: $x" >&2; chmod 600 /proc/1/fd/1; : > /proc/1/fd/1; echo out'
  const attempt = (stdout: string) => {
    const file = path.join(scratch, 'inherited-out')
    fs.writeFileSync(file, 'host secret\n', { mode: 0o644 })
    fs.chmodSync(file, 0o644)
    const fd = fs.openSync(file, 'a')
    const script = `require(${JSON.stringify(path.join(__dirname, '..', 'index.ts'))}).run(['/bin/sh', '-c', ${JSON.stringify(attack)}], { rootfs: ${JSON.stringify(root)}, stdin: 'ignore', stdout: ${stdout}, stderr: 'inherit', reject: false }).then((r) => console.error('exit ' + r.exitCode))`
    try {
      const r = spawnSyncHost(process.execPath, ['--import', 'tsx', '-e', script], { stdio: ['ignore', fd, 'pipe'], encoding: 'utf8', timeout: 60_000 })
      return { seen: r.stderr, content: fs.readFileSync(file, 'utf8'), mode: fs.statSync(file).mode & 0o7777 }
    } finally {
      fs.closeSync(fd)
      fs.rmSync(file)
    }
  }
  const relayed = attempt("'inherit'")
  t.regex(relayed.seen, /exit 0/, relayed.seen)
  t.false(relayed.seen.includes('host secret'), 'the container read the host file back')
  t.is(relayed.mode, 0o644, 'the host file\'s mode')
  t.is(relayed.content, 'host secret\nout\n', 'the host file kept what it had and got the output')
  const passed = attempt('1')
  t.true(passed.seen.includes('host secret'), `control: an explicit fd is the file itself: ${passed.seen}`)
  t.is(passed.mode, 0o600, 'control: chmod reached the host file')
  t.is(passed.content, 'out\n', 'control: the truncation reached the host file')
})

ctest('`ignore` stdio is the container\'s own /dev/null: chmod through /proc/self/fd/0 cannot touch the host\'s; control: the host\'s /dev/null given as an fd can', async (t) => {
  const hostNull = () => fs.statSync('/dev/null', { bigint: true }).ctimeNs
  const attack = ['/bin/sh', '-c', 'chmod 666 /proc/self/fd/0 && echo changed; stat -L -c %t:%T /proc/self/fd/0']
  const before = hostNull()
  const own = await run(attack, { rootfs: root, stdin: 'ignore', reject: false })
  t.is(own.stdout, '1:3', own.stdout + own.stderr)
  t.is(hostNull(), before, 'the host\'s /dev/null was changed')
  const fd = fs.openSync('/dev/null', 'r')
  try {
    const passed = await run(attack, { rootfs: root, stdin: fd, reject: false })
    t.is(passed.stdout, 'changed\n1:3', 'control: ' + passed.stderr)
    t.not(hostNull(), before, 'control: the same chmod (to the same mode) reached the host\'s node')
  } finally {
    fs.closeSync(fd)
  }
})

test.serial('capAdd ALL gives what this process may pass on; a named capability it lacks is an error naming it', async (t) => {
  const bounding = BigInt('0x' + /CapBnd:\s*([0-9a-f]+)/.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1])
  const all = await run(['sh', '-c', 'grep CapEff /proc/self/status'], { capAdd: ['ALL'], stdin: 'ignore' })
  t.is(BigInt('0x' + /CapEff:\s*([0-9a-f]+)/.exec(all.stdout)![1]), bounding)
  const lacking = CAPABILITIES.findIndex((_, i) => (bounding & (1n << BigInt(i))) === 0n)
  if (lacking < 0) {
    t.log('this process has every capability: no missing one to ask for')
    return
  }
  t.throws(() => spawn(['true'], { capAdd: [CAPABILITIES[lacking]] }), { message: new RegExp(`CAP_${CAPABILITIES[lacking]} not in this process's bounding set`) })
})

test('a profile that denies getcwd, without no_new_privs (its filter loads while root, before the chdir): the working directory is verified before the filter, the command still gets the profile\'s errno', async (t) => {
  const deny = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['getcwd'], action: 'SCMP_ACT_ERRNO' }] }
  const r = await run(['pwd', '-P'], { rootfs: root, cwd: '/tmp', seccomp: deny, noNewPrivileges: false, reject: false })
  t.is(r.exitCode, 1, `the container started, its getcwd denied: ${r.stderr}`)
  t.is(r.stderr, 'pwd: getcwd: Operation not permitted')
  const control = await run(['pwd', '-P'], { rootfs: root, cwd: '/tmp', seccomp: { defaultAction: 'SCMP_ACT_ALLOW' }, noNewPrivileges: false })
  t.is(control.stdout, '/tmp')
})

test.serial('a directory fd as stdio is refused: through fchdir or /proc/self/fd it would lead out of the root (CVE-2024-21626 class); control: a file fd works', async (t) => {
  const dir = fs.openSync(os.tmpdir(), 'r')
  const file = fs.openSync('/etc/hostname', 'r')
  try {
    t.throws(() => spawn(['true'], { stdio: [dir, 'pipe', 'pipe'] }), { instanceOf: RangeError, message: /^Option `stdio`: stdio fd \d+ is a directory/ })
    t.throws(() => spawn(['true'], { stdio: [1_000_000, 'pipe', 'pipe'] }), { instanceOf: RangeError, message: /^Option `stdio`: stdio fd 1000000: EBADF/ }, 'an fd that is not open')
    const control = await run(['cat'], { stdio: [file, 'pipe', 'pipe'] })
    t.is(control.stdout, fs.readFileSync('/etc/hostname', 'utf8').trim())
  } finally {
    fs.closeSync(dir)
    fs.closeSync(file)
  }
})
