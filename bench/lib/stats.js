'use strict'
// Order statistics over latency samples (milliseconds).

/** Nearest-rank percentile of an ascending array: the smallest value with at least p of the samples at or below it. */
function percentile(sorted, p) {
  if (sorted.length === 0) return null
  const rank = Math.max(1, Math.ceil(p * sorted.length))
  return sorted[Math.min(rank, sorted.length) - 1]
}

function summarize(samples) {
  const s = [...samples].sort((a, b) => a - b)
  const n = s.length
  if (n === 0) return { n: 0, median: null, p99: null, mean: null, min: null, max: null }
  const median = n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
  return {
    n,
    median,
    p99: percentile(s, 0.99),
    p90: percentile(s, 0.9),
    mean: s.reduce((a, b) => a + b, 0) / n,
    min: s[0],
    max: s[n - 1],
  }
}

function round(x, digits = 3) {
  if (x === null || x === undefined || !Number.isFinite(x)) return x ?? null
  const f = 10 ** digits
  return Math.round(x * f) / f
}

module.exports = { percentile, summarize, round }
