// The promise form: start, collect stdout/stderr up to maxBuffer, and resolve (or reject)
// with the whole result once the process has ended and its output is drained.
import type { Readable } from 'node:stream'

import { ContainerProcess } from './container'
import type { Normalized } from './options'
import { ContainerError, failureMessage, type ContainerResult } from './result'

export type Output<O> = O extends { encoding: 'buffer' } ? Buffer : string

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

/** Starts the container (or exec) `opts` describes and resolves with its whole result: `run()`. */
export async function runToEnd<O>(opts: Normalized): Promise<ContainerResult<Output<O>>> {
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
  // As execa's: a canceled run's cause is the signal's reason (an AbortError by default).
  const error = new ContainerError<Output<O>>(message, { ...result, failed: true, ...(result.isCanceled ? { cause: opts.cancelSignal?.reason } : {}) })
  if (opts.reject) throw error
  return error
}

