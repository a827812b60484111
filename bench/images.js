#!/usr/bin/env node
'use strict'
// npm run bench:images [-- --quick]: loading and first run of a ~100 MB image, side by side
// with `umoci unpack` and `tar -x` of the same layer, interleaved over several rounds.
// See bench/README.md.
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const cp = require('node:child_process')

const setup = require('./lib/setup')
const { ensureImageTools, buildImage } = require('./lib/imagebuild')
const { summarize, round } = require('./lib/stats')

const log = (s) => process.stderr.write(`[images] ${s}\n`)

function parseArgs(argv) {
  const o = { quick: false, rounds: null, install: true, out: path.join(__dirname, 'images-results.json'), lib: path.join(__dirname, '..'), small: 3000, large: 8, largeMiB: 8 }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--quick') o.quick = true
    else if (a === '--no-install') o.install = false
    else if (a === '--rounds') o.rounds = Number(argv[++i])
    else if (a === '--out') o.out = path.resolve(argv[++i])
    else if (a === '--lib') o.lib = path.resolve(argv[++i])
    else if (a === '--dir') o.dir = path.resolve(argv[++i])
    else if (a === '--on-disk') o.onDisk = true
    else throw new Error(`unknown argument ${a}\nusage: node bench/images.js [--quick] [--rounds N] [--no-install] [--on-disk | --dir PARENT_DIR] [--out FILE] [--lib PACKAGE_DIR]`)
  }
  o.rounds ??= o.quick ? 2 : 5
  if (o.quick) Object.assign(o, { small: 1000, large: 4, largeMiB: 5 })
  return o
}

function grid(head, body) {
  const widths = head.map((h, i) => Math.max(String(h).length, ...body.map((b) => String(b[i] ?? '').length)))
  const line = (cells) => cells.map((c, i) => (i === 0 ? String(c ?? '').padEnd(widths[i]) : String(c ?? '').padStart(widths[i]))).join('  ')
  return [line(head), ...body.map(line)].map((l) => '  ' + l).join('\n')
}

/** Runs a command, resolves with its wall time in ms (spawn to exit); rejects on failure. */
function timedSpawn(cmd, args) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    const child = cp.spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] })
    let err = ''
    child.stderr.on('data', (d) => (err += d))
    child.on('error', reject)
    child.on('close', (code, signal) => {
      const ms = performance.now() - t0
      if (code === 0) resolve(ms)
      else reject(new Error(`${cmd} ${args.join(' ')}: ${code ?? signal} ${err.trim()}`))
    })
  })
}

async function timed(fn) {
  const t0 = performance.now()
  const value = await fn()
  return { ms: performance.now() - t0, value }
}

function mountsUnder(dir) {
  return setup.mountsUnder(dir)
}

/**
 * Whether a virtio balloon with free page reporting is bound (feature bit 5): freed guest pages
 * then go back to the host, and the next write that needs them faults them in again.
 */
function freePageReporting() {
  try {
    for (const d of fs.readdirSync('/sys/bus/virtio/devices')) {
      const dir = path.join('/sys/bus/virtio/devices', d)
      if (fs.readFileSync(path.join(dir, 'device'), 'utf8').trim() !== '0x0005') continue
      return fs.readFileSync(path.join(dir, 'features'), 'utf8').trim()[5] === '1'
    }
  } catch {}
  return false
}

function fsType(dir) {
  const r = cp.spawnSync('df', ['--output=fstype', dir], { encoding: 'utf8' })
  return (r.stdout || '').split('\n')[1]?.trim() || '?'
}

/** Round-robin with the first group rotating each round. */
function rotation(list, r) {
  const k = r % list.length
  return [...list.slice(k), ...list.slice(0, k)]
}

async function main() {
  const o = parseArgs(process.argv.slice(2))
  if (process.getuid() !== 0) log('warning: not root; umoci unpack, tar -x with owners and lonely need root here')
  const lib = require(path.join(o.lib, 'index.js'))
  const { images, run } = lib
  const tools = ensureImageTools({ install: o.install })
  for (const [name, p] of Object.entries(tools)) if (!p) throw new Error(`${name} is missing (apt-get install umoci skopeo busybox-static tar gzip)`)
  const versions = {
    umoci: setup.which('umoci') && cp.spawnSync(tools.umoci, ['--version'], { encoding: 'utf8' }).stdout.trim(),
    skopeo: cp.spawnSync(tools.skopeo, ['--version'], { encoding: 'utf8' }).stdout.trim(),
    tar: cp.spawnSync(tools.tar, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0],
    gzip: cp.spawnSync(tools.gzip, ['--version'], { encoding: 'utf8' }).stdout.split('\n')[0],
  }
  const mountsBefore = fs.readFileSync('/proc/self/mountinfo', 'utf8')
  const work = fs.mkdtempSync(path.join(o.dir ?? os.tmpdir(), 'lonely-imgbench-'))
  // By default everything happens on a tmpfs of its own (see bench/README.md: this host's ext4
  // has no journal, and creating files there within a minute of any deletion on it is 2-5x
  // slower, which any other process's clean-up triggers); --on-disk/--dir: in the temp dir.
  const ownTmpfs = !o.onDisk && !o.dir
  if (ownTmpfs) cp.execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=12g,mode=0755', 'lonely-imgbench', work])
  let cleaned = false
  const cleanup = () => {
    if (cleaned) return []
    cleaned = true
    const problems = []
    if (ownTmpfs) {
      const r = cp.spawnSync('umount', [work], { encoding: 'utf8' })
      if (r.status !== 0) problems.push(`umount ${work}: ${r.stderr.trim()}`)
    }
    const m = mountsUnder(work)
    if (m.length) problems.push(`mounts left under ${work}: ${m.join(', ')} (not removing it)`)
    else fs.rmSync(work, { recursive: true, force: true })
    return problems
  }
  process.on('SIGINT', () => {
    for (const p of cleanup()) log(p)
    process.exit(130)
  })
  try {
    const t0 = performance.now()
    log(`building the image in ${work} (umoci, skopeo) ...`)
    const img = buildImage(work, tools, { small: o.small, large: o.large, largeMiB: o.largeMiB })
    const f = img.facts
    log(
      `image: ${f.smallFiles} small + ${f.largeFiles} large files, layer ${(f.layerBytes / 2 ** 20).toFixed(1)} MiB (${f.layerEntries} entries), gzip ${(f.layerGzipBytes / 2 ** 20).toFixed(1)} MiB, docker-archive ${(f.dockerArchiveBytes / 2 ** 20).toFixed(1)} MiB; built in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
    )
    const out = (name) => path.join(work, 'out', name)
    fs.mkdirSync(path.join(work, 'out'))
    const samples = {}
    const add = (name, ms) => (samples[name] ??= []).push(ms)
    let n = 0
    const fresh = (name) => {
      const d = out(`${name}-${n++}`)
      return d
    }
    // On the bench's own tmpfs each contender's output is removed (untimed) before the next one
    // runs. On disk nothing is deleted until the end: on ext4 without a journal (this VM's
    // root), creating a file within a minute of many deletions scans the recently deleted
    // inodes (`recently_deleted()` in the inode allocator), which made every extraction 2-5x
    // slower when each contender's output was removed before the next. Either way a `sync`
    // (untimed) follows each contender so that none pays for another's writeback.
    const stores = []
    const removeProblems = []
    let storesRemoved = 0
    // Each store goes through images.remove (every layer must go with the last image), then rm -rf.
    const removeStores = async () => {
      for (const { store, id } of stores.splice(0)) {
        const r = await images.remove(id, { store })
        const left = images.list({ store }).length
        const layerDir = path.join(store, 'layers', 'sha256')
        const layers = fs.existsSync(layerDir) ? fs.readdirSync(layerDir).length : 0
        if (!r.deleted.includes(id) || left !== 0 || layers !== 0) removeProblems.push(`${store}: ${JSON.stringify(r)}, ${left} images and ${layers} layer dirs left`)
        storesRemoved++
        await drop(store)
      }
    }
    const drop = async (...paths) => {
      if (ownTmpfs) for (const p of paths) fs.rmSync(p, { recursive: true, force: true })
      cp.spawnSync('sync')
    }
    const groups = {
      // The floor: the same bytes into one new file (no per-file work, no decompression).
      cp: async () => {
        const d = fresh('cp')
        fs.mkdirSync(d)
        add('cp layer.tar (one file, the floor)', await timedSpawn('cp', [img.layerTar, path.join(d, 'layer.tar')]))
        await drop(d)
      },
      'tar -xf': async () => {
        const d = fresh('tar')
        fs.mkdirSync(d)
        add('tar -xf (layer.tar)', await timedSpawn(tools.tar, ['-xf', img.layerTar, '-C', d]))
        await drop()
        // lonely on the root tar made: the baseline a user with an unpacked root pays per container.
        add('run /bin/true { rootfs } (tar-extracted root)', (await timed(() => run(['/bin/true'], { rootfs: d }))).ms)
        await drop(d)
      },
      'tar -xzf': async () => {
        const d = fresh('targz')
        fs.mkdirSync(d)
        add('tar -xzf (layer.tar.gz)', await timedSpawn(tools.tar, ['-xzf', img.layerTarGz, '-C', d]))
        await drop(d)
      },
      umoci: async () => {
        const d = fresh('umoci')
        add('umoci unpack (OCI layout, gzip)', await timedSpawn(tools.umoci, ['unpack', '--image', `${img.layout}:bench`, d]))
        await drop()
        add('run /bin/true { rootfs } (umoci-unpacked root)', (await timed(() => run(['/bin/true'], { rootfs: path.join(d, 'rootfs') }))).ms)
        await drop(d)
      },
      'load oci': async () => {
        const store = fresh('store-oci')
        const cold = await timed(() => images.load(img.layout, { store }))
        add('images.load OCI layout (gzip), cold', cold.ms)
        await drop()
        const id = cold.value.id
        add('first run of the image (after load)', (await timed(() => run(['true'], { image: id, store, entrypoint: [] }))).ms)
        add('second run of the image', (await timed(() => run(['true'], { image: id, store, entrypoint: [] }))).ms)
        const warm = await timed(() => images.load(img.layout, { store }))
        if (warm.value.layersAdded !== 0 || warm.value.layersReused !== 1) throw new Error(`the second load was not deduplicated: ${JSON.stringify({ added: warm.value.layersAdded, reused: warm.value.layersReused })}`)
        add('images.load OCI layout (gzip), warm (deduplicated)', warm.ms)
        stores.push({ store, id })
        if (ownTmpfs) await removeStores()
      },
      'load docker': async () => {
        const store = fresh('store-docker')
        const cold = await timed(() => images.load(img.dockerArchive, { store }))
        add('images.load docker-archive (plain), cold', cold.ms)
        await drop()
        const warm = await timed(() => images.load(img.dockerArchive, { store }))
        if (warm.value.layersAdded !== 0) throw new Error(`the second load was not deduplicated: ${JSON.stringify({ added: warm.value.layersAdded, reused: warm.value.layersReused })}`)
        add('images.load docker-archive (plain), warm (deduplicated)', warm.ms)
        stores.push({ store, id: cold.value.id })
        if (ownTmpfs) await removeStores()
      },
    }
    // Warm-up: one of each (the addon, the page cache of the inputs), not counted.
    log('warm-up round ...')
    for (const g of Object.values(groups)) await g()
    for (const k of Object.keys(samples)) delete samples[k]
    const phaseCpu = process.cpuUsage()
    const load0 = os.loadavg()
    for (let r = 0; r < o.rounds; r++) {
      const order = rotation(Object.keys(groups), r)
      for (const g of order) await groups[g]()
      log(`round ${r + 1}/${o.rounds} (${order.join(', ')})`)
    }
    const stats = Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, summarize(v)]))
    const tarX = stats['tar -xf (layer.tar)'].median
    const tarXz = stats['tar -xzf (layer.tar.gz)'].median
    const rows = [
      ['cp layer.tar (one file, the floor)', 'plain'],
      ['tar -xf (layer.tar)', 'plain'],
      ['tar -xzf (layer.tar.gz)', 'gzip'],
      ['umoci unpack (OCI layout, gzip)', 'gzip'],
      ['images.load OCI layout (gzip), cold', 'gzip'],
      ['images.load OCI layout (gzip), warm (deduplicated)', 'gzip'],
      ['images.load docker-archive (plain), cold', 'plain'],
      ['images.load docker-archive (plain), warm (deduplicated)', 'plain'],
      ['first run of the image (after load)', 'run'],
      ['second run of the image', 'run'],
      ['run /bin/true { rootfs } (umoci-unpacked root)', 'run'],
      ['run /bin/true { rootfs } (tar-extracted root)', 'run'],
    ].map(([name, kind]) => {
      const s = stats[name]
      const same = kind === 'gzip' ? tarXz : kind === 'plain' ? tarX : null
      return {
        name,
        input: kind,
        n: s.n,
        medianMs: round(s.median, 2),
        minMs: round(s.min, 2),
        maxMs: round(s.max, 2),
        ratioToTarXf: round(s.median / tarX, 3),
        ratioToTarXzf: round(s.median / tarXz, 3),
        ratioToTarSameInput: same ? round(s.median / same, 3) : null,
        mibPerSecond: kind === 'run' || name.includes('warm') ? null : round(f.layerBytes / 2 ** 20 / (s.median / 1000), 1),
      }
    })
    const rx = (x) => (x === null || x === undefined ? '—' : `${x.toFixed(x < 0.1 ? 4 : 2)}×`)
    const lines = []
    lines.push('')
    lines.push(`image load and first run — ${new Date().toISOString()} — ${os.hostname()}, ${os.cpus().length} cores, ${os.release()}, node ${process.version}; load average ${load0.map((x) => x.toFixed(2)).join(' ')}`)
    lines.push(`image: busybox + ${f.smallFiles} small text-like files + ${f.largeFiles} × ${o.largeMiB} MiB (half random bytes, half text-like): layer ${(f.layerBytes / 2 ** 20).toFixed(1)} MiB, ${f.layerEntries} entries; gzip ${(f.layerGzipBytes / 2 ** 20).toFixed(1)} MiB (umoci); docker-archive ${(f.dockerArchiveBytes / 2 ** 20).toFixed(1)} MiB (skopeo, plain layer)`)
    lines.push(`${o.rounds} rounds, contenders interleaved (order rotating), after one warm-up round; inputs in the page cache; each writes to a fresh directory in ${ownTmpfs ? `a tmpfs of its own (${work})` : `${path.dirname(work)} (${fsType(work)})`}; ${ownTmpfs ? 'its output is removed' : 'nothing is deleted until the end'}, then an untimed sync`)
    lines.push('')
    lines.push(grid(['what', 'median ms', 'min', 'max', 'MiB/s', '÷tar -xf', '÷tar -xzf'], rows.map((r) => [r.name, r.medianMs.toFixed(r.medianMs < 10 ? 2 : 1), r.minMs.toFixed(1), r.maxMs.toFixed(1), r.mibPerSecond ?? '', rx(r.ratioToTarXf), rx(r.ratioToTarXzf)])))
    lines.push('')
    await removeStores()
    for (const p of removeProblems) log(`images.remove: ${p}`)
    process.stdout.write(lines.join('\n') + '\n')
    for (const p of cleanup()) log(p)
    const leftover = mountsUnder(work)
    const mountsAfter = fs.readFileSync('/proc/self/mountinfo', 'utf8')
    const result = {
      date: new Date().toISOString(),
      machine: { hostname: os.hostname(), kernel: `${os.type()} ${os.release()}`, cores: os.cpus().length, cpu: os.cpus()[0]?.model, memTotalMiB: Math.round(os.totalmem() / 2 ** 20), node: process.version, loadAverageAtStart: load0, loadAverageAtEnd: os.loadavg(), filesystem: cp.spawnSync('df', ['-T', work], { encoding: 'utf8' }).stdout.split('\n')[1], balloonFreePageReporting: freePageReporting() },
      versions,
      settings: { rounds: o.rounds, quick: o.quick, workDir: work, onTmpfs: ownTmpfs, smallFiles: o.small, largeFiles: o.large, largeMiB: o.largeMiB },
      image: f,
      rows,
      samples: Object.fromEntries(Object.entries(samples).map(([k, v]) => [k, v.map((x) => round(x, 2))])),
      nodeCpuMs: (({ user, system }) => ({ user: user / 1000, system: system / 1000 }))(process.cpuUsage(phaseCpu)),
      leftoverMounts: leftover,
      storesRemoved,
      removeProblems,
      hostMountTableUnchanged: mountsAfter === mountsBefore,
    }
    fs.writeFileSync(o.out, JSON.stringify(result, null, 2) + '\n')
    log(`wrote ${path.relative(process.cwd(), o.out)}`)
    if (leftover.length) log(`mounts left under ${work}: ${leftover.join(', ')}`)
    if (mountsAfter !== mountsBefore) log('warning: the host mount table changed during the run')
  } finally {
    for (const p of cleanup()) log(p)
    log(fs.existsSync(work) ? `${work} NOT removed` : `removed ${work}`)
  }
  return 0
}

main().then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`${e.stack || e}\n`)
    process.exit(1)
  },
)
