#!/usr/bin/env node
'use strict'
// bench/exec.js: the latency of running /bin/true inside an ALREADY-RUNNING container,
// side by side in one run, as ratios:
//   lonely-exec  container.run(['/bin/true']) on one lonely create(['sleep', ...]) container
//   lonely-run   run(['/bin/true'], { rootfs }): a whole fresh container each time (the
//                reference of the issue: exec must take <= 1.5x of it)
//   runc-exec    `runc exec ID /bin/true` on one `runc run -d` container
//   docker-exec  `docker exec NAME /bin/true` on one container of a private dockerd
// Every contender gets 5 warm-up iterations, then its samples in 5 interleaved rounds
// (each round runs a batch of every contender in turn), pooled: median, p90, mean.
//
//   sudo node bench/exec.js [--quick] [--no-install] [--out FILE]
//
// Root only. --quick: a fifth of the iterations. --no-install: never call apt-get (a
// missing runc or dockerd is skipped). --out: the JSON file (default bench/exec-results.json).
// The machine is left as found: the private dockerd (own data/exec root, socket and pid
// file in a temp dir, no bridge, no iptables) is stopped, its mounts, cgroups and stray
// processes removed; a before/after check of mounts, links, cgroups and processes is printed.
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const cp = require('node:child_process')

const setup = require('./lib/setup')
const stats = require('./lib/stats')
const leaks = require('./lib/leaks')

const ROUNDS = 5
const WARMUP = 5
const ITERATION_TIMEOUT_MS = 60_000
const DEFAULT_N = { 'lonely-exec': 300, 'lonely-run': 300, 'runc-exec': 100, 'docker-exec': 40 }
const SLEEP = ['sleep', '1000000']
const IMAGE = 'lonely-bench:busybox'
const DOCKER_NAME = 'lonely-bench-exec'

// ---------------------------------------------------------------- small helpers

function parseArgs(argv) {
  const opts = { quick: false, install: true, out: path.join(__dirname, 'exec-results.json') }
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--quick') opts.quick = true
    else if (argv[i] === '--no-install') opts.install = false
    else if (argv[i] === '--out') opts.out = path.resolve(argv[++i])
    else throw new Error(`unknown argument ${argv[i]} (usage: node bench/exec.js [--quick] [--no-install] [--out FILE])`)
  }
  return opts
}

const { log } = setup

/** spawnSync with text output; never throws. */
function sh(cmd, args, options = {}) {
  const r = cp.spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 << 20, ...options })
  return { ok: r.status === 0, status: r.status, stdout: r.stdout || '', stderr: r.stderr || '', error: r.error }
}

function why(r) {
  return (r.error && r.error.message) || r.stderr.trim() || r.stdout.trim() || `exit ${r.status}`
}

/** The first existing file among candidates, else the first hit in PATH (+ sbin dirs). */
function findBinary(name, candidates = []) {
  const dirs = [...(process.env.PATH || '').split(':'), '/usr/sbin', '/sbin', '/usr/bin', '/bin']
  return [...candidates, ...dirs.map((d) => path.join(d, name))].find((p) => p && fs.existsSync(p)) || null
}

function sleepMs(ms) {
  return new Promise((r) => setTimeout(r, ms))
}

/** Rejects after ms (so that a hung contender cannot hang the bench); the timer is cleared. */
function withTimeout(promise, ms, what) {
  let timer
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer after ${ms} ms`)), ms)
  })
  return Promise.race([promise, limit]).finally(() => clearTimeout(timer))
}

/** Spawns cmd and resolves on 'close' (exit + stdio closed) with code 0; drains its output. */
function spawnToClose(cmd, args, options = {}) {
  return new Promise((resolve, reject) => {
    const child = cp.spawn(cmd, args, options)
    let err = ''
    child.stdout.resume()
    child.stderr.on('data', (d) => {
      if (err.length < 4000) err += d
    })
    child.on('error', reject)
    child.on('close', (code, signal) => {
      if (code === 0) resolve()
      else reject(new Error(`${path.basename(cmd)} ${args.join(' ')}: ${signal || `exit ${code}`} ${err.trim()}`))
    })
  })
}

// ---------------------------------------------------------------- statistics

/** median, p90 and mean in ms (bench/lib/stats.js), as this bench reports them. */
function summarize(samples) {
  const s = stats.summarize(samples)
  return { medianMs: stats.round(s.median), p90Ms: stats.round(s.p90), meanMs: stats.round(s.mean), samples: s.n }
}

// ---------------------------------------------------------------- machine state


function linkNames() {
  return sh('ip', ['-o', 'link'])
    .stdout.split('\n')
    .filter(Boolean)
    .map((l) => l.split(':')[1].trim())
}

/** Every cgroup directory below the controller roots (/sys/fs/cgroup/CTRL/...), 3 levels deep. */
function cgroupDirs() {
  const out = []
  const walk = (dir, depth) => {
    let entries = []
    try {
      entries = fs.readdirSync(dir, { withFileTypes: true })
    } catch {}
    for (const e of entries) {
      if (!e.isDirectory()) continue
      const p = path.join(dir, e.name)
      if (depth > 0) out.push(p)
      if (depth < 3) walk(p, depth + 1)
    }
  }
  walk('/sys/fs/cgroup', 0)
  return out.filter((p) => p.split('/').length > 5).sort()
}

/** pid and command line of every process whose command line matches. */
function processes(match) {
  const out = []
  for (const pid of fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    let cmdline = ''
    try {
      cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ')
    } catch {
      continue
    }
    if (Number(pid) !== process.pid && match(cmdline)) out.push({ pid: Number(pid), cmdline })
  }
  return out
}

function snapshot() {
  return {
    mounts: leaks.mountTable().length,
    links: linkNames(),
    cgroups: cgroupDirs(),
    sleepers: processes((c) => c === SLEEP.join(' ')).length,
    daemons: processes((c) => /^(\S*\/)?(dockerd|containerd|containerd-shim\S*)( |$)/.test(c)).map((p) => p.cmdline),
  }
}

function diffState(before, after) {
  const added = (a, b) => b.filter((x) => !a.includes(x))
  return {
    mounts: after.mounts - before.mounts,
    linksAdded: added(before.links, after.links),
    linksRemoved: added(after.links, before.links),
    cgroupsAdded: added(before.cgroups, after.cgroups),
    sleepers: after.sleepers - before.sleepers,
    daemonsAdded: added(before.daemons, after.daemons),
  }
}

// ---------------------------------------------------------------- filesystem

/** `umount -l` every mount at or below dir, deepest first (a temp dir must not be rm'd through a mount). */
function umountUnder(dir) {
  const below = setup.mountsUnder(dir)
  for (const m of [...new Set(below)].sort((a, b) => b.length - a.length)) {
    const r = sh('umount', ['-l', m])
    if (!r.ok) log(`umount -l ${m}: ${why(r)}`)
  }
}

function removeTree(dir) {
  if (!dir || !fs.existsSync(dir)) return
  umountUnder(dir)
  fs.rmSync(dir, { recursive: true, force: true })
}

/** The bench's busybox root (bench/lib/setup.js) in a temp dir of its own; returns [dir, root]. */
function makeBusyboxRoot() {
  const busybox = setup.staticBusybox()
  if (!busybox) throw new Error('busybox is not installed (apt-get install busybox-static)')
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-root-'))
  fs.chmodSync(dir, 0o755) // mkdtemp's 0700 would lock out non-root uids
  return [dir, setup.makeBusyboxRoot(dir, busybox)]
}

// ---------------------------------------------------------------- installing the peers

function runcPath() {
  return findBinary('runc', ['/usr/sbin/runc'])
}

function dockerdPath() {
  return findBinary('dockerd', ['/usr/sbin/dockerd', '/usr/bin/dockerd'])
}

function dockerCliPath() {
  return findBinary('docker', ['/usr/bin/docker', '/usr/local/bin/docker'])
}

/** apt-get installs what is missing (apt-get update first, only then). Returns an error text or null. */
function installMissing(opts) {
  const missing = []
  if (!runcPath()) missing.push('runc')
  if (!dockerdPath()) missing.push('docker.io')
  if (missing.length === 0) return null
  if (!opts.install) return `missing ${missing.join(', ')} and --no-install`
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  const stdio = ['ignore', 2, 2] // apt's progress goes to stderr, stdout keeps the table
  log(`installing ${missing.join(' ')} with apt-get`)
  const update = sh('apt-get', ['update'], { env, stdio })
  if (!update.ok) return `apt-get update: exit ${update.status}`
  const install = sh('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { env, stdio })
  return install.ok ? null : `apt-get install ${missing.join(' ')}: exit ${install.status}`
}

function firstLine(r) {
  return r.ok ? r.stdout.split('\n')[0].trim() : null
}

// ---------------------------------------------------------------- contenders
// Each: { name, setup(), once(), teardown() }; teardown must be safe to call after a
// failed or partial setup, and more than once.

function lonelyExec(lib, rootfs) {
  let container = null
  return {
    name: 'lonely-exec',
    async setup() {
      container = await lib.create(SLEEP, { rootfs })
    },
    async once() {
      const r = await container.run(['/bin/true'])
      if (r.exitCode !== 0) throw new Error(`exit ${r.exitCode}`)
    },
    async teardown() {
      const c = container
      container = null
      if (c) await c.remove({ force: true })
    },
  }
}

function lonelyRun(lib, rootfs) {
  return {
    name: 'lonely-run',
    async setup() {},
    async once() {
      const r = await lib.run(['/bin/true'], { rootfs })
      if (r.exitCode !== 0) throw new Error(`exit ${r.exitCode}`)
    },
    async teardown() {},
  }
}

/** An OCI config for `sleep` on the shared root: runc spec's defaults, edited. */
function writeRuncBundle(runc, bundle, rootfs) {
  fs.mkdirSync(bundle, { recursive: true })
  const spec = sh(runc, ['spec', '--bundle', bundle])
  if (!spec.ok) throw new Error(`runc spec: ${why(spec)}`)
  const file = path.join(bundle, 'config.json')
  const config = JSON.parse(fs.readFileSync(file, 'utf8'))
  config.process.args = SLEEP
  config.process.terminal = false
  config.root = { path: rootfs, readonly: true }
  const have = new Set(config.linux.namespaces.map((n) => n.type))
  for (const type of ['pid', 'mount', 'ipc', 'uts', 'network']) if (!have.has(type)) config.linux.namespaces.push({ type })
  fs.writeFileSync(file, JSON.stringify(config, null, 2))
}

function runcExec(rootfs) {
  const runc = runcPath()
  const id = `lonely-bench-${process.pid}`
  let dir = null
  let started = false
  const runcArgs = (...args) => ['--root', path.join(dir, 'state'), ...args]
  return {
    name: 'runc-exec',
    async setup() {
      if (!runc) throw new Error('runc is not installed')
      dir = fs.mkdtempSync('/tmp/lbr-')
      writeRuncBundle(runc, path.join(dir, 'bundle'), rootfs)
      started = true // from here on teardown must kill and delete, even if `run -d` half failed
      // stdio 'ignore': the detached container inherits runc's stdio, a pipe would never close; errors go to --log
      const logFile = path.join(dir, 'runc.log')
      const r = sh(runc, ['--log', logFile, ...runcArgs('run', '-d', '--bundle', path.join(dir, 'bundle'), id)], { stdio: 'ignore' })
      if (!r.ok) throw new Error(`runc run -d: exit ${r.status}: ${fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').trim().slice(-2000) : ''}`)
    },
    once() {
      return spawnToClose(runc, runcArgs('exec', id, '/bin/true'))
    },
    async teardown() {
      if (started) {
        started = false
        sh(runc, runcArgs('kill', id, 'KILL'))
        for (let i = 0; i < 50 && /"status": "running"/.test(sh(runc, runcArgs('state', id)).stdout); i++) await sleepMs(100)
        const del = sh(runc, runcArgs('delete', '-f', id))
        if (!del.ok && !/does not exist/.test(del.stderr)) log(`runc delete: ${why(del)}`)
      }
      removeTree(dir)
      dir = null
    },
  }
}

/** Paths a dockerd/containerd may create outside its own roots: removed after if new. */
const DOCKER_SIDE_PATHS = ['/etc/docker/key.json', '/etc/docker', '/run/containerd/s', '/run/containerd', '/run/docker', '/var/lib/docker', '/var/lib/containerd', '/root/.docker']

function dockerExec(rootfs) {
  const dockerd = dockerdPath()
  const docker = dockerCliPath()
  let tmp = null
  let daemon = null
  let cgroupsBefore = null
  let sidePathsBefore = null
  const env = () => ({ ...process.env, DOCKER_CONFIG: path.join(tmp, 'cli'), PATH: `${process.env.PATH}:/usr/sbin:/sbin` })
  const cli = (...args) => sh(docker, ['-H', `unix://${tmp}/docker.sock`, ...args], { env: env() })
  const logTail = () => {
    try {
      return fs.readFileSync(path.join(tmp, 'dockerd.log'), 'utf8').trim().split('\n').slice(-8).join('\n')
    } catch {
      return ''
    }
  }

  /** Starts dockerd on `driver`; resolves once `docker info` answers, rejects with its log. */
  async function startDaemon(driver) {
    fs.rmSync(path.join(tmp, 'data'), { recursive: true, force: true })
    const out = fs.openSync(path.join(tmp, 'dockerd.log'), 'w')
    const args = ['--iptables=false', '--ip-masq=false', '--ip-forward=false', '--bridge=none']
    args.push('--data-root', `${tmp}/data`, '--exec-root', `${tmp}/exec`, '--pidfile', `${tmp}/docker.pid`)
    args.push('-H', `unix://${tmp}/docker.sock`, '--storage-driver', driver)
    daemon = cp.spawn(dockerd, args, { stdio: ['ignore', out, out], env: env() })
    fs.closeSync(out)
    let exited = null
    daemon.on('exit', (code, signal) => {
      exited = signal || `exit ${code}`
    })
    const deadline = Date.now() + 60_000
    while (Date.now() < deadline) {
      if (exited) throw new Error(`dockerd --storage-driver ${driver}: ${exited}: ${logTail()}`)
      if (cli('info').ok) return
      await sleepMs(250)
    }
    throw new Error(`dockerd --storage-driver ${driver}: no answer to docker info after 60 s: ${logTail()}`)
  }

  /** SIGTERM, up to 30 s, then SIGKILL; resolves once dockerd has exited. */
  async function stopDaemon() {
    const d = daemon
    daemon = null
    if (!d || d.exitCode !== null || d.signalCode !== null) return
    const gone = new Promise((r) => d.once('exit', r))
    d.kill('SIGTERM')
    const t = await Promise.race([gone.then(() => 'exited'), sleepMs(30_000).then(() => 'timeout')])
    if (t === 'timeout') {
      log('dockerd did not stop within 30 s: SIGKILL')
      d.kill('SIGKILL')
      await gone
    }
  }

  /** containerd, shims and anything else still naming our temp dir (started by our dockerd). */
  async function killStragglers() {
    for (let i = 0; i < 20; i++) {
      const left = processes((c) => c.includes(tmp))
      if (left.length === 0) return
      for (const p of left) {
        log(`left by dockerd: ${p.pid} ${p.cmdline.slice(0, 120)}: SIGKILL`)
        try {
          process.kill(p.pid, 'SIGKILL')
        } catch {}
      }
      await sleepMs(100)
    }
  }

  /** rmdir the docker cgroups (and what is under them) that were not there before, deepest first. */
  function removeNewCgroups() {
    const added = cgroupDirs().filter((d) => !cgroupsBefore.includes(d) && /\/docker(\/|$)/.test(d))
    for (const d of added.sort((a, b) => b.length - a.length)) {
      try {
        fs.rmdirSync(d)
        log(`removed cgroup ${d} (made by dockerd during the bench)`)
      } catch (e) {
        log(`rmdir ${d}: ${e.message}`)
      }
    }
  }

  function removeNewSidePaths() {
    for (const p of DOCKER_SIDE_PATHS) {
      if (sidePathsBefore[p] || !fs.existsSync(p)) continue
      log(`removing ${p} (made by dockerd/containerd during the bench)`)
      fs.rmSync(p, { recursive: true, force: true })
    }
  }

  return {
    name: 'docker-exec',
    async setup() {
      if (!dockerd) throw new Error('dockerd is not installed')
      if (!docker) throw new Error('the docker CLI is not installed')
      cgroupsBefore = cgroupDirs()
      sidePathsBefore = Object.fromEntries(DOCKER_SIDE_PATHS.map((p) => [p, fs.existsSync(p)]))
      tmp = fs.mkdtempSync('/tmp/lbd-') // short: unix socket paths are limited to 107 bytes
      try {
        await startDaemon('vfs') // vfs: no overlay mounts to leave behind
      } catch (e) {
        log(`${e.message}\n  retrying with overlay2`)
        await stopDaemon()
        await killStragglers()
        umountUnder(tmp)
        await startDaemon('overlay2')
      }
      const tar = sh('tar', ['-C', rootfs, '-c', '.'], { encoding: 'buffer' })
      if (!tar.ok) throw new Error(`tar: ${tar.stderr}`)
      const imp = sh(docker, ['-H', `unix://${tmp}/docker.sock`, 'import', '-', IMAGE], { env: env(), input: tar.stdout })
      if (!imp.ok) throw new Error(`docker import: ${why(imp)}`)
      const run = cli('run', '-d', '--network', 'none', '--name', DOCKER_NAME, IMAGE, ...SLEEP)
      if (!run.ok) throw new Error(`docker run -d: ${why(run)}`)
    },
    once() {
      return spawnToClose(docker, ['-H', `unix://${tmp}/docker.sock`, 'exec', DOCKER_NAME, '/bin/true'], { env: env() })
    },
    async teardown() {
      if (!tmp) return
      if (daemon) {
        cli('rm', '-f', DOCKER_NAME)
        cli('rmi', IMAGE)
      }
      await stopDaemon() // before the umounts: a live dockerd would remount
      await killStragglers()
      removeTree(tmp)
      removeNewCgroups()
      removeNewSidePaths()
      tmp = null
    },
  }
}

// ---------------------------------------------------------------- measuring

async function timeOnce(contender) {
  const t0 = process.hrtime.bigint()
  await withTimeout(contender.once(), ITERATION_TIMEOUT_MS, contender.name)
  return Number(process.hrtime.bigint() - t0) / 1e6
}

/** Sets up every contender, warms it up; one that fails is skipped with the reason. */
async function prepare(contenders, skipped) {
  const ready = []
  for (const c of contenders) {
    try {
      log(`setting up ${c.name}`)
      await c.setup()
      for (let i = 0; i < WARMUP; i++) await timeOnce(c)
      ready.push(c)
    } catch (e) {
      skipped[c.name] = e.message.trim()
      log(`skipping ${c.name}: ${skipped[c.name]}`)
      await c.teardown().catch((t) => log(`${c.name} teardown: ${t.message}`))
    }
  }
  return ready
}

/** ROUNDS rounds; each runs perRound[name] iterations of every contender in turn; pooled samples. */
async function measure(contenders, perRound, skipped) {
  const samples = Object.fromEntries(contenders.map((c) => [c.name, []]))
  let live = contenders
  for (let round = 1; round <= ROUNDS; round++) {
    for (const c of live) {
      try {
        for (let i = 0; i < perRound[c.name]; i++) samples[c.name].push(await timeOnce(c))
      } catch (e) {
        skipped[c.name] = `failed in round ${round}: ${e.message.trim()}`
        log(`dropping ${c.name}: ${skipped[c.name]}`)
        delete samples[c.name]
      }
    }
    live = live.filter((c) => samples[c.name])
    log(`round ${round}/${ROUNDS} done`)
  }
  return samples
}

// ---------------------------------------------------------------- report

function ratio(a, b) {
  return a && b ? Math.round((a.medianMs / b.medianMs) * 1000) / 1000 : null
}

function printTable(results, skipped, ratios) {
  const ref = results['lonely-exec']
  const rows = [['contender', 'median ms', 'p90 ms', 'mean ms', 'samples', 'vs lonely-exec (median)']]
  for (const [name, r] of Object.entries(results)) {
    let vs = '(reference)'
    if (name !== 'lonely-exec') {
      const x = ratio(r, ref)
      vs = x === null ? '-' : x >= 1 ? `${x.toFixed(1)}x slower than lonely-exec` : `${(1 / x).toFixed(1)}x faster than lonely-exec`
    }
    rows.push([name, r.medianMs.toFixed(2), r.p90Ms.toFixed(2), r.meanMs.toFixed(2), String(r.samples), vs])
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)))
  const line = (row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : i === row.length - 1 ? cell : cell.padStart(widths[i]))).join('  ')
  console.log(`\n${line(rows[0])}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`)
  for (const row of rows.slice(1)) console.log(line(row))
  for (const [name, reason] of Object.entries(skipped)) console.log(`${name.padEnd(widths[0])}  skipped: ${reason.split('\n')[0]}`)
  const goal = ratios['lonely-exec/lonely-run']
  console.log(`\nratios (median): ${Object.entries(ratios).map(([k, v]) => `${k} = ${v === null ? '-' : v.toFixed(3)}`).join(', ')}`)
  if (goal !== null) console.log(`lonely-exec / lonely-run = ${goal.toFixed(3)}: goal <= 1.5 ${goal <= 1.5 ? 'MET' : 'NOT MET'}`)
}

function printCleanliness(before, after) {
  const d = diffState(before, after)
  console.log('\nmachine state before -> after:')
  console.log(`  mounts (/proc/self/mountinfo lines): ${before.mounts} -> ${after.mounts}`)
  console.log(`  links (ip link): ${before.links.join(',')} -> ${after.links.join(',')}`)
  console.log(`  cgroup dirs: ${before.cgroups.length} -> ${after.cgroups.length}${d.cgroupsAdded.length ? ` (new: ${d.cgroupsAdded.join(' ')})` : ''}`)
  console.log(`  '${SLEEP.join(' ')}' processes: ${before.sleepers} -> ${after.sleepers}`)
  console.log(`  dockerd/containerd processes: ${before.daemons.length} -> ${after.daemons.length}`)
  const clean = d.mounts === 0 && !d.linksAdded.length && !d.linksRemoved.length && !d.cgroupsAdded.length && d.sleepers <= 0 && !d.daemonsAdded.length
  console.log(`  ${clean ? 'clean: nothing left behind' : `NOT CLEAN: ${JSON.stringify(d)}`}`)
  return { before, after, diff: d, clean }
}

// ---------------------------------------------------------------- main

/** Runs every registered cleanup once, last registered first; later calls get the same promise. */
function cleanupStack() {
  const fns = []
  let done = null
  return {
    push: (fn) => fns.push(fn),
    run() {
      done ??= (async () => {
        for (const fn of fns.reverse()) await fn().catch((e) => log(`cleanup: ${e.stack || e}`))
      })()
      return done
    },
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2))
  if (process.getuid() !== 0) throw new Error('run as root')
  const started = Date.now()
  const before = snapshot()
  const cleanup = cleanupStack()
  for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
      log(`${sig}: cleaning up`)
      cleanup.run().then(() => process.exit(130))
    })
  }
  const skipped = {}
  let results = {}
  let ratios = {}
  let cleanliness = null
  try {
    const installError = installMissing(opts)
    if (installError) log(installError)
    const lib = require(path.join(__dirname, '..', 'index.js'))
    const [rootDir, rootfs] = makeBusyboxRoot()
    cleanup.push(async () => removeTree(rootDir)) // pushed first: removed last, after every container on it
    const all = [lonelyExec(lib, rootfs), lonelyRun(lib, rootfs), runcExec(rootfs), dockerExec(rootfs)]
    for (const c of all) cleanup.push(() => c.teardown())
    const perRound = Object.fromEntries(Object.entries(DEFAULT_N).map(([k, n]) => [k, Math.max(1, Math.round((opts.quick ? n / 5 : n) / ROUNDS))]))
    const ready = await prepare(all, skipped)
    const t0 = Date.now()
    const samples = await measure(ready, perRound, skipped)
    log(`measured in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
    results = Object.fromEntries(Object.entries(samples).map(([k, s]) => [k, summarize(s)]))
    ratios = {
      'runc-exec/lonely-exec': ratio(results['runc-exec'], results['lonely-exec']),
      'docker-exec/lonely-exec': ratio(results['docker-exec'], results['lonely-exec']),
      'lonely-exec/lonely-run': ratio(results['lonely-exec'], results['lonely-run']),
    }
  } finally {
    await cleanup.run() // also on errors: containers, dockerd, temp dirs
    await sleepMs(500) // let the last exits be reaped before looking
    cleanliness = printCleanliness(before, snapshot())
  }
  printTable(results, skipped, ratios)
  const runc = runcPath()
  const dockerd = dockerdPath()
  const out = {
    date: new Date().toISOString(),
    machine: {
      kernel: os.release(),
      cpus: os.cpus().length,
      node: process.version,
      runc: runc ? firstLine(sh(runc, ['--version'])) : null,
      docker: dockerd ? firstLine(sh(dockerd, ['--version'])) : null,
    },
    settings: { quick: opts.quick, rounds: ROUNDS, warmup: WARMUP },
    results,
    ratios,
    skipped,
    cleanliness,
    wallSeconds: Math.round((Date.now() - started) / 100) / 10,
  }
  fs.writeFileSync(opts.out, `${JSON.stringify(out, null, 2)}\n`)
  console.log(`\nwrote ${path.relative(process.cwd(), opts.out) || opts.out} (${out.wallSeconds} s)`)
  return cleanliness.clean ? 0 : 2
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`${e.stack || e}\n`)
    process.exit(1)
  },
)
