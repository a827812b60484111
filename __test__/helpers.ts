// Shared by the ava suites: a busybox root filesystem and a snapshot of everything a
// container could leak (host mounts, our fds, zombies, threads, live containers).
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { execFileSync } from 'node:child_process'
import type { ExecutionContext } from 'ava'

import { liveContainers, run } from '../index'
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
  fds: number
  threads: number
  zombies: number
  live: number
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

/** Our open fds, less the network and IPC namespaces the library keeps ready (a fixed-size pool that refills in the background). */
function fds(): number {
  return fs.readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return !/^(net|ipc):\[/.test(fs.readlinkSync(`/proc/self/fd/${fd}`))
    } catch {
      return false // the fd of readdir itself, already closed
    }
  }).length
}

export function snapshot(): Snapshot {
  return {
    mounts: ourMounts(),
    fds: fds(),
    threads: fs.readdirSync('/proc/self/task').length,
    zombies: zombies(),
    live: liveContainers(),
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

/** What /proc says about our fds and threads, to name the culprit when a count is off. */
export interface Detail {
  fds: string[]
  threads: string[]
}

export function detail(): Detail {
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

export type Baseline = Snapshot & { detail: Detail }

/**
 * The leak baseline. The first container of the process starts the runtime's threads (the
 * reaper, the network-namespace pool) and the first async fs call starts libuv's threadpool,
 * so both happen before the snapshot. The pool refills its few ready namespaces (one fd each)
 * in the background after a container took one: the snapshot waits until the fd count has
 * held still for 100 ms, so a refill in flight is not counted as a leak later.
 */
export async function baseline(): Promise<Baseline> {
  await run(['/bin/true'])
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
  return { ...last, detail: detail() }
}

/** Host mounts equal, no fd more, no zombie, no live container, threads equal: one diff. */
export async function expectNoLeak(t: ExecutionContext, before: Baseline, tries = 50): Promise<void> {
  const after = await settled(before, tries)
  const now = detail()
  const added = (a: string[], b: string[]) => b.filter((x) => !a.includes(x))
  const changes = [
    `fds opened: ${JSON.stringify(added(before.detail.fds, now.fds))}`,
    `fds closed: ${JSON.stringify(added(now.fds, before.detail.fds))}`,
    `threads started: ${JSON.stringify(added(before.detail.threads, now.threads))}`,
    `threads ended: ${JSON.stringify(added(now.threads, before.detail.threads))}`,
  ].join('; ')
  const { detail: _, mounts: __, ...counts } = before
  t.deepEqual(
    { mounts: after.mounts, fdsLeaked: Math.max(0, after.fds - before.fds), zombies: after.zombies, live: after.live, threads: after.threads },
    { mounts: before.mounts, fdsLeaked: 0, zombies: 0, live: 0, threads: before.threads },
    `before ${JSON.stringify(counts)}, after ${JSON.stringify({ ...after, mounts: undefined })}; ${changes}`,
  )
}

/** Settles, then: host mounts as before, no fd more, no zombie, no live container. Returns what it saw. */
export async function expectNothingLeaked(t: ExecutionContext, before: Snapshot): Promise<Snapshot> {
  const after = await settled(before)
  t.is(after.mounts, before.mounts, 'our mounts')
  t.true(after.fds <= before.fds, `fds: ${after.fds} now, ${before.fds} before`)
  t.is(after.zombies, 0, 'zombies')
  t.is(after.live, 0, 'live containers')
  return after
}

/** The check every suite ends with: back to the warm-up's host mounts, no live container, no zombie. */
export async function expectSettled(t: ExecutionContext, warm: Snapshot): Promise<void> {
  const now = await settled(warm)
  t.is(now.mounts, warm.mounts, 'our mounts')
  t.is(now.live, 0, 'live containers')
  t.is(now.zombies, 0, 'zombies')
}
