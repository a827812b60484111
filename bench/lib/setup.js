'use strict'
// Everything the bench needs before measuring: peer tools (from Debian), one busybox root,
// an OCI bundle on that root for crun/runc, machine facts; and the clean-up afterwards.
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const cp = require('node:child_process')

const log = (...a) => process.stderr.write(`[bench] ${a.join(' ')}\n`)

/** The executable `cmd` on PATH (or an absolute path), or null. */
function which(cmd) {
  if (cmd.includes('/')) return isExecutable(cmd) ? cmd : null
  const dirs = (process.env.PATH || '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':')
  for (const d of [...dirs, '/usr/sbin', '/sbin']) {
    const p = path.join(d, cmd)
    if (isExecutable(p)) return p
  }
  return null
}

function isExecutable(p) {
  try {
    fs.accessSync(p, fs.constants.X_OK)
    return fs.statSync(p).isFile()
  } catch {
    return false
  }
}

/** True for an ELF executable without a PT_INTERP program header (statically linked). */
function isStaticElf(file) {
  let fd
  try {
    fd = fs.openSync(file, 'r')
    const h = Buffer.alloc(64)
    fs.readSync(fd, h, 0, 64, 0)
    if (h.readUInt32BE(0) !== 0x7f454c46 || h[4] !== 2 || h[5] !== 1) return false // ELF64 little-endian only
    const phoff = Number(h.readBigUInt64LE(0x20))
    const phentsize = h.readUInt16LE(0x36)
    const phnum = h.readUInt16LE(0x38)
    const ph = Buffer.alloc(phentsize * phnum)
    fs.readSync(fd, ph, 0, ph.length, phoff)
    for (let i = 0; i < phnum; i++) if (ph.readUInt32LE(i * phentsize) === 3 /* PT_INTERP */) return false
    return true
  } catch {
    return false
  } finally {
    if (fd !== undefined) fs.closeSync(fd)
  }
}

function staticBusybox() {
  return ['/bin/busybox', '/usr/bin/busybox'].find((p) => isExecutable(p) && isStaticElf(p)) || null
}

const PACKAGES = { bwrap: 'bubblewrap', crun: 'crun', runc: 'runc', unshare: 'util-linux' }

/**
 * Installs the missing peers from Debian (`apt-get update` only when something is missing).
 * Returns { tools: {name: path|null}, busybox: path|null, installLog }.
 */
function ensureTools({ install = true } = {}) {
  const missing = []
  for (const [tool, pkg] of Object.entries(PACKAGES)) if (!which(tool)) missing.push(pkg)
  if (!staticBusybox()) missing.push('busybox-static')
  let installError = null
  if (missing.length && install) {
    if (process.getuid && process.getuid() !== 0) {
      installError = `not root: cannot apt-get install ${missing.join(' ')}`
    } else if (!which('apt-get')) {
      installError = `no apt-get: cannot install ${missing.join(' ')}`
    } else {
      const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
      log(`installing ${missing.join(' ')} (apt-get update && apt-get install -y ...)`)
      const opts = { stdio: ['ignore', 'ignore', 'inherit'], env, timeout: 600_000 }
      const up = cp.spawnSync('apt-get', ['update'], opts)
      const inst = cp.spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], opts)
      if (up.status !== 0) installError = `apt-get update failed (exit ${up.status})`
      if (inst.status !== 0) installError = `apt-get install ${missing.join(' ')} failed (exit ${inst.status})`
    }
  }
  const tools = {}
  for (const tool of Object.keys(PACKAGES)) tools[tool] = which(tool)
  return { tools, busybox: staticBusybox(), missing, installError }
}

/** A root filesystem with a static busybox and its applets (as __test__/helpers.ts makes it). */
function makeBusyboxRoot(dir, busybox) {
  const root = path.join(dir, 'rootfs')
  fs.mkdirSync(root)
  for (const d of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root']) fs.mkdirSync(path.join(root, d))
  fs.copyFileSync(busybox, path.join(root, 'bin/busybox'))
  fs.chmodSync(path.join(root, 'bin/busybox'), 0o755)
  const applets = cp.execFileSync(busybox, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean)
  for (const applet of applets) {
    if (applet !== 'busybox') fs.symlinkSync('busybox', path.join(root, 'bin', applet))
  }
  fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n')
  fs.writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n')
  return root
}

const DOCKER_CAPS = ['CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'NET_RAW', 'SETGID', 'SETUID', 'SETFCAP', 'SETPCAP', 'NET_BIND_SERVICE', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE'].map((c) => `CAP_${c}`)

/**
 * What lonely's plan for `run(['/bin/true'], { rootfs })` does besides namespaces and mounts,
 * read from `explain()` (its printed plan): masked and read-only paths, capability drop,
 * no_new_privs, seccomp. The crun/runc bundle then does the same.
 */
function securityFromPlan(plan, libRoot) {
  const paths = (re) => [...plan.matchAll(re)].map((m) => m[1]).filter((p) => p !== '/')
  const sec = {
    maskedPaths: paths(/\bmask `([^`]+)`/g),
    readonlyPaths: paths(/remount read-only `([^`]+)`/g),
    dropCaps: /capset|PR_CAPBSET_DROP/.test(plan),
    noNewPrivileges: /NO_NEW_PRIVS/.test(plan),
    seccomp: null,
  }
  if (/\bseccomp\b/.test(plan)) sec.seccomp = seccompProfile(libRoot)
  return sec
}

/**
 * An OCI seccomp profile with lonely's default allowlist (read from its core/src/seccomp/mod.rs;
 * bench/lib/seccomp-allowlist.json when that file is not there): EPERM by default, the listed
 * calls allowed, clone/unshare without namespace flags, socket but AF_ALG/AF_VSOCK, the
 * personalities docker allows, clone3 ENOSYS. (lonely's second filter, the TIOCSTI/TIOCLINUX
 * guard, has no OCI equivalent and is left out: one comparison more per ioctl.)
 */
function seccompProfile(libRoot) {
  let names = null
  try {
    const src = fs.readFileSync(path.join(libRoot, 'core/src/seccomp/mod.rs'), 'utf8')
    const m = src.match(/const ALLOWED: &\[&str\] = &\[([\s\S]*?)\];/)
    if (m) names = [...m[1].matchAll(/"([a-z0-9_]+)"/g)].map((x) => x[1])
  } catch {}
  if (!names) names = JSON.parse(fs.readFileSync(path.join(__dirname, 'seccomp-allowlist.json'), 'utf8'))
  const NS = 0x7e020000
  return {
    defaultAction: 'SCMP_ACT_ERRNO',
    defaultErrnoRet: 1,
    architectures: ['SCMP_ARCH_X86_64'],
    syscalls: [
      { names, action: 'SCMP_ACT_ALLOW' },
      { names: ['clone', 'unshare'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: NS, valueTwo: 0, op: 'SCMP_CMP_MASKED_EQ' }] },
      { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: 38 },
      { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 38, op: 'SCMP_CMP_LT' }] },
      { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 39, op: 'SCMP_CMP_EQ' }] },
      { names: ['socket'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: 40, op: 'SCMP_CMP_GT' }] },
      ...[0x0, 0x8, 0x20000, 0x20008, 0xffffffff].map((v) => ({ names: ['personality'], action: 'SCMP_ACT_ALLOW', args: [{ index: 0, value: v, op: 'SCMP_CMP_EQ' }] })),
    ],
  }
}

/**
 * An OCI bundle whose container does what `run(['/bin/true'], { rootfs })` does: pid, mount,
 * uts, ipc, network and cgroup namespaces; read-only root; /proc, a tmpfs /dev with the
 * usual nodes, /dev/pts, /dev/shm, read-only /sys, tmpfs /tmp; hostname; no terminal; and
 * `security` (from securityFromPlan): the same masked and read-only paths, docker's
 * capabilities, no_new_privs and seccomp allowlist when lonely's plan has them. No resource
 * limits (crun/runc still make and remove a cgroup per container: that is part of their cost).
 */
function makeBundle(dir, rootfs, security = {}, args = ['/bin/true']) {
  const bundle = path.join(dir, 'bundle')
  fs.mkdirSync(bundle)
  const config = {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args,
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOSTNAME=lonely', 'HOME=/root'],
      cwd: '/',
    },
    root: { path: rootfs, readonly: true },
    hostname: 'lonely',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      { destination: '/tmp', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'nodev', 'mode=1777'] },
    ],
    linux: {
      namespaces: ['pid', 'mount', 'uts', 'ipc', 'network', 'cgroup'].map((type) => ({ type })),
      maskedPaths: security.maskedPaths ?? [],
      readonlyPaths: security.readonlyPaths ?? [],
    },
  }
  if (security.dropCaps) config.process.capabilities = { bounding: DOCKER_CAPS, effective: DOCKER_CAPS, permitted: DOCKER_CAPS }
  if (security.noNewPrivileges) config.process.noNewPrivileges = true
  if (security.seccomp) config.linux.seccomp = security.seccomp
  fs.writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(config, null, 2))
  return bundle
}

/** cgroup v1 controllers mounted together with a cgroup2 at /sys/fs/cgroup/unified. */
function cgroupMode() {
  const lines = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
  let v1 = false
  let v2 = null
  for (const l of lines) {
    const [pre, post] = l.split(' - ')
    if (!post) continue
    const fstype = post.split(' ')[0]
    const mountPoint = pre.split(' ')[4]
    if (fstype === 'cgroup') v1 = true
    if (fstype === 'cgroup2') v2 = mountPoint
  }
  if (v1 && v2) return { mode: 'hybrid', unified: v2 }
  if (v1) return { mode: 'v1', unified: null }
  return { mode: v2 ? 'v2' : 'none', unified: null }
}

function firstLine(cmd, args) {
  try {
    const r = cp.spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 })
    return ((r.stdout || '') + (r.stderr || '')).split('\n').find(Boolean)?.trim() ?? null
  } catch {
    return null
  }
}

function machineInfo(tools, busybox, root = path.join(__dirname, '..', '..')) {
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8')
  const model = (cpuinfo.match(/^model name\s*:\s*(.*)$/m) || [])[1] || os.cpus()[0]?.model || 'unknown'
  const read = (f) => {
    try {
      return fs.readFileSync(f, 'utf8').trim()
    } catch {
      return null
    }
  }
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
  const addon = fs.readdirSync(root).find((f) => f.endsWith('.node'))
  let addonInfo = null
  if (addon) {
    const st = fs.statSync(path.join(root, addon))
    const sha256 = require('node:crypto').createHash('sha256').update(fs.readFileSync(path.join(root, addon))).digest('hex')
    addonInfo = { file: addon, bytes: st.size, mtime: st.mtime.toISOString(), sha256 }
  }
  return {
    hostname: os.hostname(),
    kernel: `${os.type()} ${os.release()} ${os.version()}`,
    arch: os.arch(),
    cpuModel: model,
    cores: os.cpus().length,
    memTotalMiB: Math.round(os.totalmem() / 2 ** 20),
    node: process.version,
    date: new Date().toISOString(),
    cgroups: cgroupMode().mode,
    transparentHugepages: read('/sys/kernel/mm/transparent_hugepage/enabled'),
    lonely: {
      root,
      version: pkg.version,
      commit: (() => {
        const r = cp.spawnSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' })
        return r.status === 0 ? r.stdout.trim() : null
      })(),
      dirtyFiles: (() => {
        try {
          return cp.execFileSync('git', ['-C', root, 'status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).split('\n').filter(Boolean).length
        } catch {
          return null
        }
      })(),
      addon: addonInfo,
    },
    loadAverageAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
    tools: {
      bwrap: tools.bwrap && firstLine(tools.bwrap, ['--version']),
      crun: tools.crun && firstLine(tools.crun, ['--version']),
      runc: tools.runc && firstLine(tools.runc, ['--version']),
      unshare: tools.unshare && firstLine(tools.unshare, ['--version']),
      busybox: busybox && firstLine(busybox, ['--help']),
    },
  }
}

/** Our mounts still visible under `dir` in the host's mount table (there should be none). */
function mountsUnder(dir) {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m) => m && (m === dir || m.startsWith(dir + '/')))
}

/**
 * Directories under `root`, up to `levels` levels down, whose name passes `test` (a match is
 * not searched further).
 */
function dirsMatching(root, levels, test) {
  const found = []
  const walk = (dir, left) => {
    let entries
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true })
    } catch {
      return
    }
    for (const e of entries) {
      if (!e.isDirectory()) continue
      const p = path.join(dir, e.name)
      if (test(e.name)) found.push(p)
      else if (left > 1) walk(p, left - 1)
    }
  }
  walk(root, levels)
  return found
}

/** cgroup directories named after our container ids, anywhere up to `depth` levels under /sys/fs/cgroup. */
function cgroupsNamed(prefix, depth = 5) {
  return dirsMatching('/sys/fs/cgroup', depth + 1, (name) => name.includes(prefix))
}

/** Removes what the bench made: leftover crun/runc containers, their cgroups, the temp dir. */
function cleanup(ctx) {
  const problems = []
  for (const [tool, stateDir] of [['crun', ctx.crunState], ['runc', ctx.runcState]]) {
    const bin = ctx.tools?.[tool]
    if (!bin || !stateDir || !fs.existsSync(stateDir)) continue
    let ids = []
    try {
      ids = fs.readdirSync(stateDir).filter((f) => fs.statSync(path.join(stateDir, f)).isDirectory())
    } catch {}
    for (const id of ids) {
      problems.push(`${tool}: container ${id} was left behind; deleting it`)
      const args = ['--root', stateDir, 'delete', '--force', id]
      const wrap = tool === 'crun' && ctx.crunWrap
      const r = wrap ? cp.spawnSync('unshare', ['-m', 'sh', '-c', `umount ${ctx.unified} && exec "$0" "$@"`, bin, ...args]) : cp.spawnSync(bin, args)
      if (r.status !== 0) problems.push(`${tool} delete ${id}: ${String(r.stderr).trim()}`)
    }
  }
  if (ctx.idPrefix) {
    // Deepest first, so that a leaf goes before its parent.
    for (const cg of cgroupsNamed(ctx.idPrefix).sort((a, b) => b.length - a.length)) {
      problems.push(`cgroup ${cg} was left behind; removing it`)
      try {
        fs.rmdirSync(cg)
      } catch (e) {
        problems.push(`rmdir ${cg}: ${e.code}`)
      }
    }
  }
  if (ctx.dir && fs.existsSync(ctx.dir)) {
    const m = mountsUnder(ctx.dir)
    if (m.length) problems.push(`mounts left under ${ctx.dir}: ${m.join(', ')} (not removing the directory)`)
    else fs.rmSync(ctx.dir, { recursive: true, force: true })
  }
  return problems
}

module.exports = { log, which, ensureTools, staticBusybox, makeBusyboxRoot, makeBundle, securityFromPlan, cgroupMode, machineInfo, cleanup, mountsUnder, cgroupsNamed, dirsMatching }
