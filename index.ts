// lonely-container: `docker run` as a Node.js library.
import { ContainerProcess, type ContainerExit } from './lib/container'
import { native } from './lib/native'
import { normalize, type ContainerOptions, type RunOptions } from './lib/options'
import { ContainerError, type ContainerResult } from './lib/result'
import { runToEnd, type Output } from './lib/runtoend'

export { ContainerProcess, ContainerError }
export { Container, containers, create } from './lib/create'
export type { ContainerInfo, ContainerTask, DetachedOptions } from './lib/create'
export type { ExecOptions, ExecRunOptions } from './lib/exec'
export type { Attachment, AttachedExit } from './lib/attach'
export { images } from './lib/images'
export { runtimePath } from './lib/runtimepath'
export type { Image, ImageConfig, ImageLayer, LayerDamage, LoadedImage, LoadOptions, LoadProgress, RemoveResult, StoreOptions } from './lib/images'
export type { ContainerExit, ContainerOptions, ContainerResult, RunOptions }
export type { IdRange, Mount, NamespaceName, Propagation, StdioOption, TtySize } from './lib/options'
export type { SetupFailure, Stats, Usage } from './lib/result'
export type { OptionError } from './lib/optionerror'
export type { Limits, RlimitName, Rlimits, RlimitValue } from './lib/limits'
export type { Capability, SecurityOptions } from './lib/security'
export { CAPABILITIES, DEFAULT_CAPABILITIES } from './lib/security'

/**
 * Starts `command` in a new container and returns its handle at once. Throws
 * TypeError/RangeError for bad options and ContainerError when setup or exec failed.
 */
export function spawn(command: string[], options?: ContainerOptions): ContainerProcess {
  return new ContainerProcess(normalize(command, options, false))
}

/**
 * Runs `command` in a new container and resolves with its result once it has ended and
 * its output is drained. Rejects with ContainerError on setup failure, non-zero exit,
 * signal, timeout or cancel, unless `reject: false` (then resolves with that error).
 */
export async function run<O extends RunOptions = RunOptions>(command: string[], options?: O): Promise<ContainerResult<Output<O>>> {
  return runToEnd(normalize(command, options, true))
}

/** The setup plan a container with these options would get, one step per line; runs nothing. */
export function explain(command: string[], options?: ContainerOptions): string {
  const normalized = normalize(command, options, false)
  try {
    return native().describePlan(JSON.stringify(normalized.spec))
  } finally {
    normalized.discard?.() // nothing runs: an image's writable layer goes at once
  }
}

/** The host's cgroup layout as this library sees it: `unified` (v2), `legacy` (v1) or `hybrid`. */
export function cgroupMode(): string {
  return native().cgroupMode()
}

/** Containers started by this process that have not been reaped yet. */
export function liveContainers(): number {
  return native().liveContainers()
}
