// Shared by the ava suites: a busybox root filesystem and a snapshot of everything a
// container could leak (host mounts, our fds, zombies, threads, live containers).
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { createHash } from 'node:crypto'
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import type { ExecutionContext } from 'ava'

import { containers, liveContainers, run, type RunOptions } from '../index'
import { native as nativeBinding } from '../lib/native'
import { ourMounts } from './mounts'

export { ourMounts }

export const BUSYBOX = ['/bin/busybox', '/usr/bin/busybox'].find((p) => fs.existsSync(p))

/** A root filesystem with a static busybox and its applets; removed by the caller. */
export function makeBusyboxRoot(): string {
  if (!BUSYBOX) throw new Error('busybox-static is not installed (apt-get install busybox-static)')
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-root-'))
  fs.chmodSync(root, 0o755) // mkdtemp's 0700 would lock out non-root uids
  for (const dir of ['bin', 'etc', 'proc', 'sys', 'dev', 'tmp', 'root']) fs.mkdirSync(path.join(root, dir))
  fs.copyFileSync(BUSYBOX, path.join(root, 'bin/busybox'))
  fs.chmodSync(path.join(root, 'bin/busybox'), 0o755)
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean)
  for (const applet of applets) {
    if (applet !== 'busybox') fs.symlinkSync('busybox', path.join(root, 'bin', applet))
  }
  fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n')
  fs.writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n')
  return root
}

export function removeRoot(root: string): void {
  fs.rmSync(root, { recursive: true, force: true })
}

export interface Snapshot {
  /** ourMounts(): compared as a whole, a diff names the mount. */
  mounts: string
  /** Open fds but the namespace pool's. */
  fds: number
  /** The network and IPC namespaces the library keeps ready: bounded, never hidden. */
  pool: number
  threads: number
  zombies: number
  live: number
  detail: Detail
}

/** Our children in state Z (a container we failed to reap). */
function zombies(): number {
  let n = 0
  for (const pid of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      if (fields[0] === 'Z' && Number(fields[1]) === process.pid) n++
    } catch {
      // raced with its exit
    }
  }
  return n
}

/** What /proc says about our fds and threads, to name the culprit when a count is off. */
export interface Detail {
  fds: string[]
  threads: string[]
}

function detail(): Detail {
  const read = (f: () => string) => {
    try {
      return f()
    } catch {
      return '?'
    }
  }
  return {
    fds: fs.readdirSync('/proc/self/fd').map((fd) => `${fd} -> ${read(() => fs.readlinkSync(`/proc/self/fd/${fd}`))}`),
    threads: fs.readdirSync('/proc/self/task').map((tid) => `${tid} ${read(() => fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim())}`),
  }
}

/** The pool's namespaces refill in the background; they count against its capacity instead. */
const isPoolFd = (entry: string) => / -> (net|ipc):\[/.test(entry)

export function snapshot(): Snapshot {
  const d = detail()
  // The fd of readdir itself reads '?' (already closed): not ours to count.
  const open = d.fds.filter((f) => !f.endsWith(' -> ?'))
  return {
    mounts: ourMounts(),
    fds: open.filter((f) => !isPoolFd(f)).length,
    pool: open.filter(isPoolFd).length,
    threads: d.threads.length,
    zombies: zombies(),
    live: liveContainers(),
    detail: d,
  }
}

/** Waits for fds and threads to settle (closing sockets is asynchronous in Node). */
export async function settled(before: Snapshot, tries = 50): Promise<Snapshot> {
  let now = snapshot()
  for (let i = 0; i < tries; i++) {
    if (now.fds <= before.fds && now.zombies === 0 && now.live === 0 && now.mounts === before.mounts) break
    await new Promise((r) => setTimeout(r, 20))
    now = snapshot()
  }
  return now
}

/**
 * The one warm-up: the first containers of the process (each `[command, options]`; by default
 * one `true`, and one under `init`) start the runtime's threads (the reaper, the namespace
 * pool), open its once-per-process fds (its own pidfd, lonely-init's memfd) and load the addon,
 * the first async fs call starts libuv's threadpool; then it waits until fds and threads have
 * held still for 100 ms (the pool refilling), and that is the baseline every leak check uses.
 */
export async function warmUp(...starts: Array<[string[], RunOptions?]>): Promise<Snapshot> {
  for (const [command, options] of starts.length ? starts : [[['true'], {}] as [string[], RunOptions]]) {
    await run(command, { stdin: 'ignore', ...options })
  }
  // The runtime's once-per-process fds: lonely-init's sealed memfd (the pidfd came with the first).
  await run(['true'], { stdin: 'ignore', init: true })
  await fs.promises.readFile('/proc/self/stat')
  let last = snapshot()
  let stableSince = performance.now()
  const start = performance.now()
  while (performance.now() - stableSince < 100 && performance.now() - start < 3000) {
    await new Promise((resolve) => setTimeout(resolve, 10))
    const now = snapshot()
    if (now.fds !== last.fds || now.threads !== last.threads) stableSince = performance.now()
    last = now
  }
  return last
}

/** The namespace pool's bound (core/src/nspool.rs CAPACITY). */
const POOL_CAPACITY = nativeBinding().namespacePoolCapacity()

/**
 * The one leak check: after settling, our mounts as before, no fd more (`fds: false` at the
 * end of a suite, whose streams may still be closing), the pool within its capacity, no zombie,
 * no live container, and with `threads` the same threads. One diff names what changed.
 */
export async function expectNoLeak(t: ExecutionContext, before: Snapshot, check: { tries?: number; threads?: boolean; fds?: boolean } = {}): Promise<Snapshot> {
  const after = await settled(before, check.tries ?? 50)
  const added = (a: string[], b: string[]) => b.filter((x) => !a.includes(x))
  const changes = [
    `fds opened: ${JSON.stringify(added(before.detail.fds, after.detail.fds))}`,
    `fds closed: ${JSON.stringify(added(after.detail.fds, before.detail.fds))}`,
    `threads started: ${JSON.stringify(added(before.detail.threads, after.detail.threads))}`,
    `threads ended: ${JSON.stringify(added(after.detail.threads, before.detail.threads))}`,
  ].join('; ')
  const counts = (s: Snapshot) => ({
    mounts: s.mounts,
    ...(check.fds === false ? {} : { fdsLeaked: Math.max(0, s.fds - before.fds) }),
    poolWithinCapacity: s.pool <= POOL_CAPACITY,
    zombies: s.zombies,
    live: s.live,
    ...(check.threads ? { threads: s.threads } : {}),
  })
  const expected = { ...counts(before), poolWithinCapacity: true, zombies: 0, live: 0, ...(check.fds === false ? {} : { fdsLeaked: 0 }) }
  t.deepEqual(counts(after), expected, `pool ${after.pool}/${POOL_CAPACITY}; ${changes}`)
  return after
}

/** A suite's end: the final leak check against its warm-up, then its clean-up, whatever the check found. */
export async function endSuite(t: ExecutionContext, warm: Snapshot | undefined, ...cleanups: Array<() => void>): Promise<void> {
  try {
    if (warm) await expectNoLeak(t, warm, { fds: false })
  } finally {
    for (const cleanup of cleanups) cleanup()
  }
}

/**
 * A host process that ends with the test, pass or fail: a failed assertion throws, and a child
 * left running would hold the suite's output open (the CI run then never ends).
 */
export function ownedChild(t: ExecutionContext, cmd: string, args: string[], options: SpawnOptions): ChildProcess {
  const child = spawn(cmd, args, options)
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  })
  return child
}

/** Polls `probe` every 20 ms until it returns true or `ms` pass; returns its last answer. */
export async function eventually(probe: () => boolean, ms = 5000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 20))) if (probe()) return true
  return probe()
}

/**
 * A docker-archive, as `docker save` writes one, in `into`: `root` as the one layer of each of
 * `images` (a tag, its Cmd and more of its config: User, WorkingDir...). The engine suites import it (ctr image import, podman load).
 */
export function dockerArchive(root: string, into: string, images: Array<{ tag: string; cmd: string[]; config?: Record<string, unknown> }>): string {
  const layer = path.join(into, 'layer.tar')
  execFileSync('tar', ['-C', root, '-cf', layer, '.'])
  const diff = `sha256:${createHash('sha256').update(fs.readFileSync(layer)).digest('hex')}`
  const manifest = images.map(({ tag, cmd, config: more }) => {
    const config = JSON.stringify({ architecture: os.arch() === 'arm64' ? 'arm64' : 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [diff] }, config: { Cmd: cmd, Env: ['PATH=/bin'], ...more } })
    const name = `${createHash('sha256').update(config).digest('hex')}.json`
    fs.writeFileSync(path.join(into, name), config)
    return { Config: name, RepoTags: [tag], Layers: ['layer.tar'] }
  })
  fs.writeFileSync(path.join(into, 'manifest.json'), JSON.stringify(manifest))
  const out = path.join(into, 'images.tar')
  execFileSync('tar', ['-C', into, '-cf', out, 'layer.tar', 'manifest.json', ...manifest.map((m) => m.Config)])
  return out
}

/**
 * One suite at a time on what private engines still share (containerd's /run/containerd, its
 * shims' sockets): an exclusive lock file, taken over from a holder that died. Resolves to its release.
 */
export async function exclusive(name: string, ms = 600_000): Promise<() => void> {
  const file = path.join(os.tmpdir(), `.lonely-test-lock-${name}`)
  const alive = (pid: number) => {
    try {
      process.kill(pid, 0)
      return true
    } catch (e) {
      return (e as NodeJS.ErrnoException).code === 'EPERM'
    }
  }
  for (const end = Date.now() + ms; ; await new Promise((r) => setTimeout(r, 200))) {
    try {
      fs.writeFileSync(file, String(process.pid), { flag: 'wx' })
      return () => {
        if (fs.existsSync(file) && fs.readFileSync(file, 'utf8') === String(process.pid)) fs.rmSync(file)
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e
      const holder = Number(fs.readFileSync(file, 'utf8'))
      if (!holder || !alive(holder)) fs.rmSync(file, { force: true })
      else if (Date.now() > end) throw new Error(`${file}: still held by pid ${holder}`)
    }
  }
}

/** Removes (SIGKILL first) every detached container of `stateDir`, then (unless `keepDir`) the directory: clean-up whatever a test did. */
export async function removeDetached(stateDir: string, options: { keepDir?: boolean } = {}): Promise<void> {
  if (!stateDir || !fs.existsSync(stateDir)) return
  for (const info of containers.list({ stateDir })) await containers.get(info.id, { stateDir }).remove({ force: true })
  if (!options.keepDir) fs.rmSync(stateDir, { recursive: true, force: true })
}
