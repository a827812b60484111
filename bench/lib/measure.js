'use strict'
// The measuring phases. Each runs in a fresh Node process started by bench/run.js
// (`node bench/run.js --worker '<job json>'`), so no phase inherits another's heap,
// threads or fds.
const fs = require('node:fs')
const os = require('node:os')
const cp = require('node:child_process')

const { contenders, lib } = require('./contenders')
const { summarize } = require('./stats')

/** USER_HZ: /proc/stat counts in these (100 on every Linux this runs on). */
const CLK_TCK = 100
const now = () => process.hrtime.bigint()
const ms = (t0) => Number(process.hrtime.bigint() - t0) / 1e6
const sleep = (t) => new Promise((r) => setTimeout(r, t))
const progress = (s) => process.stderr.write(`[bench:${process.pid}] ${s}\n`)

function status() {
  const s = fs.readFileSync('/proc/self/status', 'utf8')
  const kb = (k) => Number((s.match(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm')) || [])[1])
  return {
    rssKiB: kb('VmRSS'),
    rssAnonKiB: kb('RssAnon'),
    threads: fs.readdirSync('/proc/self/task').length,
    threadNames: threadNames(),
    fds: fs.readdirSync('/proc/self/fd').length,
  }
}

/** Thread names of this process with their counts, e.g. { node: 1, 'lonely-reaper': 1, ... }. */
function threadNames() {
  const names = {}
  for (const tid of fs.readdirSync('/proc/self/task')) {
    let n = '?'
    try {
      n = fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim()
    } catch {}
    names[n] = (names[n] || 0) + 1
  }
  return names
}

/** Holds `mb` MiB of touched Buffers for the whole life of the process. */
function holdHeap(mb) {
  if (!mb) return null
  const before = status().rssKiB
  const hold = []
  for (let i = 0; i < mb; i++) hold.push(Buffer.alloc(1 << 20, i & 0xff || 1)) // alloc + fill touches every page
  globalThis.__benchHold = hold // reachable until exit: V8 may not free it
  const after = status().rssKiB
  return { requestedMiB: mb, rssBeforeKiB: before, rssAfterKiB: after }
}

/** Round-robin over `names`, the starting contender rotating each round. */
function rotation(names, round) {
  const k = round % names.length
  return [...names.slice(k), ...names.slice(0, k)]
}

/** Sequential latency: warm-up, then `rounds` rounds of `batch` runs per contender, interleaved. */
async function latency(job) {
  const heap = holdHeap(job.heapMb)
  const all = contenders(job.env)
  const names = job.contenders.filter((n) => all[n])
  const samples = Object.fromEntries(names.map((n) => [n, []]))
  const errors = {}
  const alive = new Set(names)
  const cpu0 = process.cpuUsage()
  for (const n of names) {
    try {
      for (let i = 0; i < job.warmup; i++) await all[n].run()
    } catch (e) {
      errors[n] = String(e.message || e)
      alive.delete(n)
    }
  }
  for (let r = 0; r < job.rounds; r++) {
    for (const n of rotation(names, r)) {
      if (!alive.has(n)) continue
      try {
        for (let i = 0; i < job.batch; i++) {
          const t0 = now()
          await all[n].run()
          samples[n].push(ms(t0))
        }
      } catch (e) {
        errors[n] = String(e.message || e)
        alive.delete(n)
      }
    }
    if (r % 10 === 9) progress(`latency heap=${job.heapMb}MiB round ${r + 1}/${job.rounds}`)
  }
  const out = {}
  for (const n of names) out[n] = { ...summarize(samples[n]), error: errors[n] ?? null }
  return { heap, status: status(), cpu: process.cpuUsage(cpu0), contenders: out }
}

/** `total` runs of `fn` with at most `c` in flight; resolves with containers/s. */
async function batchRate(fn, total, c) {
  let started = 0
  const t0 = now()
  const lane = async () => {
    while (started < total) {
      started++
      await fn()
    }
  }
  await Promise.all(Array.from({ length: Math.min(c, total) }, lane))
  return total / (ms(t0) / 1000)
}

/** Containers/s with 1, 2, 8, 64 in flight, interleaved per round and level. */
/** Busy jiffies of the whole machine (every CPU, every process and kernel thread). */
function machineBusy() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  return f[0] + f[1] + f[2] + f[5] + f[6] + f[7] // user nice system irq softirq steal
}

async function throughput(job) {
  const all = contenders(job.env)
  const names = job.contenders.filter((n) => all[n])
  const result = {}
  const errors = {}
  for (const n of names) result[n] = Object.fromEntries(job.levels.map((c) => [c, { rates: [], ops: 0, seconds: 0, busyJiffies: 0 }]))
  const opsFor = (c) => Math.max(job.opsPerBatch, 4 * c)
  // Warm-up: one small batch per contender and level.
  for (const c of job.levels) {
    for (const n of names) {
      try {
        await batchRate(all[n].run, Math.min(opsFor(c), 2 * c + 10), c)
      } catch (e) {
        errors[n] = String(e.message || e)
      }
    }
  }
  for (let r = 0; r < job.rounds; r++) {
    for (const c of job.levels) {
      for (const n of rotation(names, r)) {
        if (errors[n]) continue
        try {
          const ops = opsFor(c)
          const t0 = now()
          const b0 = machineBusy()
          const rate = await batchRate(all[n].run, ops, c)
          const slot = result[n][c]
          slot.busyJiffies += machineBusy() - b0
          slot.rates.push(rate)
          slot.ops += ops
          slot.seconds += ms(t0) / 1000
        } catch (e) {
          errors[n] = String(e.message || e)
        }
      }
    }
    progress(`throughput round ${r + 1}/${job.rounds}`)
  }
  const out = {}
  for (const n of names) {
    out[n] = { error: errors[n] ?? null, levels: {} }
    for (const c of job.levels) {
      const s = result[n][c]
      const sorted = [...s.rates].sort((a, b) => a - b)
      out[n].levels[c] = {
        perSecond: s.seconds ? s.ops / s.seconds : null,
        medianRoundPerSecond: sorted.length ? sorted[Math.floor(sorted.length / 2)] : null,
        ops: s.ops,
        rounds: s.rates.length,
        // Machine-wide CPU per container (kernel workers included): what caps the rate once every core is busy.
        cpuMsPerContainer: s.ops ? (s.busyJiffies * (1000 / CLK_TCK)) / s.ops : null,
        cpuBusyShare: s.seconds ? (s.busyJiffies / CLK_TCK) / (s.seconds * os.cpus().length) : null,
      }
    }
  }
  return { contenders: out }
}

/** Spawn-to-first-stdout-byte of `echo hi`, interleaved. */
async function firstByte(job) {
  const all = contenders(job.env)
  const names = job.contenders.filter((n) => all[n] && all[n].firstByte)
  const samples = Object.fromEntries(names.map((n) => [n, []]))
  const errors = {}
  for (const n of names) {
    try {
      for (let i = 0; i < job.warmup; i++) await all[n].firstByte()
    } catch (e) {
      errors[n] = String(e.message || e)
    }
  }
  for (let r = 0; r < job.rounds; r++) {
    for (const n of rotation(names, r)) {
      if (errors[n]) continue
      try {
        for (let i = 0; i < job.batch; i++) samples[n].push(await all[n].firstByte())
      } catch (e) {
        errors[n] = String(e.message || e)
      }
    }
  }
  const out = {}
  for (const n of names) out[n] = { ...summarize(samples[n]), error: errors[n] ?? null }
  return { contenders: out }
}

async function settle() {
  for (let i = 0; i < 3; i++) {
    await sleep(100)
    global.gc?.()
  }
  return status()
}

/**
 * The Node process's RSS, threads and fds with 0, 100 and 1000 live sleeping containers
 * (`sleep 30`), for lonely or, as a reference, for child_process.spawn.
 */
async function live(job) {
  contenders(job.env) // sets which lonely-container to load
  const rootfs = job.env.rootfs
  const isLonely = job.kind === 'lonely'
  const start = (stdio) => {
    if (isLonely) return lib().spawn(['sleep', '30'], { rootfs, stdio })
    return cp.spawn(`${rootfs}/bin/sleep`, ['30'], { stdio })
  }
  const stop = async (procs) => {
    const waits = procs.map((p) => {
      for (const s of [p.stdout, p.stderr]) s?.resume()
      p.stdin?.destroy()
      if (isLonely) return p.wait()
      return new Promise((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.once('close', r)))
    })
    for (const p of procs) p.kill('SIGKILL')
    await Promise.all(waits)
  }
  const liveCount = () => (isLonely ? lib().liveContainers() : null)

  const readings = {}
  if (isLonely) lib() // load the JS wrapper; the addon itself loads on first use
  readings.beforeFirst = await settle()
  // One container run to the end: the addon is loaded and the reaper thread started.
  if (isLonely) await lib().run(['/bin/true'], { rootfs })
  else await new Promise((r) => cp.spawn(`${rootfs}/bin/true`).on('close', r))
  readings.live0 = await settle()

  for (const [n, stdio] of job.steps) {
    const base = await settle()
    const procs = []
    const t0 = now()
    try {
      for (let i = 0; i < n; i++) procs.push(start(stdio))
      const spawnMs = ms(t0)
      await sleep(300)
      const at = await settle()
      readings[`live${n}_${stdio}`] = { ...at, base, n, stdio, spawnMs, liveContainers: liveCount(), rssDeltaPerContainerKiB: (at.rssKiB - base.rssKiB) / n }
    } finally {
      await stop(procs)
    }
    readings[`after${n}_${stdio}`] = { ...(await settle()), liveContainers: liveCount() }
  }
  return { kind: job.kind, readings }
}

const PHASES = { latency, throughput, firstByte, live }

async function worker(job) {
  const result = await PHASES[job.phase](job)
  fs.writeFileSync(job.resultFile, JSON.stringify(result))
}

module.exports = { worker }
