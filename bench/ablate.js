#!/usr/bin/env node
'use strict'
// What each default of lonely costs: node bench/ablate.js [--n 300] [--lib PACKAGE_DIR] [--heap-mb N]
//
// Sequential `run(['/bin/true'], { rootfs, ...variant })`, one default turned off per
// variant (seccomp, masked/read-only paths, the network namespace, ...), interleaved
// round-robin with child_process.spawn as the reference; prints medians and the
// difference to the full default. Options a build does not know are reported and skipped.
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const cp = require('node:child_process')

const setup = require('./lib/setup')
const { summarize } = require('./lib/stats')

const argv = process.argv.slice(2)
const opt = (name, dflt) => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : dflt
}
const N = Number(opt('--n', 300))
const heapMb = Number(opt('--heap-mb', 0))
const root = path.resolve(opt('--lib', path.join(__dirname, '..')))
const lonely = require(path.join(root, 'index.js'))

const hold = []
for (let i = 0; i < heapMb; i++) hold.push(Buffer.alloc(1 << 20, 1))
globalThis.__hold = hold

const VARIANTS = {
  'default': {},
  'seccomp: unconfined': { seccomp: 'unconfined' },
  'maskedPaths: [], readonlyPaths: []': { maskedPaths: [], readonlyPaths: [] },
  'noNewPrivileges: false': { noNewPrivileges: false },
  'capAdd: [ALL]': { capAdd: ['ALL'] },
  'namespaces.net: false': { namespaces: { net: false } },
  'seccomp, masked/read-only paths, no_new_privs, net ns off': { seccomp: 'unconfined', maskedPaths: [], readonlyPaths: [], noNewPrivileges: false, namespaces: { net: false } },
  'stdio: ignore': { stdio: 'ignore' },
}

function nodeSpawn() {
  return new Promise((resolve, reject) => {
    const c = cp.spawn('/bin/true')
    c.stdout.resume()
    c.stderr.resume()
    c.on('error', reject)
    c.on('close', resolve)
  })
}

async function main() {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-ablate-'))
  try {
    const rootfs = setup.makeBusyboxRoot(tmp, setup.staticBusybox())
    const runs = { 'node-spawn (reference)': nodeSpawn }
    for (const [name, extra] of Object.entries(VARIANTS)) {
      const f = () => lonely.run(['/bin/true'], { rootfs, ...extra })
      try {
        await f()
        runs[`lonely, ${name}`] = f
      } catch (e) {
        console.log(`skipped lonely, ${name}: ${e.message}`)
      }
    }
    const names = Object.keys(runs)
    const samples = Object.fromEntries(names.map((n) => [n, []]))
    for (const n of names) for (let i = 0; i < 20; i++) await runs[n]()
    const batch = 10
    for (let r = 0; r < Math.ceil(N / batch); r++) {
      const order = [...names.slice(r % names.length), ...names.slice(0, r % names.length)]
      for (const n of order) {
        for (let i = 0; i < batch; i++) {
          const t0 = process.hrtime.bigint()
          await runs[n]()
          samples[n].push(Number(process.hrtime.bigint() - t0) / 1e6)
        }
      }
    }
    const base = summarize(samples['lonely, default'] || []).median
    console.log(`\nsequential latency, ${N} runs each, heap ${heapMb} MiB, ${root}; load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`)
    console.log(`  ${'variant'.padEnd(68)} median ms   p90 ms   vs lonely default`)
    for (const n of names) {
      const s = summarize(samples[n])
      const d = base ? `${s.median - base >= 0 ? '+' : ''}${(s.median - base).toFixed(3)} ms` : ''
      console.log(`  ${n.padEnd(68)} ${s.median.toFixed(3).padStart(9)} ${s.p90.toFixed(3).padStart(8)}   ${d}`)
    }
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true })
  }
}

main().then(
  () => setTimeout(() => process.exit(0), 50),
  (e) => {
    console.error(e)
    process.exit(1)
  },
)
