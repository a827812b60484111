// The README cites bench/results.json: its comparison row is generated from it and must match.
import test from 'ava'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { spawnSync } from 'node:child_process'

const ROOT = path.resolve(__dirname, '..')
const figures = require('../bench/readme-figures.js') as { render: (readme: string, results: unknown[], date: string) => string }

test('the README\'s "Compared with other tools" startup row is what bench/results.json says (node bench/readme-figures.js --check)', (t) => {
  const check = spawnSync(process.execPath, [path.join(ROOT, 'bench/readme-figures.js'), '--check'], { encoding: 'utf8' })
  t.is(check.status, 0, check.stderr)
  const results = JSON.parse(fs.readFileSync(path.join(ROOT, 'bench/results.json'), 'utf8'))
  const lonely = results.results.find((r: { contender: string; condition: string; figure: string }) => r.contender === 'lonely' && r.condition === 'fresh' && r.figure === 'latency')
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8')
  t.true(readme.includes(`| startup per container | ${lonely.median.toFixed(2)} ms;`), 'the row shows the results file\'s lonely median')
  // Control: a stale figure (the one an earlier README had) is what the check catches.
  const stale = readme.replace(/^\| startup per container \| [\d.]+ ms;/m, '| startup per container | 1.71 ms;')
  t.not(figures.render(stale, results.results, results.machine.date), stale)
})
