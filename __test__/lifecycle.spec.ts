// A container's life from the outside: exit codes, signals, kill escalation, timeouts,
// cancellation, coexistence with Node's own children, and what happens when Node dies.
// Every test that makes containers also checks that nothing leaked (see expectNoLeak).
import test, { type ExecutionContext } from 'ava'
import * as cp from 'node:child_process'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { promisify } from 'node:util'

import { ContainerError, create, liveContainers, run, spawn, type ContainerProcess } from '../index'
import { warmUp, expectNoLeak, settled, snapshot } from './helpers'

const REPO = path.resolve(__dirname, '..')
/** settled() polls every 20 ms this many times. */
const SETTLE_TRIES = 50
const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))


/** A `sleep` argument no other process on the host has: `1000.<random digits>` (a fractional 1000 s). */
function uniqueSleep(): string {
  return `1000.${process.pid}${Math.floor(Math.random() * 1e9)}`
}

/** Host pids whose command line is exactly `sleep <tag>`: containers' processes are visible in the host's /proc. */
function sleepers(tag: string): number[] {
  const want = `sleep\0${tag}\0`
  const found: number[] = []
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      if (fs.readFileSync(`/proc/${entry}/cmdline`, 'latin1') === want) found.push(Number(entry))
    } catch {
      // exited while we looked
    }
  }
  return found
}

/** Polls until `sleep <tag>` shows up on the host (or `ms` passed); returns its pids. */
async function waitForSleeper(tag: string, ms = 5000): Promise<number[]> {
  const end = Date.now() + ms
  for (;;) {
    const pids = sleepers(tag)
    if (pids.length > 0 || Date.now() > end) return pids
    await delay(10)
  }
}

/** Dead: gone from /proc, or a zombie waiting for its (new) parent to reap it. */
function isDead(pid: number): boolean {
  const state = procState(pid)
  return state === undefined || state === 'Z'
}

/** Polls until every pid in `pids` is dead (or `ms` passed); returns the ones still alive. */
async function waitForDeath(pids: number[], ms: number): Promise<number[]> {
  const end = Date.now() + ms
  for (;;) {
    const alive = pids.filter((pid) => !isDead(pid))
    if (alive.length === 0 || Date.now() > end) return alive
    await delay(10)
  }
}

/** The process state letter from /proc/<pid>/stat, or undefined once it is gone. */
function procState(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]
  } catch {
    return undefined
  }
}

/** Resolves with the first chunk of `proc`'s stdout that contains `word`. */
function waitForOutput(proc: ContainerProcess, word: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = ''
    const onData = (chunk: Buffer) => {
      seen += chunk.toString()
      if (seen.includes(word)) {
        proc.stdout!.off('data', onData)
        resolve()
      }
    }
    proc.stdout!.on('data', onData)
    proc.stdout!.once('close', () => reject(new Error(`stdout closed before "${word}"; got ${JSON.stringify(seen)}`)))
  })
}

/**
 * Spawns a container that is SIGKILLed and awaited at the end of the test whatever happens:
 * AVA's assertions throw, and a container left running would skew every later leak check.
 */
function spawnTracked(t: ExecutionContext, command: string[], options?: Parameters<typeof spawn>[1]): ContainerProcess {
  const proc = spawn(command, options)
  t.teardown(async () => {
    proc.kill('SIGKILL')
    await proc.wait()
  })
  return proc
}

function recordExit(proc: ContainerProcess): Array<[number | null, NodeJS.Signals | null]> {
  const events: Array<[number | null, NodeJS.Signals | null]> = []
  proc.on('exit', (code: number | null, signal: NodeJS.Signals | null) => events.push([code, signal]))
  return events
}

// ---------------------------------------------------------------------------------------
// Exit codes and the result's fields

test.serial('exit codes 0, 1, 42 and 255 pass through with reject: false', async (t) => {
  const before = await warmUp()
  for (const code of [0, 1, 42, 255]) {
    const r = await run(['/bin/sh', '-c', `exit ${code}`], { reject: false })
    t.is(r.exitCode, code, `exit ${code}`)
    t.is(r.signal, undefined)
    t.is(r.failed, code !== 0)
    t.is(r.timedOut, false)
    t.is(r.isCanceled, false)
    t.is(r.command, `/bin/sh -c exit ${code}`)
    t.is(r.stdout, '')
    t.is(r.stderr, '')
    t.true(Number.isInteger(r.pid) && r.pid > 0, `pid ${r.pid}`)
    t.true(r.pid !== process.pid)
    t.true(r.durationMs > 0, `durationMs ${r.durationMs}`)
    t.is(typeof r.usage?.cpuUserMs, 'number')
    t.is(typeof r.usage?.cpuSystemMs, 'number')
    t.true(r.usage!.cpuUserMs >= 0 && r.usage!.cpuSystemMs >= 0)
    // With reject: false a failure is still a ContainerError (execa's shape), success a plain result.
    t.is(r instanceof ContainerError, code !== 0)
    if (code !== 0) t.is((r as ContainerError).message, `Command failed with exit code ${code}: /bin/sh -c exit ${code}`)
  }
  await expectNoLeak(t, before, { tries: SETTLE_TRIES, threads: true })
})

test.serial('with reject: true a non-zero exit rejects with a ContainerError carrying exitCode', async (t) => {
  const before = await warmUp()
  const ok = await run(['/bin/sh', '-c', 'exit 0'])
  t.is(ok.exitCode, 0)
  t.is(ok.failed, false)
  for (const code of [1, 42, 255]) {
    const error = await t.throwsAsync(run(['/bin/sh', '-c', `echo out; echo err >&2; exit ${code}`]), { instanceOf: ContainerError })
    t.is(error?.name, 'ContainerError')
    t.is(error?.exitCode, code)
    t.is(error?.signal, undefined)
    t.is(error?.failed, true)
    t.is(error?.timedOut, false)
    t.is(error?.isCanceled, false)
    t.is(error?.stdout, 'out')
    t.is(error?.stderr, 'err')
    t.is(error?.stage, undefined, 'the program ran: no setup stage')
    t.true(error!.pid > 0)
    t.is(error?.message, `Command failed with exit code ${code}: /bin/sh -c echo out; echo err >&2; exit ${code}`)
  }
  await expectNoLeak(t, before, { tries: SETTLE_TRIES, threads: true })
})

test.serial('pid is the host pid of the container\'s PID 1', async (t) => {
  const before = await warmUp()
  const tag = uniqueSleep()
  const proc = spawnTracked(t, ['sleep', tag])
  // The host sees that pid running exactly our command. (Polled: the vfork-style clone returns
  // while exec is still setting up the new image, whose cmdline reads empty for that instant.)
  t.deepEqual(await waitForSleeper(tag), [proc.pid])
  t.true(proc.kill('SIGKILL'))
  const r = await proc
  t.is(r.pid, proc.pid)
  t.deepEqual(sleepers(tag), [])
  await expectNoLeak(t, before, { tries: SETTLE_TRIES, threads: true })
})

test.serial('usage reports the CPU time the container burned', async (t) => {
  const before = await warmUp()
  // PID 1 spins until the kernel has charged it 20 clock ticks (200 ms at USER_HZ 100) by its
  // own /proc/self/stat; `read` is a builtin, so no other process is involved.
  const spin = 'while :; do read -r s < /proc/self/stat; set -- $s; [ $(( ${14} + ${15} )) -ge 20 ] && exit 0; done'
  const r = await run(['/bin/sh', '-c', spin])
  t.is(r.exitCode, 0)
  const cpu = r.usage!.cpuUserMs + r.usage!.cpuSystemMs
  t.true(cpu >= 150, `cpu ${cpu} ms (user ${r.usage!.cpuUserMs}, system ${r.usage!.cpuSystemMs})`)
  // One single-threaded process cannot burn more CPU than wall time (catches a unit mix-up).
  t.true(cpu <= r.durationMs + 20, `cpu ${cpu} ms > duration ${r.durationMs} ms`)
  // An idle container is charged next to nothing.
  const idle = await run(['sleep', '0.3'])
  const idleCpu = idle.usage!.cpuUserMs + idle.usage!.cpuSystemMs
  t.true(idleCpu < 100, `idle cpu ${idleCpu} ms`)
  await expectNoLeak(t, before, { tries: SETTLE_TRIES, threads: true })
})

// ---------------------------------------------------------------------------------------
// Signals and kill()

test.serial('spawn().kill("SIGKILL") ends PID 1: signal SIGKILL, no exitCode, an exit event', async (t) => {
  const before = await warmUp()
  const proc = spawnTracked(t, ['sleep', uniqueSleep()])
  const events = recordExit(proc)
  t.is(proc.exitCode, null)
  t.is(proc.signalCode, null)
  t.true(proc.kill('SIGKILL'))
  const r = await proc.wait()
  t.is(r.signal, 'SIGKILL')
  t.is(r.exitCode, undefined)
  t.is(r.failed, true)
  t.is(r.timedOut, false)
  t.is(r.isCanceled, false)
  t.deepEqual(events, [[null, 'SIGKILL']])
  t.is(proc.exitCode, null)
  t.is(proc.signalCode, 'SIGKILL')
  t.is(proc.kill('SIGKILL'), false, 'kill() after exit')
  t.is(proc.kill(), false, 'kill() with the default signal after exit')
  t.deepEqual(events, [[null, 'SIGKILL']], 'exit is emitted once')
  await expectNoLeak(t, before, { tries: SETTLE_TRIES, threads: true })
})

test.serial('kill() returns false and exit carries the code after a normal exit', async (t) => {
  const before = await warmUp()
  const proc = spawn(['/bin/sh', '-c', 'exit 3'])
  const events = recordExit(proc)
  const r = await proc
  t.is(r.exitCode, 3)
  t.is(r.signal, undefined)
  t.deepEqual(events, [[3, null]])
  t.is(proc.exitCode, 3)
  t.is(proc.signalCode, null)
  t.is(proc.kill('SIGTERM'), false)
  t.is(proc.kill('SIGKILL'), false)
  t.is(proc.kill(9), false)
  await expectNoLeak(t, before, { tries: SETTLE_TRIES, threads: true })
})

test.serial('PID 1 ignores SIGKILL sent from inside its own namespace', async (t) => {
  const before = await warmUp()
  const r = await run(['/bin/sh', '-c', 'kill -KILL 1; kill -KILL $$; echo survived'])
  t.is(r.stdout, 'survived')
  t.is(r.exitCode, 0)
  t.is(r.signal, undefined)
  await expectNoLeak(t, before, { tries: SETTLE_TRIES, threads: true })
})

test.serial('kill("SIGTERM") on a handler-less PID 1 is ignored, SIGKILL follows after forceKillAfterDelay', async (t) => {
  const before = await warmUp()
  const proc = spawnTracked(t, ['sleep', uniqueSleep()], { forceKillAfterDelay: 1000 })
  const events = recordExit(proc)
  const sentAt = performance.now()
  t.true(proc.kill('SIGTERM'))
  // Control: well into the grace period PID 1 is still there (the SIGTERM did nothing).
  await delay(300)
  t.is(proc.exitCode, null)
  t.is(proc.signalCode, null)
  t.not(procState(proc.pid), undefined, 'PID 1 still exists after SIGTERM')
  t.not(procState(proc.pid), 'Z')
  const r = await proc
  const took = performance.now() - sentAt
  t.is(r.signal, 'SIGKILL')
  t.is(r.exitCode, undefined)
  t.deepEqual(events, [[null, 'SIGKILL']])
  t.true(took >= 995, `ended ${took} ms after SIGTERM, before forceKillAfterDelay (1000 ms)`)
  t.true(took < 10_000, `ended ${took} ms after SIGTERM`)
  await expectNoLeak(t, before, { tries: SETTLE_TRIES, threads: true })
})

test.serial('a PID 1 that traps SIGTERM exits with its own code on kill("SIGTERM")', async (t) => {
  const before = await warmUp()
  const proc = spawnTracked(t, ['/bin/sh', '-c', 'trap "exit 7" TERM; echo ready; while :; do sleep 0.1; done'], { forceKillAfterDelay: 30_000 })
  const events = recordExit(proc)
  await waitForOutput(proc, 'ready')
  t.true(proc.kill('SIGTERM'))
  const r = await proc
  t.is(r.exitCode, 7)
  t.is(r.signal, undefined)
  t.deepEqual(events, [[7, null]])
  t.is(proc.kill('SIGTERM'), false)
  await expectNoLeak(t, before, { tries: SETTLE_TRIES, threads: true })
})

// ---------------------------------------------------------------------------------------
// Timeouts and cancellation take the whole container down

test.serial('timeout kills the whole container, a background grandchild included', async (t) => {
  const before = await warmUp()
  const tag = uniqueSleep()
  const script = `sleep ${tag} & wait`
  let settledAt = 0
  const promise = run(['/bin/sh', '-c', script], { timeout: 1500, forceKillAfterDelay: 300 })
  const done = promise.then(
    () => (settledAt = performance.now()),
    () => (settledAt = performance.now()),
  )
  // Control: the grandchild runs and is visible from the host before the timeout fires.
  const pids = await waitForSleeper(tag)
  t.is(pids.length, 1, 'the grandchild is running')
  t.is(settledAt, 0, 'seen before the timeout fired')
  const error = await t.throwsAsync(promise, { instanceOf: ContainerError })
  await done
  t.is(error?.timedOut, true)
  t.is(error?.isCanceled, false)
  // sh as PID 1 has no SIGTERM handler: the kernel drops the SIGTERM and SIGKILL follows.
  t.is(error?.signal, 'SIGKILL')
  t.is(error?.exitCode, undefined)
  t.is(error?.failed, true)
  t.is(error?.message, `Command timed out after 1500 milliseconds: /bin/sh -c ${script}`)
  t.true(error!.durationMs >= 1500 + 300 - 10, `durationMs ${error!.durationMs}`)
  // When PID 1 is reaped the kernel has already killed and reaped everything in its namespace.
  t.deepEqual(sleepers(tag), [], 'grandchild gone when the promise settles')
  t.is(procState(pids[0]!), undefined)
  await expectNoLeak(t, before, { tries: SETTLE_TRIES, threads: true })
})

test.serial('timeout with killSignal SIGKILL does not wait for forceKillAfterDelay', async (t) => {
  const before = await warmUp()
  const error = await t.throwsAsync(run(['sleep', uniqueSleep()], { timeout: 200, killSignal: 'SIGKILL', forceKillAfterDelay: 60_000 }), { instanceOf: ContainerError })
  t.is(error?.timedOut, true)
  t.is(error?.signal, 'SIGKILL')
  t.true(error!.durationMs >= 195, `durationMs ${error!.durationMs}`)
  // Escalation would have ended it after 60.2 s: half that is a bound no loaded machine reaches.
  t.true(error!.durationMs < 30_000, `durationMs ${error!.durationMs}`)
  await expectNoLeak(t, before, { tries: SETTLE_TRIES, threads: true })
})

/**
 * Keeps the JS thread busy for at least `ms` and until the reaper has taken every container
 * (liveContainers() is 0): their exit callbacks then wait in the queue behind any expired timer.
 */
function blockEventLoopUntilReaped(ms: number): void {
  const start = performance.now()
  while (performance.now() - start < ms || (liveContainers() > 0 && performance.now() - start < 10_000)) {
    // spin
  }
}

test.serial('a container that exited before its timeout was handled is not reported as timed out', async (t) => {
  const before = await warmUp()
  // The timer expires while the JS thread is busy; by the time it runs, /bin/true has exited 0
  // and been reaped (kill() finds nothing to signal). Nothing was killed: it did not time out.
  // Started from the check phase (setImmediate), so libuv's next iteration runs the expired
  // timer before it polls for the queued exit callback: the order is deterministic.
  await new Promise((resolve) => setImmediate(resolve))
  const promise = run(['/bin/true'], { timeout: 5, reject: false })
  blockEventLoopUntilReaped(50)
  t.is(liveContainers(), 0, 'reaped while the JS thread was busy')
  const r = await promise
  t.is(r.exitCode, 0)
  t.is(r.signal, undefined)
  t.is(r.timedOut, false, 'timedOut although nothing was killed')
  t.is(r.failed, false)
  await expectNoLeak(t, before, { tries: SETTLE_TRIES, threads: true })
})

test.serial('a container that exited before abort() was handled is not reported as canceled', async (t) => {
  const before = await warmUp()
  const controller = new AbortController()
  const promise = run(['/bin/true'], { cancelSignal: controller.signal, reject: false })
  blockEventLoopUntilReaped(50)
  t.is(liveContainers(), 0, 'reaped while the JS thread was busy')
  controller.abort()
  const r = await promise
  t.is(r.exitCode, 0)
  t.is(r.signal, undefined)
  t.is(r.isCanceled, false, 'isCanceled although nothing was killed')
  t.is(r.failed, false)
  await expectNoLeak(t, before, { tries: SETTLE_TRIES, threads: true })
})

test.serial('a timeout that does not expire changes nothing', async (t) => {
  const before = await warmUp()
  const r = await run(['/bin/sh', '-c', 'exit 0'], { timeout: 60_000 })
  t.is(r.exitCode, 0)
  t.is(r.timedOut, false)
  t.is(r.failed, false)
  await expectNoLeak(t, before, { tries: SETTLE_TRIES, threads: true })
})

test.serial('cancelSignal: abort() rejects with isCanceled and kills the grandchild', async (t) => {
  const before = await warmUp()
  const tag = uniqueSleep()
  const script = `sleep ${tag} & wait`
  const controller = new AbortController()
  const promise = run(['/bin/sh', '-c', script], { cancelSignal: controller.signal, forceKillAfterDelay: 300 })
  promise.catch(() => {})
  t.teardown(async () => {
    controller.abort()
    await promise.catch(() => {})
  })
  const pids = await waitForSleeper(tag)
  t.is(pids.length, 1, 'the grandchild is running')
  controller.abort()
  const error = await t.throwsAsync(promise, { instanceOf: ContainerError })
  t.is(error?.isCanceled, true)
  t.is(error?.timedOut, false)
  t.is(error?.signal, 'SIGKILL')
  t.is(error?.exitCode, undefined)
  t.is(error?.message, `Command was canceled: /bin/sh -c ${script}`)
  t.deepEqual(sleepers(tag), [], 'grandchild gone when the promise settles')
  t.is(procState(pids[0]!), undefined)
  await expectNoLeak(t, before, { tries: SETTLE_TRIES, threads: true })
})

// execa's `cancelSignal can already be aborted`: the promise rejects (never a synchronous throw)
// with isCanceled, failed and "Command was canceled", its cause the signal's reason. execa spawns
// and SIGTERMs at once; a container is not even made (no clone), so nothing it would do happens.
test.serial('an already-aborted cancelSignal starts nothing (no clone: its write into a bind mount never happens) and rejects as execa\'s, with isCanceled, for run(), spawn().wait(), create(), and exec()/run() of a created container', async (t) => {
  const before = await warmUp()
  const out = fs.mkdtempSync('/tmp/lonely-cancel-')
  t.teardown(() => fs.rmSync(out, { recursive: true, force: true }))
  const mounts = [{ type: 'bind' as const, source: out, target: '/out' }]
  const writes = (name: string) => ['/bin/sh', '-c', `echo ran > /out/${name}`]
  const ended = (e: Partial<ContainerError> | undefined, command: string) => {
    t.like(e, { isCanceled: true, failed: true, timedOut: false, pid: 0, exitCode: undefined, signal: undefined, command })
  }
  // An error (run, create): execa's message too. A wait() resolves with the same exit, no message.
  const canceled = (e: Partial<ContainerError> | undefined, command: string) => {
    ended(e, command)
    t.is(e?.message, `Command was canceled: ${command}`)
  }
  const live = liveContainers()
  const reason = new Error('stop')
  const promise = run(writes('run'), { mounts, cancelSignal: AbortSignal.abort(reason) })
  t.is(liveContainers(), live, 'no container exists, not even for a moment')
  const error = await t.throwsAsync(promise, { instanceOf: ContainerError })
  canceled(error, writes('run').join(' '))
  t.is(error?.cause, reason, 'as execa: the cause is the signal\'s reason')
  t.like(await run(writes('run'), { mounts, cancelSignal: AbortSignal.abort(), reject: false }), { isCanceled: true, failed: true })

  const proc = spawn(writes('spawn'), { mounts, cancelSignal: AbortSignal.abort() })
  let exitEvent: unknown[] | undefined
  proc.on('exit', (...args) => (exitEvent = args))
  t.is(proc.pid, 0)
  t.false(proc.kill(), 'nothing to kill')
  t.false(proc.resize(80, 24))
  const exit = await proc.wait()
  ended(exit, writes('spawn').join(' '))
  t.true(proc.isCanceled)
  t.deepEqual(exitEvent, [null, null])
  t.truthy(proc.stdout, 'its streams are there, and ended')
  t.is((await proc.stdout!.toArray()).length, 0)

  canceled(await t.throwsAsync(create(writes('create'), { mounts, cancelSignal: AbortSignal.abort() }), { instanceOf: ContainerError }), writes('create').join(' '))

  const c = await create(undefined, { mounts })
  t.teardown(() => c.stop().catch(() => {}))
  const exec = c.exec(writes('exec'), { cancelSignal: AbortSignal.abort() })
  ended(await exec.wait(), writes('exec').join(' '))
  canceled(await t.throwsAsync(c.run(writes('exec-run'), { cancelSignal: AbortSignal.abort() }), { instanceOf: ContainerError }), writes('exec-run').join(' '))
  // Control: the same exec without the signal does write (so the absent files mean something).
  t.like(await c.run(writes('control')), { exitCode: 0 })
  await c.stop()
  t.deepEqual(fs.readdirSync(out), ['control'], 'only the control ran')
  await expectNoLeak(t, before, { tries: SETTLE_TRIES, threads: true })
})

test.serial('an abort during the run reports isCanceled every time (20 runs, 20 spawns, as execa\'s error.isCanceled)', async (t) => {
  const before = await warmUp()
  for (let i = 0; i < 20; i++) {
    const controller = new AbortController()
    const promise = run(['sleep', '1000'], { cancelSignal: controller.signal, killSignal: 'SIGKILL', reject: false })
    setTimeout(() => controller.abort(), i % 5)
    const r = await promise
    t.like(r, { isCanceled: true, failed: true, signal: 'SIGKILL', timedOut: false }, `run ${i}`)
  }
  for (let i = 0; i < 20; i++) {
    const controller = new AbortController()
    const proc = spawn(['/bin/sh', '-c', 'echo up; exec sleep 1000'], { cancelSignal: controller.signal, killSignal: 'SIGKILL', stdin: 'ignore' })
    proc.stdout!.once('data', () => controller.abort())
    const exit = await proc.wait()
    t.like(exit, { isCanceled: true, failed: true, signal: 'SIGKILL' }, `spawn ${i}`)
    t.true(proc.isCanceled)
  }
  await expectNoLeak(t, before, { tries: SETTLE_TRIES, threads: true })
})

test.serial('abort() after the container exited changes nothing', async (t) => {
  const before = await warmUp()
  const controller = new AbortController()
  const r = await run(['/bin/sh', '-c', 'exit 0'], { cancelSignal: controller.signal })
  controller.abort()
  t.is(r.exitCode, 0)
  t.is(r.isCanceled, false)
  t.is(r.failed, false)
  await expectNoLeak(t, before, { tries: SETTLE_TRIES, threads: true })
})

// ---------------------------------------------------------------------------------------
// Node's own children and Node's own death

test.serial('Node\'s child_process keeps working while containers run (the reaper steals no child)', async (t) => {
  const before = await warmUp()
  const execFile = promisify(cp.execFile)
  // Five containers that live until we close their stdin.
  const containers = Array.from({ length: 5 }, () => spawnTracked(t, ['cat']))
  t.is(liveContainers(), 5)

  const echo = await execFile('/bin/echo', ['ok'])
  t.is(echo.stdout, 'ok\n')
  const exitOf = (file: string, args: string[]) =>
    new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      const child = cp.spawn(file, args, { stdio: 'ignore' })
      child.once('error', reject)
      child.once('exit', (code, signal) => resolve([code, signal]))
    })
  t.deepEqual(await exitOf('/bin/echo', ['ok']), [0, null])
  // Node children and containers exiting at the same moment: each side gets its own statuses.
  const nodeKids = Array.from({ length: 20 }, (_, i) => exitOf('/bin/sh', ['-c', `exit ${i + 1}`]))
  const shortContainers = Array.from({ length: 10 }, (_, i) => run(['/bin/sh', '-c', `exit ${i + 100}`], { reject: false }))
  t.deepEqual(await Promise.all(nodeKids), Array.from({ length: 20 }, (_, i) => [i + 1, null]))
  t.deepEqual((await Promise.all(shortContainers)).map((r) => r.exitCode), Array.from({ length: 10 }, (_, i) => i + 100))
  const failing = await t.throwsAsync(execFile('/bin/sh', ['-c', 'exit 3']))
  t.is((failing as { code?: number }).code, 3)

  t.is(liveContainers(), 5, 'the long-lived containers were not disturbed')
  for (const c of containers) c.stdin!.end()
  const results = await Promise.all(containers.map((c) => c.wait()))
  t.deepEqual(results.map((r) => [r.exitCode, r.signal]), Array.from({ length: 5 }, () => [0, undefined]))
  await expectNoLeak(t, before, { tries: SETTLE_TRIES, threads: true })
})

/**
 * Starts a Node process that spawns a container (PID 1 `sh`, grandchild `sleep <tag>`) with
 * the library and reports PID 1's host pid, then dies on our word: `exit` (process.exit) or
 * `kill` (SIGKILL to itself).
 */
async function containerOfDyingNode(t: ExecutionContext, how: 'exit' | 'kill'): Promise<void> {
  const before = snapshot()
  const tag = uniqueSleep()
  const code = [
    `const { spawn } = require(${JSON.stringify(path.join(REPO, 'index.ts'))})`,
    `const p = spawn(['/bin/sh', '-c', ${JSON.stringify(`sleep ${tag} & wait`)}], { stdio: 'ignore' })`,
    `process.stdout.write('ready ' + p.pid + '\\n')`,
    `process.stdin.once('data', (d) => (String(d).trim() === 'kill' ? process.kill(process.pid, 'SIGKILL') : process.exit(0)))`,
  ].join('\n')
  const child = cp.spawn(process.execPath, ['--import', 'tsx', '-e', code], { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] })
  t.teardown(() => {
    child.kill('SIGKILL')
  })
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  const exited = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => child.once('exit', (c, s) => resolve([c, s])))
  const line = await new Promise<string>((resolve) => {
    let out = ''
    child.stdout.on('data', (d) => {
      out += d
      if (out.includes('\n')) resolve(out)
    })
    child.once('exit', () => resolve(out))
  })
  const match = /^ready (\d+)\n$/.exec(line)
  t.truthy(match, `child said ${JSON.stringify(line)}; stderr ${stderr}`)
  if (!match) return
  // Control: the container and its grandchild run, as processes of the child Node.
  const pid1 = Number(match[1])
  const pids = await waitForSleeper(tag)
  t.is(pids.length, 1, 'the grandchild is running')
  t.false(isDead(pid1))
  t.is(Number(fs.readFileSync(`/proc/${pid1}/stat`, 'utf8').split(') ')[1]!.split(' ')[1]), child.pid!, 'PID 1 is a child of the Node child')
  child.stdin.write(`${how}\n`)
  t.deepEqual(await exited, how === 'kill' ? [null, 'SIGKILL'] : [0, null])
  // Within 2 s both are dead. (PID 1 tears its namespace down first, and once orphaned it may
  // linger as a zombie until the host's init reaps it: that counts as dead.)
  const alive = await waitForDeath([pid1, pids[0]!], 2000)
  t.deepEqual(alive, [], `still alive: ${alive.map((pid) => `${pid} (${procState(pid)})`).join(', ')}`)
  t.deepEqual(sleepers(tag), [])
  const after = await settled(before)
  t.is(after.zombies, 0)
}

test.serial('a Node process that exits leaves no container behind', async (t) => {
  await containerOfDyingNode(t, 'exit')
})

test.serial('a Node process killed with SIGKILL leaves no container behind', async (t) => {
  await containerOfDyingNode(t, 'kill')
})
