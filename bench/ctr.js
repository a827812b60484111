'use strict'
// `ctr run --rm` through a private containerd (its own root, state and socket; CRI off) with
// lonely-runtime and with runc as the runc shim's binary, interleaved: what a containerd user
// waits for per container, engine included. Ratios of medians.
//   node bench/ctr.js [--quick] [--out FILE]
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const cp = require('node:child_process')
const crypto = require('node:crypto')

const { log, which, staticBusybox, makeBusyboxRoot } = require('./lib/setup')
const stats = require('./lib/stats')

const RUNTIME = path.join(__dirname, '..', 'target', 'release', 'lonely-runtime')
const IMAGE = 'docker.io/lonely/bench:busybox'
const NAMESPACE = `lonely-bench-${process.pid}`

/** A docker-archive of a busybox root (one layer), as `docker save` writes one. */
function archive(dir) {
  const root = makeBusyboxRoot(dir, staticBusybox())
  const layer = path.join(dir, 'layer.tar')
  cp.execFileSync('tar', ['-C', root, '-cf', layer, '.'])
  const diff = `sha256:${crypto.createHash('sha256').update(fs.readFileSync(layer)).digest('hex')}`
  const config = JSON.stringify({ architecture: os.arch() === 'arm64' ? 'arm64' : 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [diff] }, config: { Cmd: ['sh'], Env: ['PATH=/bin'] } })
  const name = `${crypto.createHash('sha256').update(config).digest('hex')}.json`
  fs.writeFileSync(path.join(dir, name), config)
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify([{ Config: name, RepoTags: [IMAGE], Layers: ['layer.tar'] }]))
  const file = path.join(dir, 'image.tar')
  cp.execFileSync('tar', ['-C', dir, '-cf', file, 'layer.tar', name, 'manifest.json'])
  return file
}

function main() {
  const argv = process.argv.slice(2)
  const quick = argv.includes('--quick')
  const out = argv.includes('--out') ? argv[argv.indexOf('--out') + 1] : path.join(__dirname, 'ctr-results.json')
  for (const tool of ['containerd', 'ctr', 'containerd-shim-runc-v2']) if (!which(tool)) throw new Error(`${tool} is not installed (apt-get install containerd)`)
  const runDirBefore = fs.existsSync('/run/containerd')
  // Short: a unix socket path has at most 107 bytes.
  const dir = fs.mkdtempSync('/tmp/ctrb-')
  const sock = path.join(dir, 'c.sock')
  fs.writeFileSync(path.join(dir, 'config.toml'), ['version = 2', `root = "${dir}/root"`, `state = "${dir}/state"`, 'disabled_plugins = ["io.containerd.grpc.v1.cri"]', '[grpc]', `  address = "${sock}"`, ''].join('\n'))
  const daemon = cp.spawn('containerd', ['--config', path.join(dir, 'config.toml')], { stdio: ['ignore', 'ignore', fs.openSync(path.join(dir, 'containerd.log'), 'a')] })
  const ctr = (args) => cp.spawnSync('ctr', ['-a', sock, '-n', NAMESPACE, ...args], { encoding: 'utf8', timeout: 60_000, killSignal: 'SIGKILL' })
  try {
    for (let i = 0; ctr(['version']).status !== 0; i++) {
      if (i > 300) throw new Error(`containerd did not start: ${fs.readFileSync(path.join(dir, 'containerd.log'), 'utf8').slice(-1000)}`)
      cp.execFileSync('sleep', ['0.1'])
    }
    const imported = ctr(['image', 'import', archive(dir)])
    if (imported.status !== 0) throw new Error(`ctr image import: ${imported.stderr}`)
    const contenders = { 'lonely-runtime': RUNTIME, runc: which('runc') }
    const once = (bin, id) => {
      const t = process.hrtime.bigint()
      const r = ctr(['run', '--rm', '--runc-binary', bin, IMAGE, id, 'true'])
      if (r.status !== 0) throw new Error(`ctr run --rm with ${bin}: ${r.stderr.trim()}`)
      return Number(process.hrtime.bigint() - t) / 1e6
    }
    for (const [name, bin] of Object.entries(contenders)) once(bin, `warm-${name}`)
    const samples = Object.fromEntries(Object.keys(contenders).map((n) => [n, []]))
    const rounds = 5
    const perRound = quick ? 4 : 20
    for (let r = 0; r < rounds; r++) {
      log(`round ${r + 1}/${rounds}`)
      for (const [name, bin] of Object.entries(contenders)) for (let i = 0; i < perRound; i++) samples[name].push(once(bin, `${name}-${r}-${i}`))
    }
    const results = Object.fromEntries(Object.entries(samples).map(([n, s]) => {
      const x = stats.summarize(s)
      return [n, { medianMs: stats.round(x.median), p90Ms: stats.round(x.p90), samples: x.n }]
    }))
    const base = results['lonely-runtime'].medianMs
    const ratios = Object.fromEntries(Object.entries(results).map(([n, r]) => [`${n}/lonely-runtime`, stats.round(r.medianMs / base, 2)]))
    fs.writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), cycle: 'ctr run --rm IMAGE ID true (private containerd, runc shim v2)', results, ratios }, null, 2)}\n`)
    for (const [n, r] of Object.entries(results)) process.stdout.write(`${n.padEnd(15)} median ${String(r.medianMs).padStart(8)} ms  p90 ${String(r.p90Ms).padStart(8)} ms  ${ratios[`${n}/lonely-runtime`]}× lonely-runtime's\n`)
  } finally {
    daemon.kill('SIGTERM')
    cp.spawnSync('sh', ['-c', `for i in $(seq 50); do kill -0 ${daemon.pid} 2>/dev/null || exit 0; sleep 0.1; done; kill -9 ${daemon.pid}`])
    for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').reverse()) {
      const at = line.split(' ')[4]
      if (at?.startsWith(dir)) cp.spawnSync('umount', ['-l', at])
    }
    // containerd's per-namespace parent cgroups (the runtime removed each task's own).
    for (const h of fs.readdirSync('/sys/fs/cgroup')) {
      try {
        fs.rmdirSync(path.join('/sys/fs/cgroup', h, NAMESPACE))
      } catch {
        // not made in this hierarchy
      }
    }
    fs.rmSync(path.join('/run/containerd/runc', NAMESPACE), { recursive: true, force: true })
    if (!runDirBefore) fs.rmSync('/run/containerd', { recursive: true, force: true })
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

main()
