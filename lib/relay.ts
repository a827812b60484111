// `inherit` as docker does it: the container reads and writes pipes of ours and this process
// copies between them and its own fds 0-2, so no open file of the caller's reaches the
// container (through /proc/self/fd it could reopen one for reading or truncation, fchmod or
// fchown it, or change its flags).
import * as fs from 'node:fs'
import type { Readable, Writable } from 'node:stream'
import { optionError } from './optionerror'

/**
 * Which `inherit` streams get a pipe and a relay: every one whose fd is open. Refuses a
 * directory (nonsense as stdio, and a way out of the root when passed as is).
 */
export function relayedStdio(streams: unknown[]): number[] {
  const relayed: number[] = []
  streams.forEach((s, fd) => {
    if (s !== 'inherit') return
    let st: fs.Stats
    try {
      st = fs.fstatSync(fd)
    } catch {
      return // not open: the container gets it closed, as Node would give it
    }
    if (st.isDirectory()) throw optionError(RangeError, `stdio`, `Option \`stdio\`: stdio fd ${fd} is a directory: a container could leave its root through it.`)
    relayed.push(fd)
  })
  return relayed
}

/** Copies the container's output into `to` (never ending it); resolves once the output ends. */
export function relayOut(from: Readable, to: Writable): Promise<void> {
  return new Promise((resolve) => {
    const stop = (error?: Error) => {
      from.unpipe(to)
      to.off('error', stop)
      // The reader went away (EPIPE): the container's next write fails as it would have.
      if (error) from.destroy()
      resolve()
    }
    to.on('error', stop)
    from.on('error', () => {}) // its end follows: 'close'
    from.on('close', () => stop())
    from.pipe(to, { end: false })
  })
}

/** Copies this process's stdin into the container's until either ends; what the container did not take stays readable here. */
export function relayIn(from: Readable, to: Writable, ended: Promise<unknown>): void {
  if (from.readableEnded) {
    to.end()
    return
  }
  from.pipe(to)
  void ended.then(() => {
    from.unpipe(to)
    to.destroy()
    // Nobody else reads it: stop, or the event loop would wait on this process's stdin.
    if (from.listenerCount('data') === 0 && from.listenerCount('readable') === 0) from.pause()
  })
}
