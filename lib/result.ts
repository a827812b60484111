// One error class with the whole result shape, as execa: a failed container and a
// container that could not start are both a ContainerError.
import { constants } from 'node:os'

export interface Usage {
  /** CPU time in user mode of the container's processes (reaped ones included), ms. */
  cpuUserMs: number
  cpuSystemMs: number
  /** With `limits`: the cgroup's peak memory use, bytes. */
  memoryPeakBytes?: number
  /** With `limits`: the cgroup's peak number of processes (cgroup v2 hosts that track it). */
  pidsPeak?: number
}

/** Live accounting of a running container with `limits` (ContainerProcess.stats()). */
export interface Stats {
  memoryBytes?: number
  memoryPeakBytes?: number
  cpuMs?: number
  pids?: number
}

export interface ContainerResult<Out = string> {
  /** The command as one line (arguments joined with spaces). */
  command: string
  /** Host pid of the container's PID 1 (0 when it never started). */
  pid: number
  exitCode?: number
  /** The signal that ended PID 1, e.g. "SIGKILL". */
  signal?: NodeJS.Signals
  stdout: Out
  stderr: Out
  durationMs: number
  timedOut: boolean
  isCanceled: boolean
  failed: boolean
  /** The kernel's OOM killer ended it inside its cgroup (only possible with `limits.memory`). */
  oomKilled: boolean
  /** With `image` and `keep`: the directory holding what the container wrote. */
  keptLayer?: string
  usage?: Usage
}

/** A setup step that failed inside the container before the program ran. */
export interface SetupFailure {
  stage: string
  path?: string
  errno: number
  code: string
  message: string
}

export class ContainerError<Out = string> extends Error implements ContainerResult<Out> {
  override name = 'ContainerError'
  command!: string
  pid!: number
  exitCode?: number
  signal?: NodeJS.Signals
  stdout!: Out
  stderr!: Out
  durationMs!: number
  timedOut!: boolean
  isCanceled!: boolean
  failed = true
  oomKilled = false
  usage?: Usage
  /** The failing setup step (`pivot_root`, `mount`, `exec`...), when the program never ran. */
  stage?: string
  /** The errno's name (`ENOENT`...), with `stage`. */
  code?: string
  errno?: number
  /** The path the failing step worked on, with `stage`. */
  path?: string

  constructor(message: string, fields: Partial<ContainerError<Out>>) {
    super(message)
    Object.assign(this, fields)
  }
}

export function signalName(signal: number | undefined | null): NodeJS.Signals | undefined {
  if (signal === undefined || signal === null) return undefined
  const entry = Object.entries(constants.signals).find(([, n]) => n === signal)
  return (entry?.[0] ?? `SIG${signal}`) as NodeJS.Signals
}

/** Why a finished container counts as failed, or undefined when it succeeded. */
export function failureMessage(r: ContainerResult<unknown>, timeout: number): string | undefined {
  if (r.timedOut) return `Command timed out after ${timeout} milliseconds: ${r.command}`
  if (r.isCanceled) return `Command was canceled: ${r.command}`
  if (r.oomKilled) return `Command was killed (out of memory${r.signal ? `, ${r.signal}` : ''}): ${r.command}`
  if (r.signal) return `Command was killed with ${r.signal}: ${r.command}`
  if (r.exitCode !== 0) return `Command failed with exit code ${r.exitCode}: ${r.command}`
  return undefined
}
