#!/usr/bin/env node
'use strict'
// Where a container's time goes: node bench/profile.js [--heap-mb N] [--n N] [--rootfs DIR | --mirror] [--lib PACKAGE_DIR]
//
// Times the steps of lonely's run() one by one (options, the synchronous addon call that
// clones and sets up until exec, the wait for the exit callback, the wait for the pipes
// to close) next to the same steps of child_process.spawn, interleaved, and prints medians.
// It uses lonely's internal modules (lib/options, lib/native), so it follows their shape.
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const net = require('node:net')
const cp = require('node:child_process')

const { summarize } = require('./lib/stats')
const setup = require('./lib/setup')

const argv = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : dflt
}
const N = Number(opt('--n', 300))
const heapMb = Number(opt('--heap-mb', 0))
const mirror = argv.includes('--mirror')

const hold = []
for (let i = 0; i < heapMb; i++) hold.push(Buffer.alloc(1 << 20, 1))
globalThis.__hold = hold

const root = path.resolve(opt('--lib', path.join(__dirname, '..')))
const { normalize } = require(path.join(root, 'lib/options.js'))
const { native } = require(path.join(root, 'lib/native.js'))

let tmp = null
let rootfs = opt('--rootfs', null)
if (!rootfs && !mirror) {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-profile-'))
  rootfs = setup.makeBusyboxRoot(tmp, setup.staticBusybox())
}

const t = () => process.hrtime.bigint()
const d = (a, b) => Number(b - a) / 1e6

function closed(fd) {
  if (fd === null || fd === undefined) return Promise.resolve()
  const s = new net.Socket({ fd, readable: true, writable: false })
  s.resume()
  return new Promise((r) => s.on('close', r))
}

/** lonely, step by step (what ContainerProcess + run() do, minus the bookkeeping). */
async function lonelyOnce(rec) {
  const t0 = t()
  const opts = normalize(['/bin/true'], mirror ? {} : { rootfs }, true)
  const t1 = t()
  const json = JSON.stringify(opts.spec)
  const t2 = t()
  let onExit
  const exited = new Promise((r) => (onExit = r))
  const started = native().spawnContainer(json, () => onExit(t()))
  const t3 = t()
  if (started.failure) throw new Error(started.failure.message)
  const stdin = new net.Socket({ fd: started.stdin, readable: false, writable: true })
  stdin.end()
  const pipes = Promise.all([closed(started.stdout), closed(started.stderr)]).then(() => t())
  const t4 = t()
  const [tExit, tClosed] = await Promise.all([exited, pipes])
  const t5 = t()
  rec.push({ options: d(t0, t1), json: d(t1, t2), 'addon spawnContainer (clone..exec)': d(t2, t3), 'wrap fds': d(t3, t4), 'exit callback': d(t4, tExit), 'pipes closed': d(t4, tClosed), total: d(t0, t5) })
}

async function nodeOnce(rec) {
  const t0 = t()
  const c = cp.spawn('/bin/true')
  const t1 = t()
  c.stdout.resume()
  c.stderr.resume()
  const exited = new Promise((r) => c.on('exit', () => r(t())))
  const closedAll = new Promise((r) => c.on('close', () => r(t())))
  const [tExit, tClose] = await Promise.all([exited, closedAll])
  rec.push({ 'spawn() (fork..exec)': d(t0, t1), 'exit event': d(t1, tExit), 'close event': d(t1, tClose), total: d(t0, tClose) })
}

async function main() {
  const L = []
  const C = []
  for (let i = 0; i < 30; i++) {
    await lonelyOnce([])
    await nodeOnce([])
  }
  for (let i = 0; i < N; i++) {
    await lonelyOnce(L)
    await nodeOnce(C)
  }
  const show = (name, recs) => {
    console.log(`\n${name} (${recs.length} runs, heap ${heapMb} MiB, ${mirror ? 'mirror root' : `rootfs ${rootfs}`}): median / p90 ms`)
    for (const k of Object.keys(recs[0])) {
      const s = summarize(recs.map((r) => r[k]))
      console.log(`  ${k.padEnd(38)} ${s.median.toFixed(3)}  ${s.p90.toFixed(3)}`)
    }
  }
  show('lonely', L)
  show('node child_process.spawn(/bin/true)', C)
}

main()
  .catch((e) => {
    console.error(e)
    process.exitCode = 1
  })
  .finally(() => {
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true })
    setTimeout(() => process.exit(), 50)
  })
