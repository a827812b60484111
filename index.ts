// lonely-container: `docker run` as a Node.js library.
import type { Readable } from 'node:stream'

import { ContainerProcess, type ContainerExit } from './lib/container'
import { native } from './lib/native'
import { normalize, type ContainerOptions, type RunOptions } from './lib/options'
import { ContainerError, failureMessage, type ContainerResult } from './lib/result'

export { ContainerProcess, ContainerError }
export { images } from './lib/images'
export type { Image, ImageConfig, ImageLayer, LoadedImage, LoadOptions, LoadProgress, RemoveResult, StoreOptions } from './lib/images'
export type { ContainerExit, ContainerOptions, ContainerResult, RunOptions }
export type { IdRange, Mount, NamespaceName, StdioOption } from './lib/options'
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

type Output<O> = O extends { encoding: 'buffer' } ? Buffer : string

/** Collects a stream up to `max` bytes; calls `overflow` once past it. */
function collect(stream: Readable | null, max: number, overflow: () => void): Promise<Buffer> {
  if (!stream) return Promise.resolve(Buffer.alloc(0))
  const chunks: Buffer[] = []
  let size = 0
  return new Promise((resolve) => {
    stream.on('data', (chunk: Buffer) => {
      if (size + chunk.length > max) {
        chunks.push(chunk.subarray(0, max - size))
        size = max
        overflow()
        return
      }
      chunks.push(chunk)
      size += chunk.length
    })
    stream.on('error', () => resolve(Buffer.concat(chunks)))
    stream.on('close', () => resolve(Buffer.concat(chunks)))
  })
}

/**
 * Runs `command` in a new container and resolves with its result once it has ended and
 * its output is drained. Rejects with ContainerError on setup failure, non-zero exit,
 * signal, timeout or cancel, unless `reject: false` (then resolves with that error).
 */
export async function run<O extends RunOptions = RunOptions>(command: string[], options?: O): Promise<ContainerResult<Output<O>>> {
  const opts = normalize(command, options, true)
  let proc: ContainerProcess
  try {
    proc = new ContainerProcess(opts)
  } catch (e) {
    if (e instanceof ContainerError && !opts.reject) return e as ContainerError<Output<O>>
    throw e
  }
  let overflowed: string | undefined
  const over = (name: string) => () => {
    if (overflowed) return
    overflowed = name
    proc.kill('SIGKILL')
  }
  const [exit, out, err] = await Promise.all([
    proc.wait(),
    collect(proc.stdout, opts.maxBuffer, over('stdout')),
    collect(proc.stderr, opts.maxBuffer, over('stderr')),
  ])
  const decode = (b: Buffer): Output<O> => {
    if (opts.encoding === 'buffer') return b as Output<O>
    const s = b.toString('utf8')
    return (opts.stripFinalNewline ? s.replace(/\r?\n$/, '') : s) as Output<O>
  }
  const result: ContainerResult<Output<O>> = { ...exit, stdout: decode(out), stderr: decode(err) }
  const message = overflowed ? `${overflowed} exceeded maxBuffer (${opts.maxBuffer} bytes): ${result.command}` : failureMessage(result, opts.timeout)
  if (!message) return result
  const error = new ContainerError<Output<O>>(message, { ...result, failed: true })
  if (opts.reject) throw error
  return error
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
