// The handle of a running container, shaped like child_process's ChildProcess.
import { EventEmitter } from 'node:events'
import * as net from 'node:net'
import * as tty from 'node:tty'
import { PassThrough, type Readable, type Writable } from 'node:stream'
import { constants } from 'node:os'

import { native } from './native'
import { optionError } from './optionerror'
import { relayIn, relayOut } from './relay'
import { terminalInput, type TerminalInput } from './terminal'
import type { Normalized } from './options'
import { signalNumber } from './options'
import { ContainerError, signalName, type ContainerResult, type Stats } from './result'
import type { CgroupStats, ExitInfo } from '../binding'

/** How a container ended; `run()` adds its buffered stdout and stderr. */
export type ContainerExit = Omit<ContainerResult<never>, 'stdout' | 'stderr'>

function readable(fd: number | undefined | null, isTty: boolean): Readable | null {
  if (fd === undefined || fd === null) return null
  if (isTty) {
    // The pty master reads EIO once the container's side is gone: that is its EOF, so the
    // user's stream ends cleanly instead of erroring.
    const master = new tty.ReadStream(fd)
    const out = new PassThrough()
    master.pipe(out)
    master.on('error', (e: NodeJS.ErrnoException) => (e.code === 'EIO' ? out.end() : out.destroy(e)))
    return out
  }
  return new net.Socket({ fd, readable: true, writable: false })
}

/** Errors of a stdin the container stopped reading are not ours; anything else is re-emitted. */
function quietWhenClosed(stream: Writable): Writable {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE' && e.code !== 'ECONNRESET' && e.code !== 'EIO') stream.emit('lonely:error', e)
  })
  return stream
}

function writable(fd: number | undefined | null): Writable | null {
  if (fd === undefined || fd === null) return null
  return quietWhenClosed(new net.Socket({ fd, readable: false, writable: true }))
}

/** A cgroup's accounting as the API reports it. */
export function toStats(s: CgroupStats): Stats {
  return {
    memoryBytes: s.memoryBytes ?? undefined,
    memoryPeakBytes: s.memoryPeakBytes ?? undefined,
    cpuMs: s.cpuUsageUs == null ? undefined : s.cpuUsageUs / 1000,
    pids: s.pids ?? undefined,
  }
}

export class ContainerProcess extends EventEmitter implements PromiseLike<ContainerExit> {
  /** Host pid of the container's PID 1. */
  readonly pid: number
  readonly stdin: Writable | null
  readonly stdout: Readable | null
  /** null with `tty: true` (the terminal merges it into stdout). */
  readonly stderr: Readable | null
  readonly command: string
  exitCode: number | null = null
  signalCode: NodeJS.Signals | null = null
  timedOut = false
  isCanceled = false
  /** The pty's fd with `tty: true` (for window-size changes). */
  readonly ttyFd: number | null
  /** @internal Detached: PID 1's start time (its identity in the state directory). */
  readonly startTime: number | null

  #opts: Normalized
  #started = performance.now()
  #exited: Promise<ContainerExit>
  /** The exit once the relayed (`inherit`) output has been copied too. */
  #done: Promise<ContainerExit>
  #timers: NodeJS.Timeout[] = []
  #running = true
  #terminal: TerminalInput | undefined

  /**
   * Starts the container; throws ContainerError if setup or exec failed. With a `cancelSignal`
   * that is already aborted nothing starts (no clone): the handle ends at once as canceled.
   */
  constructor(opts: Normalized) {
    super()
    this.#opts = opts
    this.command = opts.spec.argv.join(' ') || 'lonely-init'
    let resolveExit!: (e: ContainerExit) => void
    this.#exited = new Promise((resolve) => (resolveExit = resolve))
    if (opts.cancelSignal?.aborted) {
      opts.discard?.()
      this.pid = 0
      this.startTime = null
      this.ttyFd = null
      this.isCanceled = true
      this.#running = false
      // As child_process's streams of a process that is gone: there, and already ended.
      const ended = (fd: number) => {
        if (opts.spec.stdio[fd] !== 'pipe' || opts.relayed.includes(fd)) return null
        const s = new PassThrough()
        s.end()
        return s
      }
      this.stdin = ended(0)
      this.stdout = ended(1)
      this.stderr = opts.spec.tty ? null : ended(2)
      this.#done = this.#exited
      const exit: ContainerExit = {
        command: this.command, pid: 0, durationMs: performance.now() - this.#started,
        timedOut: false, isCanceled: true, failed: true, oomKilled: false,
      }
      queueMicrotask(() => {
        this.emit('exit', null, null)
        resolveExit(exit)
      })
      return
    }
    const started = native().spawnContainer(JSON.stringify(opts.spec), (info: ExitInfo) => resolveExit(this.#onExit(info)))
    if (started.failure) {
      opts.discard?.()
      const f = started.failure
      // The caller's value could not be used (an fd that is not open, a bind source that changed since validation...).
      if (f.option) throw optionError(RangeError, f.option, `Option \`${f.option}\`: ${f.message}.`)
      throw new ContainerError(f.message, {
        command: this.command, pid: 0, stdout: '', stderr: '', durationMs: performance.now() - this.#started,
        timedOut: false, isCanceled: false, stage: f.stage, code: f.code, errno: f.errno, path: f.path ?? undefined,
      })
    }
    this.pid = started.pid
    this.startTime = started.startTime ?? null
    const isTty = opts.spec.tty
    this.ttyFd = isTty ? started.stdout ?? null : null
    if (isTty && started.stdin != null) {
      const master = quietWhenClosed(new tty.WriteStream(started.stdin)) as tty.WriteStream
      this.#terminal = terminalInput(master, started.stdin)
      this.stdin = quietWhenClosed(this.#terminal.stream)
    } else {
      this.stdin = writable(started.stdin)
    }
    this.stdout = readable(started.stdout, isTty)
    this.stderr = readable(started.stderr, false)
    // `inherit`: ours to copy, not the caller's to read (as child_process, these stay null).
    const relays: Promise<void>[] = []
    for (const fd of opts.relayed) {
      if (fd === 0 && this.stdin) relayIn(process.stdin, this.stdin, this.#exited)
      if (fd === 1 && this.stdout) relays.push(relayOut(this.stdout, process.stdout))
      if (fd === 2 && this.stderr) relays.push(relayOut(this.stderr, process.stderr))
      if (fd === 0) this.stdin = null
      if (fd === 1) this.stdout = null
      if (fd === 2) this.stderr = null
    }
    this.#done = Promise.all([this.#exited, ...relays]).then(([exit]) => exit)
    if (opts.input !== undefined && this.stdin) this.stdin.end(opts.input)
    if (opts.timeout > 0) {
      this.#timers.push(setTimeout(() => this.#stop('timedOut'), opts.timeout))
    }
    const cancel = opts.cancelSignal
    if (cancel) {
      const onAbort = () => this.#stop('isCanceled')
      cancel.addEventListener('abort', onAbort, { once: true })
      this.#exited.then(() => cancel.removeEventListener('abort', onAbort))
    }
  }

  #stop(reason: 'timedOut' | 'isCanceled'): void {
    if (!this.#running) return
    // Only when a signal was really sent: one that raced with the exit changes nothing.
    if (this.kill(this.#opts.killSignal)) this[reason] = true
  }

  #onExit(info: ExitInfo): ContainerExit {
    this.#running = false
    for (const t of this.#timers) clearTimeout(t)
    // As child_process: nobody reads stdin any more, so its fd goes now; output nobody
    // started reading is drained so that its pipe closes (child_process's flushStdio).
    this.#terminal?.close()
    this.stdin?.destroy()
    for (const out of [this.stdout, this.stderr]) {
      if (out && out.readableFlowing === null && !out.destroyed) out.resume()
    }
    if (this.#opts.keptLayer) this.#opts.release?.()
    else this.#opts.discard?.()
    this.exitCode = info.exitCode ?? null
    this.signalCode = signalName(info.signal) ?? null
    const result: ContainerExit = {
      command: this.command,
      pid: this.pid,
      exitCode: info.exitCode ?? undefined,
      signal: this.signalCode ?? undefined,
      durationMs: performance.now() - this.#started,
      timedOut: this.timedOut,
      isCanceled: this.isCanceled,
      // An OOM kill fails the run even when PID 1 itself exited 0 (its work was cut short).
      failed: this.timedOut || this.isCanceled || info.exitCode !== 0 || (info.oomKilled ?? false),
      ...(this.#opts.keptLayer ? { keptLayer: this.#opts.keptLayer } : {}),
      oomKilled: info.oomKilled ?? false,
      usage: {
        cpuUserMs: info.userCpuUs / 1000,
        cpuSystemMs: info.systemCpuUs / 1000,
        ...(info.cgroup?.memoryPeakBytes != null ? { memoryPeakBytes: info.cgroup.memoryPeakBytes } : {}),
        ...(info.cgroup?.pidsPeak != null ? { pidsPeak: info.cgroup.pidsPeak } : {}),
      },
    }
    this.emit('exit', this.exitCode, this.signalCode)
    return result
  }

  /** The signal `timeout`, `cancelSignal` and `kill()` send first: `killSignal`, or the image's StopSignal, else SIGTERM. */
  get killSignal(): number {
    return this.#opts.killSignal
  }

  /**
   * Signals the container's PID 1 (default: the `killSignal` option). PID 1 ignores signals
   * it has no handler for, so unless it is SIGKILL, SIGKILL follows after `forceKillAfterDelay`.
   * Killing PID 1 ends every process in the container. False if it already ended.
   */
  kill(signal: NodeJS.Signals | number = this.#opts.killSignal): boolean {
    const sig = signalNumber('signal', signal)
    if (!this.#running) return false
    const sent = native().killContainer(this.pid, sig)
    if (sent && sig !== constants.signals.SIGKILL && this.#opts.forceKillAfterDelay >= 0) {
      const force = setTimeout(() => this.#running && native().killContainer(this.pid, constants.signals.SIGKILL), this.#opts.forceKillAfterDelay)
      this.#timers.push(force)
    }
    return sent
  }

  /**
   * Sets the container's terminal size (`tty`), as a terminal emulator does when its window
   * changes: the programs on it get SIGWINCH and read the new size with TIOCGWINSZ (`stty size`).
   * The size it starts with is the `tty` option's (80x24 for `tty: true`). False without a
   * terminal or once it ended.
   */
  resize(columns: number, rows: number): boolean {
    for (const [name, v] of [['columns', columns], ['rows', rows]] as const) {
      if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw optionError(RangeError, name, `Option \`${name}\` must be an integer from 0 to 65535 (0: unknown, as a terminal without a size says); got ${v}.`)
    }
    if (this.ttyFd === null || !this.#running) return false
    try {
      native().setWindowSize(this.ttyFd, rows, columns)
      return true
    } catch {
      return false // the terminal is already gone
    }
  }

  /** Live cgroup accounting; null without `limits` or once the container has ended. */
  stats(): Stats | null {
    const s = this.#running ? native().containerStats(this.pid) : null
    return s ? toStats(s) : null
  }

  /** Resolves when the container has ended (never rejects: inspect exitCode/signal). */
  wait(): Promise<ContainerExit> {
    return this.#done
  }

  then<A = ContainerExit, B = never>(
    onfulfilled?: ((value: ContainerExit) => A | PromiseLike<A>) | null,
    onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.#done.then(onfulfilled, onrejected)
  }
}
