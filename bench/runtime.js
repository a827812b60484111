'use strict'
// lonely-runtime beside runc (and crun when installed), as an engine drives them: one bundle
// (busybox, `true`, docker's capabilities and masks), the whole cycle create → start → wait
// until stopped → delete, sequentially, interleaved round by round; ratios of medians.
//   node bench/runtime.js [--quick] [--out FILE]
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const cp = require('node:child_process')

const { log, which, staticBusybox, makeBusyboxRoot, makeBundle } = require('./lib/setup')
const stats = require('./lib/stats')

const RUNTIME = path.join(__dirname, '..', 'target', 'release', 'lonely-runtime')
const MASKED = ['/proc/kcore', '/proc/keys', '/proc/timer_list', '/sys/firmware']
const READONLY = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger']

// crun 1.8 refuses a hybrid cgroup host at create: that one call runs in a private mount
// namespace with the empty cgroup2 mount unmounted there (the host is untouched). The
// wrapper's own cost is measured alone and taken off crun's figure.
const HYBRID = fs.existsSync('/sys/fs/cgroup/unified/cgroup.controllers') && fs.existsSync('/sys/fs/cgroup/memory')
const UNSHARE_WRAPPER = ['unshare', '-m', '--propagation', 'private', 'sh', '-c', 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$0" "$@"']

/** One create/start/wait/delete of `id` with `bin` (runc's command line), in ms. */
function cycle(bin, root, bundle, id, createVia = []) {
  // No pipes: the container keeps the runtime's stdio, and a pipe would stay open while it waits for start.
  const logFile = `${root}.log`
  const run = (args) => {
    const argv = [bin, '--root', root, '--log', logFile, ...args]
    const [file, ...rest] = args[0] === 'create' ? [...createVia, ...argv] : argv
    const r = cp.spawnSync(file, rest, { stdio: 'ignore' })
    if (r.status !== 0) throw new Error(`${path.basename(bin)} ${args.join(' ')}: exit ${r.status}: ${fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').trim().split('\n').pop() : ''}`)
    return r
  }
  const t = process.hrtime.bigint()
  run(['create', '--bundle', bundle, id])
  run(['start', id])
  for (;;) {
    const s = cp.spawnSync(bin, ['--root', root, 'state', id], { encoding: 'utf8' })
    if (s.status !== 0 || JSON.parse(s.stdout).status === 'stopped') break
  }
  run(['delete', '--force', id])
  return Number(process.hrtime.bigint() - t) / 1e6
}

/** The median cost of the hybrid-host wrapper around `true`, in ms. */
function wrapperCost() {
  const times = []
  for (let i = 0; i < 30; i++) {
    const t = process.hrtime.bigint()
    cp.spawnSync(UNSHARE_WRAPPER[0], [...UNSHARE_WRAPPER.slice(1), 'true'], { stdio: 'ignore' })
    times.push(Number(process.hrtime.bigint() - t) / 1e6)
  }
  const spawnTrue = []
  for (let i = 0; i < 30; i++) {
    const t = process.hrtime.bigint()
    cp.spawnSync('true', [], { stdio: 'ignore' })
    spawnTrue.push(Number(process.hrtime.bigint() - t) / 1e6)
  }
  // The wrapper replaces nothing: the runtime's own spawn is counted once, in the cycle.
  return Math.max(0, stats.summarize(times).median - stats.summarize(spawnTrue).median)
}

function main() {
  const argv = process.argv.slice(2)
  const quick = argv.includes('--quick')
  const out = argv.includes('--out') ? argv[argv.indexOf('--out') + 1] : path.join(__dirname, 'runtime-results.json')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-bench-runtime-'))
  try {
    const rootfs = makeBusyboxRoot(dir, staticBusybox())
    const bundle = makeBundle(dir, rootfs, { maskedPaths: MASKED, readonlyPaths: READONLY, dropCaps: true, noNewPrivileges: true })
    const contenders = { 'lonely-runtime': RUNTIME, runc: which('runc'), crun: which('crun') }
    const createVia = { crun: HYBRID ? UNSHARE_WRAPPER : [] }
    const wrapperMs = HYBRID ? wrapperCost() : 0
    const skipped = {}
    for (const [name, bin] of Object.entries(contenders)) {
      if (!bin) {
        skipped[name] = 'not installed'
        delete contenders[name]
        continue
      }
      try {
        cycle(bin, path.join(dir, `${name}-state`), bundle, 'probe', createVia[name])
      } catch (e) {
        skipped[name] = e.message
        delete contenders[name]
      }
    }
    const rounds = 5
    const perRound = quick ? 6 : 30
    const samples = Object.fromEntries(Object.keys(contenders).map((n) => [n, []]))
    for (let r = 0; r < rounds; r++) {
      log(`round ${r + 1}/${rounds}`)
      for (const [name, bin] of Object.entries(contenders)) {
        for (let i = 0; i < perRound; i++) samples[name].push(cycle(bin, path.join(dir, `${name}-state`), bundle, `c${r}-${i}`, createVia[name]) - (createVia[name]?.length ? wrapperMs : 0))
      }
    }
    const results = Object.fromEntries(Object.entries(samples).map(([n, s]) => {
      const x = stats.summarize(s)
      return [n, { medianMs: stats.round(x.median), p90Ms: stats.round(x.p90), samples: x.n }]
    }))
    const base = results['lonely-runtime']?.medianMs
    const ratios = Object.fromEntries(Object.entries(results).map(([n, r]) => [`${n}/lonely-runtime`, base ? stats.round(r.medianMs / base, 2) : null]))
    const notes = HYBRID && results.crun ? { crun: `create through a hybrid-host wrapper (unshare -m, umount the cgroup2 mount); its own ${stats.round(wrapperMs)} ms taken off` } : {}
    fs.writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), cycle: 'create, start, wait until stopped, delete (/bin/true)', results, ratios, skipped, notes }, null, 2)}\n`)
    for (const [n, r] of Object.entries(results)) process.stdout.write(`${n.padEnd(15)} median ${String(r.medianMs).padStart(8)} ms  p90 ${String(r.p90Ms).padStart(8)} ms  ${ratios[`${n}/lonely-runtime`]}× lonely-runtime's\n`)
    for (const [n, why] of Object.entries(skipped)) process.stdout.write(`${n}: skipped (${why})\n`)
    for (const [n, note] of Object.entries(notes)) process.stdout.write(`${n}: ${note}\n`)
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

main()
