// Shared by the ava suites: a busybox root filesystem and a snapshot of everything a
// container could leak (host mounts, our fds, zombies, threads, live containers).
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { execFileSync } from 'node:child_process'

import { liveContainers } from '../index'

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
  mounts: number
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

/** Our open fds, less the network namespaces the library keeps ready (a fixed-size pool that refills in the background). */
function fds(): number {
  return fs.readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return !fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith('net:[')
    } catch {
      return false // the fd of readdir itself, already closed
    }
  }).length
}

export function snapshot(): Snapshot {
  return {
    mounts: fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean).length,
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
