#!/usr/bin/env node
'use strict'
// npm run bench [-- --quick]: lonely-container side by side with Node's own spawn,
// unshare, bubblewrap, crun and runc, in one run, as ratios. See bench/README.md.
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const cp = require('node:child_process')

if (process.argv[2] === '--worker') {
  require('./lib/measure')
    .worker(JSON.parse(process.argv[3]))
    .then(
      () => process.exit(0),
      (e) => {
        process.stderr.write(`${e.stack || e}\n`)
        process.exit(1)
      },
    )
} else {
  main().then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`${e.stack || e}\n`)
      process.exit(1)
    },
  )
}

/** Jiffies from the first line of /proc/stat: busy (all but idle and iowait) and total. */
function cpuTimes() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number)
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0)
  return { busy: total - f[3] - f[4], total }
}

/** mtime and size of every built file the bench loads: to notice a rebuild during the run. */
function buildIdentity(root) {
  const files = ['index.js', 'binding.js', ...fs.readdirSync(root).filter((f) => f.endsWith('.node'))]
  try {
    files.push(...fs.readdirSync(path.join(root, 'lib')).filter((f) => f.endsWith('.js')).map((f) => `lib/${f}`))
  } catch {}
  const id = {}
  for (const f of files.sort()) {
    try {
      const st = fs.statSync(path.join(root, f))
      id[f] = `${st.size}@${st.mtimeMs}`
    } catch {
      id[f] = null
    }
  }
  return id
}

/** Warnings when a built file is older than the sources it comes from. */
function staleBuild(root) {
  const newest = (dir, ext) => {
    let t = 0
    const walk = (d) => {
      let entries = []
      try {
        entries = fs.readdirSync(d, { withFileTypes: true })
      } catch {}
      for (const e of entries) {
        const p = path.join(d, e.name)
        if (e.isDirectory()) walk(p)
        else if (e.name.endsWith(ext) && !e.name.endsWith('.d.ts')) t = Math.max(t, fs.statSync(p).mtimeMs)
      }
    }
    walk(dir)
    return t
  }
  const mtime = (f) => {
    try {
      return fs.statSync(path.join(root, f)).mtimeMs
    } catch {
      return 0
    }
  }
  const out = []
  const addon = fs.readdirSync(root).find((f) => f.endsWith('.node'))
  const rs = Math.max(newest(path.join(root, 'crate', 'src'), '.rs'), newest(path.join(root, 'core', 'src'), '.rs'))
  if (addon && rs > mtime(addon)) out.push(`the native addon (${addon}) is older than crate/src or core/src (by ${Math.round((rs - mtime(addon)) / 1000)} s): npm run build:native measures the current source`)
  const ts = Math.max(mtime('index.ts'), newest(path.join(root, 'lib'), '.ts'))
  if (ts > mtime('index.js')) out.push('index.js is older than index.ts or lib/*.ts: npx tsc -p tsconfig.json')
  return out
}

function settings(quick) {
  if (quick) {
    return {
      latency: { warmup: 5, rounds: 8, batch: 8 },
      latencyInNs: { warmup: 3, rounds: 5, batch: 6 },
      throughput: { levels: [1, 2, 8], rounds: 3, opsPerBatch: 60 },
      firstByte: { warmup: 3, rounds: 6, batch: 6 },
      live: [[100, 'pipe'], [100, 'ignore']],
      heapMb: 200,
    }
  }
  return {
    latency: { warmup: 20, rounds: 30, batch: 10 },
    latencyInNs: { warmup: 10, rounds: 20, batch: 10 },
    throughput: { levels: [1, 2, 8, 64], rounds: 5, opsPerBatch: 200 },
    firstByte: { warmup: 10, rounds: 20, batch: 10 },
    live: [[100, 'pipe'], [100, 'ignore'], [1000, 'ignore']],
    heapMb: 200,
  }
}

async function main() {
  const argv = process.argv.slice(2)
  const value = (name) => {
    const i = argv.indexOf(name)
    return i >= 0 ? argv[i + 1] : undefined
  }
  for (let i = 0; i < argv.length; i++) {
    if (['--lib', '--out'].includes(argv[i]) && argv[i + 1]) i++
    else if (!['--quick', '--no-install'].includes(argv[i])) {
      process.stderr.write(`usage: node bench/run.js [--quick] [--no-install] [--lib PACKAGE_DIR] [--out PREFIX]\nunknown argument ${argv[i]}\n`)
      return 2
    }
  }
  const quick = argv.includes('--quick')
  const S = settings(quick)
  const setup = require('./lib/setup')
  const report = require('./lib/report')
  const { log } = setup
  const started = Date.now()

  // --lib measures another build of lonely-container (a checkout with index.js and the addon built).
  const root = path.resolve(value('--lib') ?? path.join(__dirname, '..'))
  if (!fs.existsSync(path.join(root, 'index.js')) || !fs.readdirSync(root).some((f) => f.endsWith('.node'))) {
    process.stderr.write('index.js or the native addon is missing: run `npm run build` first\n')
    return 1
  }
  if (process.getuid() !== 0) log('warning: not root; lonely, unshare, crun and runc need root here and will likely be skipped')

  const buildAtStart = buildIdentity(root)
  const buildWarnings = staleBuild(root)
  for (const w of buildWarnings) log(`warning: ${w}`)
  const installed = setup.ensureTools({ install: !argv.includes('--no-install') })
  if (installed.installError) log(installed.installError)
  const { tools, busybox } = installed
  if (!busybox) {
    process.stderr.write('no static busybox (apt-get install busybox-static): cannot build the shared root\n')
    return 1
  }
  const machine = setup.machineInfo(tools, busybox, root)
  const cg = setup.cgroupMode()

  const ctx = { tools, idPrefix: `lonelybench${process.pid}`, unified: cg.unified }
  let current = null // the worker process running now
  const onSignal = (sig) => {
    log(`${sig}: stopping`)
    if (current?.pid) {
      try {
        process.kill(current.pid, 'SIGKILL')
      } catch {}
    }
    for (const p of setup.cleanup(ctx)) log(p)
    process.exit(130)
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)

  try {
    ctx.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-bench-'))
    ctx.crunState = path.join(ctx.dir, 'crun-state')
    ctx.runcState = path.join(ctx.dir, 'runc-state')
    fs.mkdirSync(ctx.crunState)
    fs.mkdirSync(ctx.runcState)
    const rootfs = setup.makeBusyboxRoot(ctx.dir, busybox)

    // Probe every contender once; a failure is printed and the contender skipped.
    const skipped = {}
    const probe = (name, cmd, args) => {
      const r = cp.spawnSync(cmd, args, { encoding: 'utf8', timeout: 30_000 })
      if (r.status === 0) return true
      skipped[name] = `${[cmd, ...args].join(' ')} failed (${r.error ? r.error.code : r.signal ? `killed by ${r.signal}` : `exit ${r.status}`}): ${(r.stderr || '').trim().slice(0, 300)}`
      return false
    }
    const need = (name, tool) => {
      if (tools[tool]) return true
      skipped[name] = `${tool} is not installed${installed.installError ? ` (${installed.installError})` : ''}`
      return false
    }
    let probeSeq = 0
    const pid = () => `${ctx.idPrefix}-probe${probeSeq++}`
    const NS = ['--pid', '--fork', '--mount', '--uts', '--ipc', '--net', '--cgroup']
    // lonely runs once, and prints its plan: the crun/runc bundle copies its security steps.
    const probeJs = `const l = require(${JSON.stringify(path.join(root, 'index.js'))}); const rootfs = ${JSON.stringify(rootfs)};
      l.run(['/bin/true'], { rootfs }).then(() => { process.stdout.write(typeof l.explain === 'function' ? l.explain(['/bin/true'], { rootfs }) : ''); process.exit(0) }, (e) => { console.error(e.message); process.exit(1) })`
    const lonelyProbe = cp.spawnSync(process.execPath, ['-e', probeJs], { encoding: 'utf8', timeout: 30_000 })
    if (lonelyProbe.status !== 0) {
      process.stderr.write(`lonely itself fails: ${lonelyProbe.stderr}\n`)
      return 1
    }
    const lonelyPlan = lonelyProbe.stdout
    const security = setup.securityFromPlan(lonelyPlan, root)
    const bundle = setup.makeBundle(ctx.dir, rootfs, security)
    log(`root ${rootfs}, bundle ${bundle} (as lonely's plan: ${security.maskedPaths.length} masked paths, ${security.readonlyPaths.length} read-only paths, caps ${security.dropCaps ? "docker's" : 'all'}, no_new_privs ${security.noNewPrivileges}, seccomp ${security.seccomp ? `${security.seccomp.syscalls[0].names.length}-call allowlist` : 'none'})`)
    if (need('node→unshare', 'unshare')) probe('node→unshare', tools.unshare, [...NS, `--root=${rootfs}`, '--mount-proc', '/bin/true'])
    if (need('node→bwrap', 'bwrap')) probe('node→bwrap', tools.bwrap, ['--unshare-all', '--ro-bind', rootfs, '/', '--proc', '/proc', '--dev', '/dev', '--die-with-parent', '/bin/true'])
    let crunMode = null
    if (need('crun', 'crun')) {
      const direct = cp.spawnSync(tools.crun, ['--root', ctx.crunState, 'run', '--bundle', bundle, pid()], { encoding: 'utf8', timeout: 30_000 })
      if (direct.status === 0) crunMode = 'direct'
      else if (cg.mode === 'hybrid' && tools.unshare) {
        log(`crun refuses this host directly (${(direct.stderr || '').trim()}); running it in an \`unshare -m\` with ${cg.unified} unmounted`)
        if (probe('crun', tools.unshare, ['-m', 'sh', '-c', `umount ${cg.unified} && exec "$0" "$@"`, tools.crun, '--root', ctx.crunState, 'run', '--bundle', bundle, pid()])) crunMode = 'unshare-m'
      } else {
        skipped.crun = `crun run failed (exit ${direct.status}): ${(direct.stderr || '').trim()}`
      }
    }
    ctx.crunWrap = crunMode === 'unshare-m'
    if (need('runc', 'runc')) probe('runc', tools.runc, ['--root', ctx.runcState, 'run', '--bundle', bundle, pid()])
    for (const [n, why] of Object.entries(skipped)) log(`skipping ${n}: ${why}`)

    const env = { rootfs, bundle, crunState: ctx.crunState, runcState: ctx.runcState, tools, unified: cg.unified, crunMode, libRoot: root }
    const ok = (n) => !skipped[n]
    const latencyNames = ['node-spawn', 'node-spawn-busybox', 'lonely', 'lonely-exec', 'lonely-inherit', 'lonely-mirror', 'node→unshare', 'node→bwrap', 'crun', ...(crunMode === 'unshare-m' ? ['unshare -m sh'] : []), 'runc'].filter(ok)
    const heapCondition = `heap${S.heapMb}MiB`

    const phases = []
    let workerSeq = 0
    const runWorker = (job, { inNs = false } = {}) =>
      new Promise((resolve, reject) => {
        const n = workerSeq++
        const resultFile = path.join(ctx.dir, `result-${n}.json`)
        const full = { ...job, resultFile, env: { ...env, idPrefix: `${ctx.idPrefix}-w${n}` } }
        const nodeArgs = ['--expose-gc', __filename, '--worker', JSON.stringify(full)]
        const [cmd, args] = inNs ? [tools.unshare, ['-m', 'sh', '-c', `umount ${cg.unified} && exec "$0" "$@"`, process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs]
        log(`phase ${job.phase}${job.heapMb ? ` heap=${job.heapMb}MiB` : ''}${job.kind ? ` ${job.kind}` : ''}${inNs ? ' (worker in unshare -m)' : ''}: ${(job.contenders || []).join(', ')}`)
        const cpu0 = cpuTimes()
        const t0 = Date.now()
        current = cp.spawn(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'] })
        current.on('error', reject)
        current.on('close', (code, signal) => {
          current = null
          if (code !== 0) return reject(new Error(`worker for ${job.phase} failed: ${signal || `exit ${code}`}`))
          const cpu1 = cpuTimes()
          const result = JSON.parse(fs.readFileSync(resultFile, 'utf8'))
          // Machine-wide CPU use while the phase ran (the bench's own work included): a hint of interference.
          result.machineCpuBusyPercent = Math.round((100 * (cpu1.busy - cpu0.busy)) / Math.max(1, cpu1.total - cpu0.total))
          result.seconds = (Date.now() - t0) / 1000
          phases.push({ phase: job.phase, heapMb: job.heapMb, kind: job.kind, steps: job.steps, inNs, seconds: result.seconds, machineCpuBusyPercent: result.machineCpuBusyPercent, loadAverage: os.loadavg().map((x) => Math.round(x * 100) / 100) })
          resolve(result)
        })
      })

    const labels = Object.fromEntries(Object.values(require('./lib/contenders').contenders({ ...env, idPrefix: 'x' })).map((c) => [c.name, c.label]))
    const rows = []
    const raw = {}

    // A phase that fails (its worker crashed, the library changed under us...) is reported
    // and the others still run.
    const phaseErrors = []
    const phase = async (name, fn) => {
      try {
        await fn()
      } catch (e) {
        phaseErrors.push({ phase: name, error: String(e.message || e) })
        log(`phase ${name} failed: ${e.message || e}`)
      }
    }

    // 1. Sequential latency, fresh process and a process holding 200 MB.
    await phase('latency fresh', async () => {
      raw.latencyFresh = await runWorker({ phase: 'latency', heapMb: 0, contenders: latencyNames, ...S.latency })
      rows.push(...report.latencyRows('latency', 'fresh', raw.latencyFresh, labels, 'sequential, 1 in flight'))
    })
    await phase(`latency ${heapCondition}`, async () => {
      raw.latencyHeap = await runWorker({ phase: 'latency', heapMb: S.heapMb, contenders: latencyNames, ...S.latency })
      rows.push(...report.latencyRows('latency', heapCondition, raw.latencyHeap, labels, `sequential, the Node process holds ${S.heapMb} MiB of touched Buffers (RSS ${Math.round(raw.latencyHeap.heap.rssAfterKiB / 1024)} MiB)`))
    })

    // 1b. Cross-check of the crun subtraction: crun spawned directly by a bench process
    //     that runs inside an `unshare -m` (cgroup2 unmounted there), against in-process references.
    if (crunMode === 'unshare-m') {
      const names = ['node-spawn', 'lonely', 'crun-direct']
      const note = 'bench worker itself in unshare -m with the cgroup2 unmounted; ratios to the node-spawn and lonely of that worker'
      await phase('latency in unshare -m', async () => {
        raw.inNsFresh = await runWorker({ phase: 'latency', heapMb: 0, contenders: names, ...S.latencyInNs }, { inNs: true })
        rows.push(...report.latencyRows('latency, worker in unshare -m', 'fresh', raw.inNsFresh, labels, note))
        raw.inNsHeap = await runWorker({ phase: 'latency', heapMb: S.heapMb, contenders: names, ...S.latencyInNs }, { inNs: true })
        rows.push(...report.latencyRows('latency, worker in unshare -m', heapCondition, raw.inNsHeap, labels, note))
      })
    }

    // 2. Throughput with 1, 2, 8, 64 in flight.
    await phase('throughput', async () => {
      const tpNames = ['node-spawn', 'lonely', 'lonely-no-netns', 'node→bwrap'].filter(ok)
      raw.throughput = await runWorker({ phase: 'throughput', contenders: tpNames, ...S.throughput })
      for (const [n, r] of Object.entries(raw.throughput.contenders)) {
        for (const [c, l] of Object.entries(r.levels)) {
          rows.push({ contender: n, figure: 'throughput', condition: `${c} in flight`, unit: 'containers/s', better: 'higher', value: l.perSecond, medianRoundPerSecond: l.medianRoundPerSecond, ops: l.ops, cpuMsPerContainer: l.cpuMsPerContainer, cpuBusyShare: l.cpuBusyShare, error: r.error, label: labels[n] })
        }
      }
    })

    // 3. Spawn to first stdout byte of `echo hi`.
    await phase('first byte', async () => {
      raw.firstByte = await runWorker({ phase: 'firstByte', contenders: ['node-spawn', 'node-spawn-busybox', 'lonely', 'node→bwrap'].filter(ok), ...S.firstByte })
      rows.push(...report.latencyRows('first stdout byte of echo hi', 'fresh', raw.firstByte, labels, 'from the spawn call to the first data event'))
    })

    // 4. RSS, threads and fds with live sleeping containers.
    //    One fresh worker per step, so that no step inherits the garbage of the one before.
    const merged = {}
    for (const step of S.live) {
      for (const kind of ['lonely', 'node-spawn']) {
        await phase(`live ${kind} ${step[0]} ${step[1]}`, async () => {
          const w = await runWorker({ phase: 'live', kind, steps: [step] })
          const key = `live${step[0]}_${step[1]}`
          const m = (merged[kind] ??= { kind, readings: { beforeFirst: w.readings.beforeFirst, live0: w.readings.live0 }, workers: [] })
          m.readings[key] = { ...w.readings[key], live0Threads: w.readings.live0.threads, live0ThreadNames: w.readings.live0.threadNames }
          m.readings[`after${step[0]}_${step[1]}`] = w.readings[`after${step[0]}_${step[1]}`]
          m.workers.push(w)
        })
      }
    }
    raw.liveLonely = merged.lonely
    raw.liveNode = merged['node-spawn']
    // The marginal cost between the two `ignore` steps: without the fixed costs (V8 heap growth,
    // JIT) that the first hundred containers carry.
    const ignoreSteps = S.live.filter(([, io]) => io === 'ignore').map(([n]) => n).sort((a, b) => a - b)
    if (ignoreSteps.length >= 2) {
      const [lo, hi] = [ignoreSteps[0], ignoreSteps[ignoreSteps.length - 1]]
      for (const [name, m] of [['lonely', raw.liveLonely], ['node-spawn', raw.liveNode]]) {
        const a = m?.readings[`live${lo}_ignore`]
        const b = m?.readings[`live${hi}_ignore`]
        if (!a || !b) continue
        const value = Math.round((((b.rssKiB - b.base.rssKiB) - (a.rssKiB - a.base.rssKiB)) / (hi - lo)) * 10) / 10
        rows.push({ contender: name, figure: 'RSS per live container', condition: `marginal, ${lo}→${hi} live (stdio ignore)`, unit: 'KiB/container', better: 'lower', value, label: `((ΔRSS at ${hi}) − (ΔRSS at ${lo})) ÷ ${hi - lo}, each Δ from its own worker's baseline` })
      }
    }
    for (const [name, res] of [['lonely', raw.liveLonely], ['node-spawn', raw.liveNode]]) {
      if (!res) continue
      const r = res.readings
      const conds = [['before any container', r.beforeFirst], ['0 live', r.live0]]
      for (const [n, stdio] of S.live) conds.push([`${n} live (stdio ${stdio})`, r[`live${n}_${stdio}`]], [`after killing ${n} (stdio ${stdio})`, r[`after${n}_${stdio}`]])
      const label = name === 'lonely' ? "spawn(['sleep', '30'], { rootfs, stdio })" : "child_process.spawn(rootfs + '/bin/sleep', ['30'], { stdio })"
      for (const [cond, at] of conds) {
        if (!at) continue
        rows.push({ contender: name, figure: 'RSS of the Node process', condition: cond, unit: 'KiB', better: 'lower', value: at.rssKiB, label })
        rows.push({ contender: name, figure: 'threads of the Node process', condition: cond, unit: 'threads', better: 'lower', value: at.threads, label })
        rows.push({ contender: name, figure: 'fds of the Node process', condition: cond, unit: 'fds', better: 'lower', value: at.fds, label })
        if (at.rssDeltaPerContainerKiB !== undefined) {
          rows.push({ contender: name, figure: 'RSS per live container', condition: cond, unit: 'KiB/container', better: 'lower', value: Math.round(at.rssDeltaPerContainerKiB * 10) / 10, spawnMs: at.spawnMs, label })
        }
      }
    }

    report.addRatios(rows)
    const goals = report.targets(rows, raw.liveLonely, heapCondition)

    // Output.
    const out = []
    out.push(`lonely-container bench${quick ? ' (--quick)' : ''} — ${machine.date}`)
    out.push(`${machine.cpuModel}, ${machine.cores} cores, ${machine.memTotalMiB} MiB, ${machine.kernel}, Node ${machine.node}, cgroups ${machine.cgroups}`)
    out.push(`lonely-container ${machine.lonely.version} from ${machine.lonely.root} @ ${machine.lonely.commit ?? '(no git)'}${machine.lonely.dirtyFiles ? ` + ${machine.lonely.dirtyFiles} modified files` : ''}; addon ${machine.lonely.addon?.file} built ${machine.lonely.addon?.mtime}, sha256 ${machine.lonely.addon?.sha256.slice(0, 16)}`)
    machine.loadAverageAtEnd = os.loadavg().map((x) => Math.round(x * 100) / 100)
    out.push(`load average (1, 5, 15 min) at start ${machine.loadAverageAtStart.join(' ')}, at end ${machine.loadAverageAtEnd.join(' ')}`)
    // The load at the end includes the bench's own; the one at start is other work.
    if (machine.loadAverageAtStart[0] > machine.cores / 2) {
      out.push(`WARNING: the machine was busy with other work during this run; absolute figures are inflated and noisy (the interleaving keeps the ratios comparable)`)
    }
    out.push(`peers: ${Object.entries(machine.tools).map(([k, v]) => `${k}: ${v ?? 'missing'}`).join('; ')}`)
    out.push(`ratios: a contender's figure divided by node-spawn's / lonely's in the same table (latency: < 1 is faster; throughput: > 1 is more)`)
    if (crunMode === 'unshare-m') {
      out.push(`crun: this host has hybrid cgroups, which crun ${machine.tools.crun?.split(' ')[2] ?? ''} refuses; each crun container is started as`)
      out.push(`  unshare -m sh -c 'umount ${cg.unified} && exec crun run ...' (the host's mounts are never touched). The 'crun' row includes that`)
      out.push(`  wrapper; 'unshare -m sh' measures the wrapper alone; '${report.CRUN_NET}' = crun − wrapper (medians);`)
      out.push(`  'latency, worker in unshare -m' measures crun spawned directly from a bench process living in such a namespace.`)
    }
    out.push(`crun/runc bundle = lonely's plan: namespaces pid mount uts ipc net cgroup, read-only root, /proc /dev /dev/pts /dev/shm /sys /tmp; ${security.maskedPaths.length} masked + ${security.readonlyPaths.length} read-only paths; capabilities ${security.dropCaps ? "docker's 14" : 'all (lonely keeps them)'}; no_new_privs ${security.noNewPrivileges ? 'on' : 'off'}; seccomp ${security.seccomp ? "lonely's allowlist" : 'none (lonely has none)'}`)
    for (const [n, why] of Object.entries(skipped)) out.push(`skipped ${n}: ${why}`)
    for (const w of buildWarnings) out.push(`WARNING: ${w}`)
    const buildAtEnd = buildIdentity(root)
    if (JSON.stringify(buildAtEnd) !== JSON.stringify(buildAtStart)) out.push('WARNING: the built library (index.js, lib/*.js or the addon) changed during this run: figures may mix two builds')
    for (const e of phaseErrors) out.push(`FAILED phase ${e.phase}: ${e.error}`)
    out.push(report.table(rows))
    out.push('')
    out.push(`phases (wall time; machine-wide CPU busy incl. the bench itself, of ${machine.cores} cores):`)
    for (const p of phases) out.push(`  ${p.phase}${p.heapMb ? ` heap ${p.heapMb} MiB` : ''}${p.kind ? ` ${p.kind}` : ''}${p.steps ? ` ${p.steps.map(([n, io]) => `${n} ${io}`).join(', ')}` : ''}${p.inNs ? ' (in unshare -m)' : ''}: ${p.seconds.toFixed(1)} s, CPU busy ${p.machineCpuBusyPercent}%, load ${p.loadAverage[0]}`)
    out.push('')
    out.push('Targets')
    for (const g of goals) out.push(`  ${g.pass === null ? 'n/a ' : g.pass ? 'PASS' : 'FAIL'}  ${g.target}: ${g.figures}`)
    // --out PREFIX writes PREFIX.json and PREFIX.svg instead of bench/results.json and bench/chart.svg.
    const out_ = value('--out')
    const resultsPath = out_ ? path.resolve(`${out_}.json`) : path.join(__dirname, 'results.json')
    const chartPath = out_ ? path.resolve(`${out_}.svg`) : path.join(__dirname, 'chart.svg')
    const results = {
      machine,
      mode: quick ? 'quick' : 'full',
      settings: S,
      durationSeconds: Math.round((Date.now() - started) / 100) / 10,
      heap: raw.latencyHeap?.heap ?? null,
      phaseErrors,
      build: { atStart: buildAtStart, atEnd: buildIdentity(root) },
      crun: { mode: crunMode, cgroups: cg.mode, unified: cg.unified },
      lonelyPlan,
      bundleConfig: JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')),
      skipped,
      phases,
      contenders: labels,
      results: rows,
      targets: goals,
      raw,
    }
    fs.writeFileSync(resultsPath + '.tmp', JSON.stringify(results, null, 2) + '\n')
    fs.renameSync(resultsPath + '.tmp', resultsPath)
    fs.writeFileSync(chartPath, report.chart(rows, machine, ['fresh', heapCondition]))
    // The README's comparison row comes from the results it cites (bench/readme-figures.js).
    if (!out_ && !quick) {
      const readme = path.join(__dirname, '..', 'README.md')
      fs.writeFileSync(readme, require('./readme-figures').render(fs.readFileSync(readme, 'utf8'), results.results, machine.date))
    }
    out.push('')
    out.push(`results: ${path.relative(process.cwd(), resultsPath)}   chart: ${path.relative(process.cwd(), chartPath)}   (${results.durationSeconds} s)`)
    process.stdout.write(out.join('\n') + '\n')
    return 0
  } finally {
    process.removeListener('SIGINT', onSignal)
    process.removeListener('SIGTERM', onSignal)
    const problems = setup.cleanup(ctx)
    for (const p of problems) log(p)
  }
}
