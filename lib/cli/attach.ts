// `lonely attach ID` (and `start -a`): this terminal on a detached container's monitor, as
// docker attach: its output, this stdin typed into it (raw with a terminal), the window size
// followed, ^P^Q to detach and leave it running; the exit status is the container's.
import type { Container } from '../../index'
import { exitStatus } from './run'

/** ^P then ^Q: docker's detach keys. */
const DETACH = Buffer.of(0x10, 0x11)

/** `then`: what to do once attached (`start -a` starts the container then, missing nothing). */
export async function attachHere(c: Container, options: { stdin: boolean; then?: () => Promise<void> }): Promise<number> {
  const a = await c.attach()
  await options.then?.()
  const { stdin, stdout, stderr } = process
  const raw = options.stdin && stdin.isTTY === true
  const resize = () => stdout.isTTY && a.resize(...stdout.getWindowSize())
  resize()
  stdout.on('resize', resize)
  let last = 0
  const onData = (chunk: Buffer) => {
    // The detach keys, also when they come in two reads.
    const joined = Buffer.concat([Buffer.of(last), chunk])
    if (raw && joined.includes(DETACH)) return a.detach()
    last = chunk.at(-1) ?? 0
    a.stdin.write(chunk)
  }
  const onEnd = () => a.stdin.end()
  if (options.stdin) {
    if (raw) stdin.setRawMode(true)
    stdin.on('data', onData)
    stdin.on('end', onEnd)
    stdin.resume()
  }
  a.stdout.pipe(stdout, { end: false })
  a.stderr.pipe(stderr, { end: false })
  try {
    const exit = await a.exited
    return exit ? exitStatus(exit) : 0
  } finally {
    if (raw) stdin.setRawMode(false)
    stdout.off('resize', resize)
    stdin.off('data', onData)
    stdin.off('end', onEnd)
    stdin.pause()
  }
}
