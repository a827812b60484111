#!/usr/bin/env node
// The README's "Compared with other tools" startup figures, written from bench/results.json so
// that the two never disagree (issue 16, item 22). `node bench/readme-figures.js` rewrites the
// marked row; `--check` exits 1 if the README is not what the results say. bench/run.js runs it.
'use strict'
const fs = require('node:fs')
const path = require('node:path')

const ROOT = path.join(__dirname, '..')
/** The row it owns: the table's line that starts so. */
const ROW = '| startup per container |'

function median(results, contender, condition) {
  const r = results.find((x) => x.figure === 'latency' && x.contender === contender && x.condition === condition)
  return r && r.error == null ? r.median : undefined
}

const ms = (v) => (v === undefined ? 'not measured' : `${v < 10 ? v.toFixed(2) : v.toFixed(1)} ms`)

/** The table row, one cell per column of the README's table. */
function row(results) {
  const m = (c, cond) => median(results, c, cond)
  const pair = (c) => `${ms(m(c, 'fresh'))}; ${ms(m(c, 'heap200MiB'))} with a 200 MiB heap`
  return [
    ROW.slice(0, -2),
    `${pair('lonely')} (vfork-style clone)`,
    `node→bwrap ${pair('node→bwrap')}`,
    'not measured',
    `crun ${ms(m('crun (minus unshare -m sh)', 'fresh'))} (without the hybrid-host wrapper), runc ${ms(m('runc', 'fresh'))}; ${ms(m('crun (minus unshare -m sh)', 'heap200MiB'))} / ${ms(m('runc', 'heap200MiB'))} with 200 MiB`,
    "not measured (wraps bubblewrap on Linux, so at least bwrap's cost)",
    'not measured (goes through the daemon, containerd and runc)',
    `not measured; its \`child_process.spawn\` is ${pair('node-spawn')} (no isolation) |`,
  ].join(' | ')
}

function render(readme, results, date) {
  const a = readme.indexOf(`\n${ROW}`)
  if (a < 0) throw new Error(`README.md has no line starting with ${ROW}`)
  const b = readme.indexOf('\n', a + 1)
  const text = `${readme.slice(0, a + 1)}${row(results)}${readme.slice(b)}`
  return text.replace(/(Linux 6\.\d+, Node [\d.]+, hybrid cgroups,\n)\d{4}-\d\d-\d\d(;)/, `$1${date.slice(0, 10)}$2`)
}

function main() {
  const results = JSON.parse(fs.readFileSync(path.join(__dirname, 'results.json'), 'utf8'))
  const file = path.join(ROOT, 'README.md')
  const readme = fs.readFileSync(file, 'utf8')
  const text = render(readme, results.results, results.machine.date)
  if (process.argv.includes('--check')) {
    if (text !== readme) {
      process.stderr.write('README.md\'s startup figures differ from bench/results.json: run node bench/readme-figures.js\n')
      process.exit(1)
    }
    return
  }
  fs.writeFileSync(file, text)
}

if (require.main === module) main()
module.exports = { render, row }
