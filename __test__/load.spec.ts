// Many containers, in a row and at once: nothing leaks, the reaper stays one thread, and
// Node's event loop and libuv threadpool keep working while containers live.
// These are behaviour checks with generous margins, not speed checks (see `npm run bench`).
import test, { type ExecutionContext } from 'ava'
import * as crypto from 'node:crypto'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { promisify } from 'node:util'

import { ContainerError, liveContainers, run, spawn, type ContainerProcess } from '../index'
import { warmUp, expectNoLeak } from './helpers'

/** settled() polls every 20 ms this many times. */
const SETTLE_TRIES = 150
const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const threads = () => fs.readdirSync('/proc/self/task').length


/**
 * `count` containers running `cat`: each lives exactly until we close its stdin, so "while
 * they run" does not depend on how fast the machine starts them. SIGKILLed at teardown.
 */
function cats(t: ExecutionContext, count: number): ContainerProcess[] {
  const procs: ContainerProcess[] = []
  t.teardown(async () => {
    for (const p of procs) p.kill('SIGKILL')
    await Promise.all(procs.map((p) => p.wait()))
  })
  for (let i = 0; i < count; i++) procs.push(spawn(['cat']))
  return procs
}

/** Ends every cat's stdin and returns their [exitCode, signal] pairs. */
async function finish(procs: ContainerProcess[]): Promise<Array<[number | undefined, string | undefined]>> {
  for (const p of procs) p.stdin!.end()
  const results = await Promise.all(procs.map((p) => p.wait()))
  return results.map((r) => [r.exitCode, r.signal])
}

const allExitedZero = (n: number) => Array.from({ length: n }, () => [0, undefined])

/** Rejects if `promise` has not settled after `ms` (a stuck threadpool would otherwise hang until AVA's timeout). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout
  const guard = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms)))
  return Promise.race([promise, guard]).finally(() => clearTimeout(timer))
}

test.serial('200 containers in a row leak no fd, mount, zombie or thread', async (t) => {
  const before = await warmUp()
  const codes: Array<number | undefined> = []
  for (let i = 0; i < 200; i++) codes.push((await run(['/bin/true'])).exitCode)
  t.deepEqual(codes, Array.from({ length: 200 }, () => 0))
  t.is(liveContainers(), 0)
  await expectNoLeak(t, before, { tries: SETTLE_TRIES, threads: true })
})

test.serial('200 containers in a row with every stdio stream ignored leak nothing', async (t) => {
  // The same run without pipes: separates a pipe leak from a leak in the core runtime.
  const before = await warmUp()
  const codes: Array<number | undefined> = []
  for (let i = 0; i < 200; i++) codes.push((await run(['/bin/true'], { stdio: 'ignore' })).exitCode)
  t.deepEqual(codes, Array.from({ length: 200 }, () => 0))
  t.is(liveContainers(), 0)
  await expectNoLeak(t, before, { tries: SETTLE_TRIES, threads: true })
})

test.serial('100 containers at once all exit 0, and the thread count does not follow the live count', async (t) => {
  const before = await warmUp()
  // The thread count with one live container...
  const [one] = cats(t, 1)
  t.is(liveContainers(), 1)
  const withOne = threads()
  t.deepEqual(await finish([one!]), allExitedZero(1))

  // ...and while 100 run(['sleep', '0.2']) are alive, sampled every 5 ms.
  let maxThreads = 0
  let maxLive = 0
  const sampler = setInterval(() => {
    maxThreads = Math.max(maxThreads, threads())
    maxLive = Math.max(maxLive, liveContainers())
  }, 5)
  const results = await Promise.all(Array.from({ length: 100 }, () => run(['sleep', '0.2'])))
  clearInterval(sampler)
  t.deepEqual(results.map((r) => [r.exitCode, r.signal, r.failed]), Array.from({ length: 100 }, () => [0, undefined, false]))
  t.true(maxLive > 1, `sampled while ${maxLive} were alive`)
  t.is(maxThreads, withOne, `threads with 1 alive: ${withOne}; max with up to ${maxLive} alive: ${maxThreads}`)
  await expectNoLeak(t, before, { tries: SETTLE_TRIES, threads: true })
})

test.serial('100 live containers at the same moment use no more threads than one', async (t) => {
  const before = await warmUp()
  const [one] = cats(t, 1)
  const withOne = threads()
  const hundred = [one!, ...cats(t, 99)]
  t.is(liveContainers(), 100)
  await delay(100)
  t.is(liveContainers(), 100)
  t.is(threads(), withOne)
  t.deepEqual(await finish(hundred), allExitedZero(100))
  await expectNoLeak(t, before, { tries: SETTLE_TRIES, threads: true })
})

test.serial('the event loop keeps ticking while 50 containers live and exit', async (t) => {
  const before = await warmUp()
  const spawnStart = performance.now()
  const procs = cats(t, 50)
  const spawnMs = performance.now() - spawnStart
  t.is(liveContainers(), 50)

  let last = performance.now()
  let maxDrift = 0
  let ticks = 0
  const timer = setInterval(() => {
    const now = performance.now()
    maxDrift = Math.max(maxDrift, now - last - 10)
    last = now
    ticks++
  }, 10)
  await delay(1000)
  const ticksWhileLive = ticks
  const driftWhileLive = maxDrift
  t.is(liveContainers(), 50, 'all 50 were alive through the measured second')
  // Then all 50 exit together: 50 exit notifications must not stall the loop either.
  const exits = await finish(procs)
  await delay(100)
  clearInterval(timer)
  t.deepEqual(exits, allExitedZero(50))
  t.log(`spawning 50 (synchronous by design) took ${spawnMs.toFixed(0)} ms`)
  t.log(`while live: ${ticksWhileLive} ticks in 1 s, max drift ${driftWhileLive.toFixed(1)} ms; through the exits: max drift ${maxDrift.toFixed(1)} ms`)
  // Bounds a loaded 2-core machine keeps (its scheduler delays a timer by tens of ms); a loop
  // blocked on a container would stall for the container's whole life, a second or more.
  t.true(ticksWhileLive >= 30, `${ticksWhileLive} ticks of a 10 ms interval in 1 s`)
  t.true(driftWhileLive < 500, `max drift while live ${driftWhileLive} ms`)
  t.true(maxDrift < 500, `max drift through the exits ${maxDrift} ms`)
  await expectNoLeak(t, before, { tries: SETTLE_TRIES, threads: true })
})

test.serial('the libuv threadpool is not blocked while 50 containers live', async (t) => {
  const before = await warmUp()
  const procs = cats(t, 50)
  t.is(liveContainers(), 50)
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-load-'))
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  const file = path.join(dir, 'data')
  fs.writeFileSync(file, crypto.randomBytes(64 * 1024))
  const pbkdf2 = promisify(crypto.pbkdf2)

  // Each job times itself; 16 jobs on 4 pool threads, all queued at once.
  const timed = async (job: () => Promise<unknown>) => {
    const start = performance.now()
    await job()
    return performance.now() - start
  }
  const jobs = [
    ...Array.from({ length: 8 }, () => timed(() => fs.promises.readFile(file))),
    ...Array.from({ length: 8 }, () => timed(() => pbkdf2('secret', 'salt', 1000, 32, 'sha256'))),
  ]
  const took = await within(Promise.all(jobs), 10_000, 'threadpool jobs')
  t.is(liveContainers(), 50, 'the containers were alive throughout')
  t.log(`threadpool jobs took up to ${Math.max(...took).toFixed(1)} ms`)
  for (const ms of took) t.true(ms < 2000, `a threadpool job took ${ms} ms: ${took.map((x) => x.toFixed(0)).join(', ')}`)
  t.deepEqual(await finish(procs), allExitedZero(50))
  await expectNoLeak(t, before, { tries: SETTLE_TRIES, threads: true })
})

type Kind = 'ok' | 'exit 3' | 'killed' | 'timed out' | 'canceled' | 'setup failed'
const KINDS: Kind[] = ['ok', 'exit 3', 'killed', 'timed out', 'canceled', 'setup failed']

/** Starts container `i` of the soak as kind KINDS[i % 6]; resolves with the kind its outcome shows. */
async function soakOne(i: number): Promise<string> {
  const kind = KINDS[i % KINDS.length]!
  try {
    switch (kind) {
      case 'ok': {
        const r = await run(['/bin/true'])
        return r.exitCode === 0 && !r.failed ? 'ok' : `unexpected ${JSON.stringify(r)}`
      }
      case 'exit 3':
        await run(['/bin/sh', '-c', 'exit 3'])
        return 'resolved, expected a rejection'
      case 'killed': {
        const p = spawn(['sleep', '1000'])
        if (i % 4 === 0) p.kill('SIGKILL')
        else setTimeout(() => p.kill('SIGKILL'), i % 20)
        const r = await p
        return r.signal === 'SIGKILL' && r.exitCode === undefined && !r.timedOut && !r.isCanceled ? 'killed' : `unexpected ${JSON.stringify(r)}`
      }
      case 'timed out':
        await run(['sleep', '1000'], { timeout: 50, forceKillAfterDelay: 100 })
        return 'resolved, expected a rejection'
      case 'canceled': {
        const controller = new AbortController()
        setTimeout(() => controller.abort(), i % 30)
        await run(['sleep', '1000'], { cancelSignal: controller.signal, killSignal: 'SIGKILL' })
        return 'resolved, expected a rejection'
      }
      case 'setup failed':
        await run(['/no/such/command'])
        return 'resolved, expected a rejection'
    }
  } catch (e) {
    if (!(e instanceof ContainerError)) return `not a ContainerError: ${e}`
    if (e.stage === 'exec' && e.code === 'ENOENT' && e.exitCode === undefined && e.pid === 0) return 'setup failed'
    if (e.timedOut && !e.isCanceled && e.signal === 'SIGKILL') return 'timed out'
    if (e.isCanceled && !e.timedOut && e.signal === 'SIGKILL') return 'canceled'
    if (e.exitCode === 3 && e.signal === undefined && !e.timedOut && !e.isCanceled) return 'exit 3'
    return `unexpected ContainerError ${e.message} ${JSON.stringify(e)}`
  }
  return 'unreachable'
}

test.serial('soak: 300 containers in waves of 30 mixing exits, kills, timeouts, cancels and setup failures', async (t) => {
  const before = await warmUp()
  const outcomes: string[] = []
  for (let wave = 0; wave < 10; wave++) {
    const settledWave = await Promise.allSettled(Array.from({ length: 30 }, (_, j) => soakOne(wave * 30 + j)))
    for (const s of settledWave) outcomes.push(s.status === 'fulfilled' ? s.value : `threw ${s.reason}`)
  }
  const expected = Array.from({ length: 300 }, (_, i) => KINDS[i % KINDS.length])
  const wrong = outcomes.flatMap((o, i) => (o === expected[i] ? [] : [`#${i}: expected ${expected[i]}, got ${o}`]))
  t.deepEqual(wrong, [])
  t.is(outcomes.length, 300)
  await expectNoLeak(t, before, { tries: SETTLE_TRIES, threads: true })
})
