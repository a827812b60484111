// The setup races: a second writer of the root (another container sharing it as a volume, or
// a host user who owns it or its parent) renames entries while containers start. Each race
// runs RACE_STARTS starts against a host-side renameat2(RENAME_EXCHANGE) loop and must see no
// win; its control runs the same loop against a lookup by path, as the runtime did before, and
// must see it win. escape.spec.ts runs them as root, rootless.spec.ts as a non-root user (this
// module is loaded in that user's Node process too: no ava here).
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { spawn as spawnHost } from 'node:child_process'

export const RACE_STARTS = 200

/** What a started container showed, judged: `WIN: ...` is an escape. */
type Shown = { exitCode?: number; stdout: string; stderr: string }

/** Self-contained, so that another user's process can judge with them by name. */
export const JUDGES = {
  /** Each masked file must be the null device (1:3); a bind of core_pattern is a regular file. */
  dev(r: Shown): string {
    const kinds = r.stdout.split('\n').filter(Boolean)
    return kinds.length > 0 && kinds.every((k) => k === 'character special file 1:3') ? 'ran, masks are /dev/null' : `WIN: masked paths are ${JSON.stringify(kinds)}`
  },
  /**
   * Wherever procfs landed (/proc or /proc-b), its mountinfo lists the mounts on top of it,
   * judged by what the racer cannot rename: a mount's parent id and its root inside its
   * filesystem (the read-only bind of /proc/sys has root /sys).
   */
  proc(r: Shown): string {
    if (r.exitCode !== 0) return `no mountinfo readable (${r.exitCode})`
    const mounts = r.stdout.split('\n').filter(Boolean).map((l) => {
      const f = l.split(' ')
      return { id: f[0], parent: f[1], root: f[3], opts: f[5], fstype: f[f.indexOf('-') + 1] }
    })
    const procs = mounts.filter((m) => m.fstype === 'proc' && m.root === '/')
    if (!procs.length) return 'WIN: no procfs found'
    for (const p of procs) {
      const on = mounts.filter((m) => m.parent === p.id)
      if (!on.some((m) => m.fstype === 'proc' && m.root === '/sys' && m.opts.split(',').includes('ro'))) return 'WIN: a procfs without its read-only /proc/sys'
      if (on.length < 5) return `WIN: a procfs with ${on.length} masks and read-only binds`
    }
    return 'ran, procfs protected'
  },
  rootfs(r: Shown): string {
    return r.stdout === 'ours' ? 'ran in the rootfs' : `WIN: ran elsewhere (${r.exitCode}: ${r.stdout}${r.stderr})`
  },
  bind(r: Shown): string {
    return r.stdout === 'ours' ? 'ran with its volume' : `WIN: /mnt is something else (${r.stdout.split('\n').slice(0, 4).join(' ')})`
  },
}
export type JudgeName = keyof typeof JUDGES

type Run = (command: string[], options: Record<string, unknown>) => Promise<Shown & { stage?: string; code?: string }>

/**
 * Starts containers until `starts` got past validation (a process was made: it ran or failed
 * its setup), at most 20 times as many attempts; counts the outcomes.
 */
export async function raceLoop(run: Run, command: string[], options: Record<string, unknown>, judge: JudgeName, starts = RACE_STARTS): Promise<Record<string, number>> {
  const counts: Record<string, number> = {}
  let started = 0
  for (let attempt = 0; started < starts && attempt < 20 * starts; attempt++) {
    let outcome: string
    try {
      const r = await run(command, { reject: false, stdin: 'ignore', ...options })
      outcome = r.stage ? `refused in setup: ${r.stage} ${r.code}` : JUDGES[judge](r)
      started++
    } catch (e) {
      outcome = e instanceof RangeError ? 'refused by validation (RangeError)' : `ERROR: ${(e as Error).message}`
    }
    counts[outcome] = (counts[outcome] ?? 0) + 1
  }
  return counts
}

/** The host-side renamer (`attack exchange-loop`): exchanges two entries of `dir` until stopped. */
export async function exchangeLoop(attackBin: string, dir: string, a: string, b: string): Promise<{ stop: () => Promise<string> }> {
  const child = spawnHost(attackBin, ['exchange-loop', dir, a, b, '300'], { stdio: ['ignore', 'pipe', 'pipe'] })
  await new Promise<void>((resolve, reject) => child.once('spawn', resolve).once('error', reject))
  let out = ''
  child.stdout!.on('data', (c) => (out += c))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  return {
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
      await exited
      return out
    },
  }
}

/** The racer's wins against a lookup by path: `lookup` called 20 000 times while the loop runs. */
export function pathLookupWins(lookup: () => boolean): number {
  let wins = 0
  for (let i = 0; i < 20_000; i++) if (lookup()) wins++
  return wins
}

/** Unlinks whichever of `names` is a symlink now, then removes `dir`. */
export function removeWithLinks(dir: string, names: string[]): void {
  for (const n of names) {
    const p = path.join(dir, n)
    try {
      if (fs.lstatSync(p).isSymbolicLink()) fs.unlinkSync(p)
    } catch {
      // gone
    }
  }
  fs.rmSync(dir, { recursive: true, force: true })
}

/** A temp directory any uid can enter. */
function openDir(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix))
  fs.chmodSync(dir, 0o755)
  return dir
}

export interface RaceSetup {
  /** What the racer exchanges: `a` and `b` in `dir`. */
  dir: string
  a: string
  b: string
  command: string[]
  options: Record<string, unknown>
  judge: JudgeName
  /** The outcome of a protected run; some must occur. */
  ran: string
  /** One lookup by path the racer wins. */
  lookup: () => boolean
  cleanup: () => void
}

export interface Race {
  title: string
  setup: (attackRoot: () => string) => RaceSetup
}

export const RACES: Race[] = [
  {
    title: 'exchanging /dev with a directory whose null -> /proc/sys/kernel/core_pattern never makes a masked path a bind of core_pattern (CVE-2025-31133 class); control: the racer redirects a lookup of dev/null by path',
    setup: (attackRoot) => {
      const dir = attackRoot()
      fs.mkdirSync(path.join(dir, 'dev-evil'))
      fs.symlinkSync('../proc/sys/kernel/core_pattern', path.join(dir, 'dev-evil', 'null'))
      return {
        dir, a: 'dev', b: 'dev-evil', judge: 'dev', ran: 'ran, masks are /dev/null',
        command: ['/bin/sh', '-c', 'for f in /proc/interrupts /proc/keys /proc/timer_list; do [ -e $f ] && stat -c "%F %t:%T" $f; done'],
        options: { rootfs: dir },
        lookup: () => {
          try {
            return fs.lstatSync(path.join(dir, 'dev/null')).isSymbolicLink()
          } catch {
            return false
          }
        },
        cleanup: () => removeWithLinks(dir, ['dev', 'dev-evil']),
      }
    },
  },
  {
    title: 'exchanging /proc with another real directory never leaves a procfs without its read-only /proc/sys and masks; control: the racer moves what a lookup of proc/sys by path finds',
    setup: (attackRoot) => {
      const dir = attackRoot()
      fs.mkdirSync(path.join(dir, 'proc-b'))
      fs.writeFileSync(path.join(dir, 'proc', 'in-proc'), '')
      return {
        dir, a: 'proc', b: 'proc-b', judge: 'proc', ran: 'ran, procfs protected',
        command: ['/bin/sh', '-c', 'for i in $(seq 100); do for p in /proc /proc-b; do cat $p/self/mountinfo 2>/dev/null && exit 0; done; done; exit 9'],
        options: { rootfs: dir },
        lookup: () => !fs.existsSync(path.join(dir, 'proc', 'in-proc')),
        cleanup: () => removeWithLinks(dir, []),
      }
    },
  },
  {
    title: 'a writer of the rootfs\'s parent exchanging it with a symlink to / never gives a container the host\'s root; control: the racer makes a lookup by path reach /',
    setup: (attackRoot) => {
      const parent = openDir('lonely-race-parent-')
      const rootfs = path.join(parent, 'root')
      fs.renameSync(attackRoot(), rootfs)
      fs.writeFileSync(path.join(rootfs, 'lonely-rootfs-marker'), 'ours\n')
      fs.symlinkSync('/', path.join(parent, 'evil'))
      return {
        dir: parent, a: 'root', b: 'evil', judge: 'rootfs', ran: 'ran in the rootfs',
        command: ['/bin/cat', '/lonely-rootfs-marker'],
        options: { rootfs },
        lookup: () => !fs.existsSync(path.join(rootfs, 'lonely-rootfs-marker')),
        cleanup: () => removeWithLinks(parent, ['root', 'evil']),
      }
    },
  },
  {
    title: 'a writer of a bind source\'s parent exchanging it with a symlink to / never binds the host\'s root (101 of 200 starts did before); control: the racer makes a lookup by path reach /',
    setup: (attackRoot) => {
      const parent = openDir('lonely-race-vol-')
      const source = path.join(parent, 'vol')
      fs.mkdirSync(source, { mode: 0o755 })
      fs.writeFileSync(path.join(source, 'lonely-vol-marker'), 'ours\n')
      fs.symlinkSync('/', path.join(parent, 'evil'))
      const root = attackRoot()
      return {
        dir: parent, a: 'vol', b: 'evil', judge: 'bind', ran: 'ran with its volume',
        command: ['/bin/sh', '-c', 'cat /mnt/lonely-vol-marker 2>/dev/null || ls /mnt'],
        options: { rootfs: root, mounts: [{ type: 'bind', source, target: '/mnt', readonly: true }] },
        lookup: () => !fs.existsSync(path.join(source, 'lonely-vol-marker')),
        cleanup: () => {
          removeWithLinks(parent, ['vol', 'evil'])
          fs.rmSync(root, { recursive: true, force: true })
        },
      }
    },
  },
]
