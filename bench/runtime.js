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

// The cycle is timed by a small native driver (bench/cycle): an engine execs the runtime from
// Go, at a fork+exec's cost; Node's spawnSync adds ~0.8 ms per command, which would be
// counted four times per cycle for every contender.
const DRIVER = path.join(__dirname, '..', 'target', 'release', 'bench-cycle')

function driver(request) {
  if (!fs.existsSync(DRIVER)) {
    const b = cp.spawnSync('cargo', ['build', '--release', '--quiet', '-p', 'bench-cycle'], { stdio: 'inherit', cwd: path.join(__dirname, '..') })
    if (b.status !== 0) throw new Error('cargo build -p bench-cycle failed')
  }
  const r = cp.spawnSync(DRIVER, [], { input: JSON.stringify(request), stdio: ['pipe', 'pipe', 'inherit'], maxBuffer: 1 << 26 })
  if (r.status !== 0) throw new Error(`bench-cycle: exit ${r.status}`)
  return JSON.parse(r.stdout)
}

/** The median cost of the hybrid-host wrapper around `true`, in ms. */
function wrapperCost() {
  const wrapped = driver({ spawn: [...UNSHARE_WRAPPER, 'true'], n: 30 }).medianMs
  // The wrapper replaces nothing: the runtime's own spawn is counted once, in the cycle.
  return Math.max(0, wrapped - driver({ spawn: ['true'], n: 30 }).medianMs)
}

function main() {
  const argv = process.argv.slice(2)
  const quick = argv.includes('--quick')
  const out = argv.includes('--out') ? argv[argv.indexOf('--out') + 1] : path.join(__dirname, 'runtime-results.json')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-bench-runtime-'))
  // State roots on a tmpfs, as engines keep them (/run/containerd/runc, /run/lonely-runtime):
  // on a disk file system each create and delete pays the file system's inode allocation.
  const states = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'lonely-bench-runtime-'))
  try {
    const rootfs = makeBusyboxRoot(dir, staticBusybox())
    const bundle = makeBundle(dir, rootfs, { maskedPaths: MASKED, readonlyPaths: READONLY, dropCaps: true, noNewPrivileges: true })
    const contenders = { 'lonely-runtime': RUNTIME, runc: which('runc'), crun: which('crun') }
    const createVia = { crun: HYBRID ? UNSHARE_WRAPPER : [] }
    const wrapperMs = HYBRID ? wrapperCost() : 0
    const skipped = {}
    const contender = (name, bin) => ({ name, bin, root: path.join(states, `${name}-state`), log: path.join(states, `${name}-state.log`), createVia: createVia[name] ?? [] })
    for (const [name, bin] of Object.entries(contenders)) {
      if (!bin) {
        skipped[name] = 'not installed'
        delete contenders[name]
        continue
      }
      const probe = driver({ bundle, rounds: 1, perRound: 1, contenders: [contender(name, bin)] })
      if (probe.errors[name]) {
        skipped[name] = probe.errors[name]
        delete contenders[name]
      }
    }
    const rounds = 5
    const perRound = quick ? 6 : 30
    log(`${rounds} rounds of ${perRound} cycles each, interleaved`)
    const run = driver({ bundle, rounds, perRound, contenders: Object.entries(contenders).map(([n, b]) => contender(n, b)) })
    for (const [n, why] of Object.entries(run.errors)) skipped[n] = why
    const samples = Object.fromEntries(Object.entries(run.samples).map(([n, s]) => [n, s.map((ms) => ms - (createVia[n]?.length ? wrapperMs : 0))]))
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
    fs.rmSync(states, { recursive: true, force: true })
  }
}

main()
