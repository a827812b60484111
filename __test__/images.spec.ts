// Images: loading docker-archive / OCI archives / OCI layouts built by tools nobody here
// wrote (umoci, skopeo), content-addressed and deduplicated storage, whiteouts as overlayfs
// reads them, and hostile archives (built here with a tiny tar writer) refused or
// neutralized without anything outside the store being written or deleted.
import test, { type ExecutionContext } from 'ava'
import * as crypto from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import * as zlib from 'node:zlib'
import { execFileSync, spawnSync } from 'node:child_process'

import { images, type LoadProgress } from '../lib/images'
import { makeBusyboxRoot, ourMounts, removeRoot } from './helpers'

const ROOT = process.geteuid?.() === 0
const which = (cmd: string) => ['/usr/bin', '/bin', '/usr/sbin', '/sbin'].map((d) => path.join(d, cmd)).find((p) => fs.existsSync(p))
const UMOCI = which('umoci')
const SKOPEO = which('skopeo')
const UNSHARE = which('unshare')
const PYTHON = which('python3')

const TOOLS_MISSING = !ROOT
  ? 'needs root (layers keep their owners; umoci unpacks as root)'
  : !UMOCI || !SKOPEO
    ? 'umoci and skopeo are not installed (apt-get install umoci skopeo)'
    : undefined
const toolTest = TOOLS_MISSING ? (title: string, _fn: unknown) => test.skip(`${title} — skipped: ${TOOLS_MISSING}`, () => {}) : test

let work: string
// Built once by umoci + skopeo from a busybox root:
//   base: one layer (busybox, files to delete/replace, a dir to make opaque, owners, modes...)
//   two:  base + a layer made by `umoci repack` (deletes etc/deleteme and the dir gone/,
//         replaces etc/replaced) + a layer made by GNU tar (opq/ opaque, with only opq/c).
let layout: string // OCI layout directory with tags base and two
let dockerTwo: string // docker-archive of two, named test/two:v1
let dockerBase: string // docker-archive of base, named test/base:1
let ociTwo: string // oci-archive of two (gzip layers, as umoci wrote them)
let zstdLayout: string | undefined // OCI layout of two with zstd layers
const MTIME = new Date('2001-02-03T04:05:06Z')

const sh = (file: string, args: string[], opts: { cwd?: string } = {}) => execFileSync(file, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...opts })

function store(name: string): string {
  const dir = path.join(work, 'stores', name)
  fs.mkdirSync(dir, { recursive: true })
  return dir
}

function layerDirs(storeDir: string): string[] {
  const dir = path.join(storeDir, 'layers/sha256')
  if (!fs.existsSync(dir)) return []
  return fs.readdirSync(dir).filter((n) => fs.statSync(path.join(dir, n)).isDirectory())
}

function listTree(dir: string): string[] {
  const out: string[] = []
  const walk = (d: string, rel: string) => {
    for (const n of fs.readdirSync(d).sort()) {
      const p = path.join(d, n)
      out.push(path.join(rel, n))
      if (fs.lstatSync(p).isDirectory()) walk(p, path.join(rel, n))
    }
  }
  walk(dir, '')
  return out
}

function getxattr(file: string, name: string): string | null {
  const r = spawnSync(PYTHON!, ['-c', 'import os,sys\ntry: print(os.getxattr(sys.argv[1], sys.argv[2], follow_symlinks=False).decode())\nexcept OSError: print("<none>")', file, name], { encoding: 'utf8' })
  const v = r.stdout.trim()
  return v === '<none>' ? null : v
}

test.before(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-img-'))
  if (TOOLS_MISSING) return
  const rootfs = makeBusyboxRoot()
  try {
    const w = (rel: string, text: string) => {
      fs.mkdirSync(path.dirname(path.join(rootfs, rel)), { recursive: true })
      fs.writeFileSync(path.join(rootfs, rel), text)
    }
    w('etc/deleteme', 'delete me\n')
    w('etc/replaced', 'old\n')
    w('opq/a', 'a\n')
    w('opq/sub/b', 'b\n')
    w('gone/inside', 'x\n')
    w('etc/owned', 'owned\n')
    fs.chownSync(path.join(rootfs, 'etc/owned'), 1234, 5678)
    fs.chmodSync(path.join(rootfs, 'etc/owned'), 0o640)
    fs.utimesSync(path.join(rootfs, 'etc/owned'), MTIME, MTIME)
    fs.mkdirSync(path.join(rootfs, 'etc/private'))
    fs.chownSync(path.join(rootfs, 'etc/private'), 42, 43)
    fs.chmodSync(path.join(rootfs, 'etc/private'), 0o750)
    fs.symlinkSync('/etc/replaced', path.join(rootfs, 'etc/abs'))
    w('bin/hard1', 'hard\n')
    fs.linkSync(path.join(rootfs, 'bin/hard1'), path.join(rootfs, 'bin/hard2'))
    w('bin/suid', '#!/bin/sh\n')
    fs.chmodSync(path.join(rootfs, 'bin/suid'), 0o6755)

    layout = path.join(work, 'layout')
    const bundle = path.join(work, 'bundle')
    sh(UMOCI!, ['init', '--layout', layout])
    sh(UMOCI!, ['new', '--image', `${layout}:base`])
    sh(UMOCI!, ['unpack', '--image', `${layout}:base`, bundle])
    sh('cp', ['-a', `${rootfs}/.`, path.join(bundle, 'rootfs')])
    sh(UMOCI!, ['repack', '--image', `${layout}:base`, bundle])
    sh(UMOCI!, ['config', '--image', `${layout}:base`, '--config.entrypoint', '/bin/sh', '--config.cmd', '-c', '--config.cmd', 'echo hi',
      '--config.env', 'FOO=bar', '--config.workingdir', '/etc', '--config.user', '65534:65534', '--config.label', 'made=by-umoci'])
    fs.rmSync(bundle, { recursive: true, force: true })
    sh(UMOCI!, ['unpack', '--image', `${layout}:base`, bundle])
    fs.rmSync(path.join(bundle, 'rootfs/etc/deleteme'))
    fs.writeFileSync(path.join(bundle, 'rootfs/etc/replaced'), 'new\n')
    fs.rmSync(path.join(bundle, 'rootfs/gone'), { recursive: true })
    sh(UMOCI!, ['repack', '--image', `${layout}:two`, bundle])
    fs.rmSync(bundle, { recursive: true, force: true })
    // umoci 0.4's `insert --opaque` writes a truncated tar; GNU tar + `umoci raw add-layer` then.
    const opq = path.join(work, 'opq')
    fs.mkdirSync(path.join(opq, 'opq'), { recursive: true })
    fs.writeFileSync(path.join(opq, 'opq/.wh..wh..opq'), '')
    fs.writeFileSync(path.join(opq, 'opq/c'), 'c\n')
    sh('tar', ['-C', opq, '--no-recursion', '-cf', path.join(work, 'opq.tar'), 'opq', 'opq/.wh..wh..opq', 'opq/c'])
    sh(UMOCI!, ['raw', 'add-layer', '--image', `${layout}:two`, path.join(work, 'opq.tar')])

    dockerTwo = path.join(work, 'two-docker.tar')
    dockerBase = path.join(work, 'base-docker.tar')
    ociTwo = path.join(work, 'two-oci.tar')
    sh(SKOPEO!, ['copy', '-q', `oci:${layout}:two`, `docker-archive:${dockerTwo}:test/two:v1`])
    sh(SKOPEO!, ['copy', '-q', `oci:${layout}:base`, `docker-archive:${dockerBase}:test/base:1`])
    sh(SKOPEO!, ['copy', '-q', `oci:${layout}:two`, `oci-archive:${ociTwo}:two`])
    try {
      const z = path.join(work, 'layout-zstd')
      sh(SKOPEO!, ['copy', '-q', '--dest-compress-format', 'zstd', `oci:${layout}:two`, `oci:${z}:two`])
      zstdLayout = z
    } catch {
      zstdLayout = undefined // this skopeo cannot write zstd
    }
  } finally {
    removeRoot(rootfs)
  }
})

test.after.always(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true })
})

toolTest('an OCI layout from umoci loads: names, config, layers lowest first', async (t) => {
  const s = store('layout')
  const progress: LoadProgress[] = []
  const img = await images.load(layout, { store: s, onProgress: (p) => progress.push(p) })
  t.is(img.images.length, 2)
  t.is(img.layersAdded, 3, 'base layer + repack layer + opaque layer')
  t.is(img.layersReused, 1, 'two reuses the base layer within the same load')
  t.deepEqual(layerDirs(s).length, 3)
  const two = images.inspect('two', { store: s })
  const base = images.inspect('base:latest', { store: s })
  t.deepEqual(two.names, ['two:latest'])
  t.is(two.layers.length, 3)
  t.is(two.layers[0].diffId, base.layers[0].diffId, 'the base layer comes first')
  for (const l of two.layers) {
    t.true(path.isAbsolute(l.dir))
    t.is(l.dir, path.join(s, 'layers/sha256', l.diffId.slice('sha256:'.length)))
    t.true(fs.statSync(l.dir).isDirectory())
  }
  t.deepEqual(base.config.entrypoint, ['/bin/sh'])
  t.deepEqual(base.config.cmd, ['-c', 'echo hi'])
  t.true(base.config.env.includes('FOO=bar'))
  t.is(base.config.workingDir, '/etc')
  t.is(base.config.user, '65534:65534')
  t.is(base.config.labels.made, 'by-umoci')
  t.is(base.config.os, 'linux')
  t.regex(two.id, /^sha256:[0-9a-f]{64}$/)
  t.regex(two.manifest ?? '', /^sha256:[0-9a-f]{64}$/)
  t.true(two.size > 1_000_000, 'busybox is in there')
  // Progress: per layer, ending with everything read.
  t.true(progress.length >= 4)
  const last = progress[progress.length - 1]
  t.is(last.state, 'done')
  t.is(last.done, last.total)
  t.true(progress.some((p) => p.state === 'extracting'))
})

toolTest('a full store (ENOSPC) is named as a write into the store, not a bad archive, and leaves no partial layer', async (t) => {
  // A 512 KiB tmpfs in a mount namespace of its own: nothing of it is visible here.
  const dir = store('enospc')
  fs.mkdirSync(dir, { recursive: true })
  const script = `require(${JSON.stringify(path.join(__dirname, '..', 'index.ts'))}).images.load(${JSON.stringify(dockerBase)}, { store: ${JSON.stringify(dir)} })
    .then(() => console.log('loaded'), (e) => console.log(e.message))
    .finally(() => console.log(require('node:fs').readdirSync(${JSON.stringify(path.join(dir, 'layers', 'sha256'))}).length + ' layers, ' + require('node:fs').readdirSync(${JSON.stringify(path.join(dir, 'tmp'))}).length + ' in tmp'))`
  const r = spawnSync('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs -o size=512k tmpfs ${dir} && exec ${process.execPath} --import tsx -e "$0"`, script], { encoding: 'utf8', timeout: 60_000 })
  const [message, left] = r.stdout.trim().split('\n')
  t.regex(message ?? '', /writing it into the store: No space left on device/, r.stdout + r.stderr)
  t.notRegex(message ?? '', /reading/)
  t.is(left, '0 layers, 0 in tmp')
  t.deepEqual(fs.readdirSync(dir), [], 'the tmpfs was private to that process')
})

toolTest('docker-archive and oci-archive of the same image add no layer; a second image sharing the base adds only its own', async (t) => {
  const s = store('dedup')
  const b = await images.load(dockerBase, { store: s })
  t.deepEqual(b.names, ['test/base:1'])
  t.is(layerDirs(s).length, 1)
  const d = await images.load(dockerTwo, { store: s })
  t.deepEqual(d.names, ['test/two:v1'], 'skopeo writes docker.io/test/two:v1; the docker.io/ prefix is dropped')
  t.is(d.layersAdded, 2, 'only the two upper layers are new')
  t.is(d.layersReused, 1)
  t.is(layerDirs(s).length, 3)
  const again = await images.load(dockerTwo, { store: s })
  t.is(again.layersAdded, 0)
  t.is(layerDirs(s).length, 3)
  const o = await images.load(ociTwo, { store: s })
  t.is(o.layersAdded, 0, 'gzip layers of the oci-archive have the same diff_ids as the docker-archive tars')
  t.is(layerDirs(s).length, 3)
  t.deepEqual(o.layers.map((l) => l.diffId), d.layers.map((l) => l.diffId))
  t.deepEqual(o.layers.map((l) => l.dir), d.layers.map((l) => l.dir))
  t.is(images.inspect('docker.io/test/two:v1', { store: s }).id, d.id)
  // A blob file per config (and manifest), not per load.
  const blobs = fs.readdirSync(path.join(s, 'blobs/sha256'))
  t.true(blobs.length <= 4, blobs.join(' '))
})

toolTest('zstd layers load and extract to the same layers', async (t) => {
  if (!zstdLayout) return t.pass('this skopeo cannot write zstd layers')
  const s = store('zstd')
  const z = await images.load(zstdLayout, { store: s })
  t.is(z.layersAdded, 3)
  const s2 = store('zstd-ref')
  const g = await images.load(layout, { store: s2 })
  t.deepEqual(z.layers.map((l) => l.diffId), g.images.find((i) => i.names.includes('two:latest'))!.layers.map((l) => l.diffId))
  t.is(fs.readFileSync(path.join(z.layers[1].dir, 'etc/replaced'), 'utf8'), 'new\n')
})

toolTest('extraction keeps modes, owners, mtimes, symlinks, hardlinks; strips setuid; stores whiteouts the overlayfs way', async (t) => {
  const s = store('contents')
  const img = await images.load(dockerTwo, { store: s })
  const [lower, middle, upper] = img.layers.map((l) => l.dir)
  const owned = fs.statSync(path.join(lower, 'etc/owned'))
  t.is(owned.uid, 1234)
  t.is(owned.gid, 5678)
  t.is(owned.mode & 0o7777, 0o640)
  t.is(owned.mtime.getTime(), MTIME.getTime())
  const priv = fs.statSync(path.join(lower, 'etc/private'))
  t.is(priv.mode & 0o7777, 0o750)
  t.is(priv.uid, 42)
  t.is(fs.readlinkSync(path.join(lower, 'etc/abs')), '/etc/replaced', 'symlinks are stored as they are')
  t.is(fs.readlinkSync(path.join(lower, 'bin/sh')), 'busybox')
  t.is(fs.statSync(path.join(lower, 'bin/hard1')).ino, fs.statSync(path.join(lower, 'bin/hard2')).ino, 'hardlinks stay hardlinks')
  t.is(fs.statSync(path.join(lower, 'bin/suid')).mode & 0o7777, 0o755, 'setuid and setgid are cleared')
  t.true(img.notes.some((n) => n.includes('setuid/setgid') && n.includes('bin/suid')), img.notes.join('\n'))
  t.is(fs.statSync(path.join(lower, 'bin/busybox')).mode & 0o777, 0o755)
  // The repack layer: a deleted file and a deleted directory become 0:0 character devices.
  for (const gone of ['etc/deleteme', 'gone']) {
    const st = fs.lstatSync(path.join(middle, gone))
    t.true(st.isCharacterDevice(), `${gone} is a whiteout`)
    t.is(st.rdev, 0)
  }
  t.false(fs.existsSync(path.join(middle, 'etc/.wh.deleteme')))
  t.is(fs.readFileSync(path.join(middle, 'etc/replaced'), 'utf8'), 'new\n')
  // The opaque layer: an xattr on the directory, no .wh..wh..opq file.
  t.false(fs.existsSync(path.join(upper, 'opq/.wh..wh..opq')))
  t.is(getxattr(path.join(upper, 'opq'), 'trusted.overlay.opaque'), 'y')
  t.is(getxattr(path.join(lower, 'opq'), 'trusted.overlay.opaque'), null)
  t.deepEqual(fs.readdirSync(path.join(upper, 'opq')), ['c'])
})

const overlayTest = TOOLS_MISSING || !UNSHARE ? (title: string, _fn: unknown) => test.skip(`${title} — skipped: ${TOOLS_MISSING ?? 'unshare (util-linux) is missing'}`, () => {}) : test

overlayTest('overlayfs on this kernel stacks the stored layers: deleted gone, replaced new, opaque dir shows only the upper content', async (t) => {
  const s = store('overlay')
  const img = await images.load(ociTwo, { store: s })
  const mnt = fs.mkdtempSync(path.join(work, 'mnt-'))
  const lowerdir = img.layers.map((l) => l.dir).reverse().join(':')
  const mountsBefore = ourMounts()
  // In a private mount namespace of its own: nothing is ever mounted on the host.
  const script = `set -e
mount -t overlay overlay -o "lowerdir=${lowerdir}" "${mnt}"
echo "replaced=$(cat "${mnt}/etc/replaced")"
if [ -e "${mnt}/etc/deleteme" ]; then echo deleteme=present; else echo deleteme=absent; fi
if [ -e "${mnt}/gone" ]; then echo gone=present; else echo gone=absent; fi
echo "opq=$(ls -A "${mnt}/opq" | tr '\\n' ' ')"
echo "owned=$(cat "${mnt}/etc/owned")"
echo "busybox=$("${mnt}/bin/busybox" echo works)"
`
  const r = spawnSync(UNSHARE!, ['-m', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8' })
  t.is(r.status, 0, r.stderr)
  const seen = Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]))
  t.is(seen.replaced, 'new')
  t.is(seen.deleteme, 'absent')
  t.is(seen.gone, 'absent')
  t.is(seen.opq.trim(), 'c', 'opq/a and opq/sub of the lower layer are hidden')
  t.is(seen.owned, 'owned')
  t.is(seen.busybox, 'works')
  // Control: without the opaque layer, the lower opq content shows through.
  const lower2 = img.layers.slice(0, 2).map((l) => l.dir).reverse().join(':')
  const c = spawnSync(UNSHARE!, ['-m', '--propagation', 'private', 'sh', '-c', `mount -t overlay overlay -o "lowerdir=${lower2}" "${mnt}" && ls -A "${mnt}/opq" | tr '\\n' ' '`], { encoding: 'utf8' })
  t.is(c.stdout.trim(), 'a sub')
  const mountsAfter = fs.readFileSync('/proc/self/mountinfo', 'utf8')
  t.false(mountsAfter.includes(mnt), 'no mount left on the host')
  t.false(mountsAfter.includes(s), 'no mount of the store on the host')
  t.is(ourMounts(), mountsBefore)
  t.deepEqual(fs.readdirSync(mnt), [])
})

toolTest('list, inspect and remove; remove garbage-collects layers no image uses', async (t) => {
  const s = store('remove')
  await images.load(dockerBase, { store: s })
  const two = await images.load(dockerTwo, { store: s })
  await images.load(ociTwo, { store: s }) // same config: a second name for the same image
  const listed = images.list({ store: s })
  t.is(listed.length, 2)
  t.deepEqual(listed.map((i) => i.names).flat().sort(), ['test/base:1', 'test/two:v1', 'two:latest'])
  t.is(images.inspect(two.id, { store: s }).id, two.id)
  t.is(images.inspect(two.id.slice('sha256:'.length, 'sha256:'.length + 12), { store: s }).id, two.id, 'a unique id prefix')
  t.throws(() => images.inspect('nope', { store: s }), { message: /no such image: `nope`/ })

  let r = await images.remove('test/two:v1', { store: s })
  t.deepEqual(r, { untagged: ['test/two:v1'], deleted: [], layersRemoved: 0 })
  t.is(layerDirs(s).length, 3, 'two:latest still names the image')
  r = await images.remove('two', { store: s })
  t.deepEqual(r.untagged, ['two:latest'])
  t.deepEqual(r.deleted, [two.id])
  t.is(r.layersRemoved, 2, 'the base layer stays: test/base:1 uses it')
  t.deepEqual(layerDirs(s), [images.inspect('test/base:1', { store: s }).layers[0].diffId.slice(7)])
  t.throws(() => images.inspect(two.id, { store: s }), { message: /no such image/ })
  r = await images.remove(images.inspect('test/base:1', { store: s }).id, { store: s })
  t.deepEqual(r.untagged, ['test/base:1'])
  t.is(r.layersRemoved, 1)
  t.deepEqual(layerDirs(s), [])
  t.deepEqual(fs.readdirSync(path.join(s, 'layers/sha256')), [], 'layer metadata goes with the layer')
  t.deepEqual(fs.readdirSync(path.join(s, 'blobs/sha256')), [], 'configs and manifests go with the image')
  t.deepEqual(images.list({ store: s }), [])
  await t.throwsAsync(images.remove('test/base:1', { store: s }), { message: /no such image/ })
})

toolTest('a corrupted blob is detected and named; nothing is stored', async (t) => {
  // A byte of the gzip base layer of an OCI layout.
  const bad = path.join(work, 'layout-corrupt')
  fs.cpSync(layout, bad, { recursive: true })
  const s = store('corrupt')
  const base = JSON.parse(fs.readFileSync(path.join(bad, 'index.json'), 'utf8')).manifests.find((m: any) => m.annotations['org.opencontainers.image.ref.name'] === 'base')
  const manifest = JSON.parse(fs.readFileSync(path.join(bad, 'blobs', base.digest.replace(':', '/')), 'utf8'))
  const hex = manifest.layers[0].digest.slice('sha256:'.length)
  const blob = path.join(bad, 'blobs/sha256', hex)
  const bytes = fs.readFileSync(blob)
  bytes[Math.floor(bytes.length / 2)] ^= 0x01
  fs.writeFileSync(blob, bytes)
  await t.throwsAsync(images.load(bad, { store: s }), { message: new RegExp(`blob \`blobs/sha256/${hex}\`: its sha256 is sha256:[0-9a-f]{64}, expected sha256:${hex}`) })
  t.deepEqual(layerDirs(s), [])
  t.deepEqual(fs.readdirSync(path.join(s, 'tmp')), [])
  t.deepEqual(images.list({ store: s }), [])

  // The top layer of `two`: base and the middle layer were stored by then, and go again.
  const bad2 = path.join(work, 'layout-corrupt-top')
  fs.cpSync(layout, bad2, { recursive: true })
  const two = JSON.parse(fs.readFileSync(path.join(bad2, 'index.json'), 'utf8')).manifests.find((m: any) => m.annotations['org.opencontainers.image.ref.name'] === 'two')
  const topHex = JSON.parse(fs.readFileSync(path.join(bad2, 'blobs', two.digest.replace(':', '/')), 'utf8')).layers[2].digest.slice('sha256:'.length)
  const top = fs.readFileSync(path.join(bad2, 'blobs/sha256', topHex))
  top[top.length - 5] ^= 0x01
  fs.writeFileSync(path.join(bad2, 'blobs/sha256', topHex), top)
  const progress: LoadProgress[] = []
  await t.throwsAsync(images.load(bad2, { store: s, onProgress: (p) => progress.push(p) }), { message: new RegExp(`blob \`blobs/sha256/${topHex}\`: its sha256 is`) })
  t.true(progress.filter((p) => p.state === 'done').length >= 2, 'lower layers were stored before the top one failed')
  t.deepEqual(layerDirs(s), [], 'and removed again: a load is all or nothing')
  t.deepEqual(images.list({ store: s }), [])

  // A byte inside busybox in the uncompressed layer of a docker-archive: the tar still parses.
  const s2 = store('corrupt-docker')
  const archive = fs.readFileSync(dockerTwo)
  const manifestJson = JSON.parse(sh('tar', ['-xOf', dockerTwo, 'manifest.json']))
  const layerName: string = manifestJson[0].Layers[0]
  const at = archive.indexOf(Buffer.from('busybox'), archive.indexOf(Buffer.from(layerName)) + 600_000)
  t.true(at > 0)
  archive[at] ^= 0x20
  const badDocker = path.join(work, 'two-docker-corrupt.tar')
  fs.writeFileSync(badDocker, archive)
  await t.throwsAsync(images.load(badDocker, { store: s2 }), { message: new RegExp(`blob \`${layerName.replace('.', '\\.')}\`: its sha256 is`) })
  t.deepEqual(layerDirs(s2), [])
})

test('options are validated: errors name the option and echo the value', async (t) => {
  await t.throwsAsync(images.load(42 as any), { instanceOf: TypeError, message: /`path`.*42/ })
  await t.throwsAsync(images.load('/x', { stor: '/tmp' } as any), { instanceOf: TypeError, message: /Unknown option `stor` for images\.load\(\)/ })
  await t.throwsAsync(images.load('/x', { store: 7 } as any), { instanceOf: TypeError, message: /`store`.*7/ })
  await t.throwsAsync(images.load('/x', { store: '/a:b' }), { instanceOf: RangeError, message: /`store`.*'\/a:b'/ })
  await t.throwsAsync(images.load('/x', { onProgress: 'yes' } as any), { instanceOf: TypeError, message: /`onProgress`.*'yes'/ })
  t.throws(() => images.list({ verbose: true } as any), { instanceOf: TypeError, message: /Unknown option `verbose` for images\.list\(\)/ })
  t.throws(() => images.inspect('' as any), { instanceOf: TypeError, message: /`ref`/ })
  await t.throwsAsync(images.remove(undefined as any), { instanceOf: TypeError, message: /`ref`.*undefined/ })
  t.is(images.defaultStore(), ROOT ? '/var/lib/lonely' : images.defaultStore())
  await t.throwsAsync(images.load(path.join(work, 'does-not-exist.tar'), { store: store('missing') }), { message: /does-not-exist\.tar.*No such file/ })
})

// ---------------------------------------------------------------------------------------
// Hostile archives, written by hand: a tiny ustar writer and an OCI layout around it.

interface TarEntry {
  name: string
  type?: '0' | '1' | '2' | '3' | '4' | '5' | '6' | 'x'
  data?: string | Buffer
  /** Claimed size when it differs from the data (a lie). */
  size?: number
  mode?: number
  uid?: number
  gid?: number
  linkname?: string
  devmajor?: number
  devminor?: number
}

function octal(n: number, width: number): string {
  return n.toString(8).padStart(width - 1, '0') + '\0'
}

function tarHeader(e: TarEntry, size: number, name = e.name, linkname = e.linkname ?? ''): Buffer {
  const h = Buffer.alloc(512)
  const put = (s: string, at: number, len: number) => h.write(s.slice(0, len), at, len, 'latin1')
  put(name, 0, 100)
  put(octal(e.mode ?? 0o644, 8), 100, 8)
  put(octal(e.uid ?? 0, 8), 108, 8)
  put(octal(e.gid ?? 0, 8), 116, 8)
  put(octal(size, 12), 124, 12)
  put(octal(1_000_000_000, 12), 136, 12)
  put('        ', 148, 8)
  put(e.type ?? '0', 156, 1)
  put(linkname, 157, 100)
  put('ustar\0', 257, 6)
  put('00', 263, 2)
  put(octal(e.devmajor ?? 0, 8), 329, 8)
  put(octal(e.devminor ?? 0, 8), 337, 8)
  let sum = 0
  for (const b of h) sum += b
  put(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8)
  return h
}

/** A PAX record: `<length> key=value\n`, the length counting itself. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`
  let len = Buffer.byteLength(body) + 1
  while (String(len).length + Buffer.byteLength(body) !== len) len++
  return `${len}${body}`
}

function tar(entries: TarEntry[], opts: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = []
  const pad = (n: number) => Buffer.alloc((512 - (n % 512)) % 512)
  for (const e of entries) {
    const data = Buffer.from(e.data ?? '')
    const linkname = e.linkname ?? ''
    if (Buffer.byteLength(e.name) > 100 || Buffer.byteLength(linkname) > 100) {
      // Long names the POSIX way: a PAX extended header before the entry.
      const pax = Buffer.from(paxRecord('path', e.name) + (linkname ? paxRecord('linkpath', linkname) : ''))
      parts.push(tarHeader({ name: 'PaxHeader', type: 'x' }, pax.length), pax, pad(pax.length))
    }
    parts.push(tarHeader(e, e.size ?? data.length, e.name.slice(0, 100), linkname.slice(0, 100)), data, pad(data.length))
  }
  if (opts.end !== false) parts.push(Buffer.alloc(1024))
  return Buffer.concat(parts)
}

const sha256 = (b: Buffer | string) => crypto.createHash('sha256').update(b).digest('hex')

/** An OCI layout whose digests are all right: only the layer's content is hostile. */
function ociLayout(dir: string, layer: Buffer, opts: { gzip?: boolean; diffId?: string } = {}): void {
  const blobs = path.join(dir, 'blobs/sha256')
  fs.mkdirSync(blobs, { recursive: true })
  const put = (b: Buffer | string) => {
    const hex = sha256(b)
    fs.writeFileSync(path.join(blobs, hex), b)
    return { digest: `sha256:${hex}`, size: Buffer.byteLength(b) }
  }
  const blob = opts.gzip ? zlib.gzipSync(layer) : layer
  const config = JSON.stringify({ architecture: hostArch(), os: 'linux', config: {}, rootfs: { type: 'layers', diff_ids: [opts.diffId ?? `sha256:${sha256(layer)}`] } })
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...put(config) },
    layers: [{ mediaType: `application/vnd.oci.image.layer.v1.tar${opts.gzip ? '+gzip' : ''}`, ...put(blob) }],
  })
  const index = { schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...put(manifest), annotations: { 'org.opencontainers.image.ref.name': 'evil' } }] }
  fs.writeFileSync(path.join(dir, 'index.json'), JSON.stringify(index))
  fs.writeFileSync(path.join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}')
}

function hostArch(): string {
  return ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', riscv64: 'riscv64', s390x: 's390x', ppc64: 'ppc64le', loong64: 'loong64' } as Record<string, string>)[process.arch] ?? process.arch
}

interface Hostile {
  /** The case's own directory: victim/sentinel, image/, store/. */
  dir: string
  victim: string
  sentinel: string
  image: string
  store: string
}

let hostileCount = 0
function hostile(): Hostile {
  const dir = path.join(work, `hostile-${hostileCount++}`)
  const victim = path.join(dir, 'victim')
  fs.mkdirSync(victim, { recursive: true })
  const sentinel = path.join(victim, 'sentinel')
  fs.writeFileSync(sentinel, 'original\n')
  fs.chmodSync(sentinel, 0o644)
  return { dir, victim, sentinel, image: path.join(dir, 'image'), store: path.join(dir, 'store') }
}

/** Nothing outside the store changed: the sentinel, the victim directory, the case directory. */
function untouched(t: ExecutionContext, h: Hostile, before: string[]): void {
  t.is(fs.readFileSync(h.sentinel, 'utf8'), 'original\n', 'the sentinel outside the store is intact')
  t.is(fs.lstatSync(h.sentinel).nlink, 1, 'nothing hardlinked the sentinel')
  t.is(fs.lstatSync(h.sentinel).mode & 0o7777, 0o644)
  t.deepEqual(fs.readdirSync(h.victim), ['sentinel'], 'nothing appeared next to it')
  const after = listTree(h.dir).filter((p) => !p.startsWith('store/') && p !== 'store')
  t.deepEqual(after, before, 'nothing appeared outside the store')
  t.deepEqual(fs.existsSync(path.join(h.store, 'tmp')) ? fs.readdirSync(path.join(h.store, 'tmp')) : [], [], 'no scratch left in the store')
  // Also nothing at the paths an escape would have used, relative to the store and to /.
  for (const p of ['/evil', path.join(os.tmpdir(), 'evil'), path.join(h.dir, 'evil'), path.join(h.store, 'evil')]) t.false(fs.existsSync(p), p)
}

const UP = '../'.repeat(24) // more `..` than any path here is deep: resolved naively, it reaches /

async function refused(t: ExecutionContext, entries: TarEntry[], message: RegExp, opts: { gzip?: boolean; raw?: Buffer } = {}): Promise<Hostile> {
  const h = hostile()
  ociLayout(h.image, opts.raw ?? tar(entries), { gzip: opts.gzip })
  const before = listTree(h.dir)
  await t.throwsAsync(images.load(h.image, { store: h.store }), { message })
  untouched(t, h, before)
  t.deepEqual(layerDirs(h.store), [], 'no layer stored')
  t.deepEqual(images.list({ store: h.store }), [])
  return h
}

async function neutralized(t: ExecutionContext, entries: (h: Hostile) => TarEntry[]): Promise<{ h: Hostile; layer: string; notes: string[] }> {
  const h = hostile()
  ociLayout(h.image, tar(entries(h)))
  const before = listTree(h.dir)
  const img = await images.load(h.image, { store: h.store })
  untouched(t, h, before)
  return { h, layer: img.layers[0].dir, notes: img.notes }
}

test('hostile: a path with `..` is refused', async (t) => {
  const h0 = hostile()
  const target = `${UP}${h0.victim.slice(1)}/evil`
  await refused(t, [{ name: 'ok', data: 'fine' }, { name: target, data: 'pwned' }], /tar entry `(\.\.\/)+.*evil`: path contains `\.\.`/)
  await refused(t, [{ name: 'a/../../evil', data: 'pwned' }], /path contains `\.\.`/, { gzip: true })
})

test('hostile: an absolute path is refused', async (t) => {
  const h0 = hostile()
  await refused(t, [{ name: `${h0.victim}/evil`, data: 'pwned' }], /absolute path/)
})

test('hostile: a file written through a symlink that points out of the layer is refused', async (t) => {
  for (const link of ['abs', 'rel']) {
    const h = hostile()
    const linkname = link === 'abs' ? h.victim : `${UP}${h.victim.slice(1)}`
    ociLayout(h.image, tar([{ name: 'out', type: '2', linkname }, { name: 'out/evil', data: 'pwned' }, { name: 'out/sentinel', data: 'pwned' }]))
    const before = listTree(h.dir)
    await t.throwsAsync(images.load(h.image, { store: h.store }), { message: /tar entry `out\/evil`: its parent `out` is a symlink in this layer/ })
    untouched(t, h, before)
    t.deepEqual(layerDirs(h.store), [])
  }
  // Through a symlinked directory deeper down, and a whiteout through a symlink.
  await refused(t, [{ name: 'd/', type: '5', mode: 0o755 }, { name: 'd/l', type: '2', linkname: '/' }, { name: 'd/l/evil', data: 'x' }], /its parent `d\/l` is a symlink/)
  const h1 = hostile()
  await refused(t, [{ name: 'v', type: '2', linkname: h1.victim }, { name: 'v/.wh.sentinel' }], /its parent `v` is a symlink/)
})

test('hostile: a symlink replaced by a file is replaced, never written through', async (t) => {
  const { layer } = await neutralized(t, (h) => [{ name: 's', type: '2', linkname: h.sentinel }, { name: 's', data: 'pwned', mode: 0o644 }])
  t.true(fs.lstatSync(path.join(layer, 's')).isFile())
  t.is(fs.readFileSync(path.join(layer, 's'), 'utf8'), 'pwned')
})

test('hostile: hardlinks to paths outside the layer are refused', async (t) => {
  const h0 = hostile()
  await refused(t, [{ name: 'hl', type: '1', linkname: h0.sentinel }, { name: 'hl', data: 'pwned' }], /tar entry `hl`: hardlink target `\/.*sentinel`: absolute path/)
  await refused(t, [{ name: 'hl', type: '1', linkname: `${UP}${h0.sentinel.slice(1)}` }, { name: 'hl', data: 'pwned' }], /hardlink target .*: path contains `\.\.`/)
  // Through a symlink of the layer that points out: the link's source must be reached without symlinks.
  const h1 = hostile()
  await refused(t, [{ name: 'v', type: '2', linkname: h1.victim }, { name: 'hl', type: '1', linkname: 'v/sentinel' }, { name: 'hl', data: 'pwned' }], /tar entry `hl`: its parent `v` is a symlink/)
  await refused(t, [{ name: 'hl', type: '1', linkname: 'missing' }], /hardlink target `missing` is not in this layer/)
})

test('hostile: a hardlink to a symlink links the symlink itself; writing the name replaces it', async (t) => {
  const { layer } = await neutralized(t, (h) => [
    { name: 's', type: '2', linkname: h.sentinel },
    { name: 'hl', type: '1', linkname: 's' },
    { name: 'hl', data: 'pwned' },
  ])
  t.true(fs.lstatSync(path.join(layer, 's')).isSymbolicLink())
  t.is(fs.readFileSync(path.join(layer, 'hl'), 'utf8'), 'pwned')
})

test('hostile: whiteouts that reach out of the rootfs are refused', async (t) => {
  const h0 = hostile()
  await refused(t, [{ name: `${UP}${h0.victim.slice(1)}/.wh.sentinel` }], /path contains `\.\.`/)
  await refused(t, [{ name: '../.wh.x' }], /path contains `\.\.`/)
  await refused(t, [{ name: '.wh..' }], /whiteout of an invalid name/)
  await refused(t, [{ name: '.wh.x/y', data: 'z' }], /the whiteout `\.wh\.x` is used as a directory/)
})

test('hostile: device nodes are skipped with a note, fifos kept', async (t) => {
  const { layer, notes } = await neutralized(t, () => [
    { name: 'dev/', type: '5', mode: 0o755 },
    { name: 'dev/mem', type: '3', devmajor: 1, devminor: 1, mode: 0o666 },
    { name: 'dev/sda', type: '4', devmajor: 8, devminor: 0, mode: 0o666 },
    { name: 'dev/fifo', type: '6', mode: 0o600 },
  ])
  t.deepEqual(fs.readdirSync(path.join(layer, 'dev')).sort(), ['fifo'])
  t.true(fs.lstatSync(path.join(layer, 'dev/fifo')).isFIFO())
  t.true(notes.some((n) => /device nodes skipped: 2 \(dev\/mem \(c 1:1\), dev\/sda \(b 8:0\)\)/.test(n)), notes.join('\n'))
})

test('hostile: setuid and setgid bits are stripped', async (t) => {
  const { layer, notes } = await neutralized(t, () => [
    { name: 'bin/', type: '5', mode: 0o755 },
    { name: 'bin/root-shell', data: '#!/bin/sh\n', mode: 0o4755 },
    { name: 'bin/sgid', data: '#!/bin/sh\n', mode: 0o2711 },
    { name: 'bin/sticky', type: '5', mode: 0o1777 },
  ])
  t.is(fs.statSync(path.join(layer, 'bin/root-shell')).mode & 0o7777, 0o755)
  t.is(fs.statSync(path.join(layer, 'bin/sgid')).mode & 0o7777, 0o711)
  t.is(fs.statSync(path.join(layer, 'bin/sticky')).mode & 0o7777, 0o1777, 'the sticky bit is harmless and kept')
  t.true(notes.some((n) => n.includes('setuid/setgid bits cleared on 2')), notes.join('\n'))
})

test('hostile: huge claimed sizes and truncated archives are errors', async (t) => {
  // 8 GiB claimed, 10 bytes present (digests consistent: only the tar lies).
  await refused(t, [{ name: 'big', data: '0123456789', size: 0o77777777777 }], /tar entry `big` is truncated: \d+ of 8589934591 bytes/)
  // A PAX header of 20 MiB (zeros: 20 KiB gzip-compressed), which the tar parser would hold in
  // memory whole; claimed gigabytes would take the process down. Refused past 16 MiB.
  await refused(t, [{ name: 'PaxHeader', type: 'x', data: Buffer.alloc(20 << 20) }, { name: 'f', data: 'x' }], /more than 16777216 bytes of headers/, { gzip: true })
  // A real archive cut in the middle of a file.
  const whole = tar([{ name: 'a', data: 'x'.repeat(3000) }, { name: 'b', data: 'y'.repeat(3000) }])
  await refused(t, [], /tar entry `b` is truncated|malformed or truncated tar/, { raw: whole.subarray(0, 512 + 3072 + 512 + 1000) })
  // The same, gzip-compressed.
  await refused(t, [], /tar entry `b` is truncated|malformed or truncated tar/, { raw: whole.subarray(0, 512 + 3072 + 512 + 1000), gzip: true })
  // A gzip stream cut short: the blob's digest is right, the stream is not.
  const h = hostile()
  ociLayout(h.image, whole, { gzip: true })
  const blobs = path.join(h.image, 'blobs/sha256')
  const index = JSON.parse(fs.readFileSync(path.join(h.image, 'index.json'), 'utf8'))
  const mpath = path.join(blobs, index.manifests[0].digest.slice(7))
  const manifest = JSON.parse(fs.readFileSync(mpath, 'utf8'))
  const gz = fs.readFileSync(path.join(blobs, manifest.layers[0].digest.slice(7)))
  const cut = gz.subarray(0, gz.length - 12)
  fs.writeFileSync(path.join(blobs, sha256(cut)), cut)
  manifest.layers[0] = { ...manifest.layers[0], digest: `sha256:${sha256(cut)}`, size: cut.length }
  const m2 = JSON.stringify(manifest)
  fs.writeFileSync(path.join(blobs, sha256(m2)), m2)
  index.manifests[0] = { ...index.manifests[0], digest: `sha256:${sha256(m2)}`, size: m2.length }
  fs.writeFileSync(path.join(h.image, 'index.json'), JSON.stringify(index))
  await t.throwsAsync(images.load(h.image, { store: h.store }), { message: /Gzip stream|malformed or truncated tar|truncated/ })
  t.deepEqual(layerDirs(h.store), [])
})

test('hostile: a FIFO or a device where a blob should be is refused without blocking', async (t) => {
  for (const make of [(p: string) => execFileSync('mkfifo', [p]), (p: string) => fs.symlinkSync('/dev/zero', p)]) {
    const h = hostile()
    const layer = tar([{ name: 'a', data: 'x' }])
    ociLayout(h.image, layer)
    const blob = path.join(h.image, 'blobs/sha256', sha256(layer))
    fs.rmSync(blob)
    make(blob)
    await t.throwsAsync(images.load(h.image, { store: h.store }), { message: new RegExp(`\`blobs/sha256/${sha256(layer)}\`: is not a regular file`) })
    t.deepEqual(layerDirs(h.store), [])
  }
  const h = hostile()
  const fifo = path.join(h.dir, 'archive.tar')
  execFileSync('mkfifo', [fifo])
  await t.throwsAsync(images.load(fifo, { store: h.store }), { message: /archive\.tar`: not an image archive: it is neither a regular file nor a directory/ })
})

test('hostile: a layer whose content does not match its diff_id is refused', async (t) => {
  const h = hostile()
  ociLayout(h.image, tar([{ name: 'a', data: 'x' }]), { diffId: `sha256:${'0'.repeat(64)}` })
  await t.throwsAsync(images.load(h.image, { store: h.store }), { message: /its uncompressed content has sha256 sha256:[0-9a-f]{64}, the image config says sha256:0{64}/ })
  t.deepEqual(layerDirs(h.store), [])
})

test('hostile: malformed index.json and manifest.json are errors naming the file', async (t) => {
  const cases: Array<[string, (dir: string) => void, RegExp]> = [
    ['index.json not JSON', (d) => fs.writeFileSync(path.join(d, 'index.json'), '{"schemaVersion": 2, "manifests": [{'), /`index\.json`: invalid JSON/],
    ['index.json wrong shape', (d) => fs.writeFileSync(path.join(d, 'index.json'), '{"manifests": "all of them"}'), /`index\.json`: invalid JSON/],
    ['a digest that is a path', (d) => fs.writeFileSync(path.join(d, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: 'sha256:../../../../etc/passwd', size: 10 }] })), /`index\.json`/],
    ['manifest.json not JSON', (d) => fs.writeFileSync(path.join(d, 'manifest.json'), '[{"Config": '), /`manifest\.json`: invalid JSON/],
    ['manifest.json wrong shape', (d) => fs.writeFileSync(path.join(d, 'manifest.json'), '{"Config": "x"}'), /`manifest\.json`: invalid JSON/],
    ['manifest.json pointing out', (d) => fs.writeFileSync(path.join(d, 'manifest.json'), JSON.stringify([{ Config: '../../../../etc/passwd', Layers: [] }])), /`manifest\.json`: \[0\]\.Config "..\/..\/..\/..\/etc\/passwd" is not a path inside the archive/],
    ['neither', () => {}, /not an image archive: it has neither manifest\.json \(docker save\) nor index\.json \(OCI\)/],
    ['huge index.json', (d) => fs.writeFileSync(path.join(d, 'index.json'), Buffer.alloc(17 << 20, 0x20)), /`index\.json` is larger than 16777216 bytes/],
  ]
  for (const [what, make, message] of cases) {
    const h = hostile()
    fs.mkdirSync(h.image)
    make(h.image)
    const before = listTree(h.dir)
    await t.throwsAsync(images.load(h.image, { store: h.store }), { message }, what)
    untouched(t, h, before)
  }
  // The same in a tar file (the docker-archive path), and a tar claiming more than it holds.
  const h = hostile()
  const file = path.join(h.dir, 'bad.tar')
  fs.writeFileSync(file, tar([{ name: 'manifest.json', data: '[{]' }]))
  await t.throwsAsync(images.load(file, { store: h.store }), { message: /bad\.tar`: `manifest\.json`: invalid JSON/ })
  const short = tar([{ name: 'manifest.json', data: '[]', size: 5000 }], { end: false })
  fs.writeFileSync(file, short)
  await t.throwsAsync(images.load(file, { store: h.store }), { message: /tar entry `manifest\.json` claims 5000 bytes .* truncated/ })
})

// Controls: the same hostile tars do write outside when extracted naively (Python's tarfile
// with its fully trusted filter), so the refusals above are refusals of real attacks.
const controlTest = PYTHON ? test : (title: string, _fn: unknown) => test.skip(`${title} — skipped: python3 is missing`, () => {})

controlTest('control: a naive extractor writes outside through `..`, a symlink and a hardlink', (t) => {
  const naive = (h: Hostile, archive: Buffer) => {
    const file = path.join(h.dir, 'naive.tar')
    fs.writeFileSync(file, archive)
    const dest = path.join(h.store, 'tmp', 'layer-naive')
    fs.mkdirSync(dest, { recursive: true })
    const script = `import tarfile, sys
with tarfile.open(sys.argv[1]) as t:
    kw = {'filter': 'fully_trusted'} if hasattr(tarfile, 'fully_trusted_filter') else {}
    t.extractall(sys.argv[2], **kw)`
    const r = spawnSync(PYTHON!, ['-c', script, file, dest], { encoding: 'utf8' })
    t.is(r.status, 0, r.stderr)
  }
  const dotdot = hostile()
  naive(dotdot, tar([{ name: `${UP}${dotdot.victim.slice(1)}/evil`, data: 'pwned' }]))
  t.is(fs.readFileSync(path.join(dotdot.victim, 'evil'), 'utf8'), 'pwned')

  const symlink = hostile()
  naive(symlink, tar([{ name: 'out', type: '2', linkname: `${UP}${symlink.victim.slice(1)}` }, { name: 'out/evil', data: 'pwned' }]))
  t.is(fs.readFileSync(path.join(symlink.victim, 'evil'), 'utf8'), 'pwned')

  const hardlink = hostile()
  naive(hardlink, tar([{ name: 'hl', type: '1', linkname: hardlink.sentinel }, { name: 'hl', data: 'pwned\n' }]))
  t.is(fs.readFileSync(hardlink.sentinel, 'utf8'), 'pwned\n')
})

test.serial('the store never loses files: an rmi killed halfway, then the same archive loaded again, gives a whole image; a layer without its completion marker is damage that run refuses, images.check() lists and repair clears for the next load', async (t) => {
  if (!ROOT) return t.pass('needs root (the image runs)')
  const { run } = await import('../index')
  const { dockerArchive } = await import('./helpers')
  const root = makeBusyboxRoot()
  t.teardown(() => removeRoot(root))
  fs.mkdirSync(path.join(root, 'many'))
  for (let i = 0; i < 20000; i++) fs.writeFileSync(path.join(root, 'many', String(i)), '')
  const into = fs.mkdtempSync(path.join(work, 'crash-'))
  const archive = dockerArchive(root, into, [{ tag: 'crash/many:1', cmd: ['sh'] }])
  const s = store('crash')
  const count = async () => (await run(['sh', '-c', 'ls /many | wc -l'], { image: 'crash/many:1', store: s })).stdout.trim()
  await images.load(archive, { store: s })
  const [layer] = layerDirs(s)
  const marker = path.join(s, 'layers/sha256', `${layer}.json`)
  t.is(await count(), '20000')
  // rmi in another process, SIGKILLed as soon as its deletion has begun (the marker goes first).
  const child = spawnSync('sh', ['-c', `"${process.execPath}" -e 'require(process.argv[1]).images.remove("crash/many:1", { store: process.argv[2] })' "${path.join(__dirname, '..', 'lib', 'images.js')}" "${s}" & pid=$!; while [ -e "${marker}" ] && kill -0 $pid 2>/dev/null; do :; done; kill -9 $pid 2>/dev/null; wait $pid; echo "status $?"`], { encoding: 'utf8' })
  t.regex(child.stdout, /status \d+/, child.stderr)
  await images.load(archive, { store: s })
  t.is(await count(), '20000', 'every file is there after the reload')
  t.deepEqual(images.check({ store: s }), [])
  // Damage as an older version's killed rmi left it: half the files gone, and the marker.
  fs.rmSync(marker)
  for (let i = 0; i < 10000; i++) fs.rmSync(path.join(s, 'layers/sha256', layer, 'many', String(i)))
  await t.throwsAsync(run(['true'], { image: 'crash/many:1', store: s }), { message: /image `crash\/many:1` is damaged: layer sha256:[0-9a-f]{64} is not whole in the store/ })
  const found = images.check({ store: s })
  t.deepEqual(found.map((d) => [d.names, d.problem]), [[['crash/many:1'], 'incomplete: its directory has no completion marker']])
  await images.load(archive, { store: s })
  t.is(await count(), '20000', 'load extracted the damaged layer again, not reused it')
  // check --repair clears such damage itself, for the next load.
  fs.rmSync(marker)
  t.throws(() => images.check({ store: s, repair: 'yes' as never }), { instanceOf: TypeError, message: /Option `repair` must be a boolean; got 'yes'/ })
  images.check({ store: s, repair: true })
  t.deepEqual(layerDirs(s), [], 'repair removed the broken layer')
  await images.load(archive, { store: s })
  t.is(await count(), '20000', 'the next load extracted it again')
  t.deepEqual(images.check({ store: s }), [])
})
