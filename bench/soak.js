#!/usr/bin/env node
'use strict'
// npm run soak [-- --quick]: thousands of containers in a row and 1000 alive at once in
// waves, mixing normal exits, non-zero exits, kills, timeouts, cancels, setup failures,
// OOM kills and pids/cpus limits; then checks that the Node process and the host are back
// to where they started (fds, threads, RSS, mount table, cgroups, processes, zombies).
// Exit code 0 only if every container had the expected outcome and nothing leaked.
// See bench/README.md.
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const crypto = require('node:crypto')

const leaks = require('./lib/leaks')
const { KINDS, setHog, sharedSignalListeners, sequential, wave } = require('./lib/soak-kinds')
const { summarize, round } = require('./lib/stats')

const log = (s) => process.stderr.write(`[soak] ${s}\n`)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function parseArgs(argv) {
  const o = { quick: false, seq: null, live: null, waves: null, rssBoundMiB: null, slopeBoundKiB: 1, hog: 'tail', out: null, lib: path.join(__dirname, '..') }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const num = () => {
      const v = Number(argv[++i])
      if (!Number.isFinite(v) || v < 0) throw new Error(`${a} needs a non-negative number`)
      return v
    }
    if (a === '--quick') o.quick = true
    else if (a === '--seq') o.seq = num()
    else if (a === '--live') o.live = num()
    else if (a === '--waves') o.waves = num()
    else if (a === '--rss-bound-mib') o.rssBoundMiB = num()
    else if (a === '--slope-bound-kib') o.slopeBoundKiB = num()
    else if (a === '--out') o.out = argv[++i]
    else if (a === '--hog') o.hog = argv[++i]
    else if (a === '--self-test') o.selfTest = true
    else if (a === '--v8-defaults') o.v8Defaults = true
    else if (a === '--lib') o.lib = path.resolve(argv[++i])
    else throw new Error(`unknown argument ${a}\nusage: node bench/soak.js [--quick] [--seq N] [--live N] [--waves N] [--rss-bound-mib N] [--slope-bound-kib N] [--hog tail|awk] [--v8-defaults] [--out FILE] [--lib PACKAGE_DIR] | --self-test`)
  }
  // RSS after vs before, after a forced gc. With the young generation capped (see reexec) the full
  // soak ends ~7 MiB above its baseline (the 1000-container waves leave the old generation and
  // the malloc arenas at their high-water mark); 16 MiB is about twice that and still catches a
  // leak of ~0.6 KiB per container over the full soak's 15 710. With V8's defaults the
  // young generation alone adds up to ~32 MiB: 64 MiB then.
  o.rssBoundMiB ??= o.v8Defaults ? 64 : 16
  o.seq ??= o.quick ? 500 : 10000
  o.live ??= o.quick ? 200 : 1000
  o.waves ??= o.quick ? 1 : 5
  o.out ??= path.join(__dirname, o.quick ? 'soak-results-quick.json' : 'soak-results.json')
  return o
}

function grid(head, body) {
  const widths = head.map((h, i) => Math.max(String(h).length, ...body.map((b) => String(b[i] ?? '').length)))
  const line = (cells) => cells.map((c, i) => (i === 0 ? String(c ?? '').padEnd(widths[i]) : String(c ?? '').padStart(widths[i]))).join('  ')
  return [line(head), ...body.map(line)].map((l) => '  ' + l).join('\n')
}

/** What limits a wave of `live` containers on this machine. */
function machineLimits() {
  const limits = fs.readFileSync('/proc/self/limits', 'utf8')
  const soft = (name) => {
    const m = limits.split('\n').find((l) => l.startsWith(name))
    return m ? m.slice(name.length).trim().split(/\s+/)[0] : null
  }
  const read = (f) => {
    try {
      return fs.readFileSync(f, 'utf8').trim()
    } catch {
      return null
    }
  }
  return {
    cores: os.cpus().length,
    memTotalMiB: Math.round(os.totalmem() / 2 ** 20),
    memAvailableMiB: Math.round(Number((fs.readFileSync('/proc/meminfo', 'utf8').match(/^MemAvailable:\s+(\d+)/m) || [])[1]) / 1024),
    nofile: soft('Max open files'),
    nproc: soft('Max processes'),
    pidMax: read('/proc/sys/kernel/pid_max'),
    threadsMax: read('/proc/sys/kernel/threads-max'),
    userNamespacesMax: read('/proc/sys/user/max_net_namespaces'),
  }
}

/** Waits until the leak measures stop moving (the netns pool refills in the background; pipes close asynchronously). */
async function settle(before, lib, marker, maxMs = 15000) {
  const t0 = performance.now()
  let s
  for (;;) {
    s = await leaks.snapshot({ marker, gc: false, liveContainers: lib.liveContainers })
    const same = s.fds.length <= before.fds.length && s.threads.length === before.threads.length && s.live === 0 && s.zombies.length === 0 && s.cgroups.length === before.cgroups.length && s.descendants.length === before.descendants.length
    if (same || performance.now() - t0 > maxMs) break
    await sleep(50)
  }
  await sleep(200) // and a last moment for the pool's refill
  return performance.now() - t0
}

/** A snapshot once fds and threads held still for 200 ms (the baseline). */
async function stableSnapshot(lib, marker) {
  let last = await leaks.snapshot({ marker, gc: true, liveContainers: lib.liveContainers })
  let since = performance.now()
  const t0 = performance.now()
  while (performance.now() - since < 200 && performance.now() - t0 < 5000) {
    await sleep(20)
    const now = await leaks.snapshot({ marker, gc: false, liveContainers: lib.liveContainers })
    if (now.fds.length !== last.fds.length || now.threads.length !== last.threads.length || now.netnsFds !== last.netnsFds) since = performance.now()
    last = now
  }
  return leaks.snapshot({ marker, gc: true, liveContainers: lib.liveContainers })
}

function light(s) {
  return { rssKiB: s.rssKiB, rssAnonKiB: s.rssAnonKiB, heapUsedKiB: s.heapUsedKiB, heapTotalKiB: s.heapTotalKiB, fds: s.fds.length, netnsFds: s.netnsFds, threads: s.threads.length, cgroups: s.cgroups.length, descendants: s.descendants.length, zombies: s.zombies.length, live: s.live }
}

/**
 * --self-test: the checks must be able to fail. After the baseline, leaks one of each kind on
 * purpose (an fd, a thread, 128 MiB of RSS, a tmpfs mount, a `lonely-<pid>-<n>` cgroup, a
 * child with a zombie below it, a process with the marker, a live container) and expects every
 * check to say LEAK; then removes them and expects every check to pass again.
 */
async function selfTest(lib, marker) {
  const cp = require('node:child_process')
  const { Worker } = require('node:worker_threads')
  await lib.run(['/bin/true'])
  const before = await stableSnapshot(lib, marker)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-soak-selftest-'))
  const fd = fs.openSync('/dev/null', 'r')
  const worker = new Worker('setInterval(() => {}, 1000)', { eval: true })
  await new Promise((resolve) => worker.once('online', resolve))
  globalThis.__soakBallast = Array.from({ length: 128 }, (_, i) => Buffer.alloc(1 << 20, i + 1))
  cp.execFileSync('mount', ['-t', 'tmpfs', 'soak-selftest', dir])
  const pidsDir = leaks.ownCgroupDirs().find((d) => d.hierarchy === 'pids' || d.hierarchy === 'cgroup2').dir
  const cgroup = path.join(pidsDir, `lonely-${process.pid}-999999`)
  fs.mkdirSync(cgroup)
  const zombieParent = cp.spawn('sh', ['-c', 'sleep 0 & exec sleep 30'], { stdio: 'ignore' }) // sleep never reaps its child
  const marked = cp.spawn('sh', ['-c', 'sleep 30; :', marker], { stdio: 'ignore' })
  const container = lib.spawn(['sleep', '30'], { stdio: 'ignore' })
  await sleep(300)
  const leaked = await leaks.snapshot({ marker, gc: true, liveContainers: lib.liveContainers })
  const rows1 = leaks.compare(before, leaked, { rssBoundKiB: 64 * 1024 })
  // Undo everything.
  fs.closeSync(fd)
  await worker.terminate()
  globalThis.__soakBallast = null
  cp.execFileSync('umount', [dir])
  fs.rmdirSync(cgroup)
  for (const c of [zombieParent, marked]) {
    c.kill('SIGKILL')
    await new Promise((resolve) => (c.exitCode !== null || c.signalCode !== null ? resolve() : c.once('exit', resolve)))
  }
  container.kill('SIGKILL')
  await container
  fs.rmdirSync(dir)
  await settle(before, lib, marker)
  const clean = await leaks.snapshot({ marker, gc: true, liveContainers: lib.liveContainers })
  const rows2 = leaks.compare(before, clean, { rssBoundKiB: 64 * 1024 })
  const body = rows1.map((r, i) => [r.measure, r.ok ? 'ok' : 'LEAK', r.detail.slice(0, 90), rows2[i].ok ? 'ok' : 'LEAK'])
  process.stdout.write(`\nself-test: each check with one leak of its kind injected, then after removing them\n${grid(['measure', 'leaked', 'what it saw', 'cleaned'], body)}\n`)
  const pass = rows1.every((r) => r.ok === false) && rows2.every((r) => r.ok === true)
  process.stdout.write(`${pass ? 'PASS' : 'FAIL'}: every check ${pass ? 'caught its leak and passed once it was gone' : 'did NOT both catch its leak and pass after clean-up'}\n`)
  return pass ? 0 : 1
}

async function main() {
  const o = parseArgs(process.argv.slice(2))
  if (o.selfTest) {
    return selfTest(require(path.join(o.lib, 'index.js')), `lonely-soak-selftest-${process.pid}-${crypto.randomBytes(4).toString('hex')}`)
  }
  if (process.getuid() !== 0) log('warning: not root; OOM and limits containers need cgroups (root), they will likely fail')
  const hog = setHog(o.hog)
  const lib = require(path.join(o.lib, 'index.js'))
  const marker = `lonely-soak-${process.pid}-${crypto.randomBytes(4).toString('hex')}`
  const limits = machineLimits()
  const started = new Date()
  log(`marker ${marker}; ${o.seq} in a row, ${o.waves} wave(s) of ${o.live} alive at once (+1 setup failure per ${KINDS.length - 1}); cgroup mode ${lib.cgroupMode()}`)
  log(`memory hog of the oom kind (--hog ${o.hog}): ${hog}`)
  log(`machine: ${limits.cores} cores, ${limits.memAvailableMiB}/${limits.memTotalMiB} MiB available, RLIMIT_NOFILE ${limits.nofile}, RLIMIT_NPROC ${limits.nproc}, pid_max ${limits.pidMax}`)
  const fdsNeeded = o.live * 4 + 200
  if (limits.nofile !== 'unlimited' && Number(limits.nofile) < fdsNeeded) log(`warning: RLIMIT_NOFILE ${limits.nofile} < ~${fdsNeeded} fds a wave of ${o.live} may hold`)

  // Warm-up: every kind a few times in a row and one small wave, so that lazy start-up
  // (reaper and netns threads, cgroup detection, the libuv threadpool, JIT) is behind the baseline.
  const t0 = performance.now()
  const warm = []
  for (let i = 0; i < KINDS.length * 3; i++) warm.push(await sequential(lib, KINDS[i % KINDS.length], i, marker))
  const warmWave = await wave(lib, 14, marker, () => null)
  const warmBad = [...warm.map((got, i) => ({ kind: KINDS[i % KINDS.length], got })), ...warmWave.outcomes].filter((x) => x.got !== x.kind)
  if (warmBad.length) log(`warm-up outcomes not as expected: ${JSON.stringify(warmBad.slice(0, 5))}`)
  const before = await stableSnapshot(lib, marker)
  log(`warm-up done in ${((performance.now() - t0) / 1000).toFixed(1)} s; baseline: RSS ${before.rssKiB} KiB, ${before.fds.length} fds (+${before.netnsFds} netns), ${before.threads.length} threads [${before.threads.join(', ')}], ${before.mounts.length} mounts, ${before.cgroups.length} lonely cgroups, ${before.descendants.length} descendants`)

  // Phase 1: in a row.
  const checkpoints = []
  const perKind = Object.fromEntries(KINDS.map((k) => [k, { expected: 0, correct: 0, wrong: [], ms: [] }]))
  const every = o.quick ? 250 : 1000
  const seqStart = performance.now()
  for (let i = 0; i < o.seq; i++) {
    const kind = KINDS[i % KINDS.length]
    const t = performance.now()
    const got = await sequential(lib, kind, i, marker)
    const k = perKind[kind]
    k.expected++
    k.ms.push(performance.now() - t)
    if (got === kind) k.correct++
    else k.wrong.push(`#${i}: ${got}`)
    if ((i + 1) % every === 0) {
      const s = await leaks.snapshot({ marker, gc: true, liveContainers: lib.liveContainers })
      checkpoints.push({ after: i + 1, seconds: round((performance.now() - seqStart) / 1000, 1), ...light(s) })
      log(`in a row: ${i + 1}/${o.seq}, ${((i + 1) / ((performance.now() - seqStart) / 1000)).toFixed(0)}/s, RSS ${s.rssKiB} KiB, heap ${s.heapUsedKiB} KiB, fds ${s.fds.length}, threads ${s.threads.length}, cgroups ${s.cgroups.length}, descendants ${s.descendants.length}`)
    }
  }
  const seqMs = performance.now() - seqStart

  // Phase 2: waves with `live` containers alive at once.
  const waves = []
  const concKind = Object.fromEntries(KINDS.map((k) => [k, { expected: 0, correct: 0, wrong: [] }]))
  const concStart = performance.now()
  for (let w = 0; w < o.waves; w++) {
    const probe = () => {
      const p = leaks.processes(marker)
      const cgroups = leaks.libraryCgroups()
      return { descendants: p.descendants.length, marked: p.marked.length, cgroups: cgroups.length, limits: leaks.cgroupLimits(cgroups), fds: leaks.fds().other.length, threads: leaks.threads().length, rssKiB: leaks.status().rssKiB }
    }
    const r = await wave(lib, o.live, marker, probe)
    for (const { kind, got } of r.outcomes) {
      const k = concKind[kind]
      k.expected++
      if (got === kind) k.correct++
      else k.wrong.push(`wave ${w}: ${got}`)
    }
    const after = await leaks.snapshot({ marker, gc: true, liveContainers: lib.liveContainers })
    const kinds = {}
    for (const { kind } of r.outcomes) kinds[kind] = (kinds[kind] || 0) + 1
    waves.push({ wave: w, kinds, live: r.live, setupFailures: r.setupFailures, containers: r.outcomes.length, peakLive: r.peakLive, rampMs: round(r.rampMs, 0), totalMs: round(r.totalMs, 0), timeoutMs: r.timeoutMs, peak: r.peak, after: light(after) })
    log(`wave ${w + 1}/${o.waves}: ${r.outcomes.length} containers, ${r.peakLive} alive at once (${r.peak.descendants} descendant processes, ${r.peak.cgroups} lonely cgroups, ${r.peak.fds} fds, RSS ${r.peak.rssKiB} KiB), ramp ${(r.rampMs / 1000).toFixed(1)} s, wave ${(r.totalMs / 1000).toFixed(1)} s; after: RSS ${after.rssKiB} KiB, fds ${after.fds.length}, descendants ${after.descendants.length}`)
  }
  const concMs = performance.now() - concStart

  // After: let asynchronous closes and the netns pool settle, then compare.
  const settleMs = await settle(before, lib, marker)
  const after = await leaks.snapshot({ marker, gc: true, liveContainers: lib.liveContainers })
  const rows = leaks.compare(before, after, { rssBoundKiB: o.rssBoundMiB * 1024 })
  // The RSS trend over the run of containers in a row, from its second checkpoint (past the JIT's warm-up) to its last.
  let slope = null
  if (checkpoints.length >= 3) {
    const a = checkpoints[1]
    const b = checkpoints[checkpoints.length - 1]
    slope = { fromContainer: a.after, toContainer: b.after, rssKiBFrom: a.rssKiB, rssKiBTo: b.rssKiB, kibPerContainer: round((b.rssKiB - a.rssKiB) / (b.after - a.after), 4), boundKiBPerContainer: o.slopeBoundKiB }
    rows.push({ measure: 'RSS slope, in a row (KiB/container)', before: a.rssKiB, after: b.rssKiB, ok: slope.kibPerContainer <= o.slopeBoundKiB, detail: `${slope.kibPerContainer} KiB/container from #${a.after} to #${b.after}, bound ${o.slopeBoundKiB}` })
  }
  const listeners = sharedSignalListeners()
  rows.push({ measure: "abort listeners on a shared, never-aborted cancelSignal", before: 0, after: listeners, ok: listeners === 0, detail: `passed to all ${perKind.ok.expected} 'ok' containers in a row` })
  // At each wave's peak every limited container's cgroup holds its limits (v1 or v2 file names).
  const limitIssues = []
  for (const w of waves) {
    const want = { pids: w.kinds['limits (pids+cpus)'] || 0, cpu: w.kinds['limits (pids+cpus)'] || 0, memory: w.kinds['oom killed'] || 0 }
    const got = w.peak.limits || {}
    const seen = { pids: (got['pids.max=32'] || 0), cpu: (got['cpu.cfs_quota_us=50000'] || 0) + (got['cpu.max=50000 100000'] || 0), memory: (got['memory.limit_in_bytes=16777216'] || 0) + (got['memory.max=16777216'] || 0) }
    for (const k of Object.keys(want)) if (seen[k] !== want[k]) limitIssues.push(`wave ${w.wave + 1}: ${k} limit in ${seen[k]} cgroups, ${want[k]} containers have it`)
  }
  if (waves.length) rows.push({ measure: 'limits in place at each peak (pids 32, cpus 0.5, memory 16m)', before: '', after: limitIssues.length ? 'no' : 'yes', ok: limitIssues.length === 0, detail: limitIssues.slice(0, 3).join('; ') })
  const peakOk = waves.every((w) => w.peakLive === w.live)
  rows.push({ measure: `waves reached ${o.live} alive at once`, before: '', after: waves.map((w) => w.peakLive).join(','), ok: peakOk, detail: peakOk ? '' : 'a container ended before the wave was complete (timeouts too short for the ramp?)' })
  rows.push({ measure: 'zombies, machine-wide (info)', before: before.machineZombies, after: after.machineZombies, ok: null, detail: 'not ours necessarily' })
  rows.push({ measure: 'net:[...] and ipc:[...] fds, namespace pool (info)', before: before.netnsFds, after: after.netnsFds, ok: null, detail: 'ignored: a fixed-size pool' })

  // Tables.
  const seqTotal = KINDS.reduce((n, k) => n + perKind[k].expected, 0)
  const concTotal = KINDS.reduce((n, k) => n + concKind[k].expected, 0)
  const outcomeRows = KINDS.map((k) => {
    const s = summarize(perKind[k].ms)
    return [k, perKind[k].expected, perKind[k].correct, perKind[k].wrong.length, s.median === null ? '—' : s.median.toFixed(2), s.p99 === null ? '—' : s.p99.toFixed(1), concKind[k].expected, concKind[k].correct, concKind[k].wrong.length]
  })
  outcomeRows.push(['total', seqTotal, KINDS.reduce((n, k) => n + perKind[k].correct, 0), KINDS.reduce((n, k) => n + perKind[k].wrong.length, 0), '', '', concTotal, KINDS.reduce((n, k) => n + concKind[k].correct, 0), KINDS.reduce((n, k) => n + concKind[k].wrong.length, 0)])
  const outcomesOk = KINDS.every((k) => perKind[k].wrong.length === 0 && concKind[k].wrong.length === 0 && perKind[k].correct === perKind[k].expected && concKind[k].correct === concKind[k].expected)
  const leaksOk = rows.every((r) => r.ok !== false)
  const pass = outcomesOk && leaksOk && warmBad.length === 0

  const out = []
  out.push('')
  out.push(`soak of lonely-container — ${started.toISOString()} — ${os.hostname()}, ${limits.cores} cores, ${os.release()}, node ${process.version} ${process.execArgv.join(' ')}, cgroups ${lib.cgroupMode()}, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`)
  out.push('')
  out.push(`outcomes (in a row: run(); waves: spawn(), all alive at once before any is released)`)
  out.push(grid(['kind', 'in a row', 'as expected', 'wrong', 'median ms', 'p99 ms', 'in waves', 'as expected', 'wrong'], outcomeRows))
  for (const k of KINDS) for (const w of [...perKind[k].wrong, ...concKind[k].wrong].slice(0, 5)) out.push(`  ! ${k}: ${w}`)
  out.push('')
  out.push('throughput')
  out.push(
    grid(
      ['phase', 'containers', 'seconds', 'containers/s', 'detail'],
      [
        ['in a row', seqTotal, (seqMs / 1000).toFixed(1), (seqTotal / (seqMs / 1000)).toFixed(0), 'one at a time, kinds in turn'],
        ['waves', concTotal, (concMs / 1000).toFixed(1), (concTotal / (concMs / 1000)).toFixed(0), `${o.waves} × ${o.live} alive at once; ramps ${waves.map((w) => (w.rampMs / 1000).toFixed(1)).join('/')} s`],
      ],
    ),
  )
  out.push('')
  out.push('peak of each wave (all alive, none released)')
  out.push(grid(['wave', 'alive', 'descendants', 'marked procs', 'lonely cgroups', 'fds', 'threads', 'RSS KiB', 'ramp s', 'timeout ms', 'then: RSS KiB (gc)', 'heap KiB'], waves.map((w) => [w.wave + 1, w.peakLive, w.peak.descendants, w.peak.marked, w.peak.cgroups, w.peak.fds, w.peak.threads, w.peak.rssKiB, (w.rampMs / 1000).toFixed(1), w.timeoutMs, w.after.rssKiB, w.after.heapUsedKiB])))
  for (const w of waves) out.push(`  wave ${w.wave + 1}, limits in lonely cgroups at the peak: ${Object.entries(w.peak.limits || {}).filter(([k]) => !/=(max|-1|9223372036854\d+)$/.test(k)).map(([k, n]) => `${k} ×${n}`).join(', ')}`)
  out.push('')
  out.push(`in a row: checkpoints (after a forced gc)`)
  out.push(grid(['after', 'seconds', 'RSS KiB', 'heap KiB', 'fds', 'netns fds', 'threads', 'cgroups', 'descendants', 'zombies'], checkpoints.map((c) => [c.after, c.seconds, c.rssKiB, c.heapUsedKiB, c.fds, c.netnsFds, c.threads, c.cgroups, c.descendants, c.zombies])))
  out.push('')
  out.push(`before and after (after settling ${(settleMs / 1000).toFixed(1)} s and a forced gc)`)
  out.push(grid(['measure', 'before', 'after', 'ok', 'detail'], rows.map((r) => [r.measure, r.before, r.after, r.ok === null ? 'info' : r.ok ? 'ok' : 'LEAK', r.detail])))
  out.push('')
  const wrongKinds = KINDS.filter((k) => perKind[k].wrong.length || concKind[k].wrong.length).map((k) => `${k}: ${perKind[k].wrong.length} in a row + ${concKind[k].wrong.length} in waves`)
  const failedChecks = rows.filter((r) => r.ok === false).map((r) => r.measure)
  out.push(
    `${pass ? 'PASS' : 'FAIL'}: ${seqTotal + concTotal} containers (+${warm.length + warmWave.outcomes.length} warm-up) in ${((performance.now() - t0) / 1000).toFixed(1)} s; ` +
      `outcomes ${outcomesOk ? 'all as expected' : `NOT all as expected (${wrongKinds.join('; ')})`}; ` +
      `${leaksOk ? 'nothing leaked' : `failed checks: ${failedChecks.join(', ')}`} (RSS bound +${o.rssBoundMiB} MiB after gc, slope bound ${o.slopeBoundKiB} KiB/container)`,
  )
  process.stdout.write(out.join('\n') + '\n')

  const strip = (s) => s
  const result = {
    pass,
    date: started.toISOString(),
    durationSeconds: round((performance.now() - t0) / 1000, 1),
    machine: { hostname: os.hostname(), kernel: `${os.type()} ${os.release()}`, node: process.version, nodeFlags: process.execArgv, cgroupMode: lib.cgroupMode(), loadAverage: os.loadavg(), ...limits },
    settings: { ...o, marker, kinds: KINDS, hogCommand: hog },
    warmup: { containers: warm.length + warmWave.outcomes.length, unexpected: warmBad },
    inARow: {
      containers: seqTotal,
      seconds: round(seqMs / 1000, 2),
      perSecond: round(seqTotal / (seqMs / 1000), 1),
      kinds: Object.fromEntries(KINDS.map((k) => [k, { expected: perKind[k].expected, correct: perKind[k].correct, wrong: perKind[k].wrong.slice(0, 50), ms: (({ n, median, p90, p99, max }) => ({ n, median: round(median), p90: round(p90), p99: round(p99), max: round(max) }))(summarize(perKind[k].ms)) }])),
      checkpoints,
      rssSlope: slope,
    },
    waves: {
      containers: concTotal,
      seconds: round(concMs / 1000, 2),
      perSecond: round(concTotal / (concMs / 1000), 1),
      kinds: Object.fromEntries(KINDS.map((k) => [k, { expected: concKind[k].expected, correct: concKind[k].correct, wrong: concKind[k].wrong.slice(0, 50) }])),
      waves,
    },
    settleMs: round(settleMs, 0),
    checks: rows,
    before: strip(before),
    after: strip(after),
  }
  fs.writeFileSync(o.out, JSON.stringify(result, null, 2) + '\n')
  log(`wrote ${path.relative(process.cwd(), o.out)}`)
  return pass ? 0 : 1
}

/**
 * V8 grows its young generation (up to 16 MiB per semi-space on 64-bit Node 20) under
 * allocation pressure and keeps those pages: in any busy Node process, child_process.spawn in
 * a loop included, that alone adds ~30 MiB of RSS, in steps, and makes RSS after a gc swing by
 * as much. That would hide a real leak or fake one, so the soak re-runs itself with the young
 * generation capped at 1 MiB per semi-space (`--max-semi-space-size=1`) unless told not to
 * (`--v8-defaults`) or already given a semi-space size.
 */
function reexec() {
  const argv = process.argv.slice(2)
  if (argv.includes('--v8-defaults') || process.execArgv.some((a) => a.startsWith('--max-semi-space-size'))) return null
  const child = require('node:child_process').spawn(process.execPath, [...process.execArgv, '--expose-gc', '--max-semi-space-size=1', __filename, ...argv], { stdio: 'inherit' })
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig))
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve(code ?? 128 + (require('node:os').constants.signals[signal] || 0))))
}

;(reexec() ?? main()).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`${e.stack || e}\n`)
    process.exit(2)
  },
)
