// What a container can see of the host, and what it cannot: PID, UTS, mount, net, IPC and
// cgroup namespaces, the filesystem (mirror root and a busybox rootfs), /proc, /sys, /dev,
// /tmp, binds and tmpfs, credentials, cwd and env. Every test runs both with the default
// host-mirror root and with a busybox rootfs where that makes sense, and every one checks
// that nothing leaked. Tests are serial: they measure host-wide counts.
import test, { type ExecutionContext } from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { execFileSync } from 'node:child_process'

import { run, spawn, type ContainerOptions, type ContainerResult, type RunOptions } from '../index'
import { makeBusyboxRoot, ourMounts, removeRoot, settled, type Snapshot, expectNoLeak, warmUp, endSuite } from './helpers'

let root = ''
let scratch = '' // host-only temp dir: never bound into a container
let marker = '' // a file that exists on the host only
let warm: Snapshot

type Kind = 'mirror' | 'busybox'
const KINDS: Kind[] = ['mirror', 'busybox']
const base = (kind: Kind): ContainerOptions => (kind === 'busybox' ? { rootfs: root } : {})

// Tries `mkdir x; chroot x; chdir .. (x64); chroot .` — the classic escape from a chroot jail —
// and reports whether the host-only marker (argv[1]) is reachable before and after.
const ESCAPE_C = String.raw`
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
int main(int argc, char **argv) {
  if (argc < 2) return 64;
  printf("before: %s\n", access(argv[1], F_OK) == 0 ? "visible" : "hidden");
  if (mkdir("escape-jail", 0755) != 0 && errno != EEXIST) { printf("mkdir: %s\n", strerror(errno)); return 2; }
  if (chroot("escape-jail") != 0) { printf("chroot jail: %s\n", strerror(errno)); return 3; }
  for (int i = 0; i < 64; i++) chdir("..");
  if (chroot(".") != 0) { printf("chroot .: %s\n", strerror(errno)); return 4; }
  printf("chroot escape attempted\n");
  printf("after: %s\n", access(argv[1], F_OK) == 0 ? "visible" : "hidden");
  return 0;
}
`

// Prints the network namespace's cookie (SO_NETNS_COOKIE): unlike an nsfs inode number, the
// kernel never hands one out twice, so a repeat means the very same namespace.
const NETNS_COOKIE_C = String.raw`
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv) {
  uint64_t cookie = 0;
  socklen_t len = sizeof cookie;
  int s = socket(AF_UNIX, SOCK_DGRAM, 0);
  if (s < 0 || getsockopt(s, SOL_SOCKET, 71 /* SO_NETNS_COOKIE */, &cookie, &len) != 0) return 2;
  close(s);
  if (argc > 1 && !strcmp(argv[1], "tfo")) { // a TCP Fast Open listener: the namespace's key is made, no packet sent
    int q = 5, l = socket(AF_INET, SOCK_STREAM, 0);
    if (l < 0 || setsockopt(l, IPPROTO_TCP, TCP_FASTOPEN, &q, sizeof q) != 0 || listen(l, 1) != 0) return 3;
    close(l);
  }
  // <linux/mroute.h> clashes with <netinet/in.h>: its three names, and struct vifctl's layout.
  struct vifctl { unsigned short vifi; unsigned char flags, threshold; unsigned rate_limit; struct in_addr lcl, rmt; };
  enum { MRT_INIT = 200, MRT_ADD_VIF = 202, VIFF_REGISTER = 4 };
  if (argc > 1 && !strcmp(argv[1], "pimreg")) { // NET_RAW alone: a multicast router's register device, made and gone
    for (int round = 0; round < (argc > 2 ? atoi(argv[2]) : 1); round++) {
      int one = 1, r = socket(AF_INET, SOCK_RAW, IPPROTO_IGMP);
      struct vifctl v = { .flags = VIFF_REGISTER, .threshold = 1 };
      if (r < 0 || setsockopt(r, IPPROTO_IP, MRT_INIT, &one, sizeof one) != 0 || setsockopt(r, IPPROTO_IP, MRT_ADD_VIF, &v, sizeof v) != 0) return 5;
      printf("pimreg %u\n", if_nametoindex("pimreg"));
      close(r); // MRT_DONE: the device is unregistered, the index counter stays advanced
    }
  }
  printf("%llu\n", (unsigned long long)cookie);
  return 0;
}
`

// Binds TCP 127.0.0.1:80 and opens an ICMP echo ("ping") datagram socket, printing `ok` or the
// errno's name for each: what docker's two default sysctls let any user do.
const PORT_PING_C = String.raw`
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
static const char *why(int ok) { return ok ? "ok" : errno == EACCES ? "EACCES" : errno == EPERM ? "EPERM" : "other"; }
int main(void) {
  struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(80), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
  int s = socket(AF_INET, SOCK_STREAM, 0);
  printf("bind80 %s\n", why(s >= 0 && bind(s, (struct sockaddr *)&a, sizeof a) == 0));
  printf("icmp %s\n", why(socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP) >= 0));
  return 0;
}
`

test.before(async () => {
  root = makeBusyboxRoot()
  // mkdtemp makes the root 0700: a non-root uid could not even chdir to `/` inside.
  fs.chmodSync(root, 0o755)
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-iso-host-'))
  marker = path.join(scratch, 'host-only-marker')
  fs.writeFileSync(marker, 'host secret\n')
  fs.writeFileSync(path.join(scratch, 'escape.c'), ESCAPE_C)
  execFileSync('gcc', ['-static', '-O2', '-o', path.join(root, 'escape'), path.join(scratch, 'escape.c')])
  fs.writeFileSync(path.join(scratch, 'netns-cookie.c'), NETNS_COOKIE_C)
  execFileSync('gcc', ['-static', '-O2', '-o', path.join(root, 'netns-cookie'), path.join(scratch, 'netns-cookie.c')])
  fs.writeFileSync(path.join(scratch, 'port-ping.c'), PORT_PING_C)
  execFileSync('gcc', ['-static', '-O2', '-o', path.join(root, 'port-ping'), path.join(scratch, 'port-ping.c')])
  warm = await warmUp([['true']], [['true'], { rootfs: root }])
})

test.after.always((t) => endSuite(t, warm, () => root && removeRoot(root), () => scratch && fs.rmSync(scratch, { recursive: true, force: true })))

/** A serial test that makes containers and checks afterwards that none of them leaked anything. */
function ctest(title: string, fn: (t: ExecutionContext) => Promise<void>): void {
  test.serial(title, async (t) => {
    const before = await settled(warm)
    await fn(t)
    await expectNoLeak(t, before)
  })
}

// stdin is /dev/null here: these tests are not about stdio (stdio.spec.ts is), and a piped
// stdin that nobody ends is the one leak they would all trip over.
function go(command: string[], options: RunOptions = {}): Promise<ContainerResult> {
  return run(command, { reject: false, stdin: 'ignore', ...options }) as Promise<ContainerResult>
}

function sh(script: string, options: RunOptions = {}): Promise<ContainerResult> {
  return go(['/bin/sh', '-c', script], options)
}

const lines = (s: string) => s.split('\n').map((l) => l.trim().replace(/\s+/g, ' ')).filter(Boolean)

// ---------------------------------------------------------------- PID namespace

for (const kind of KINDS) {
  ctest(`[${kind}] the command is PID 1 and ps lists only the container's processes`, async (t) => {
    const ps = kind === 'busybox' ? 'ps -o pid,comm' : 'ps -e -o pid=,comm='
    // `; true` keeps the shell from exec'ing ps in its place.
    const r = await sh(`echo $$; ${ps}; true`, base(kind))
    t.is(r.exitCode, 0, r.stderr)
    const out = lines(r.stdout).filter((l) => l !== 'PID COMMAND')
    t.deepEqual(out, ['1', '1 sh', '2 ps'])
  })

  ctest(`[${kind}] /proc lists PID 1 only (no host process is visible)`, async (t) => {
    // Shell builtins only, so the shell is the only process.
    const r = await sh('for p in /proc/[0-9]*; do echo ${p#/proc/}; done', base(kind))
    t.is(r.exitCode, 0, r.stderr)
    t.is(r.stdout, '1')
  })

  ctest(`[${kind}] /proc is fresh: /proc/1/cmdline is the container's command`, async (t) => {
    // `; true` keeps busybox sh from exec'ing cat as PID 1.
    const r = await go(['/bin/sh', '-c', 'cat /proc/1/cmdline; true', 'arg0'], { ...base(kind), stripFinalNewline: false })
    t.is(r.stdout, '/bin/sh\0-c\0cat /proc/1/cmdline; true\0arg0\0')
  })
}

// ---------------------------------------------------------------- UTS namespace

for (const kind of KINDS) {
  ctest(`[${kind}] the hostname is set inside and the host's is unchanged`, async (t) => {
    const host = os.hostname()
    const r = await sh('hostname; echo $HOSTNAME', { ...base(kind), hostname: 'iso-box.example' })
    t.is(r.stdout, 'iso-box.example\niso-box.example')
    t.is(os.hostname(), host)
    t.is(fs.readFileSync('/proc/sys/kernel/hostname', 'utf8').trim(), host)
  })

  ctest(`[${kind}] the default hostname is lonely`, async (t) => {
    const r = await sh('hostname', base(kind))
    t.is(r.stdout, 'lonely')
    t.not(os.hostname(), 'lonely')
  })

  ctest(`[${kind}] control: namespaces.uts false shows the host's hostname`, async (t) => {
    const r = await sh('hostname', { ...base(kind), namespaces: { uts: false } })
    t.is(r.stdout, os.hostname())
  })
}

// ---------------------------------------------------------------- mount namespace

const mountinfo = ourMounts

for (const kind of KINDS) {
  ctest(`[${kind}] the host mount table is unchanged while a container runs and after`, async (t) => {
    const before = mountinfo()
    const c = spawn(['/bin/sh', '-c', 'echo ready; exec sleep 30'], {
      ...base(kind),
      stdin: 'ignore',
      mounts: [{ type: 'tmpfs', target: '/extra' }, { type: 'bind', source: scratch, target: '/bound', readonly: true }],
    })
    await new Promise<void>((resolve, reject) => {
      c.stdout!.once('data', () => resolve())
      c.stdout!.once('close', () => reject(new Error('container ended before it was ready')))
    })
    const during = mountinfo()
    t.true(c.kill('SIGKILL'))
    const exit = await c
    t.is(exit.signal, 'SIGKILL')
    t.is(during, before, 'our mounts while running')
    t.is(mountinfo(), before, 'our mounts after')
  })

  ctest(`[${kind}] a host file outside the container is not reachable`, async (t) => {
    const r = await sh(`test -e '${marker}' && echo visible || echo hidden; test -e '${scratch}' && echo dir-visible || echo dir-hidden; test -e '${process.cwd()}' && echo repo-visible || echo repo-hidden`, base(kind))
    t.is(r.stdout, 'hidden\ndir-hidden\nrepo-hidden')
  })
}

ctest('control: with namespaces.mount false the host file is reachable', async (t) => {
  const r = await sh(`test -e '${marker}' && echo visible || echo hidden; cat '${marker}'`, { namespaces: { mount: false } })
  t.is(r.stdout, 'visible\nhost secret')
})

for (const kind of KINDS) {
  ctest(`[${kind}] the nested-chroot escape lands inside the container`, async (t) => {
    const opts: RunOptions = kind === 'busybox'
      ? { rootfs: root, cwd: '/tmp' }
      : { cwd: '/tmp', mounts: [{ type: 'bind', source: path.join(root, 'escape'), target: '/escape', readonly: true }] }
    const r = await go(['/escape', marker], opts)
    t.is(r.exitCode, 0, r.stdout + r.stderr)
    // The attack really ran (chroot is allowed), and still did not reach the host.
    t.is(r.stdout, 'before: hidden\nchroot escape attempted\nafter: hidden')
  })
}

ctest('control: the escape program sees the marker when its root is the host (namespaces.mount false)', async (t) => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-iso-escape-'))
  try {
    const r = await go([path.join(root, 'escape'), marker], { namespaces: { mount: false }, cwd: work })
    t.is(r.exitCode, 0, r.stdout + r.stderr)
    t.is(r.stdout, 'before: visible\nchroot escape attempted\nafter: visible')
  } finally {
    fs.rmSync(work, { recursive: true, force: true })
  }
})

// ---------------------------------------------------------------- network namespace

for (const kind of KINDS) {
  ctest(`[${kind}] the network namespace has only lo, and lo is up`, async (t) => {
    const r = await sh("ls /sys/class/net; cat /sys/class/net/lo/flags; tail -n +3 /proc/net/dev | cut -d: -f1", base(kind))
    t.is(r.exitCode, 0, r.stderr)
    const [iface, flags, dev] = lines(r.stdout)
    t.is(iface, 'lo')
    t.is(parseInt(flags, 16) & 0x1, 0x1, `lo flags ${flags}: IFF_UP`)
    t.is(dev, 'lo')
    t.is(lines(r.stdout).length, 3)
  })

  ctest(`[${kind}] control: namespaces.net false shows the host's interfaces`, async (t) => {
    const r = await sh('ls /sys/class/net', { ...base(kind), namespaces: { net: false } })
    const inside = lines(r.stdout).sort()
    t.deepEqual(inside, fs.readdirSync('/sys/class/net').sort())
    for (const name of Object.keys(os.networkInterfaces())) t.true(inside.includes(name), name)
    t.true(inside.length > 1, 'the host has more than lo')
  })
}

// Every container gets a network namespace no container had before: a used one, whatever
// was checked, could still be told from a new one (its cookie repeats; the interface index
// counter below is not readable to compare). Each container prints its namespace's cookie,
// then what it sees of lo's traffic and of the IP counters; `work` runs in between.
const NETNS_PROBE = "grep lo: /proc/net/dev | tr -s ' ' | cut -d' ' -f3,4; awk '/^Ip: [0-9]/ { print $13 }' /proc/net/snmp; cat /proc/sys/net/ipv4/tcp_fastopen_key"
const FRESH_TFO_KEY = '00000000-00000000-00000000-00000000'
type NetnsSeen = { cookie: string; lo: string; outNoRoutes: string; tfoKey: string }
/** `work` runs first, `cookieArg` is the helper's own act (tfo), then the counters are read. */
async function netnsProbe(work = '', options: RunOptions = {}, cookieArg = ''): Promise<NetnsSeen> {
  const r = await sh(`${work} /netns-cookie ${cookieArg}; ${NETNS_PROBE}`, { rootfs: root, ...options })
  const [cookie = '', lo = '', outNoRoutes = '', tfoKey = ''] = lines(r.stdout)
  return { cookie, lo, outNoRoutes, tfoKey }
}

ctest('[busybox] no network namespace serves two containers, not even one nothing touched', async (t) => {
  const cookies: string[] = []
  for (let i = 0; i < 16; i++) cookies.push((await netnsProbe()).cookie)
  t.true(cookies.every((c) => /^\d+$/.test(c)), cookies.join(' '))
  t.is(new Set(cookies).size, cookies.length, `a namespace came back: ${cookies.join(' ')}`)
})

const LEFT_BEHIND: Array<[string, string, RunOptions, string, (p: NetnsSeen) => boolean]> = [
  ['loopback traffic (ping 127.0.0.1)', 'ping -c 1 -W 1 127.0.0.1 >/dev/null;', {}, '', (p) => p.lo !== '0 0'],
  ['a send with no route (no packet on lo, one counter moved)', 'nc -w 1 10.255.0.1 9 </dev/null 2>/dev/null;', {}, '', (p) => p.outNoRoutes !== '0'],
  ['a TCP Fast Open listener (no packet, no socket left: the key it made stays)', '', {}, 'tfo', (p) => p.tfoKey !== FRESH_TFO_KEY],
]

for (const [what, work, options, cookieArg, moved] of LEFT_BEHIND) {
  ctest(`[busybox] later containers see fresh counters after ${what}`, async (t) => {
    const used = await netnsProbe(work, options, cookieArg)
    t.true(moved(used), `control: the container itself saw its change (lo ${used.lo}, OutNoRoutes ${used.outNoRoutes}, TFO key ${used.tfoKey})`)
    for (let i = 0; i < 8; i++) {
      const next = await netnsProbe()
      t.not(next.cookie, used.cookie, `container ${i} got the used namespace`)
      t.is(next.lo, '0 0', `container ${i}: lo's bytes and packets`)
      t.is(next.outNoRoutes, '0', `container ${i}: Ip OutNoRoutes`)
      t.is(next.tfoKey, FRESH_TFO_KEY, `container ${i}: TCP Fast Open key`)
    }
  })
}

// Docker sets net.ipv4.ip_unprivileged_port_start=0 and net.ipv4.ping_group_range="0 2147483647"
// in every network namespace it makes (not with --network host): uid 1000, with no capability
// at all, binds port 80 and opens ICMP echo sockets there.
const HOST_SYSCTLS = ['ip_unprivileged_port_start', 'ping_group_range'].map((k) => `/proc/sys/net/ipv4/${k}`)
const hostSysctls = () => HOST_SYSCTLS.map((f) => fs.readFileSync(f, 'utf8').trim().replace(/\s+/g, ' '))

ctest('[busybox] as docker, uid 1000 binds port 80 and opens an ICMP echo socket in its own network namespace (docker\'s default sysctls); not with the host\'s network or with the sysctls set back; the host\'s values are untouched', async (t) => {
  const host = hostSysctls()
  const asUser = { rootfs: root, uid: 1000, gid: 1000 }
  const own = await go(['/port-ping'], asUser)
  t.is(own.exitCode, 0, own.stderr)
  t.deepEqual(lines(own.stdout), ['bind80 ok', 'icmp ok'])
  const seen = await sh('cat /proc/sys/net/ipv4/ip_unprivileged_port_start /proc/sys/net/ipv4/ping_group_range', asUser)
  t.deepEqual(lines(seen.stdout), ['0', '0 2147483647'])
  // Control: the same program without the defaults is refused (so the check can fail).
  const setBack = await go(['/port-ping'], { ...asUser, sysctls: { 'net.ipv4.ip_unprivileged_port_start': 1024, 'net.ipv4.ping_group_range': '1 0' } })
  t.deepEqual(lines(setBack.stdout), ['bind80 EACCES', 'icmp EACCES'], 'a caller\'s sysctls override the defaults')
  // The host's network (docker --network host): the host's values, none of ours.
  const hostNet = await go(['/port-ping'], { ...asUser, namespaces: { net: false } })
  const [start, range] = host
  const [low, high] = range.split(' ').map(Number)
  t.deepEqual(lines(hostNet.stdout), [`bind80 ${Number(start) <= 80 ? 'ok' : 'EACCES'}`, `icmp ${low <= 1000 && 1000 <= high ? 'ok' : 'EACCES'}`], `host: ${host.join(' / ')}`)
  t.deepEqual(hostSysctls(), host, 'the host\'s sysctls are unchanged')
  // And a sysctl that would be the host's (net.* without a network namespace) is refused up front.
  await t.throwsAsync(run(['true'], { namespaces: { net: false }, sysctls: { 'net.ipv4.ip_forward': '1' } }), { instanceOf: RangeError, message: /Option `sysctls\.net\.ipv4\.ip_forward` needs the container's own net namespace.*got '1'/ })
  await t.throwsAsync(run(['true'], { sysctls: { 'kernel.panic': '1' } }), { instanceOf: RangeError, message: /`kernel\.panic`, which is not a namespaced sysctl/ })
  await t.throwsAsync(run(['true'], { sysctls: { 'net.ipv4.ip_forward': true } as never }), { instanceOf: TypeError, message: /Option `sysctls\.net\.ipv4\.ip_forward` must be a non-empty string.*got true/ })
})

// The register device is IPv4 multicast routing's (CONFIG_IP_MROUTE): a kernel without it has
// no /proc/net/ip_mr_vif, and no such device for a container to make.
const MROUTE = fs.existsSync('/proc/net/ip_mr_vif')
if (!MROUTE) test('[busybox] pimreg index: skipped, this kernel has no IPv4 multicast routing (CONFIG_IP_MROUTE)', (t) => t.pass())
if (MROUTE) ctest('[busybox] a pimreg device a container made and removed (NET_RAW only) leaves no advanced interface index for the next', async (t: ExecutionContext) => {
  // Control: inside one namespace the index counter shows every device ever made.
  const twice = lines((await sh('/netns-cookie pimreg 2', { rootfs: root })).stdout)
  t.deepEqual(twice.slice(0, 2), ['pimreg 2', 'pimreg 3'], twice.join(' | '))
  t.deepEqual(lines((await sh('ls /sys/class/net', { rootfs: root })).stdout), ['lo'])
  for (let i = 0; i < 8; i++) {
    const next = lines((await sh('/netns-cookie pimreg', { rootfs: root })).stdout)
    t.is(next[0], 'pimreg 2', `container ${i}: ${next.join(' | ')}`)
  }
})

ctest('[mirror] ip link shows lo only, UP', async (t) => {
  const r = await sh('ip -o link')
  t.is(r.exitCode, 0, r.stderr)
  const out = lines(r.stdout)
  t.is(out.length, 1)
  t.regex(out[0], /^1: lo: <LOOPBACK,UP,LOWER_UP>/)
})

// ---------------------------------------------------------------- namespace identities

const NS: Array<[string, 'pid' | 'mount' | 'uts' | 'ipc' | 'net' | 'cgroup']> = [
  ['ipc', 'ipc'], ['net', 'net'], ['uts', 'uts'], ['pid', 'pid'], ['mnt', 'mount'], ['cgroup', 'cgroup'],
]
const hostNs = (name: string) => fs.readlinkSync(`/proc/self/ns/${name}`)
const readNs = `for n in ${NS.map(([n]) => n).join(' ')}; do readlink /proc/self/ns/$n; done`

for (const kind of KINDS) {
  ctest(`[${kind}] every namespace (ipc net uts pid mnt cgroup) differs from the host's`, async (t) => {
    const r = await sh(readNs, base(kind))
    t.is(r.exitCode, 0, r.stderr)
    const inside = lines(r.stdout)
    t.is(inside.length, NS.length)
    NS.forEach(([name], i) => {
      t.regex(inside[i], new RegExp(`^${name}:\\[\\d+\\]$`))
      t.not(inside[i], hostNs(name), name)
    })
  })

  for (const [name, key] of NS) {
    if (kind === 'busybox' && key === 'mount') continue // a rootfs needs the mount namespace
    ctest(`[${kind}] control: namespaces.${key} false shares the host's ${name} namespace (and only that one)`, async (t) => {
      const r = await sh(readNs, { ...base(kind), namespaces: { [key]: false } })
      t.is(r.exitCode, 0, r.stderr)
      const inside = lines(r.stdout)
      NS.forEach(([other], i) => {
        if (other === name) t.is(inside[i], hostNs(other), other)
        else t.not(inside[i], hostNs(other), other)
      })
    })
  }
}

ctest('[mirror] IPC: a SysV shared memory segment made on the host is not visible inside', async (t) => {
  // /proc/sysvipc/shm is per IPC namespace: a fresh one has the header line only.
  const r = await sh('wc -l < /proc/sysvipc/shm; wc -l < /proc/sysvipc/sem; wc -l < /proc/sysvipc/msg')
  t.deepEqual(lines(r.stdout), ['1', '1', '1'])
  const shared = await sh('cat /proc/sysvipc/shm', { namespaces: { ipc: false } })
  t.is(shared.stdout, fs.readFileSync('/proc/sysvipc/shm', 'utf8').replace(/\n$/, ''))
})

// ---------------------------------------------------------------- /sys, /tmp, /dev

const DEV = ['fd', 'full', 'mqueue', 'null', 'ptmx', 'pts', 'random', 'shm', 'stderr', 'stdin', 'stdout', 'tty', 'urandom', 'zero']

for (const kind of KINDS) {
  ctest(`[${kind}] /sys is read-only`, async (t) => {
    // lo's own queue length in the container's net namespace: harmless even if it were writable.
    const r = await sh('echo 1000 > /sys/class/net/lo/tx_queue_len && echo wrote; mkdir /sys/lonely-x && echo made; awk \'$2=="/sys"{print $3, substr($4,1,3)}\' /proc/mounts', base(kind))
    t.is(r.stdout, 'sysfs ro,')
    t.regex(r.stderr, /tx_queue_len.*Read-only file system/)
    t.regex(r.stderr, /lonely-x.*Read-only file system/)
  })

  ctest(`[${kind}] /tmp is writable: the mirror's a tmpfs of its own, a rootfs's its own directory (docker mounts none)`, async (t) => {
    const r = await sh('echo data > /tmp/f && cat /tmp/f; rm /tmp/f; awk \'$2=="/tmp"{print $3, substr($4,1,3)}\' /proc/mounts', base(kind))
    t.is(r.exitCode, 0, r.stderr)
    t.is(r.stdout, kind === 'busybox' ? 'data' : 'data\ntmpfs rw,')
  })

  ctest(`[${kind}] /dev has only the standard devices and symlinks`, async (t) => {
    const r = await sh('ls -A /dev', base(kind))
    t.deepEqual(lines(r.stdout), DEV)
    for (const hostOnly of ['vda', 'sda', 'kmsg', 'mem', 'console']) t.false(lines(r.stdout).includes(hostOnly), hostOnly)
    const links = await sh('for l in fd stdin stdout stderr ptmx; do echo $l=$(readlink /dev/$l); done', base(kind))
    t.is(links.stdout, 'fd=/proc/self/fd\nstdin=/proc/self/fd/0\nstdout=/proc/self/fd/1\nstderr=/proc/self/fd/2\nptmx=pts/ptmx')
    const chars = await sh('for d in null zero full random urandom tty; do [ -c /dev/$d ] && echo $d; done; [ -d /dev/pts ] && [ -d /dev/shm ] && echo dirs', base(kind))
    t.is(chars.stdout, 'null\nzero\nfull\nrandom\nurandom\ntty\ndirs')
  })

  ctest(`[${kind}] /dev/shm and /dev/mqueue are filesystems of their own; mountinfo names sources as docker's`, async (t) => {
    const r = await sh('awk \'{ for (i = 7; $i != "-"; i++); print $5, $(i+1), $(i+2) }\' /proc/self/mountinfo', base(kind))
    const mounts = new Map(lines(r.stdout).map((l) => [l.split(' ')[0], l.split(' ').slice(1).join(' ')]))
    t.is(mounts.get('/proc'), 'proc proc')
    t.is(mounts.get('/sys'), 'sysfs sysfs')
    t.is(mounts.get('/dev'), 'tmpfs tmpfs')
    t.is(mounts.get('/dev/pts'), 'devpts devpts')
    t.is(mounts.get('/dev/shm'), 'tmpfs shm', 'its own tmpfs, not a bind of /dev\'s')
    t.is(mounts.get('/dev/mqueue'), 'mqueue mqueue')
    t.is(mounts.get('/tmp'), kind === 'busybox' ? undefined : 'tmpfs tmpfs')
    // Its own 64 MiB, and a queue made there lives in that container's IPC namespace only.
    const made = await sh('df -k /dev/shm | tail -1; : > /dev/mqueue/q; ls /dev/mqueue', base(kind))
    t.regex(made.stdout, /^\S+\s+65536\s.*\nq$/s, made.stderr)
    t.is((await sh('ls -A /dev/mqueue', base(kind))).stdout, '', 'the next container does not see it')
  })

  ctest(`[${kind}] /dev/null, /dev/zero, /dev/full and /dev/shm work`, async (t) => {
    const r = await sh('echo x > /dev/null && echo null-ok; head -c 5 /dev/zero | wc -c; head -c 7 /dev/urandom | wc -c; echo x > /dev/full || echo full-refused; echo s > /dev/shm/s && cat /dev/shm/s', base(kind))
    t.deepEqual(lines(r.stdout), ['null-ok', '5', '7', 'full-refused', 's'])
    t.not(r.stderr, '', 'the write to /dev/full reported an error')
  })

  ctest(`[${kind}] a non-root user can write /dev/null and read /dev/zero (the nodes are 0666 whatever Node's umask)`, async (t) => {
    const r = await sh('echo x > /dev/null && echo null-ok; head -c 3 /dev/zero | wc -c; stat -c %a /dev/null /dev/tty', { ...base(kind), uid: 1000, gid: 1000 })
    t.deepEqual(lines(r.stdout), ['null-ok', '3', '666', '666'], r.stderr)
  })
}

// ---------------------------------------------------------------- read-only roots

ctest('[mirror] the root is read-only, /tmp is writable', async (t) => {
  const r = await sh('touch /usr/lonely-probe || echo usr-refused; touch /lonely-probe || echo root-refused; touch /etc/lonely-probe || echo etc-refused; touch /tmp/ok && echo tmp-ok')
  t.deepEqual(lines(r.stdout), ['usr-refused', 'root-refused', 'etc-refused', 'tmp-ok'])
  t.is((r.stderr.match(/Read-only file system/g) ?? []).length, 3, r.stderr)
  t.false(fs.existsSync('/usr/lonely-probe'))
  t.false(fs.existsSync('/etc/lonely-probe'))
})

ctest('[busybox] readonlyRoot: true makes the rootfs read-only, /tmp too (docker --read-only); a tmpfs mount at /tmp is writable', async (t) => {
  const probe = path.join(root, 'lonely-ro-probe')
  const r = await sh('touch /lonely-ro-probe || echo refused; touch /tmp/ok || echo tmp-refused', { rootfs: root, readonlyRoot: true })
  t.deepEqual(lines(r.stdout), ['refused', 'tmp-refused'])
  t.regex(r.stderr, /Read-only file system/)
  t.false(fs.existsSync(probe))
  const tmpfs = await sh('touch /tmp/ok && echo tmp-ok', { rootfs: root, readonlyRoot: true, mounts: [{ type: 'tmpfs', target: '/tmp' }] })
  t.is(tmpfs.stdout, 'tmp-ok', tmpfs.stderr)
})

ctest('[busybox] control: without readonlyRoot the rootfs is writable', async (t) => {
  const probe = path.join(root, 'lonely-rw-probe')
  try {
    const r = await sh('echo written > /lonely-rw-probe && echo ok', { rootfs: root })
    t.is(r.stdout, 'ok')
    t.is(fs.readFileSync(probe, 'utf8'), 'written\n')
  } finally {
    fs.rmSync(probe, { force: true })
  }
})

// ---------------------------------------------------------------- mounts

function hostDir(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-iso-data-'))
  for (const [name, content] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), content)
  return dir
}

/** Removes mount points a test created in the shared busybox rootfs. */
function cleanRoot(...names: string[]) {
  for (const n of names) fs.rmSync(path.join(root, n), { recursive: true, force: true })
}

for (const kind of KINDS) {
  ctest(`[${kind}] a bind of a host directory shows its files`, async (t) => {
    const dir = hostDir({ 'a.txt': 'alpha', 'b.txt': 'beta' })
    try {
      const r = await sh('ls /data; cat /data/a.txt', { ...base(kind), mounts: [{ type: 'bind', source: dir, target: '/data' }] })
      t.is(r.stdout, 'a.txt\nb.txt\nalpha')
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
      if (kind === 'busybox') cleanRoot('data')
    }
  })

  ctest(`[${kind}] a bind of a single host file works, its mount point is created`, async (t) => {
    const dir = hostDir({ 'conf.txt': 'key=value\n' })
    try {
      const r = await sh('cat /opt/app/conf.txt; ls /opt/app', { ...base(kind), mounts: [{ type: 'bind', source: path.join(dir, 'conf.txt'), target: '/opt/app/conf.txt' }] })
      t.is(r.exitCode, 0, r.stderr)
      t.is(r.stdout, 'key=value\nconf.txt')
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
      if (kind === 'busybox') cleanRoot('opt')
    }
  })

  ctest(`[${kind}] a read-only bind refuses writes; the host file is unchanged`, async (t) => {
    const dir = hostDir({ 'a.txt': 'original' })
    try {
      const r = await sh('echo changed > /data/a.txt || echo refused; touch /data/new || echo refused-new', {
        ...base(kind), mounts: [{ type: 'bind', source: dir, target: '/data', readonly: true }],
      })
      t.is(r.stdout, 'refused\nrefused-new')
      t.regex(r.stderr, /Read-only file system/)
      t.is(fs.readFileSync(path.join(dir, 'a.txt'), 'utf8'), 'original')
      t.false(fs.existsSync(path.join(dir, 'new')))
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
      if (kind === 'busybox') cleanRoot('data')
    }
  })

  ctest(`[${kind}] control: a read-write bind writes through to the host`, async (t) => {
    const dir = hostDir({ 'a.txt': 'original' })
    try {
      const r = await sh('echo changed > /data/a.txt && echo ok', { ...base(kind), mounts: [{ type: 'bind', source: dir, target: '/data', readonly: false }] })
      t.is(r.stdout, 'ok')
      t.is(fs.readFileSync(path.join(dir, 'a.txt'), 'utf8'), 'changed\n')
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
      if (kind === 'busybox') cleanRoot('data')
    }
  })

  ctest(`[${kind}] a read-only bind of a single file refuses writes; read-write writes through`, async (t) => {
    const dir = hostDir({ 'f.txt': 'original' })
    const file = path.join(dir, 'f.txt')
    try {
      const ro = await sh('echo changed > /f.txt || echo refused', { ...base(kind), mounts: [{ type: 'bind', source: file, target: '/f.txt', readonly: true }] })
      t.is(ro.stdout, 'refused')
      t.is(fs.readFileSync(file, 'utf8'), 'original')
      const rw = await sh('echo changed > /f.txt && echo ok', { ...base(kind), mounts: [{ type: 'bind', source: file, target: '/f.txt' }] })
      t.is(rw.stdout, 'ok')
      t.is(fs.readFileSync(file, 'utf8'), 'changed\n')
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
      if (kind === 'busybox') cleanRoot('f.txt')
    }
  })

  ctest(`[${kind}] a tmpfs with a size refuses to grow past it (ENOSPC); its mode is applied`, async (t) => {
    const r = await sh('dd if=/dev/zero of=/small/big bs=1024 count=2048 2>/dev/stdout | grep -o "No space left on device"; wc -c < /small/big; rm /small/big; head -c 524288 /dev/zero > /small/half && echo half-ok; stat -c %a /small; awk \'$2=="/small"{print $3}\' /proc/mounts', {
      ...base(kind), mounts: [{ type: 'tmpfs', target: '/small', size: '1m', mode: 0o700 }],
    })
    t.deepEqual(lines(r.stdout), ['No space left on device', '1048576', 'half-ok', '700', 'tmpfs'])
    if (kind === 'busybox') cleanRoot('small')
  })

  ctest(`[${kind}] a bind target that does not exist is created (nested)`, async (t) => {
    const dir = hostDir({ 'inside.txt': 'deep' })
    try {
      const r = await sh('cat /made/by/lonely/inside.txt', { ...base(kind), mounts: [{ type: 'bind', source: dir, target: '/made/by/lonely' }] })
      t.is(r.exitCode, 0, r.stderr)
      t.is(r.stdout, 'deep')
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
      if (kind === 'busybox') cleanRoot('made')
    }
  })

  ctest(`[${kind}] uid, gid and groups are what was asked`, async (t) => {
    const r = await sh('id -u; id -g; id -G; echo $HOME', { ...base(kind), uid: 1234, gid: 5678, groups: [100, 200] })
    t.is(r.exitCode, 0, r.stderr)
    t.deepEqual(lines(r.stdout), ['1234', '5678', '5678 100 200', '/'])
    const rootUser = await sh('id -u; id -g; id -G; echo $HOME', base(kind))
    t.deepEqual(lines(rootUser.stdout), ['0', '0', '0', '/root'])
  })

  ctest(`[${kind}] cwd is honored`, async (t) => {
    t.is((await sh('pwd', { ...base(kind), cwd: '/tmp' })).stdout, '/tmp')
    t.is((await sh('pwd', base(kind))).stdout, '/')
    const dir = hostDir({ 'here.txt': '' })
    try {
      const r = await sh('pwd; ls', { ...base(kind), cwd: '/work', mounts: [{ type: 'bind', source: dir, target: '/work' }] })
      t.is(r.stdout, '/work\nhere.txt')
    } finally {
      fs.rmSync(dir, { recursive: true, force: true })
      if (kind === 'busybox') cleanRoot('work')
    }
  })

  ctest(`[${kind}] the default env is exactly PATH, HOSTNAME, HOME (nothing from Node's env)`, async (t) => {
    process.env.LONELY_SECRET = 'x'
    try {
      const r = await go(['env'], base(kind))
      t.deepEqual(r.stdout.split('\n'), [
        'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        'HOSTNAME=lonely',
        'HOME=/root',
      ])
      t.false(r.stdout.includes('LONELY_SECRET'))
    } finally {
      delete process.env.LONELY_SECRET
    }
  })

  ctest(`[${kind}] user env is added to the default env`, async (t) => {
    process.env.LONELY_SECRET = 'x'
    try {
      const r = await go(['env'], { ...base(kind), hostname: 'envbox', env: { GREETING: 'hello world', EMPTY: '' } })
      t.deepEqual(r.stdout.split('\n'), [
        'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
        'HOSTNAME=envbox',
        'HOME=/root',
        'GREETING=hello world',
        'EMPTY=',
      ])
    } finally {
      delete process.env.LONELY_SECRET
    }
  })
}

/** Every path under `dir` with its kind: the rootfs as a caller would compare it. */
function tree(dir: string, rel = ''): string[] {
  return fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((e) => {
    const p = path.join(rel, e.name)
    return [`${p}${e.isDirectory() ? '/' : e.isSymbolicLink() ? '@' : ''}`, ...(e.isDirectory() ? tree(dir, p) : [])]
  })
}

ctest('docker puts a container\'s mount points in its writable layer; with a --rootfs lonely writes exactly the mount points it lacks there (empty, left after the run, readonlyRoot too), and they stay: a second container\'s bind on one of them survives the first one\'s end (removing a mount point would detach it everywhere)', async (t) => {
  const given = makeBusyboxRoot()
  t.teardown(() => removeRoot(given))
  for (const d of ['proc', 'dev', 'sys']) fs.rmdirSync(path.join(given, d))
  const before = tree(given)
  const file = path.join(os.tmpdir(), `lonely-conf-${process.pid}`)
  fs.writeFileSync(file, 'conf\n')
  t.teardown(() => fs.rmSync(file, { force: true }))
  const mounts: ContainerOptions['mounts'] = [
    { type: 'bind', source: file, target: '/etc/myconf', readonly: true },
    { type: 'bind', source: '/usr/bin', target: '/new/deep/bin', readonly: true },
    { type: 'tmpfs', target: '/scratch' },
  ]
  const first = spawn(['/bin/sh', '-c', 'cat /etc/myconf; ls /new/deep/bin/ls'], { rootfs: given, mounts, readonlyRoot: true, stdin: 'ignore' })
  // The second starts while the first runs, on the same rootfs, and looks after the first ended.
  const second = spawn(['/bin/sh', '-c', 'read x; cat /etc/myconf; ls /new/deep/bin/ls'], { rootfs: given, mounts })
  let seen = ''
  second.stdout!.on('data', (d) => (seen += d))
  const ended = new Promise((r) => second.stdout!.on('close', r)) // the output may trail the exit
  t.is((await first).exitCode, 0)
  second.stdin!.end('go\n')
  t.is((await second).exitCode, 0)
  await ended
  t.is(seen, 'conf\n/new/deep/bin/ls\n', 'its mounts are still there once the first one ended')
  const made = tree(given).filter((p) => !before.includes(p)).sort()
  t.deepEqual(made, ['dev/', 'etc/myconf', 'new/', 'new/deep/', 'new/deep/bin/', 'proc/', 'scratch/', 'sys/'], 'exactly the mount points, nothing else')
  t.deepEqual(before.filter((p) => !tree(given).includes(p)), [], 'nothing of the rootfs went')
  t.is(fs.statSync(path.join(given, 'etc/myconf')).size, 0, 'an empty file: no content of the bind stays')
  t.deepEqual(fs.readdirSync(path.join(given, 'new/deep/bin')), [])
})
