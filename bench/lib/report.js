'use strict'
// Turns the workers' raw results into rows with ratios, the stdout table, the targets,
// results.json and chart.svg.
const { round } = require('./stats')

const CRUN_NET = 'crun (minus unshare -m sh)'

/** Adds ratioToNodeSpawn / ratioToLonely (and for latencies the p99 ratios) to every row. */
function addRatios(rows) {
  const key = (r) => `${r.figure}\u0000${r.condition}`
  const byKey = new Map()
  for (const r of rows) {
    if (!byKey.has(key(r))) byKey.set(key(r), {})
    byKey.get(key(r))[r.contender] = r
  }
  for (const r of rows) {
    const peers = byKey.get(key(r))
    const ratio = (base, field) => (base && base[field] && r[field] !== null && r[field] !== undefined ? r[field] / base[field] : null)
    r.ratioToNodeSpawn = round(ratio(peers['node-spawn'], 'value'), 3)
    r.ratioToLonely = round(ratio(peers.lonely, 'value'), 3)
    if (r.p99 !== undefined) {
      r.p99RatioToNodeSpawn = round(ratio(peers['node-spawn'], 'p99'), 3)
      r.p99RatioToLonely = round(ratio(peers.lonely, 'p99'), 3)
    }
  }
  return rows
}

function latencyRows(figure, condition, result, labels, note) {
  const rows = []
  for (const [name, s] of Object.entries(result.contenders)) {
    rows.push({
      contender: name,
      figure,
      condition,
      unit: 'ms',
      better: 'lower',
      value: round(s.median),
      median: round(s.median),
      p99: round(s.p99),
      p90: round(s.p90),
      mean: round(s.mean),
      min: round(s.min),
      max: round(s.max),
      n: s.n,
      error: s.error,
      label: labels[name],
      note,
    })
  }
  const crun = result.contenders.crun
  const over = result.contenders['unshare -m sh']
  if (crun && over && crun.n && over.n) {
    rows.push({
      contender: CRUN_NET,
      figure,
      condition,
      unit: 'ms',
      better: 'lower',
      value: round(crun.median - over.median),
      median: round(crun.median - over.median),
      p99: round(crun.p99 - over.median),
      n: crun.n,
      derived: true,
      label: "the crun row's figures minus the median of the 'unshare -m sh' row (an estimate: medians do not subtract exactly)",
      note,
    })
  }
  return rows
}

function fmt(x, unit) {
  if (x === null || x === undefined) return '—'
  if (unit === 'ms') return x.toFixed(x < 10 ? 3 : 2)
  if (unit === 'containers/s') return x.toFixed(0)
  if (unit === 'KiB' || unit === 'KiB/container') return x.toFixed(1)
  return String(x)
}
const rx = (x) => (x === null || x === undefined ? '—' : `${x.toFixed(2)}×`)

/** Throughput: one line per contender, one column per level. */
function throughputTable(rows) {
  const tp = rows.filter((r) => r.figure === 'throughput')
  if (!tp.length) return ''
  const levels = [...new Set(tp.map((r) => r.condition))]
  const names = [...new Set(tp.map((r) => r.contender))]
  const head = ['contender', ...levels]
  const body = names.map((n) => [
    n,
    ...levels.map((l) => {
      const r = tp.find((x) => x.contender === n && x.condition === l)
      if (!r || r.value === null || r.value === undefined) return r?.error ? 'failed' : '—'
      const cpu = r.cpuMsPerContainer == null ? '' : ` ${r.cpuMsPerContainer.toFixed(2)}ms ${Math.round(100 * r.cpuBusyShare)}%`
      return `${Math.round(r.value)}/s ${rx(r.ratioToNodeSpawn)} ${rx(r.ratioToLonely)}${cpu}`
    }),
  ])
  const lines = ['', 'throughput  (containers/s, higher is better; each cell: rate, ÷node-spawn, ÷lonely, machine CPU per container (all cores, kernel workers included), share of all cores busy)']
  lines.push(...grid(head, body))
  const errs = tp.filter((r) => r.error).map((r) => `  ${r.contender}: ${r.error}`)
  return [...lines, ...new Set(errs)].join('\n')
}

/** RSS, threads and fds of the Node process with live containers: one line per contender and state. */
function liveTable(rows) {
  const figs = ['RSS of the Node process', 'threads of the Node process', 'fds of the Node process', 'RSS per live container']
  const lv = rows.filter((r) => figs.includes(r.figure))
  if (!lv.length) return ''
  const keys = []
  for (const r of lv) if (!keys.some((k) => k[0] === r.contender && k[1] === r.condition)) keys.push([r.contender, r.condition])
  const get = (c, cond, fig) => lv.find((r) => r.contender === c && r.condition === cond && r.figure === fig)
  const head = ['contender', 'state', 'RSS KiB', 'threads', 'fds', 'RSS Δ/container KiB', '÷node-spawn', '÷lonely']
  const body = keys.map(([c, cond]) => {
    const per = get(c, cond, 'RSS per live container')
    return [c, cond, String(get(c, cond, figs[0])?.value ?? '—'), String(get(c, cond, figs[1])?.value ?? '—'), String(get(c, cond, figs[2])?.value ?? '—'),
      per ? per.value.toFixed(1) : '', per ? rx(per.ratioToNodeSpawn) : '', per ? rx(per.ratioToLonely) : '']
  })
  return ['', 'the Node process with N live `sleep 30` containers  (lonely: spawn() into the busybox root; node-spawn: child_process.spawn of the same busybox sleep, no isolation)', ...grid(head, body)].join('\n')
}

function grid(head, body) {
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)))
  const line = (cells) => cells.map((c, i) => (i === 0 || (i === 1 && head[1] === 'state') ? (c ?? '').padEnd(widths[i]) : (c ?? '').padStart(widths[i]))).join('  ')
  return [line(head), ...body.map(line)].map((l) => '  ' + l)
}

function table(rows) {
  return [latencyTables(rows.filter((r) => r.figure !== 'throughput' && r.unit === 'ms')), throughputTable(rows), liveTable(rows)].join('\n')
}

function latencyTables(rows) {
  const groups = new Map()
  for (const r of rows) {
    const k = `${r.figure} [${r.condition}]`
    if (!groups.has(k)) groups.set(k, [])
    groups.get(k).push(r)
  }
  const lines = []
  for (const [k, rs] of groups) {
    const unit = rs[0].unit
    const hasP99 = rs.some((r) => r.p99 !== undefined)
    lines.push('')
    lines.push(`${k}  (${unit}, ${rs[0].better} is better${rs[0].note ? `; ${rs[0].note}` : ''})`)
    const head = ['contender', hasP99 ? 'median' : 'value', ...(hasP99 ? ['p99', 'n'] : []), '÷node-spawn', '÷lonely', ...(hasP99 ? ['p99÷node', 'p99÷lonely'] : [])]
    const body = rs.map((r) => {
      if (r.error && !r.n && r.value === null) return [r.contender, `failed: ${r.error.slice(0, 100)}`]
      return [
        r.contender,
        fmt(r.value, unit),
        ...(hasP99 ? [fmt(r.p99, unit), String(r.n ?? '')] : []),
        rx(r.ratioToNodeSpawn),
        rx(r.ratioToLonely),
        ...(hasP99 ? [rx(r.p99RatioToNodeSpawn), rx(r.p99RatioToLonely)] : []),
      ]
    })
    const ok = body.filter((b) => !(b.length === 2 && b[1].startsWith('failed')))
    const widths = head.map((h, i) => Math.max(h.length, ...(i === 0 ? body : ok).map((b) => (b[i] ?? '').length)))
    const line = (cells) => cells.map((c, i) => (i === 0 ? (c ?? '').padEnd(widths[i]) : (c ?? '').padStart(widths[i]))).join('  ')
    lines.push('  ' + line(head))
    for (const b of body) lines.push('  ' + (b.length === 2 && b[1].startsWith('failed') ? `${b[0].padEnd(widths[0])}  ${b[1]}` : line(b)))
  }
  return lines.join('\n')
}

function find(rows, contender, figure, condition) {
  return rows.find((r) => r.contender === contender && r.figure === figure && r.condition === condition && r.value !== null && r.value !== undefined)
}

/** The brief's targets, each confirmed or refuted with the figures it rests on. */
function targets(rows, liveResult, heapCondition) {
  const t = []
  const add = (target, figures, pass) => t.push({ target, figures, pass: pass === null ? null : !!pass })
  const lat = (c, cond = 'fresh') => find(rows, c, 'latency', cond)
  const L = lat('lonely')
  const N = lat('node-spawn')
  if (L && N) add('lonely ≤ 1.0× node-spawn, sequential median (fresh process)', `${L.value} ms vs ${N.value} ms = ${L.ratioToNodeSpawn}×`, L.ratioToNodeSpawn <= 1)
  const LH = lat('lonely', heapCondition)
  const NH = lat('node-spawn', heapCondition)
  if (LH && NH) add('lonely ≤ 0.5× node-spawn, sequential median (process holding 200 MB)', `${LH.value} ms vs ${NH.value} ms = ${LH.ratioToNodeSpawn}×`, LH.ratioToNodeSpawn <= 0.5)
  for (const [peer, factor] of [['node→bwrap', 2], ['crun', 3], [CRUN_NET, 3], ['runc', 10]]) {
    for (const cond of ['fresh', heapCondition]) {
      const P = lat(peer, cond)
      const LL = lat('lonely', cond)
      if (P && LL) add(`lonely ≥ ${factor}× faster than ${peer} (median, ${cond})`, `${P.value} ms / ${LL.value} ms = ${round(P.value / LL.value, 2)}×`, P.value / LL.value >= factor)
      else add(`lonely ≥ ${factor}× faster than ${peer} (median, ${cond})`, 'not measured', null)
    }
  }
  const T = find(rows, 'lonely', 'throughput', '64 in flight')
  const TN = find(rows, 'node-spawn', 'throughput', '64 in flight')
  if (T && TN) add('lonely throughput at 64 in flight ≥ node-spawn’s', `${Math.round(T.value)}/s vs ${Math.round(TN.value)}/s = ${T.ratioToNodeSpawn}×`, T.value >= TN.value)
  else add('lonely throughput at 64 in flight ≥ node-spawn’s', 'not measured (--quick skips 64 in flight)', null)
  if (liveResult) {
    const r = liveResult.readings
    const steps = Object.keys(r).filter((k) => /^live\d+_/.test(k) && k !== 'live0')
    const threads = [`before any container ${r.beforeFirst.threads}`, `0 live ${r.live0.threads}`, ...steps.map((k) => `${r[k].n} live (${r[k].stdio}) ${r[k].threads}`)]
    const added = (at) => {
      const names = {}
      for (const [n, c] of Object.entries(at.threadNames || {})) {
        const d = c - (r.beforeFirst.threadNames?.[n] || 0)
        if (d) names[n] = d
      }
      return names
    }
    const reapers = [r.live0, ...steps.map((k) => r[k])].map((at) => at.threadNames?.['lonely-reaper'] ?? null)
    const flat = steps.every((k) => r[k].threads === (r[k].live0Threads ?? r.live0.threads))
    const extraNames = Object.entries(added(r.live0)).map(([n, c]) => `${c}× ${n}`).join(', ')
    add(
      'one reaper thread regardless of live containers',
      `threads: ${threads.join(', ')}; threads lonely added: ${extraNames || 'none'}; lonely-reaper threads at each state: ${reapers.join(', ')}`,
      reapers.every((x) => x === 1) && flat,
    )
    // The target is about lonely's own cost: the largest step without pipes (with pipes, Node's
    // three net.Socket objects per child dominate, for child_process.spawn alike).
    const big = steps.map((k) => r[k]).filter((x) => x.stdio === 'ignore').sort((a, b) => b.n - a.n)[0]
    if (big) add(`RSS per live container < 64 KiB (${big.n} live, stdio ${big.stdio})`, `${round(big.rssDeltaPerContainerKiB, 1)} KiB/container`, big.rssDeltaPerContainerKiB < 64)
  }
  return t
}

const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

/** A horizontal grouped bar chart of the sequential median latency, both heap conditions, p99 as a whisker. */
function chart(rows, machine, conditions) {
  const names = []
  for (const r of rows) if (r.figure === 'latency' && !names.includes(r.contender) && r.value !== null) names.push(r.contender)
  const colors = ['#3b6fb6', '#e08a2c']
  const get = (n, c) => find(rows, n, 'latency', c)
  // The axis fits the medians (with room for labels); a p99 beyond it is clipped and marked.
  const max = 1.25 * Math.max(1, ...rows.filter((r) => r.figure === 'latency').map((r) => r.value ?? 0))
  const step = [0.5, 1, 2, 5, 10, 20, 50, 100].find((s) => max / s <= 10) || 200
  const axisMax = Math.ceil(max / step) * step
  const left = 200
  const width = 1100
  const plotW = width - left - 260
  const barH = 13
  const groupH = barH * conditions.length + 14
  const top = 96
  const height = top + names.length * groupH + 72
  const x = (v) => left + (v / axisMax) * plotW
  const date = machine.date.slice(0, 16).replace('T', ' ') + ' UTC'
  const out = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12">`)
  out.push(`<rect width="100%" height="100%" fill="#fff"/>`)
  out.push(`<text x="${width / 2}" y="24" text-anchor="middle" font-size="16" font-weight="bold">Start a container that runs /bin/true and wait for it: median latency per container (ms, lower is better)</text>`)
  out.push(`<text x="${width / 2}" y="44" text-anchor="middle" font-size="12" fill="#333">${esc(`${date} · ${machine.cpuModel}, ${machine.cores} cores · ${machine.kernel.split(' ').slice(0, 2).join(' ')} · Node ${machine.node} · cgroups ${machine.cgroups}`)}</text>`)
  out.push(`<text x="${width / 2}" y="62" text-anchor="middle" font-size="11" fill="#555">sequential, one in flight; bars = median, whisker = p99 (an arrow when p99 is off the scale); each contender in both heap conditions of the calling Node process</text>`)
  conditions.forEach((c, i) => {
    const lx = left + i * 230
    out.push(`<rect x="${lx}" y="72" width="12" height="12" fill="${colors[i]}"/><text x="${lx + 18}" y="82">${esc(c === 'fresh' ? 'fresh Node process' : `Node process holding ${c.replace('heap', '').replace('MiB', ' MiB')}`)}</text>`)
  })
  for (let v = 0; v <= axisMax + 1e-9; v += step) {
    out.push(`<line x1="${x(v)}" y1="${top - 4}" x2="${x(v)}" y2="${top + names.length * groupH}" stroke="#e3e3e3"/>`)
    out.push(`<text x="${x(v)}" y="${top + names.length * groupH + 16}" text-anchor="middle" fill="#444">${round(v, 2)}</text>`)
  }
  out.push(`<text x="${left + plotW / 2}" y="${top + names.length * groupH + 36}" text-anchor="middle" fill="#444">milliseconds per container</text>`)
  names.forEach((n, gi) => {
    const gy = top + gi * groupH
    const bold = n === 'lonely' || n === 'lonely-mirror'
    out.push(`<text x="${left - 8}" y="${gy + (barH * conditions.length) / 2 + 4}" text-anchor="end"${bold ? ' font-weight="bold"' : ''}>${esc(n)}</text>`)
    conditions.forEach((c, i) => {
      const r = get(n, c)
      const y = gy + i * barH
      if (!r) {
        out.push(`<text x="${left + 4}" y="${y + barH - 3}" fill="#999" font-size="10">not measured</text>`)
        return
      }
      out.push(`<rect x="${left}" y="${y}" width="${Math.max(1, x(r.value) - left)}" height="${barH - 2}" fill="${colors[i]}"${r.derived ? ' fill-opacity="0.55"' : ''}/>`)
      const mid = y + (barH - 2) / 2
      let end = x(r.value)
      if (r.p99 !== undefined && r.p99 !== null && r.p99 > r.value) {
        const clipped = r.p99 > axisMax
        end = x(Math.min(r.p99, axisMax))
        out.push(`<line x1="${x(r.value)}" y1="${mid}" x2="${end}" y2="${mid}" stroke="#222" stroke-width="1"${clipped ? ' stroke-dasharray="3,2"' : ''}/>`)
        if (clipped) out.push(`<path d="M${end} ${mid - 4} L${end + 6} ${mid} L${end} ${mid + 4} Z" fill="#222"/>`)
        else out.push(`<line x1="${end}" y1="${y + 1}" x2="${end}" y2="${y + barH - 3}" stroke="#222" stroke-width="1"/>`)
      }
      const label = `${r.value.toFixed(2)}${r.ratioToLonely ? ` (${r.ratioToLonely.toFixed(2)}× lonely)` : ''}${r.p99 ? ` · p99 ${r.p99.toFixed(1)}` : ''}`
      out.push(`<text x="${left + plotW + 18}" y="${y + barH - 3}" font-size="10" fill="#222">${esc(label)}</text>`)
    })
  })
  const foot = `lonely ${machine.lonely.version} @ ${machine.lonely.commit ?? '(no git)'}${machine.lonely.addon ? `, addon sha256 ${machine.lonely.addon.sha256.slice(0, 12)}` : ''} · load average at start ${machine.loadAverageAtStart?.join(' ')} · the results JSON has every figure`
  out.push(`<text x="${width / 2}" y="${height - 8}" text-anchor="middle" font-size="10" fill="#666">${esc(foot)}</text>`)
  out.push(`</svg>`)
  return out.join('\n') + '\n'
}

module.exports = { addRatios, latencyRows, table, targets, chart, CRUN_NET }
