// Containers that live beyond one command: `create()` starts one whose PID 1 runs `command`,
// and `exec()`/`run()` start more processes in it (its namespaces, cgroup and privileges),
// as `docker create` + `docker exec` do. A container ends with this Node process, unless it is
// `detached` (lib/detached.ts): then any process finds it with `containers.get()`.
import { EventEmitter } from 'node:events'
import * as fs from 'node:fs'
import { randomBytes } from 'node:crypto'
import { constants } from 'node:os'

import { ContainerProcess, toStats, type ContainerExit } from './container'
import { normalizeExec, type ExecOptions, type ExecRunOptions } from './exec'
import { native } from './native'
import { byteCount, containerPath, normalize, rangeError, typeError, type ContainerOptions } from './options'
import { ContainerError, failureMessage, type ContainerResult, type Stats } from './result'
import { runToEnd, type Output } from './runtoend'
import { show } from './show'
import { isHeld, isRunning, makeStateDir, recordedExit, stateRoot, states, writeState, type DetachedState } from './detached'
import { optionError } from './optionerror'
import { attachTo, startHeld, type Attachment } from './attach'

/** A process of the container, as `top()` lists it. */
export interface ContainerTask {
  /** Its pid on the host. */
  pid: number
  /** Its pid inside the container (1 for PID 1). */
  containerPid: number
  /** argv, as /proc/<pid>/cmdline has it. */
  command: string[]
}

/** PID 1 as a Container drives it: a ContainerProcess of ours, or a detached one's state. */
interface Pid1 {
  pid: number
  /** Its start time, when another process started it (checked before every use). */
  start: number | null
  running(): boolean
  kill(signal: NodeJS.Signals | number): boolean
  wait(): Promise<ContainerExit>
  stats(): Stats | null
}

function ours(proc: ContainerProcess): Pid1 {
  return {
    pid: proc.pid,
    start: null,
    running: () => proc.exitCode === null && proc.signalCode === null,
    kill: (signal) => proc.kill(signal),
    wait: () => proc.wait(),
    stats: () => proc.stats(),
  }
}

function recorded(state: DetachedState & { dir: string }): Pid1 {
  let ended: Promise<ContainerExit> | undefined
  return {
    pid: state.pid,
    start: state.start,
    running: () => isRunning(state),
    kill: (signal) => native().signalProcess(state.pid, state.start, typeof signal === 'number' ? signal : constants.signals[signal]),
    // Not our child: its end is seen by polling, its status read from what its monitor wrote
    // (once it has drained PID 1's last output: up to 2 s later).
    wait: () =>
      (ended ??= (async () => {
        while (isRunning(state)) await new Promise((r) => setTimeout(r, 20))
        let exit = recordedExit(state)
        for (let i = 0; i < 250 && !exit; i++) {
          await new Promise((r) => setTimeout(r, 20))
          exit = recordedExit(state)
        }
        return exit ?? { command: state.command.join(' '), pid: state.pid, durationMs: Date.now() - Date.parse(state.created), timedOut: false, isCanceled: false, failed: true, oomKilled: false, usage: { cpuUserMs: 0, cpuSystemMs: 0 } }
      })()),
    // Its recorded cgroup directories, read as the creator's reaper would (without limits: none).
    stats: () => {
      if (state.cgroups.length === 0 || !isRunning(state)) return null
      return toStats(native().cgroupStatsOf(state.cgroups))
    },
  }
}

export class Container extends EventEmitter {
  /** A random id (16 hex digits): nothing about the host. */
  readonly id: string
  /** Its name (`name`), if it is detached and has one. */
  readonly name: string | null
  readonly #pid1: Pid1
  readonly #proc: ContainerProcess | null
  readonly #options: ReturnType<typeof normalize>
  /** A detached container's state directory, and its cgroup directories. */
  readonly #dir: string | null
  readonly #state: DetachedState | null
  readonly #cgroups: string[]
  #removed = false
  #ended: Promise<ContainerExit> | undefined

  /** @internal Use `create()` or `containers.get()`. */
  constructor(pid1: ContainerProcess | (DetachedState & { dir: string }), options: ReturnType<typeof normalize>, state: { id: string; name: string | null; dir: string | null }) {
    super()
    this.id = state.id
    this.name = state.name
    this.#dir = state.dir
    this.#cgroups = pid1 instanceof ContainerProcess ? [] : pid1.cgroups ?? []
    this.#state = pid1 instanceof ContainerProcess ? null : pid1
    this.#proc = pid1 instanceof ContainerProcess ? pid1 : null
    this.#pid1 = pid1 instanceof ContainerProcess ? ours(pid1) : recorded(pid1)
    this.#options = options
    // Ours: its exit comes from the reaper. Recorded: only a wait() polls for it (polling from
    // here would keep this process alive for a container meant to outlive it).
    if (this.#proc) void this.wait()
  }

  /** Host pid of the container's PID 1. */
  get pid(): number {
    return this.#pid1.pid
  }

  /** PID 1's handle (stdio streams with `stdio: 'pipe'`, exit code, events); null for a detached container another process made. */
  get init(): ContainerProcess | null {
    return this.#proc
  }

  get running(): boolean {
    return this.#pid1.running()
  }

  /** A detached container's stdout and stderr so far (its log file). */
  logs(): string {
    if (!this.#dir) throw new Error(`container ${this.id} is not detached: read its init's streams`)
    return fs.readFileSync(`${this.#dir}/log`, 'utf8')
  }

  /** Whether it was created with `start: false` and not started yet. */
  get created(): boolean {
    return this.#dir !== null && isHeld(this.#dir)
  }

  /** Starts a container created with `start: false` (as `docker start`); resolves once its command runs. */
  async start(): Promise<void> {
    this.#usable()
    if (!this.#dir || !this.#state) throw new Error(`container ${this.id} is not detached: it started when it was created`)
    if (!this.created) throw new Error(`container ${this.id} is not waiting to start (it ${this.running ? 'runs' : 'has ended'})`)
    await startHeld(this.#dir)
    const { dir: _dir, ...state } = this.#state as DetachedState & { dir?: string }
    writeState(this.#dir, { ...state, held: false })
  }

  /**
   * Attaches to a detached container, as `docker attach`: its output from now on, its stdin
   * (with `stdin: 'pipe'` or a terminal), its terminal size, and its exit if it ends meanwhile.
   */
  attach(): Promise<Attachment> {
    this.#usable()
    if (!this.#dir) throw new Error(`container ${this.id} is not detached: use its init's streams`)
    if (!this.running) throw new Error(`container ${this.id} is not running`)
    return attachTo(this.#dir)
  }

  /** Starts `command` in the container and returns its handle at once, as `spawn()` does. */
  exec(command: string[], options?: ExecOptions): ContainerProcess {
    this.#usable()
    return new ContainerProcess(this.#exec(command, options, false))
  }

  /** Runs `command` in the container to its end, as `run()` does (`reject: false` resolves with a failure). */
  run<O extends ExecRunOptions = ExecRunOptions>(command: string[], options?: O): Promise<ContainerResult<Output<O>>> {
    this.#usable()
    return runToEnd<O>(this.#exec(command, options, true))
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
    const data = await native().readContainerFile(this.pid, this.#pid1.start, at, limit)
    return options.encoding === 'buffer' ? data : data.toString('utf8')
  }

  /** Writes a file of the container (created with `mode`, default 0o644, or truncated), resolved as `readFile`. */
  async writeFile(file: string, data: string | Uint8Array, options: { mode?: number } = {}): Promise<void> {
    const at = containerPath('path', file)
    if (typeof data !== 'string' && !(data instanceof Uint8Array)) throw typeError('data', 'a string or a Uint8Array', data)
    const mode = options.mode ?? 0o644
    if (!Number.isInteger(mode) || mode < 0 || mode > 0o7777) throw typeError('mode', 'a file mode from 0 to 0o7777', mode)
    this.#usable()
    await native().writeContainerFile(this.pid, this.#pid1.start, at, Buffer.from(data), mode)
  }

  /**
   * A tar archive of `path` in the container (a file, or a directory with everything under it;
   * its top entry is the base name), as `docker cp CONTAINER:PATH -`. Symlinks are archived as
   * symlinks; kernel filesystems mounted inside (/proc, /sys...) as empty directories. Built in
   * memory, at most `maxBuffer` bytes (default 512 MiB).
   */
  async copyOut(path: string, options: { maxBuffer?: number } = {}): Promise<Buffer> {
    const at = containerPath('path', path)
    const limit = byteCount('maxBuffer', options.maxBuffer, 512 * 1024 * 1024)
    this.#usable()
    return native().copyOut(this.pid, this.#pid1.start, at, limit)
  }

  /**
   * Unpacks a tar archive into the directory `path` of the container, as `docker cp - CONTAINER:PATH`:
   * entries are owned by the container's root, lose setuid/setgid bits, and never go through a
   * symlink in the container (nor outside `path` with `..` or an absolute name). `rename`: the
   * archive's top entry gets this name (docker cp to a new name).
   */
  async copyIn(path: string, archive: Uint8Array | AsyncIterable<Uint8Array>, options: { rename?: string } = {}): Promise<void> {
    const at = containerPath('path', path)
    if (options.rename !== undefined && (typeof options.rename !== 'string' || options.rename === '' || options.rename.includes('/') || options.rename === '..')) throw typeError('rename', 'a file name (no /)', options.rename)
    let data: Buffer
    if (archive instanceof Uint8Array) data = Buffer.from(archive)
    else if (archive && typeof (archive as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] === 'function') {
      const chunks: Buffer[] = []
      for await (const chunk of archive) chunks.push(Buffer.from(chunk))
      data = Buffer.concat(chunks)
    } else throw typeError('archive', 'a Uint8Array or a readable stream of a tar archive', archive)
    this.#usable()
    await native().copyIn(this.pid, this.#pid1.start, at, data, options.rename ?? null)
  }

  /** Signals PID 1 (ending it ends every process of the container). False once it has ended. */
  kill(signal: NodeJS.Signals | number = 'SIGKILL'): boolean {
    return this.#pid1.kill(signal)
  }

  /** `killSignal` (the image's StopSignal, else SIGTERM) or `signal`, then SIGKILL after `timeout` ms (default 10 000, as docker stop); resolves once it has ended. */
  async stop(options: { timeout?: number; signal?: NodeJS.Signals | number } = {}): Promise<ContainerExit> {
    const timeout = options.timeout ?? 10_000
    if (!Number.isInteger(timeout) || timeout < 0) throw new RangeError(`Option \`timeout\` must be a whole number of milliseconds; got ${timeout}.`)
    if (this.running) {
      this.#pid1.kill(options.signal ?? this.#options.killSignal)
      const force = setTimeout(() => this.#pid1.kill('SIGKILL'), timeout)
      void this.wait().then(() => clearTimeout(force))
    }
    return this.wait()
  }

  /** Resolves when PID 1 has ended (never rejects); emits 'exit' then, once. */
  wait(): Promise<ContainerExit> {
    this.#ended ??= this.#pid1.wait().then((exit) => {
      this.emit('exit', exit)
      return exit
    })
    return this.#ended
  }

  /** Live cgroup accounting of the whole container (with `limits`), null without or once ended. */
  stats(): Stats | null {
    return this.#pid1.stats()
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
    if (this.running) this.#pid1.kill(constants.signals.SIGKILL)
    await this.wait()
    // The creator's reaper removes the cgroup, unless it died first: then it is ours to remove.
    for (const dir of this.#cgroups) {
      for (let i = 0; i < 50 && fs.existsSync(dir); i++) {
        try {
          fs.rmdirSync(dir) // a cgroup goes with rmdir once its last process has gone
        } catch {
          await new Promise((r) => setTimeout(r, 20))
        }
      }
    }
    // Its writable layer, whose lock went with its monitor (the creator may be long gone).
    if (this.#state?.layer) fs.rmSync(this.#state.layer, { recursive: true, force: true })
    if (this.#dir) fs.rmSync(this.#dir, { recursive: true, force: true })
    this.#removed = true
  }

  #exec(command: string[], options: unknown, forRun: boolean): ReturnType<typeof normalize> {
    const opts = normalizeExec(this.#options, this.pid, command, options, forRun)
    if (this.#pid1.start !== null) {
      opts.spec.joinStart = this.#pid1.start
      opts.spec.joinCgroups = this.#cgroups
    }
    return opts
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
export async function create(command?: string[], options: ContainerOptions & DetachedOptions = {}): Promise<Container> {
  const { detached, name, stateDir, start: startNow, labels, ...rest } = options as ContainerOptions & DetachedOptions
  if (detached !== undefined && typeof detached !== 'boolean') throw optionError(TypeError, 'detached', `Option \`detached\` must be a boolean; got ${String(detached)}.`)
  if (!detached) {
    for (const [key, v] of [['name', name], ['stateDir', stateDir], ['start', startNow], ['labels', labels]] as const) if (v !== undefined) throw optionError(RangeError, key, `Option \`${key}\` goes with \`detached: true\`.`)
    const given = rest as Record<string, unknown>
    const withStdio = 'stdio' in given || 'stdin' in given || 'stdout' in given || 'stderr' in given ? rest : { ...rest, stdio: 'ignore' as const }
    const opts = command === undefined ? normalize([], { ...withStdio, init: true }, false) : normalize(command, withStdio, false)
    const proc = new ContainerProcess(opts)
    // An already-aborted cancelSignal: nothing was made, so there is no container to hand back.
    if (proc.pid === 0) {
      const exit = { ...(await proc.wait()), stdout: '', stderr: '' }
      throw new ContainerError(failureMessage(exit, 0)!, { ...exit, cause: opts.cancelSignal?.reason })
    }
    return new Container(proc, opts, { id: randomBytes(8).toString('hex'), name: null, dir: null })
  }
  for (const key of ['stdio', 'stdout', 'stderr', 'input', 'timeout', 'cancelSignal', 'keep'] as const) {
    if (rest[key] !== undefined) throw optionError(RangeError, key, `Option \`${key}\` does not go with \`detached\`: its output goes to its log and to whoever attaches, and it lives until stopped.`)
  }
  if (startNow !== undefined && typeof startNow !== 'boolean') throw optionError(TypeError, 'start', `Option \`start\` must be a boolean; got ${String(startNow)}.`)
  const stdin = rest.stdin ?? 'ignore'
  if (stdin !== 'ignore' && stdin !== 'pipe') throw optionError(RangeError, 'stdin', `Option \`stdin\` of a detached container is 'ignore' (default) or 'pipe' (kept open for attach, as docker run -i); got ${JSON.stringify(stdin)}.`)
  if (name !== undefined && (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/.test(name))) throw optionError(RangeError, 'name', `Option \`name\` must be [A-Za-z0-9][A-Za-z0-9_.-]*, at most 128 characters; got ${JSON.stringify(name)}.`)
  const given = labelsOption(labels)
  const root = stateRoot(stateDir)
  const id = randomBytes(8).toString('hex')
  const dir = makeStateDir(root, id, name ?? null)
  try {
    const { stdin: _, ...others } = rest
    const opts = normalize(command ?? [], { ...others, ...(command === undefined ? { init: true } : {}), stdio: [stdin, 'pipe', 'pipe'] }, false)
    opts.spec.detached = true
    opts.spec.stateDir = dir
    opts.spec.held = startNow === false
    if (opts.layer) opts.spec.layerLock = opts.layer.lock
    const proc = new ContainerProcess(opts)
    const state: DetachedState = { id, name: name ?? null, pid: proc.pid, start: proc.startTime ?? 0, created: new Date().toISOString(), command: command ?? [], spec: opts.spec, cgroups: native().containerCgroups(proc.pid), stopSignal: opts.killSignal, ...(startNow === false ? { held: true } : {}), ...(opts.layer ? { layer: opts.layer.dir } : {}) }
    const all = { ...opts.imageLabels, ...given }
    if (Object.keys(all).length) state.labels = all
    writeState(dir, state)
    // Seen as any process sees it (its state): its exit, delivered here unref'd, keeps Node alive for nobody.
    return new Container({ ...state, dir }, opts, { id, name: name ?? null, dir })
  } catch (e) {
    fs.rmSync(dir, { recursive: true, force: true })
    throw e
  }
}

/** What `create()` takes besides spawn's options. */
export interface DetachedOptions {
  /** The container outlives this Node process (as `docker run -d`), watched by lonely-monitor. */
  detached?: boolean
  /**
   * false: created, not started (as `docker create`): PID 1 waits with every setup step done
   * (the namespaces, the root, the privileges) until `start()`. Default true.
   */
  start?: boolean
  /** A unique name (detached containers), as `docker run --name`. */
  name?: string
  /** Where detached containers' state lives; default /run/lonely for root, $XDG_RUNTIME_DIR/lonely otherwise. */
  stateDir?: string
  /** Metadata kept with it (as `docker run --label`), over the image's labels; `containers.list()` shows them. */
  labels?: Record<string, string>
}

/** `labels`: string keys (not empty, no NUL) to string values. */
function labelsOption(labels: unknown): Record<string, string> {
  if (labels === undefined) return {}
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) throw optionError(TypeError, 'labels', `Option \`labels\` must be an object of strings; got ${show(labels)}.`)
  for (const [key, value] of Object.entries(labels)) {
    if (key === '' || key.includes('\0')) throw optionError(RangeError, 'labels', `Option \`labels\` has a key that is empty or holds a NUL; got ${show(key)}.`)
    if (typeof value !== 'string') throw optionError(TypeError, `labels.${key}`, `Option \`labels.${key}\` must be a string; got ${show(value)}.`)
  }
  return { ...(labels as Record<string, string>) }
}

/** What `containers.list()` says of one. */
export interface ContainerInfo {
  id: string
  name: string | null
  pid: number
  /** As docker's: created (`start: false`, not started), running, or exited. */
  status: 'created' | 'running' | 'exited'
  running: boolean
  /** Once it ended: its monitor's record of PID 1's exit. */
  exitCode?: number
  signal?: NodeJS.Signals
  created: string
  command: string[]
  /** Its labels: the image's, then `labels` (docker's Config.Labels). */
  labels: Record<string, string>
}

/** Detached containers, from any process (as `docker ps -a`, `docker inspect`). */
export const containers = {
  list(options: { stateDir?: string } = {}): ContainerInfo[] {
    return states(stateRoot(options.stateDir)).map((s) => {
      const running = isRunning(s)
      const exit = running ? null : recordedExit(s)
      const status = !running ? 'exited' : s.held ? 'created' : 'running'
      return { id: s.id, name: s.name, pid: s.pid, status, running, ...(exit?.exitCode !== undefined ? { exitCode: exit.exitCode } : {}), ...(exit?.signal ? { signal: exit.signal } : {}), created: s.created, command: s.command, labels: s.labels ?? {} }
    })
  },

  /** The detached container with this id (or a unique prefix of it) or name. */
  get(idOrName: string, options: { stateDir?: string } = {}): Container {
    const all = states(stateRoot(options.stateDir))
    const found = all.filter((s) => s.name === idOrName || s.id.startsWith(idOrName))
    if (found.length !== 1) throw optionError(RangeError, 'id', `Option \`id\`: ${found.length ? 'more than one' : 'no'} detached container is ${JSON.stringify(idOrName)}.`)
    const s = found[0]
    return new Container(s, { spec: s.spec, relayed: [], timeout: 0, killSignal: s.stopSignal ?? constants.signals.SIGTERM, forceKillAfterDelay: 2000, reject: true, encoding: 'utf8', maxBuffer: 0, stripFinalNewline: true }, { id: s.id, name: s.name, dir: s.dir })
  },
}
