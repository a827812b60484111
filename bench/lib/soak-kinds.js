'use strict'
// The soak's kinds of container, each with the outcome it must have. Every container runs
// in the default host-mirror root and carries the soak's marker in its command line (as
// `$0` of `sh -c`, or an ignored argument of `true`), so that a process that outlived
// its container can be found on the host.
//
// `sequential(kind, i)` uses run() (rejections, output collection) and resolves with the
// kind the outcome shows. `concurrent` makes a wave: spawn() of `live` containers that
// stay alive until the soak opens the gate (a `read` on stdin), plus setup failures.
const events = require('node:events')

const KINDS = ['ok', 'exit 3', 'killed', 'timed out', 'canceled', 'setup failed', 'oom killed', 'limits (pids+cpus)', 'output not read']

// The memory hog of the `oom killed` kind. `tail` (the default): GNU tail keeps the one
// 100 MB "line" of zeros; its memory is charged partly in kernel context (pipe buffers, the
// copy into tail's buffers). `awk`: a string doubled until memory runs out, charged by page
// faults in user mode only.
const HOGS = {
  tail: 'head -c 100000000 /dev/zero | tail >/dev/null',
  awk: `awk 'BEGIN { s = "x"; while (1) s = s s }'`,
}
let HOG = HOGS.tail
function setHog(name) {
  if (!HOGS[name]) throw new Error(`--hog must be one of ${Object.keys(HOGS).join(', ')}; got ${name}`)
  HOG = HOGS[name]
  return HOG
}
const LIMITED = { pids: 32, cpus: 0.5 }
const OOM_LIMIT = 16 * 1024 * 1024

/** Names the outcome of a finished container (a result or a ContainerError) by kind. */
function classify(r, marker, { stdout, stderr } = {}) {
  const plain = !r.timedOut && !r.isCanceled && !r.oomKilled
  if (r.stage !== undefined) {
    return r.stage === 'exec' && r.code === 'ENOENT' && r.pid === 0 && r.exitCode === undefined ? 'setup failed' : `setup failure at ${r.stage} ${r.code}`
  }
  if (!r.oomKilled && r.usage && r.usage.memoryPeakBytes >= OOM_LIMIT && r.signal === undefined) {
    // The cgroup reached its limit, yet no OOM kill: a charge in kernel context (a pipe
    // buffer, a copy to user memory) failed and the program got ENOMEM/EFAULT instead.
    return `memory limit hit, not OOM-killed: exit ${r.exitCode}, ${JSON.stringify(String(stderr ?? r.stderr ?? '').trim().slice(0, 120))}`
  }
  // The kernel kills the biggest process (here `tail`, below PID 1) and the reaper then the
  // rest; a shell that exits first ends with its own status. Either way the run failed as OOM.
  if (r.oomKilled) return r.failed && !r.timedOut && !r.isCanceled ? 'oom killed' : `oom + ${JSON.stringify(brief(r))}`
  if (r.timedOut) return r.signal === 'SIGKILL' && !r.isCanceled && r.exitCode === undefined ? 'timed out' : `timed out + ${JSON.stringify(brief(r))}`
  if (r.isCanceled) return r.signal === 'SIGKILL' && r.exitCode === undefined ? 'canceled' : `canceled + ${JSON.stringify(brief(r))}`
  if (plain && r.signal === 'SIGKILL' && r.exitCode === undefined) return 'killed'
  if (plain && r.signal === undefined && r.exitCode === 3 && r.failed) return 'exit 3'
  if (plain && r.signal === undefined && r.exitCode === 0 && !r.failed) {
    const out = stdout ?? r.stdout
    // A limited container prints the marker and has cgroup accounting.
    if (out === marker) return r.usage && typeof r.usage.memoryPeakBytes === 'number' ? 'limits (pids+cpus)' : 'limits without accounting'
    return out === '' || out === undefined ? 'ok' : `ok with output ${JSON.stringify(out)}`
  }
  return `unexpected ${JSON.stringify(brief(r))}`
}

function brief(r) {
  const { command, exitCode, signal, timedOut, isCanceled, oomKilled, failed, stage, code, message, stderr, usage } = r
  return { command, exitCode, signal, timedOut, isCanceled, oomKilled, failed, stage, code, message, stderr: typeof stderr === 'string' ? stderr.slice(0, 200) : undefined, usage }
}

/** An AbortSignal that never fires, shared by many containers as a service's shutdown signal would be. */
const neverAborted = new AbortController().signal
events.setMaxListeners(0, neverAborted)
/** Listeners still on that signal: each container must remove its own when it ends. */
const sharedSignalListeners = () => events.getEventListeners(neverAborted, 'abort').length

/** One container of `kind` with run(); resolves with the kind its outcome shows. */
async function sequential(lib, kind, i, marker) {
  const { run, spawn, ContainerError } = lib
  const v = Math.floor(i / KINDS.length) // this kind's own count: picks its variant in turn
  const sleeper = ['sh', '-c', 'sleep 1000; :', marker] // `; :` keeps sh as PID 1 with sleep below it
  try {
    switch (kind) {
      case 'ok':
        return classify(await run(['/bin/true', marker], { cancelSignal: neverAborted }), marker)
      case 'exit 3':
        return classify(await run(['sh', '-c', 'exit 3', marker]), marker)
      case 'killed': {
        const p = spawn(sleeper, { forceKillAfterDelay: 20 })
        // SIGKILL at once, after a few ms, or SIGTERM (ignored by PID 1) escalated to SIGKILL.
        if (v % 3 === 0) p.kill('SIGKILL')
        else if (v % 3 === 1) setTimeout(() => p.kill('SIGKILL'), v % 10)
        else setTimeout(() => p.kill(), v % 10)
        return classify(await p, marker, { stdout: '' })
      }
      case 'timed out':
        return classify(await run(sleeper, v % 2 ? { timeout: 20, killSignal: 'SIGKILL' } : { timeout: 20, forceKillAfterDelay: 20 }), marker)
      case 'canceled': {
        const c = new AbortController()
        if (v % 4 === 0) c.abort() // already aborted when the container starts
        else setTimeout(() => c.abort(), v % 15)
        return classify(await run(sleeper, { cancelSignal: c.signal, ...(v % 2 ? { killSignal: 'SIGKILL' } : { forceKillAfterDelay: 20 }) }), marker)
      }
      case 'setup failed':
        return classify(await run([`/no/such/command-${marker}`]), marker)
      case 'oom killed':
        return classify(await run(['sh', '-c', HOG, marker], { limits: { memory: '16m' } }), marker)
      case 'limits (pids+cpus)':
        return classify(await run(['sh', '-c', '/bin/true; echo "$0"', marker], { limits: LIMITED }), marker)
      case 'output not read': {
        // spawn() and wait, never touching stdout/stderr (as with child_process, the streams
        // must not keep their pipes open once the container is gone).
        const got = classify(await spawn(['sh', '-c', 'echo "$0"; echo "$0" >&2', marker]), marker, { stdout: '' })
        return got === 'ok' ? kind : got
      }
    }
  } catch (e) {
    if (!(e instanceof ContainerError)) return `threw ${e && e.stack}`
    return classify(e, marker)
  }
  return `unknown kind ${kind}`
}

/**
 * One wave of the concurrent phase: `live` containers (the kinds but `setup failed`, in
 * turn) that all stay alive until every one of them has started, plus one setup failure
 * per kind cycle (one per 8 live), started in between. Kills and cancels happen once all are alive; the
 * timeouts start last, with a timeout long enough to outlast the rest of the ramp.
 * Resolves with { outcomes: [{ kind, got }], peakLive, peakDescendants, peakCgroups, rampMs, ... }.
 */
async function wave(lib, live, marker, probe) {
  const { spawn, liveContainers, ContainerError } = lib
  const liveKinds = KINDS.filter((k) => k !== 'setup failed' && k !== 'timed out')
  const per = liveKinds.length + 1 // the kinds alive at the peak, timeouts included: one setup failure per `per`
  const nTimeouts = Math.round(live / per)
  const order = []
  for (let i = 0; order.length < live - nTimeouts; i++) order.push(liveKinds[i % liveKinds.length])
  const outcomes = []
  const pending = []
  const gated = [] // streams to write the gate's newline to
  const kills = []
  const sharedCancel = new AbortController() // one signal for half the cancels, as a service's shutdown signal
  events.setMaxListeners(0, sharedCancel.signal)
  const ownCancels = []
  const gate = (marker, cmd) => ['sh', '-c', `read x; ${cmd}`, marker]
  const t0 = performance.now()
  const follow = (kind, p, stdout, stderr = '', as = null) => {
    pending.push(
      Promise.all([p.wait(), stdout, stderr]).then(
        ([r, out, err]) => {
          const got = classify(r, marker, { stdout: out, stderr: err })
          outcomes.push({ kind, got: as && got === as ? kind : got })
        },
        (e) => outcomes.push({ kind, got: `threw ${e && e.stack}` }),
      ),
    )
  }
  const readAll = (stream) =>
    new Promise((resolve) => {
      let s = ''
      stream.setEncoding('utf8')
      stream.on('data', (d) => (s += d))
      stream.on('close', () => resolve(s.replace(/\n$/, '')))
      stream.on('error', () => resolve(s))
    })
  const start = (kind, j) => {
    switch (kind) {
      case 'ok':
      case 'exit 3': {
        const p = spawn(gate(marker, kind === 'ok' ? 'exit 0' : 'exit 3'), { stdout: 'ignore', stderr: 'ignore' })
        gated.push(p.stdin)
        return follow(kind, p, '')
      }
      case 'killed': {
        const p = spawn(['sh', '-c', 'sleep 1000; :', marker], { stdin: 'ignore', stderr: 'ignore', forceKillAfterDelay: 200 })
        kills.push(() => p.kill(j % 2 ? 'SIGKILL' : 'SIGTERM'))
        return follow(kind, p, readAll(p.stdout))
      }
      case 'canceled': {
        const own = new AbortController()
        const signal = j % 2 ? sharedCancel.signal : own.signal
        if (!(j % 2)) ownCancels.push(own)
        const p = spawn(['sh', '-c', 'sleep 1000; :', marker], { stdio: 'ignore', cancelSignal: signal, killSignal: 'SIGKILL' })
        return follow(kind, p, '')
      }
      case 'oom killed': {
        const p = spawn(gate(marker, HOG), { stdout: 'ignore', limits: { memory: '16m' } })
        gated.push(p.stdin)
        return follow(kind, p, '', readAll(p.stderr))
      }
      case 'limits (pids+cpus)': {
        const p = spawn(gate(marker, '/bin/true; echo "$0"'), { stderr: 'ignore', limits: LIMITED })
        gated.push(p.stdin)
        return follow(kind, p, readAll(p.stdout))
      }
      case 'output not read': {
        const p = spawn(gate(marker, 'echo "$0"; echo "$0" >&2'))
        gated.push(p.stdin)
        return follow(kind, p, '', '', 'ok')
      }
      case 'timed out': {
        // Started last: this timeout must only fire once every container of the wave is alive.
        const p = spawn(['sh', '-c', 'sleep 1000; :', marker], { stdio: 'ignore', timeout: timeoutMs, ...(j % 2 ? { killSignal: 'SIGKILL' } : { forceKillAfterDelay: 200 }) })
        return follow(kind, p, '')
      }
      case 'setup failed': {
        try {
          spawn([`/no/such/command-${marker}`], { stdio: 'ignore' })
          outcomes.push({ kind, got: 'spawn() returned, expected a ContainerError' })
        } catch (e) {
          outcomes.push({ kind, got: e instanceof ContainerError ? classify(e, marker) : `threw ${e && e.stack}` })
        }
      }
    }
  }
  let timeoutMs = 0
  let failures = 0
  for (let j = 0; j < order.length; j++) {
    start(order[j], j)
    if (j % per === per - 1) {
      start('setup failed', j)
      failures++
    }
    if (j % 50 === 49) await new Promise((resolve) => setImmediate(resolve)) // let exits and pipes be handled
  }
  // The timeouts: 3x what the ramp took per container so far, for all of them, plus a second.
  const perContainer = (performance.now() - t0) / order.length
  timeoutMs = Math.round(3 * perContainer * nTimeouts + 1000)
  for (let j = 0; j < nTimeouts; j++) {
    start('timed out', j)
    if ((order.length + j) % per === per - 1) {
      start('setup failed', j)
      failures++
    }
  }
  const rampMs = performance.now() - t0
  // All `live` started and none released: this is the peak.
  const peak = probe()
  const peakLive = liveContainers()
  // Open the gate, kill, cancel.
  for (const s of gated) s.end('go\n')
  for (const k of kills) k()
  sharedCancel.abort()
  for (const c of ownCancels) c.abort()
  await Promise.all(pending)
  return { outcomes, live, setupFailures: failures, peakLive, rampMs, totalMs: performance.now() - t0, timeoutMs, peak }
}

module.exports = { KINDS, HOGS, setHog, sharedSignalListeners, sequential, wave, classify }
