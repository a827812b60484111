// Containers that outlive the Node process that made them (`create(..., { detached: true })`):
// their state lives in a directory of their own (`/run/lonely/<id>` for root,
// `$XDG_RUNTIME_DIR/lonely/<id>` otherwise; 0700), where any later process finds them. PID 1's
// parent is lonely-monitor (core/init/monitor.c), which holds its stdio, copies its output to
// the `log` there, serves the `attach` socket there, and writes its exit to `status`. A pid is
// theirs only while its start time is the recorded one.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

import type { ContainerExit } from './container'
import { native } from './native'
import { optionError } from './optionerror'
import { signalName } from './result'
import type { Spec } from './options'
import { show } from './show'

/** What state.json holds. */
export interface DetachedState {
  id: string
  name: string | null
  pid: number
  /** PID 1's start time (/proc/<pid>/stat, clock ticks): its identity. */
  start: number
  created: string
  command: string[]
  spec: Spec
  /** Its cgroup directories (with `limits`): an exec from another process joins them. */
  cgroups: string[]
  /** Created with `start: false` and not started yet. */
  held?: boolean
  /** What `stop()` sends first: `killSignal`, or the image's StopSignal (absent in older states: SIGTERM). */
  stopSignal?: number
  /** With an image: its writable layer's directory (its monitor holds the lock; remove() deletes it). */
  layer?: string
  /** The image's labels, then the caller's (absent in older states: none). */
  labels?: Record<string, string>
}

/** Where detached containers' state lives (option `stateDir`, else the runtime directory). */
export function stateRoot(stateDir?: unknown): string {
  if (stateDir !== undefined) {
    if (typeof stateDir !== 'string' || stateDir === '') throw optionError(TypeError, 'stateDir', `Option \`stateDir\` must be a directory path; got ${show(stateDir)}.`)
    return path.resolve(stateDir)
  }
  // LONELY_STATE_DIR: the CLI's way to the same choice.
  if (process.env.LONELY_STATE_DIR) return path.resolve(process.env.LONELY_STATE_DIR)
  if (process.geteuid?.() === 0) return '/run/lonely'
  const runtime = process.env.XDG_RUNTIME_DIR
  return runtime ? path.join(runtime, 'lonely') : path.join(os.tmpdir(), `lonely-${process.geteuid?.()}`)
}

/** The directory of a new detached container (its monitor makes the files in it). */
export function makeStateDir(root: string, id: string, name: string | null): string {
  fs.mkdirSync(root, { recursive: true, mode: 0o700 })
  if (name !== null && states(root).some((s) => s.name === name)) throw optionError(RangeError, 'name', `Option \`name\`: a container named ${show(name)} already exists (in ${root}).`)
  const dir = path.join(root, id)
  fs.mkdirSync(dir, { mode: 0o700 })
  return dir
}

export function writeState(dir: string, state: DetachedState): void {
  const tmp = path.join(dir, 'state.json.tmp')
  fs.writeFileSync(tmp, JSON.stringify(state), { mode: 0o600 })
  fs.renameSync(tmp, path.join(dir, 'state.json')) // whole or not at all
}

/** Every detached container recorded under `root` (state dirs without a complete state.json are skipped). */
export function states(root: string): Array<DetachedState & { dir: string }> {
  let names: string[]
  try {
    names = fs.readdirSync(root)
  } catch {
    return []
  }
  return names.flatMap((id) => {
    try {
      const dir = path.join(root, id)
      return [{ ...(JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as DetachedState), dir }]
    } catch {
      return []
    }
  })
}

export function isRunning(state: DetachedState): boolean {
  return native().processStartTime(state.pid) === state.start
}

/** A created container's PID 1 still waits for its start (lonely-init --hold): its state says so until `start()`. */
export function isHeld(dir: string): boolean {
  try {
    const state = JSON.parse(fs.readFileSync(path.join(dir, 'state.json'), 'utf8')) as DetachedState
    return state.held === true && isRunning(state)
  } catch {
    return false
  }
}

/** What lonely-monitor wrote once PID 1 ended (`key=value` lines); null before that. */
export function recordedStatus(dir: string): Record<string, number> | null {
  let text = ''
  try {
    text = fs.readFileSync(path.join(dir, 'status'), 'utf8')
  } catch {
    return null
  }
  if (!text.endsWith('\n')) return null // not written yet (or not whole yet)
  return parseStatus(text)
}

/** lonely-monitor's status text (`exitCode=N` or `signal=N`, then the CPU times), as numbers by key. */
export function parseStatus(text: string): Record<string, number> {
  return Object.fromEntries(text.trim().split('\n').map((line) => line.split('=')).map(([k, v]) => [k, Number(v)]))
}

/** The exit lonely-monitor recorded: `null` while PID 1 runs (or if its monitor was killed first). */
export function recordedExit(state: DetachedState & { dir: string }): ContainerExit | null {
  const status = recordedStatus(state.dir)
  if (!status) return null
  const signal = signalName(status.signal)
  return {
    command: state.command.join(' '),
    pid: state.pid,
    ...(signal ? { signal } : { exitCode: status.exitCode }),
    durationMs: Date.now() - Date.parse(state.created),
    timedOut: false,
    isCanceled: false,
    failed: status.exitCode !== 0,
    oomKilled: false,
    usage: { cpuUserMs: (status.userUs ?? 0) / 1000, cpuSystemMs: (status.systemUs ?? 0) / 1000 },
  }
}
