'use strict'
// What a container could leave behind, measured from outside the library: the Node
// process's fds, threads and memory; the host's mount table; the library's cgroups in
// every hierarchy; this process's children and descendants, zombies among them, and any
// process carrying a marker string in its command line. Used by bench/soak.js.
const fs = require('node:fs')
const path = require('node:path')
const v8 = require('node:v8')
const vm = require('node:vm')
const { dirsMatching } = require('./setup')

/** A callable gc(), with or without --expose-gc on the command line. */
function gcFunction() {
  if (typeof globalThis.gc === 'function') return globalThis.gc
  v8.setFlagsFromString('--expose-gc')
  return vm.runInNewContext('gc')
}

const forceGc = gcFunction()

/** Full GCs with turns of the event loop between them (so finalizers and closes run), then settle. */
async function collectGarbage() {
  for (let i = 0; i < 3; i++) {
    forceGc()
    await new Promise((resolve) => setImmediate(resolve))
  }
  await new Promise((resolve) => setTimeout(resolve, 50))
  forceGc()
}

function status() {
  const s = fs.readFileSync('/proc/self/status', 'utf8')
  const kb = (k) => Number((s.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm')) || [])[1])
  return { rssKiB: kb('VmRSS'), rssAnonKiB: kb('RssAnon'), hwmKiB: kb('VmHWM') }
}

/** Our fds, split into the namespaces the library keeps ready (`net:[...]`, `ipc:[...]`) and all the others. */
function fds() {
  const other = []
  let netns = 0
  for (const fd of fs.readdirSync('/proc/self/fd')) {
    let target
    try {
      target = fs.readlinkSync(`/proc/self/fd/${fd}`)
    } catch {
      continue // the fd readdir itself used, already closed
    }
    if (/^(net|ipc):\[/.test(target)) netns++
    else other.push(`${fd} -> ${target}`)
  }
  return { other, netns }
}

function threads() {
  return fs.readdirSync('/proc/self/task').map((tid) => {
    try {
      return fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim()
    } catch {
      return '?'
    }
  })
}

/** The host's mount table as this process sees it, each line without its mount id and parent id. */
function mountTable() {
  return fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ').slice(2).join(' '))
}

/**
 * This process's own directory in every mounted cgroup hierarchy, from /proc/self/cgroup and
 * /proc/self/mountinfo: [{ hierarchy, dir }]. v1 hierarchies are matched to their mount by
 * controller name (or `name=...`), the v2 line (`0::`) to the cgroup2 mount.
 */
function ownCgroupDirs() {
  const mounts = fs
    .readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => {
      const [left, right] = l.split(' - ')
      if (!right) return null
      const a = left.split(' ')
      const b = right.split(' ')
      return { root: a[3], point: a[4], fstype: b[0], options: (b[2] || '').split(',') }
    })
    .filter((m) => m && (m.fstype === 'cgroup' || m.fstype === 'cgroup2'))
  const out = []
  for (const line of fs.readFileSync('/proc/self/cgroup', 'utf8').split('\n').filter(Boolean)) {
    const [, , names, own] = line.match(/^(\d+):([^:]*):(.*)$/) || []
    if (own === undefined) continue
    const m = names === '' ? mounts.find((x) => x.fstype === 'cgroup2') : mounts.find((x) => x.fstype === 'cgroup' && names.split(',').every((n) => x.options.includes(n)))
    if (!m) continue
    const rel = own.startsWith(m.root) ? own.slice(m.root.length) : own
    out.push({ hierarchy: names || 'cgroup2', dir: path.join(m.point, rel) })
  }
  return out
}

/**
 * `lonely-<pid>-<n>` directories (the library's per-container cgroups) under this process's
 * cgroup in every hierarchy, and under its parent when the process moved itself into a
 * `lonely-supervisor` leaf (cgroup v2), two levels deep.
 */
function libraryCgroups(pid = process.pid) {
  const re = new RegExp(`^lonely-${pid}-\\d+$`)
  const found = new Set()
  const look = (dir) => dirsMatching(dir, 2, (name) => re.test(name)).forEach((p) => found.add(p))
  for (const { dir } of ownCgroupDirs()) {
    look(dir)
    if (path.basename(dir) === 'lonely-supervisor') look(path.dirname(dir))
  }
  return [...found].sort()
}

/** The limits written in these cgroup directories, counted by `file=value` (v1 and v2 names). */
function cgroupLimits(dirs) {
  const files = ['memory.limit_in_bytes', 'memory.max', 'pids.max', 'cpu.cfs_quota_us', 'cpu.max']
  const counts = {}
  for (const dir of dirs) {
    for (const f of files) {
      let v
      try {
        v = fs.readFileSync(path.join(dir, f), 'utf8').trim()
      } catch {
        continue
      }
      const k = `${f}=${v}`
      counts[k] = (counts[k] || 0) + 1
    }
  }
  return counts
}

/** One pass over /proc: descendants of `root` (by ppid), zombies among them, processes whose cmdline has `marker`. */
function processes(marker, root = process.pid) {
  const all = new Map()
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const pid = Number(name)
    let stat
    try {
      stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    } catch {
      continue // raced with its exit
    }
    const close = stat.lastIndexOf(')')
    const comm = stat.slice(stat.indexOf('(') + 1, close)
    const f = stat.slice(close + 2).split(' ')
    let cmdline = ''
    if (marker) {
      try {
        cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim()
      } catch {}
    }
    all.set(pid, { pid, comm, state: f[0], ppid: Number(f[1]), cmdline })
  }
  const children = new Map()
  for (const p of all.values()) {
    if (!children.has(p.ppid)) children.set(p.ppid, [])
    children.get(p.ppid).push(p)
  }
  const descendants = []
  const stack = [...(children.get(root) || [])]
  while (stack.length) {
    const p = stack.pop()
    descendants.push(p)
    stack.push(...(children.get(p.pid) || []))
  }
  const direct = (children.get(root) || []).length
  const describe = (p) => `${p.pid} ${p.state} ppid=${p.ppid} ${p.cmdline || `(${p.comm})`}`
  const machineZombies = [...all.values()].filter((p) => p.state === 'Z').length
  return {
    children: direct,
    descendants: descendants.map(describe),
    zombies: descendants.filter((p) => p.state === 'Z').map(describe),
    marked: marker ? [...all.values()].filter((p) => p.pid !== process.pid && p.cmdline.includes(marker)).map(describe) : [],
    machineZombies,
  }
}

/** Everything at once. `gc` first collects garbage so that RSS means live memory. */
async function snapshot({ marker, gc = true, liveContainers } = {}) {
  if (gc) await collectGarbage()
  const mem = status()
  const heap = process.memoryUsage()
  const f = fds()
  const p = processes(marker)
  return {
    at: new Date().toISOString(),
    rssKiB: mem.rssKiB,
    rssAnonKiB: mem.rssAnonKiB,
    hwmKiB: mem.hwmKiB,
    heapUsedKiB: Math.round(heap.heapUsed / 1024),
    heapTotalKiB: Math.round(heap.heapTotal / 1024),
    externalKiB: Math.round(heap.external / 1024),
    fds: f.other,
    netnsFds: f.netns,
    threads: threads().sort(),
    mounts: mountTable(),
    cgroups: libraryCgroups(),
    children: p.children,
    descendants: p.descendants,
    zombies: p.zombies,
    marked: p.marked,
    machineZombies: p.machineZombies,
    live: liveContainers ? liveContainers() : null,
  }
}

/** Multiset difference: what `b` has that `a` has not (with counts). */
function added(a, b) {
  const count = new Map()
  for (const x of a) count.set(x, (count.get(x) || 0) + 1)
  const out = []
  for (const x of b) {
    const n = count.get(x) || 0
    if (n > 0) count.set(x, n - 1)
    else out.push(x)
  }
  return out
}

/**
 * Compares two snapshots. Returns rows { measure, before, after, ok, detail } for the table;
 * `rssBoundKiB` is how much RSS may grow.
 */
function compare(before, after, { rssBoundKiB }) {
  const rows = []
  const row = (measure, b, a, ok, detail = '') => rows.push({ measure, before: b, after: a, ok, detail })
  const list = (measure, b, a) => {
    const plus = added(b, a)
    const minus = added(a, b)
    const detail = [plus.length ? `+ ${plus.slice(0, 8).join(' | ')}${plus.length > 8 ? ` ... (${plus.length})` : ''}` : '', minus.length ? `- ${minus.slice(0, 8).join(' | ')}${minus.length > 8 ? ` ... (${minus.length})` : ''}` : '']
      .filter(Boolean)
      .join('; ')
    row(measure, b.length, a.length, plus.length === 0 && minus.length === 0, detail)
  }
  list('fds (not net:[...], ipc:[...])', before.fds, after.fds)
  list('threads', before.threads, after.threads)
  const grew = after.rssKiB - before.rssKiB
  row('RSS KiB (after gc)', before.rssKiB, after.rssKiB, grew <= rssBoundKiB, `Δ ${grew >= 0 ? '+' : ''}${grew} KiB, bound +${rssBoundKiB} KiB`)
  list('mount table (content)', before.mounts, after.mounts)
  list('lonely cgroups (all hierarchies)', before.cgroups, after.cgroups)
  row('children', before.children, after.children, after.children === before.children)
  list('descendants', before.descendants, after.descendants)
  list('zombies (our descendants)', before.zombies, after.zombies)
  list('processes with the marker', before.marked, after.marked)
  row('live containers (liveContainers())', before.live, after.live, after.live === 0)
  return rows
}

module.exports = { collectGarbage, status, fds, threads, mountTable, ownCgroupDirs, libraryCgroups, cgroupLimits, processes, snapshot, compare, added }
