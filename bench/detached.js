'use strict'
// Scale of detached containers (issue 12): N live at once (default 1000, --quick 100), each
// `sleep` under its own lonely-monitor. Reports what one costs (the monitor's RSS, PSS and fds,
// the start time), and how long listing them takes: containers.list() in this process and
// `lonely ps` as a new process (beside a bare `node -e ''`, its floor). Then removes them all.
//   node bench/detached.js [--quick] [--count N] [--out FILE]
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const cp = require('node:child_process')

const { log, staticBusybox, makeBusyboxRoot, machineInfo } = require('./lib/setup')
const { summarize, round } = require('./lib/stats')

const REPO = path.join(__dirname, '..')
const lib = require(path.join(REPO, 'index.js'))

/** Field `key` (kB) of /proc/<pid>/<file>. */
function kb(pid, file, key) {
  const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(fs.readFileSync(`/proc/${pid}/${file}`, 'utf8'))
  return m ? Number(m[1]) : null
}

const ppid = (pid) => Number(fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ')[1])

/** Wall time of a fresh process, median of `runs`. */
function wallMs(cmd, args, env, runs = 7) {
  const samples = []
  for (let i = 0; i < runs; i++) {
    const t = process.hrtime.bigint()
    const r = cp.spawnSync(cmd, args, { env, encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: exit ${r.status}: ${r.stderr}`)
    samples.push(Number(process.hrtime.bigint() - t) / 1e6)
  }
  return summarize(samples).median
}

async function main() {
  const argv = process.argv.slice(2)
  const count = Number(argv.includes('--count') ? argv[argv.indexOf('--count') + 1] : argv.includes('--quick') ? 100 : 1000)
  const out = argv.includes('--out') ? argv[argv.indexOf('--out') + 1] : path.join(__dirname, 'detached-results.json')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-bench-detached-'))
  const stateDir = path.join(dir, 'state')
  const busybox = staticBusybox()
  if (!busybox) throw new Error('no static busybox (apt-get install busybox-static)')
  const rootfs = makeBusyboxRoot(dir, busybox)
  const made = []
  try {
    log(`starting ${count} detached containers`)
    const startMs = []
    const t0 = process.hrtime.bigint()
    for (let i = 0; i < count; i++) {
      const t = process.hrtime.bigint()
      made.push(await lib.create(['sleep', '1000000'], { rootfs, detached: true, stateDir, name: `c${i}` }))
      startMs.push(Number(process.hrtime.bigint() - t) / 1e6)
    }
    const totalStartS = Number(process.hrtime.bigint() - t0) / 1e9
    const monitors = made.map((c) => ppid(c.pid))
    const rss = monitors.map((m) => kb(m, 'status', 'VmRSS'))
    const pss = monitors.map((m) => kb(m, 'smaps_rollup', 'Pss'))
    const fds = monitors.map((m) => fs.readdirSync(`/proc/${m}/fd`).length)
    const listMs = []
    for (let i = 0; i < 7; i++) {
      const t = process.hrtime.bigint()
      const listed = lib.containers.list({ stateDir })
      listMs.push(Number(process.hrtime.bigint() - t) / 1e6)
      if (listed.filter((c) => c.running).length !== count) throw new Error(`containers.list() saw ${listed.length}, not ${count}`)
    }
    const env = { ...process.env, LONELY_STATE_DIR: stateDir }
    const psMs = wallMs(process.execPath, [path.join(REPO, 'cli.js'), 'ps'], env)
    const nodeMs = wallMs(process.execPath, ['-e', ''], env)
    const t1 = process.hrtime.bigint()
    for (const c of made.splice(0)) await c.remove({ force: true })
    const removeS = Number(process.hrtime.bigint() - t1) / 1e9
    const result = {
      date: new Date().toISOString(),
      machine: machineInfo({}, busybox),
      count,
      startMs: { ...summarize(startMs), totalS: round(totalStartS, 2) },
      monitor: {
        rssKiB: summarize(rss),
        pssKiB: summarize(pss),
        fds: summarize(fds),
      },
      listMs: summarize(listMs),
      psMs: { lonelyPs: round(psMs, 1), nodeBaseline: round(nodeMs, 1), lonelyPsMinusNode: round(psMs - nodeMs, 1) },
      removeAllS: round(removeS, 2),
    }
    fs.writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`)
    const s = (x) => `median ${round(x.median, 2)}, max ${round(x.max, 2)}`
    process.stdout.write([
      `${count} live detached containers (sleep under lonely-monitor), ${os.cpus().length} CPUs, Linux ${os.release()}`,
      `  start:            ${s(result.startMs)} ms each; ${result.startMs.totalS} s for all`,
      `  monitor RSS:      ${s(result.monitor.rssKiB)} KiB   (PSS ${s(result.monitor.pssKiB)} KiB)`,
      `  monitor fds:      ${s(result.monitor.fds)}`,
      `  containers.list() of ${count}: ${s(result.listMs)} ms`,
      `  lonely ps of ${count}: ${result.psMs.lonelyPs} ms wall (node -e '' alone: ${result.psMs.nodeBaseline} ms; the difference: ${result.psMs.lonelyPsMinusNode} ms)`,
      `  remove all:       ${result.removeAllS} s`,
      `written to ${path.relative(process.cwd(), out)}`,
      '',
    ].join('\n'))
  } finally {
    for (const c of made) await c.remove({ force: true }).catch(() => {})
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

main().catch((e) => {
  process.stderr.write(`${e.stack || e}\n`)
  process.exit(1)
})
