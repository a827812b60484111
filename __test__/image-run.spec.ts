// Running containers from images: the layers stacked with overlayfs, a throwaway writable
// layer per container, the image config applied as docker does, nothing left behind.
import test from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { execFileSync, spawn as spawnHost, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'

import * as lib from '../index'
import { explain, images, run, spawn } from '../index'
import { BUSYBOX, type Snapshot, warmUp, endSuite, removeDetached } from './helpers'

const has = (tool: string) => spawnSync('which', [tool]).status === 0
const missing = !has('umoci') || !has('skopeo') ? 'umoci and skopeo are not installed (apt-get install umoci skopeo)' : !BUSYBOX ? 'busybox-static is not installed' : undefined
const itest = missing ? test.skip : test.serial

let work = ''
let store = ''
let archive = ''
let warm: Snapshot
const sh = (cmd: string, args: string[], cwd?: string) => execFileSync(cmd, args, { cwd, stdio: 'pipe' })
const REF = 'test/app:v1'

/** Every file of a directory tree with its content, to show the store is untouched. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  const walk = (d: string) => {
    for (const name of fs.readdirSync(d)) {
      const p = path.join(d, name)
      const st = fs.lstatSync(p)
      if (st.isDirectory()) walk(p)
      else out[path.relative(dir, p)] = st.isFile() ? fs.readFileSync(p, 'utf8') : `${st.mode}`
    }
  }
  walk(dir)
  return out
}

test.before(async () => {
  if (missing) return
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-imgrun-'))
  store = path.join(work, 'store')
  const lay = path.join(work, 'layout')
  const bundle = path.join(work, 'bundle')
  sh('umoci', ['init', '--layout', lay])
  sh('umoci', ['new', '--image', `${lay}:base`])
  sh('umoci', ['unpack', '--image', `${lay}:base`, bundle])
  const rootfs = path.join(bundle, 'rootfs')
  for (const dir of ['bin', 'etc', 'data']) fs.mkdirSync(path.join(rootfs, dir), { recursive: true })
  fs.copyFileSync(BUSYBOX!, path.join(rootfs, 'bin/busybox'))
  fs.chmodSync(path.join(rootfs, 'bin/busybox'), 0o755)
  for (const applet of ['sh', 'cat', 'ls', 'id', 'pwd', 'touch', 'echo', 'stat']) fs.symlinkSync('busybox', path.join(rootfs, 'bin', applet))
  fs.writeFileSync(path.join(rootfs, 'etc/passwd'), 'root:x:0:0::/root:/bin/sh\napp:x:4242:4343::/data:/bin/sh\n')
  fs.writeFileSync(path.join(rootfs, 'etc/group'), 'root:x:0:\napp:x:4343:\n')
  fs.writeFileSync(path.join(rootfs, 'etc/replaced'), 'old\n')
  fs.writeFileSync(path.join(rootfs, 'etc/deleteme'), 'delete me\n')
  sh('umoci', ['repack', '--image', `${lay}:base`, bundle])
  sh('umoci', ['config', '--image', `${lay}:base`, '--config.entrypoint', '/bin/sh', '--config.cmd', '-c', '--config.cmd', 'echo $GREETING from $(id -u):$(id -g) in $(pwd)',
    '--config.env', 'GREETING=hello', '--config.workingdir', '/data', '--config.user', 'app'])
  fs.rmSync(bundle, { recursive: true, force: true })
  // The upper layer deletes one file of the lower and replaces another.
  sh('umoci', ['unpack', '--image', `${lay}:base`, bundle])
  fs.rmSync(path.join(bundle, 'rootfs/etc/deleteme'))
  fs.writeFileSync(path.join(bundle, 'rootfs/etc/replaced'), 'new\n')
  sh('umoci', ['repack', '--image', `${lay}:two`, bundle])
  archive = path.join(work, 'app.tar')
  sh('skopeo', ['copy', '-q', `oci:${lay}:two`, `docker-archive:${archive}:${REF}`])
  await images.load(archive, { store })
  warm = await warmUp([['sh', '-c', 'exit 0'], { image: REF, store, entrypoint: [] }])
})

test.after.always((t) => endSuite(t, warm, () => work && fs.rmSync(work, { recursive: true, force: true })))

const containers = () => fs.readdirSync(path.join(store, 'containers'))

itest('the image config applies as docker does: Entrypoint + Cmd, Env, WorkingDir, User (by name)', async (t) => {
  const r = await run([], { image: REF, store })
  t.is(r.stdout, 'hello from 4242:4343 in /data')
  t.deepEqual(containers(), [], 'the writable layer is gone')
})

itest('a hostile image\'s /etc/passwd (a symlink to the host\'s /etc/shadow or /dev/zero, a FIFO) is read inside the image, a regular file only; control: the host path leads to the host\'s file', async (t) => {
  const hostile = path.join(work, 'hostile-store')
  await images.load(archive, { store: hostile })
  const top = images.inspect(REF, { store: hostile }).layers.at(-1)!.dir
  const passwd = path.join(top, 'etc/passwd')
  t.teardown(() => fs.rmSync(hostile, { recursive: true, force: true }))
  fs.symlinkSync('/etc/shadow', passwd)
  t.true(fs.readFileSync(passwd, 'utf8').startsWith('root:'), 'control: through the host path the link reads the host\'s shadow')
  // The uid from the kernel: `id` would read the container's /etc/passwd itself.
  const uid = async () => /^Uid:\t(\d+)/m.exec((await run(['cat', '/proc/self/status'], { image: REF, store: hostile, entrypoint: [], timeout: 30_000 })).stdout)?.[1]
  t.is(await uid(), '4242', 'the link points nowhere inside the image: the lower layer\'s passwd answers')
  fs.unlinkSync(passwd)
  fs.symlinkSync('/dev/zero', passwd)
  t.is(await uid(), '4242', 'no endless read of the host\'s /dev/zero')
  fs.unlinkSync(passwd)
  execFileSync('mkfifo', [passwd])
  t.true(fs.statSync(passwd).isFIFO())
  t.throws(() => spawn(['true'], { image: REF, store: hostile, entrypoint: [] }), { instanceOf: RangeError, message: /the image's \/etc\/passwd is not a regular file/ })
  t.deepEqual(fs.readdirSync(path.join(hostile, 'containers')), [], 'nothing left in the store')
  fs.unlinkSync(passwd)
  // An image whose /proc or /dev is a symlink is refused as such a rootfs is: procfs never lands at the link's target.
  for (const entry of ['proc', 'dev']) {
    fs.symlinkSync('/etc', path.join(top, entry))
    const r = await run(['sh', '-c', 'exit 0'], { image: REF, store: hostile, entrypoint: [], reject: false })
    t.like(r, { failed: true, stage: 'mount', code: 'ELOOP', path: `/${entry}` } as never, `${entry} -> /etc: ${(r as { message?: string }).message}`)
    fs.unlinkSync(path.join(top, entry))
  }
  t.is((await run(['sh', '-c', 'exit 0'], { image: REF, store: hostile, entrypoint: [], reject: false })).exitCode, 0, 'control: without the links it runs')
})

itest('options override the config: command replaces Cmd, entrypoint [] clears it, env, cwd, uid', async (t) => {
  const r = await run(['-c', 'echo $GREETING'], { image: REF, store, env: { GREETING: 'hi' } })
  t.is(r.stdout, 'hi', 'the command goes after the Entrypoint')
  const own = await run(['sh', '-c', 'echo $(id -u) $(pwd)'], { image: REF, store, entrypoint: [], uid: 0, gid: 0, cwd: '/etc' })
  t.is(own.stdout, '0 /etc')
  // docker run --entrypoint: the image's Cmd (`-c 'echo ...'`) was the old Entrypoint's arguments.
  const echo = await run([], { image: REF, store, entrypoint: ['/bin/echo', 'only'] })
  t.is(echo.stdout, 'only', 'a new Entrypoint runs without the image\'s Cmd')
})

itest('the layers stack: the upper layer deleted one file and replaced another', async (t) => {
  const r = await run(['sh', '-c', 'cat /etc/replaced; ls /etc'], { image: REF, store, entrypoint: [] })
  t.is(r.stdout, 'new\ngroup\npasswd\nreplaced')
})

/** A docker-archive of lonely/fifty:1: 50 layers, each adding /layers/N and rewriting /layers/top (made once). */
let fifty = ''
function fiftyArchive(): string {
  if (fifty) return fifty
  const dir = fs.mkdtempSync(path.join(work, 'fifty-'))
  const layers: string[] = []
  for (let i = 0; i < 50; i++) {
    const content = path.join(dir, `content-${i}`)
    fs.mkdirSync(path.join(content, 'layers'), { recursive: true })
    if (i === 0) {
      fs.mkdirSync(path.join(content, 'bin'))
      fs.copyFileSync(BUSYBOX!, path.join(content, 'bin/busybox'))
      fs.chmodSync(path.join(content, 'bin/busybox'), 0o755)
      for (const applet of ['sh', 'cat', 'ls', 'wc']) fs.symlinkSync('busybox', path.join(content, 'bin', applet))
    }
    fs.writeFileSync(path.join(content, 'layers', String(i)), '')
    fs.writeFileSync(path.join(content, 'layers', 'top'), `${i}\n`)
    layers.push(`${i}.tar`)
    sh('tar', ['-C', content, '-cf', path.join(dir, `${i}.tar`), '.'])
  }
  const diffs = layers.map((l) => `sha256:${createHash('sha256').update(fs.readFileSync(path.join(dir, l))).digest('hex')}`)
  const config = JSON.stringify({ architecture: os.arch() === 'arm64' ? 'arm64' : 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: diffs }, config: { Cmd: ['sh'], Env: ['PATH=/bin'] } })
  fs.writeFileSync(path.join(dir, 'config.json'), config)
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify([{ Config: 'config.json', RepoTags: ['lonely/fifty:1'], Layers: layers }]))
  fifty = path.join(work, 'fifty.tar')
  sh('tar', ['-C', dir, '-cf', fifty, 'manifest.json', 'config.json', ...layers])
  return fifty
}

itest('an image of 50 layers runs (mount overlay once took them as one lowerdir string, which fsconfig caps at 256 bytes: EINVAL from 3 layers on); every layer is seen, the top one wins', async (t) => {
  const archive = fiftyArchive()
  await images.load(archive, { store })
  const r = await run(['sh', '-c', 'ls /layers | wc -l; cat /layers/top'], { image: 'lonely/fifty:1', store })
  t.is(r.stdout, '51\n49', r.stderr)
})

itest('docker rmi of an image a running container uses is refused (conflict, cannot be forced) and its files stay under it; one only a kept container uses needs force; once it ended the image goes', async (t) => {
  const IMG = 'lonely/fifty:1'
  await images.load(fiftyArchive(), { store })
  const c = spawn(['sh', '-c', 'read line; ls /layers | wc -l'], { image: IMG, store, stderr: 'ignore' })
  let out = ''
  c.stdout!.on('data', (d) => (out += d))
  const ended = new Promise((r) => c.stdout!.on('close', r)) // the output may trail the exit
  await new Promise((r) => setTimeout(r, 300))
  const id = (() => {
    const held = fs.readdirSync(path.join(store, 'containers')).filter((d) => fs.existsSync(path.join(store, 'containers', d, 'image')))
    return held.find((d) => lockHeld(d))
  })()
  t.truthy(id, 'the running container holds its lease')
  await t.throwsAsync(images.remove(IMG, { store }), { message: new RegExp(`conflict: unable to delete [0-9a-f]{12} \\(cannot be forced\\) - image is being used by running container ${id}`) })
  await t.throwsAsync(images.remove(IMG, { store, force: true }), { message: /cannot be forced/ })
  c.stdin!.end('go\n')
  t.is((await c).exitCode, 0)
  await ended
  t.is(out, '51\n', 'every file is still there under it')
  // keep: true leaves a kept container: force is needed, as for docker's stopped one.
  const kept = await run(['sh', '-c', 'exit 0'], { image: IMG, store, keep: true })
  const keptId = path.basename(path.dirname(kept.keptLayer!))
  await t.throwsAsync(images.remove(IMG, { store }), { message: new RegExp(`\\(must force\\) - container ${keptId} is using its referenced image`) })
  await t.throwsAsync(images.remove(IMG, { store, force: 'yes' as never }), { instanceOf: TypeError, message: /Option `force` must be a boolean; got 'yes'/ })
  const removed = await images.remove(IMG, { store, force: true })
  t.deepEqual(removed.untagged, [IMG])
  t.true(removed.layersRemoved >= 49, `its own layers went: ${removed.layersRemoved}`)
  fs.rmSync(path.dirname(kept.keptLayer!), { recursive: true, force: true })
})

itest('writes go to a throwaway layer: invisible to the next container and to the store', async (t) => {
  const before = tree(path.join(store, 'layers'))
  const w = await run(['sh', '-c', 'echo mine > /etc/replaced && touch /data/new && cat /etc/replaced'], { image: REF, store, entrypoint: [], uid: 0, gid: 0 })
  t.is(w.stdout, 'mine')
  const next = await run(['sh', '-c', 'cat /etc/replaced; ls /data'], { image: REF, store, entrypoint: [] })
  t.is(next.stdout, 'new')
  t.deepEqual(tree(path.join(store, 'layers')), before, 'no layer of the store changed')
  t.deepEqual(containers(), [])
})

itest('keep: true keeps the writable layer and says where', async (t) => {
  const r = await run(['sh', '-c', 'echo kept > /data/k'], { image: REF, store, entrypoint: [], uid: 0, gid: 0, keep: true })
  t.truthy(r.keptLayer)
  t.is(fs.readFileSync(path.join(r.keptLayer!, 'data/k'), 'utf8'), 'kept\n')
  fs.rmSync(path.dirname(r.keptLayer!), { recursive: true, force: true })
})

itest('the writable layer\'s name says nothing: mountinfo inside shows a random id, not the Node process\'s pid', async (t) => {
  const r = await run(['sh', '-c', 'cat /proc/self/mountinfo'], { image: REF, store, entrypoint: [] })
  const upper = /upperdir=([^,\s]+)/.exec(r.stdout)?.[1] ?? ''
  t.regex(upper, new RegExp(`^${path.join(store, 'containers')}/[0-9a-f]{16}/upper$`), r.stdout)
  t.false(upper.includes(String(process.pid)), `the host pid ${process.pid} in ${upper}`)
})

/** A fresh Node process (in a new PID namespace with `ownPids`) that runs `code` with the library as `lib`, the test's store and image. */
function fresh(code: string, ownPids = false): ReturnType<typeof spawnHost> {
  const script = `const lib = require(${JSON.stringify(path.join(__dirname, '..', 'index.ts'))}); const store = ${JSON.stringify(store)}, REF = ${JSON.stringify(REF)}; (async () => { ${code} })().catch((e) => { console.error(e); process.exit(1) })`
  const node = [process.execPath, '--import', 'tsx', '-e', script]
  const [cmd, ...args] = ownPids ? ['unshare', '--pid', '--fork', '--kill-child', ...node] : node
  return spawnHost(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] })
}
/** Resolves with its exit code and stdout. */
function ended(p: ReturnType<typeof spawnHost>): Promise<{ code: number | null; out: string }> {
  let out = ''
  p.stdout!.on('data', (d) => (out += d))
  return new Promise((resolve) => p.on('close', (code) => resolve({ code, out })))
}
/** One image container in a fresh process: its first image run sweeps the store. */
async function sweepFromAnotherProcess(ownPids = false): Promise<void> {
  const { code } = await ended(fresh("await lib.run(['sh', '-c', 'exit 0'], { image: REF, store, entrypoint: [] })", ownPids))
  if (code !== 0) throw new Error(`the sweeping process exited ${code}`)
}

itest('the stale sweep keeps kept layers and live containers seen from other PID namespaces, and takes what nobody holds', async (t) => {
  // A layer kept by a process that has ended survives the next process's sweep.
  const made = await ended(fresh("console.log((await lib.run(['sh', '-c', 'echo kept > /k'], { image: REF, store, entrypoint: [], uid: 0, gid: 0, keep: true })).keptLayer)"))
  const kept = made.out.trim()
  t.is(made.code, 0)
  await sweepFromAnotherProcess()
  t.is(fs.readFileSync(path.join(kept, 'k'), 'utf8'), 'kept\n', 'the kept layer')
  fs.rmSync(path.dirname(kept), { recursive: true, force: true })
  // A live container, swept at by a process in another PID namespace (where its pid means nothing).
  const before = new Set(containers())
  const holder = fresh("await lib.run(['sh', '-c', 'echo up; exec sleep 3600'], { image: REF, store, entrypoint: [], stdout: 'inherit' })")
  t.teardown(() => holder.kill('SIGKILL'))
  await new Promise<void>((resolve) => holder.stdout!.once('data', () => resolve()))
  const live = containers().filter((c) => !before.has(c))
  t.is(live.length, 1, 'the holder\'s container')
  try {
    await sweepFromAnotherProcess(true)
    t.deepEqual(containers().filter((c) => !before.has(c)), live, 'a live container\'s layer was swept')
  } finally {
    holder.kill('SIGKILL') // its container dies with it (PDEATHSIG)
    await ended(holder)
  }
  // Control: once nobody holds it, the next process's sweep takes it.
  for (let i = 0; i < 100 && lockHeld(live[0]); i++) await new Promise((r) => setTimeout(r, 50))
  await sweepFromAnotherProcess()
  t.false(containers().includes(live[0]), 'control: the dead process\'s layer is swept')
})

itest('a detached image container keeps its writable layer after its creator exits (its monitor holds the lock): another process\'s sweep leaves it; remove() takes it', async (t) => {
  const stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-state-'))
  try {
    const before = new Set(containers())
    const made = await ended(fresh(`const c = await lib.create(['sh', '-c', 'echo mine > /data/f; exec sleep 3600'], { image: REF, store, entrypoint: [], uid: 0, gid: 0, detached: true, stateDir: ${JSON.stringify(stateDir)} }); console.log(c.id)`))
    t.is(made.code, 0)
    const layer = containers().filter((c) => !before.has(c))
    t.is(layer.length, 1, 'its layer')
    await sweepFromAnotherProcess()
    t.deepEqual(containers().filter((c) => !before.has(c)), layer, 'a live detached container\'s layer was swept')
    const c = lib.containers.get(made.out.trim(), { stateDir })
    t.is(await c.readFile('/data/f'), 'mine\n', 'its files are there')
    await c.remove({ force: true })
    t.deepEqual(containers().filter((c) => !before.has(c)), [], 'remove() took its layer')
  } finally {
    await removeDetached(stateDir)
  }
})

/** Whether a process still has the container directory's lock open. */
function lockHeld(name: string): boolean {
  const lock = path.join(store, 'containers', name, 'lock')
  return fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).some((pid) => {
    try {
      return fs.readdirSync(`/proc/${pid}/fd`).some((fd) => fs.readlinkSync(`/proc/${pid}/fd/${fd}`) === lock)
    } catch {
      return false
    }
  })
}

itest('volumes on top of an image: a read-only bind and a tmpfs', async (t) => {
  const host = fs.mkdtempSync(path.join(work, 'vol-'))
  fs.writeFileSync(path.join(host, 'f'), 'from host\n')
  const r = await run(['sh', '-c', 'cat /vol/f; touch /vol/x 2>/dev/null || echo ro; touch /scratch/x && echo tmpfs'], {
    image: REF, store, entrypoint: [], uid: 0, gid: 0,
    mounts: [{ type: 'bind', source: host, target: '/vol', readonly: true }, { type: 'tmpfs', target: '/scratch', size: '1m' }],
  })
  t.is(r.stdout, 'from host\nro\ntmpfs')
})

itest('a setup failure removes the writable layer too', async (t) => {
  await t.throwsAsync(run(['/no/such'], { image: REF, store, entrypoint: [] }), { message: /ENOENT/ })
  t.deepEqual(containers(), [])
})

itest('bad image options are refused before anything runs', async (t) => {
  await t.throwsAsync(run(['true'], { image: 'no/such:image', store }), { instanceOf: RangeError, message: /Option `image` names no image in the store/ })
  await t.throwsAsync(run(['true'], { image: REF, store, rootfs: '/' }), { instanceOf: RangeError, message: /`image` and `rootfs` exclude each other/ })
  await t.throwsAsync(run(['true'], { keep: true }), { instanceOf: RangeError, message: /Option `keep` goes with `image`/ })
  t.deepEqual(containers(), [])
  // Every other option is checked before the writable layer exists, and explain() removes its own.
  const bad: Array<[string, Record<string, unknown>]> = [
    ['cwd', { cwd: 'relative' }], ['env', { env: { A: 1 } }], ['gid', { gid: -1 }], ['groups', { groups: [-1] }],
    ['mounts', { mounts: [{ type: 'tmpfs', target: 'x' }] }], ['readonlyRoot', { readonlyRoot: 'yes' }],
    ['seccomp', { seccomp: 'nonsense' }], ['capAdd', { capAdd: ['SUPERPOWER'] }], ['timeout', { timeout: -1 }],
    ['killSignal', { killSignal: 'SIGNOPE' }], ['forceKillAfterDelay', { forceKillAfterDelay: -5 }], ['maxBuffer', { maxBuffer: -1 }],
  ]
  for (const [option, options] of bad) {
    await t.throwsAsync(run(['true'], { image: REF, store, entrypoint: [], ...options } as never), { message: new RegExp(`Option \`${option}`) }, option)
    t.deepEqual(containers(), [], `no writable layer left by a bad \`${option}\``)
  }
  for (let i = 0; i < 3; i++) explain(['true'], { image: REF, store })
  t.deepEqual(containers(), [], 'explain() leaves no writable layer')
})

itest('the CLI loads, lists, runs and removes images', (t) => {
  const cli = (args: string[]) => spawnSync(process.execPath, [path.join(__dirname, '..', 'cli.js'), ...args], { encoding: 'utf8' })
  const other = path.join(work, 'cli-store')
  const load = cli(['load', '--store', other, '-i', archive])
  t.is(load.status, 0, load.stderr)
  t.regex(load.stdout, /Loaded image: test\/app:v1/)
  const list = cli(['images', '--store', other])
  t.regex(list.stdout, /test\/app\s+v1\s+[0-9a-f]{12}/)
  const ran = cli(['run', '--store', other, '--image', REF, '--', '-c', 'cat /etc/replaced'])
  t.is(ran.stdout, 'new\n', ran.stderr)
  const positional = cli(['run', '--store', other, REF, '--', '-c', 'echo positional'])
  t.is(positional.stdout, 'positional\n', positional.stderr)
  const rmi = cli(['rmi', '--store', other, REF])
  t.is(rmi.status, 0, rmi.stderr)
  t.regex(rmi.stdout, /Untagged: test\/app:v1/)
  t.notRegex(cli(['images', '--store', other]).stdout, /test\/app/)
})
