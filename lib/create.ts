// Containers that live beyond one command: `create()` starts one whose PID 1 runs `command`,
// and `exec()`/`run()` start more processes in it (its namespaces, cgroup and privileges),
// as `docker create` + `docker exec` do. A container still ends with this Node process.
import { EventEmitter } from 'node:events'
import * as fs from 'node:fs'
import { randomBytes } from 'node:crypto'
import { constants } from 'node:os'

import { ContainerProcess, type ContainerExit } from './container'
import { normalizeExec, type ExecOptions, type ExecRunOptions } from './exec'
import { native } from './native'
import { byteCount, containerPath, normalize, rangeError, typeError, type ContainerOptions } from './options'
import type { ContainerResult, Stats } from './result'
import { runToEnd, type Output } from './runtoend'

/** A process of the container, as `top()` lists it. */
export interface ContainerTask {
  /** Its pid on the host. */
  pid: number
  /** Its pid inside the container (1 for PID 1). */
  containerPid: number
  /** argv, as /proc/<pid>/cmdline has it. */
  command: string[]
}

export class Container extends EventEmitter {
  /** A random id (16 hex digits): nothing about the host. */
  readonly id = randomBytes(8).toString('hex')
  readonly #init: ContainerProcess
  readonly #options: ReturnType<typeof normalize>
  #removed = false

  /** @internal Use `create()`. */
  constructor(init: ContainerProcess, options: ReturnType<typeof normalize>) {
    super()
    this.#init = init
    this.#options = options
    void init.wait().then((exit) => this.emit('exit', exit))
  }

  /** Host pid of the container's PID 1. */
  get pid(): number {
    return this.#init.pid
  }

  /** PID 1's handle: its stdio streams (with `stdio: 'pipe'`), exit code, events. */
  get init(): ContainerProcess {
    return this.#init
  }

  get running(): boolean {
    return this.#init.exitCode === null && this.#init.signalCode === null
  }

  /** Starts `command` in the container and returns its handle at once, as `spawn()` does. */
  exec(command: string[], options?: ExecOptions): ContainerProcess {
    this.#usable()
    return new ContainerProcess(normalizeExec(this.#options, this.pid, command, options, false))
  }

  /** Runs `command` in the container to its end, as `run()` does (`reject: false` resolves with a failure). */
  run<O extends ExecRunOptions = ExecRunOptions>(command: string[], options?: O): Promise<ContainerResult<Output<O>>> {
    this.#usable()
    return runToEnd<O>(normalizeExec(this.#options, this.pid, command, options, true))
  }

  /**
   * A file of the container, read from the host as `docker cp` does: the path is resolved
   * inside the container's root (a symlink in it cannot lead out), regular files only, at
   * most `maxBuffer` bytes (default 100 MB).
   */
  async readFile(file: string, options: { encoding?: 'utf8' | 'buffer'; maxBuffer?: number } = {}): Promise<string | Buffer> {
    const at = containerPath('path', file)
    const limit = byteCount('maxBuffer', options.maxBuffer, 100 * 1024 * 1024)
    if (options.encoding !== undefined && options.encoding !== 'utf8' && options.encoding !== 'buffer') throw rangeError('encoding', 'must be "utf8" or "buffer"', options.encoding)
    this.#usable()
    const data = await native().readContainerFile(this.pid, at, limit)
    return options.encoding === 'buffer' ? data : data.toString('utf8')
  }

  /** Writes a file of the container (created with `mode`, default 0o644, or truncated), resolved as `readFile`. */
  async writeFile(file: string, data: string | Uint8Array, options: { mode?: number } = {}): Promise<void> {
    const at = containerPath('path', file)
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) throw typeError('data', 'a string or a Uint8Array', data)
    const mode = options.mode ?? 0o644
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw typeError('mode', 'a file mode from 0 to 0o7777', mode)
    this.#usable()
    await native().writeContainerFile(this.pid, at, Buffer.from(data), mode)
  }

  /** Signals PID 1 (ending it ends every process of the container). False once it has ended. */
  kill(signal: NodeJS.Signals | number = 'SIGKILL'): boolean {
    return this.#init.kill(signal)
  }

  /** SIGTERM (or `signal`), then SIGKILL after `timeout` ms (default 10 000, as docker stop); resolves once it has ended. */
  async stop(options: { timeout?: number; signal?: NodeJS.Signals | number } = {}): Promise<ContainerExit> {
    const timeout = options.timeout ?? 10_000
    if (!Number.isInteger(timeout) || timeout < 0) throw new RangeError(`Option \`timeout\` must be a whole number of milliseconds; got ${timeout}.`)
    if (this.running) {
      this.#init.kill(options.signal ?? 'SIGTERM')
      const force = setTimeout(() => this.#init.kill('SIGKILL'), timeout)
      void this.#init.wait().then(() => clearTimeout(force))
    }
    return this.#init.wait()
  }

  /** Resolves when PID 1 has ended (never rejects). */
  wait(): Promise<ContainerExit> {
    return this.#init.wait()
  }

  /** Live cgroup accounting of the whole container (with `limits`), null without or once ended. */
  stats(): Stats | null {
    return this.#init.stats()
  }

  /** The processes in the container now: every host process in its PID namespace. */
  top(): ContainerTask[] {
    if (!this.running) return []
    let ns: string
    try {
      ns = fs.readlinkSync(`/proc/${this.pid}/ns/pid_for_children`) // PID 1's own namespace is its children's
    } catch {
      return []
    }
    const tasks: ContainerTask[] = []
    for (const entry of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue
      try {
        if (fs.readlinkSync(`/proc/${entry}/ns/pid`) !== ns) continue
        const nspid = /^NSpid:\s+(.*)$/m.exec(fs.readFileSync(`/proc/${entry}/status`, 'utf8'))?.[1].trim().split(/\s+/)
        const command = fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean)
        tasks.push({ pid: Number(entry), containerPid: Number(nspid?.at(-1)), command })
      } catch {
        // it ended while we looked
      }
    }
    return tasks.sort((a, b) => a.containerPid - b.containerPid)
  }

  /**
   * Ends the container for good: a running one is refused unless `force` (then SIGKILL);
   * resolves once it has ended. Exec and run are refused afterwards.
   */
  async remove(options: { force?: boolean } = {}): Promise<void> {
    if (this.running && !options.force) throw new Error(`container ${this.id} is running: stop it first, or remove({ force: true })`)
    if (this.running) this.#init.kill(constants.signals.SIGKILL)
    await this.#init.wait()
    this.#removed = true
  }

  #usable(): void {
    if (this.#removed) throw new Error(`container ${this.id} was removed`)
  }
}

/**
 * Creates a container and resolves once it runs: its PID 1 runs `command` (with `init: true`
 * under lonely-init), or without a command lonely-init alone, which keeps the container alive
 * for `exec()` and reaps its zombies until `stop()`. The options are `spawn()`'s; stdio
 * defaults to 'ignore' (PID 1's output would otherwise fill a pipe nobody reads).
 */
export async function create(command?: string[], options: ContainerOptions = {}): Promise<Container> {
  const given = options as Record<string, unknown>
  const withStdio = 'stdio' in given || 'stdin' in given || 'stdout' in given || 'stderr' in given ? options : { ...options, stdio: 'ignore' as const }
  const opts = command === undefined ? normalize([], { ...withStdio, init: true }, false) : normalize(command, withStdio, false)
  return new Container(new ContainerProcess(opts), opts)
}
