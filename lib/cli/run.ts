// `lonely run`: a container on this terminal, its exit status as docker's, signals forwarded.
import * as fs from 'node:fs'
import { constants } from 'node:os'

import { ContainerError, create, explain, spawn, type ContainerExit, type ContainerProcess } from '../../index'
import { optionOf, type OptionError } from '../optionerror'
import { EXIT_RUNTIME, UsageError, parseRun, runHelp } from './flags'
import { buildPlan, noSuchImage, translate, type Plan } from './plan'

export function exitStatus(exit: { exitCode?: number; signal?: NodeJS.Signals }): number {
  if (exit.signal) {
    // Real-time signals have no name: the library reports them as `SIG34`.
    const n = constants.signals[exit.signal] ?? Number(/^SIG(\d+)$/.exec(exit.signal)?.[1])
    return Number.isInteger(n) ? 128 + n : EXIT_RUNTIME
  }
  return exit.exitCode ?? EXIT_RUNTIME
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']

/**
 * Forwards SIGINT/SIGTERM/SIGHUP to the container. Installed before the container starts,
 * so that no signal can kill lonely with its default action and orphan the container:
 * one that arrives while spawn() runs is dispatched by the event loop after attach().
 */
class SignalForwarder {
  #proc: ContainerProcess | undefined
  #offs = FORWARDED.map((sig) => {
    const handler = () => {
      this.#proc?.kill(sig)
    }
    process.on(sig, handler)
    return () => process.off(sig, handler)
  })

  attach(proc: ContainerProcess): void {
    this.#proc = proc
  }

  close(): void {
    this.#offs.forEach((off) => off())
  }
}

async function runPlain(plan: Plan): Promise<number> {
  const signals = new SignalForwarder()
  let exit: ContainerExit
  let sent = 0
  try {
    const proc = spawn(plan.command, { ...plan.options, stdio: [plan.interactive ? 'inherit' : 'ignore', 'inherit', 'inherit'] })
    signals.attach(proc)
    exit = await proc.wait()
    sent = proc.killSignal
  } finally {
    signals.close()
  }
  if (exit.timedOut) process.stderr.write(`lonely: container timed out after ${plan.timeoutSeconds} s\n`)
  if (exit.oomKilled) {
    process.stderr.write(`lonely: container was killed: out of memory (--memory ${plan.options.limits?.memory})\n`)
    return 137 // as docker, whichever process of the container the kernel picked
  }
  return timedOutStatus(exit, sent)
}

/** After --timeout, 128 + the signal that ended it, or the one sent when PID 1 handled it and exited (as --help says). */
function timedOutStatus(exit: ContainerExit, sent: number): number {
  return exit.timedOut && !exit.signal ? 128 + sent : exitStatus(exit)
}

/** A container (or an exec, `start`) on this terminal: raw mode with -i, its size followed, signals forwarded. */
const CREATE_HELP = `Usage: lonely create [OPTIONS] IMAGE [COMMAND] [ARG...], or lonely create [OPTIONS] [--] COMMAND [ARG...]

Create a detached container, not started: every setup step is done and PID 1 waits until
\`lonely start\`. Prints its id. Takes run's flags (-d is implied):`

/** The pty's size at start: your terminal's, as docker run -t sends it with the create (else 80x24). */
export const clientTty = (): true | { columns: number; rows: number } => {
  if (!process.stdout.isTTY) return true
  const [columns, rows] = process.stdout.getWindowSize()
  return columns > 0 && rows > 0 ? { columns, rows } : true
}

export async function runTty(plan: Pick<Plan, 'interactive' | 'timeoutSeconds' | 'options'>, start: () => ContainerProcess = () => spawn((plan as Plan).command, { ...plan.options, tty: clientTty() })): Promise<number> {
  const signals = new SignalForwarder()
  let proc: ContainerProcess
  try {
    proc = start()
  } catch (e) {
    signals.close()
    throw e
  }
  signals.attach(proc)
  const stdin = process.stdin
  const stdout = process.stdout
  const resize = () => {
    if (!stdout.isTTY) return
    const [cols, rows] = stdout.getWindowSize()
    proc.resize(cols, rows)
  }
  resize()
  if (stdout.isTTY) stdout.on('resize', resize)

  let raw = false
  const restore = () => {
    if (raw) stdin.setRawMode(false)
    raw = false
  }
  process.on('exit', restore)
  const onData = (chunk: Buffer) => proc.stdin?.write(chunk)
  // EOF of a non-terminal stdin becomes the terminal's EOF for the container (lib/terminal.ts).
  const onEnd = () => proc.stdin?.end()
  if (plan.interactive) {
    if (stdin.isTTY) {
      stdin.setRawMode(true)
      raw = true
    }
    stdin.on('data', onData)
    stdin.on('end', onEnd)
    stdin.resume()
  }

  const out = proc.stdout!
  const drained = new Promise<void>((resolve) => {
    out.on('end', resolve)
    out.on('close', resolve)
  })
  out.pipe(stdout, { end: false })
  try {
    const exit = await proc.wait()
    // PID 1's end kills every process holding the terminal: its output ends soon after.
    await Promise.race([drained, new Promise((r) => setTimeout(r, 1000).unref())])
    if (exit.timedOut) {
      const wasRaw = raw
      restore()
      process.stderr.write(`${wasRaw ? '\r\n' : ''}lonely: container timed out after ${plan.timeoutSeconds} s\n`)
    }
    if (exit.oomKilled) {
      restore()
      process.stderr.write(`\r\nlonely: container was killed: out of memory (--memory ${plan.options.limits?.memory})\n`)
    }
    return timedOutStatus(exit, proc.killSignal)
  } finally {
    signals.close()
    restore()
    process.off('exit', restore)
    stdout.off('resize', resize)
    stdin.off('data', onData)
    stdin.off('end', onEnd)
    stdin.pause()
    out.unpipe(stdout)
    out.destroy()
    proc.stdin?.destroy()
  }
}

/** `lonely run`, or with `created` `lonely create` (run's flags; detached, not started). */
export async function run(args: string[], created = false): Promise<number> {
  const cmd = created ? 'create' : 'run'
  const parsed = parseRun(args)
  if (parsed.bools.get('help')) {
    process.stdout.write(created ? CREATE_HELP + runHelp().slice(runHelp().indexOf('\n\n')) : runHelp())
    return 0
  }
  if (parsed.command.length === 0 && !parsed.values.has('image')) {
    throw new UsageError(`"lonely ${cmd}" requires an image or a command.\nUsage: lonely ${cmd} [OPTIONS] IMAGE [COMMAND] [ARG...], or lonely ${cmd} [OPTIONS] [--] COMMAND [ARG...]\nSee 'lonely ${cmd} --help'.`)
  }
  if (created) parsed.bools.set('detach', true)
  let plan: Plan | undefined
  try {
    plan = buildPlan(parsed)
    for (const note of plan.notes) process.stderr.write(`lonely: note: ${note}\n`)
    if (plan.printPlan) {
      const text = explain(plan.command, { ...plan.options, tty: plan.tty, stdio: [plan.interactive ? 'inherit' : 'ignore', 'inherit', 'inherit'] })
      process.stdout.write(text.endsWith('\n') ? text : text + '\n')
      return 0
    }
    // docker makes a missing -v source and a named volume's directory (root's, 0755) on use.
    for (const dir of plan.makeDirs) fs.mkdirSync(dir, { recursive: true, mode: 0o755 })
    if (plan.detach) {
      // -i keeps its stdin open and -t gives it a terminal, both held by its monitor for `lonely attach`.
      const c = await create(plan.command, {
        ...plan.options,
        detached: true,
        tty: plan.tty,
        stdin: plan.interactive ? 'pipe' : 'ignore',
        ...(created ? { start: false } : {}),
        ...(plan.name !== undefined ? { name: plan.name } : {}),
        ...(Object.keys(plan.labels).length ? { labels: plan.labels } : {}),
      })
      process.stdout.write(`${c.id}\n`)
      return 0
    }
    return await (plan.tty ? runTty(plan) : runPlain(plan))
  } catch (e) {
    if (optionOf(e)) throw new UsageError(translate(e as OptionError, plan))
    // `lonely run debian cat ...` without that image: the word was taken as a command.
    const word = plan?.command[0]
    if (e instanceof ContainerError && e.stage === 'exec' && e.code === 'ENOENT' && plan && plan.options.image === undefined && plan.options.rootfs === undefined && word && !word.includes('/')) {
      e.message += `; and ${noSuchImage(word, undefined).replace(/; or, .*/, '')}`
    }
    throw e
  }
}

