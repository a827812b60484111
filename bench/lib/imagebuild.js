'use strict'
// The image bench/images.js measures: a busybox root plus ~100 MB of files, made into an
// OCI layout by umoci (one gzip layer) and exported by skopeo as a docker-archive
// (uncompressed layer), plus the layer itself as a plain and a gzip tarball for `tar -x`.
const fs = require('node:fs')
const path = require('node:path')
const cp = require('node:child_process')

const setup = require('./setup')

/** A fast deterministic PRNG (xorshift32) so the payload is the same from run to run. */
function prng(seed) {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x
  }
}

/** `n` bytes of text-like content: words from a random vocabulary, lines of ~60 characters (gzip: about 2x). */
function textLike(n, next, vocab) {
  const buf = Buffer.allocUnsafe(n)
  let i = 0
  let col = 0
  while (i < n) {
    const w = vocab[next() % vocab.length]
    const len = Math.min(w.length, n - i)
    w.copy(buf, i, 0, len)
    i += len
    col += len
    if (i < n) {
      buf[i++] = col > 60 ? 10 : 32
      if (col > 60) col = 0
    }
  }
  return buf
}

/**
 * Fills `root` with the payload: `small` files in 40 directories, sizes spread from 256 B to
 * 64 KiB (log-uniform), text-like; and `large` files of `largeMiB` MiB each, half random bytes
 * (incompressible, as already-compressed assets are), half text-like.
 */
function writePayload(root, { small = 3000, large = 8, largeMiB = 10, seed = 42 } = {}) {
  const next = prng(seed)
  const letters = 'etaoinshrdlcumwfgypbvkjxqz'
  const vocab = Array.from({ length: 4096 }, () => {
    const len = 2 + (next() % 9)
    let w = ''
    for (let k = 0; k < len; k++) w += letters[Math.min(25, Math.floor(-Math.log(1 - (next() % 1e6) / 1e6) * 5))]
    return Buffer.from(w)
  })
  let bytes = 0
  const base = path.join(root, 'usr/share/payload')
  for (let d = 0; d < 40; d++) fs.mkdirSync(path.join(base, `d${d}`), { recursive: true })
  for (let f = 0; f < small; f++) {
    const size = Math.round(256 * Math.pow(256, (next() % 1e6) / 1e6)) // 256 B .. 64 KiB
    fs.writeFileSync(path.join(base, `d${f % 40}`, `f${f}.txt`), textLike(size, next, vocab))
    bytes += size
  }
  fs.mkdirSync(path.join(root, 'opt/big'), { recursive: true })
  for (let f = 0; f < large; f++) {
    const size = largeMiB * 1024 * 1024
    const content = f % 2 ? textLike(size, next, vocab) : randomBytes(size, next)
    fs.writeFileSync(path.join(root, 'opt/big', `blob${f}.${f % 2 ? 'txt' : 'bin'}`), content)
    bytes += size
  }
  return { smallFiles: small, largeFiles: large, payloadBytes: bytes }
}

function randomBytes(n, next) {
  const buf = Buffer.allocUnsafe(n)
  for (let i = 0; i + 4 <= n; i += 4) buf.writeUInt32LE(next(), i)
  for (let i = n - (n % 4); i < n; i++) buf[i] = next() & 0xff
  return buf
}

function sh(cmd, args, opts = {}) {
  const r = cp.spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...opts })
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${(r.stderr || r.error || '').toString().trim()}`)
  return r.stdout
}

/** Installs umoci and skopeo (and busybox-static) from Debian when missing. */
function ensureImageTools({ install = true } = {}) {
  const missing = []
  if (!setup.which('umoci')) missing.push('umoci')
  if (!setup.which('skopeo')) missing.push('skopeo')
  if (!setup.staticBusybox()) missing.push('busybox-static')
  if (missing.length && install) {
    setup.log(`installing ${missing.join(' ')} (apt-get update && apt-get install -y ...)`)
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
    cp.spawnSync('apt-get', ['update'], { stdio: ['ignore', 'ignore', 'inherit'], env })
    cp.spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { stdio: ['ignore', 'ignore', 'inherit'], env })
  }
  return { umoci: setup.which('umoci'), skopeo: setup.which('skopeo'), busybox: setup.staticBusybox(), tar: setup.which('tar'), gzip: setup.which('gzip') }
}

/**
 * Builds everything under `dir`: rootfs/ (busybox + payload), layout/ (OCI layout, tag
 * `bench`, one gzip layer by umoci), image-docker.tar (skopeo docker-archive, `bench/img:1`),
 * layer.tar and layer.tar.gz (the layer blob itself, and gunzipped).
 */
function buildImage(dir, tools, payloadOptions) {
  const rootfs = setup.makeBusyboxRoot(dir, tools.busybox)
  const payload = writePayload(rootfs, payloadOptions)
  const layout = path.join(dir, 'layout')
  const bundle = path.join(dir, 'bundle')
  sh(tools.umoci, ['init', '--layout', layout])
  sh(tools.umoci, ['new', '--image', `${layout}:bench`])
  sh(tools.umoci, ['unpack', '--image', `${layout}:bench`, bundle])
  sh('cp', ['-a', `${rootfs}/.`, path.join(bundle, 'rootfs')])
  sh(tools.umoci, ['repack', '--image', `${layout}:bench`, bundle])
  sh(tools.umoci, ['config', '--image', `${layout}:bench`, '--config.cmd', '/bin/sh'])
  // The bundle stays until the end: deleting thousands of files just before the measures
  // slows the next file creations on ext4 without a journal (see bench/images.js).
  const dockerArchive = path.join(dir, 'image-docker.tar')
  sh(tools.skopeo, ['copy', '-q', `oci:${layout}:bench`, `docker-archive:${dockerArchive}:bench/img:1`])
  // The layer blob: the index names the manifest, the manifest the layer.
  const blob = (digest) => path.join(layout, 'blobs', ...digest.split(':'))
  const index = JSON.parse(fs.readFileSync(path.join(layout, 'index.json'), 'utf8'))
  const manifest = JSON.parse(fs.readFileSync(blob(index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === 'bench').digest), 'utf8'))
  if (manifest.layers.length !== 1) throw new Error(`expected one layer, the manifest has ${manifest.layers.length}`)
  const gz = path.join(dir, 'layer.tar.gz')
  fs.copyFileSync(blob(manifest.layers[0].digest), gz)
  const plain = path.join(dir, 'layer.tar')
  sh('sh', ['-c', 'gzip -dc "$0" > "$1"', gz, plain])
  const entries = Number(sh('sh', ['-c', 'tar -tf "$0" | wc -l', plain]).trim())
  return {
    rootfs,
    layout,
    dockerArchive,
    layerTar: plain,
    layerTarGz: gz,
    facts: {
      ...payload,
      layerEntries: entries,
      layerBytes: fs.statSync(plain).size,
      layerGzipBytes: fs.statSync(gz).size,
      dockerArchiveBytes: fs.statSync(dockerArchive).size,
      layerMediaType: manifest.layers[0].mediaType,
    },
  }
}

module.exports = { ensureImageTools, buildImage, writePayload, sh }
