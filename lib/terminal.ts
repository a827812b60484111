// The container's terminal from the host side: the stream that types into it, and how the
// end of that stream reaches the program reading the terminal.
import type * as tty from 'node:tty'
import { Writable } from 'node:stream'

import { native } from './native'

/** How often the terminal is looked at once its input has ended (a few ioctls each time). */
const EOF_POLL_MS = 10

/** ^D, what a raw-mode line editor takes as EOF on an empty line when VEOF is disabled. */
const CTRL_D = 4

export interface TerminalInput {
  stream: Writable
  /** Stops delivering EOF (the container ended). */
  close(): void
}

/**
 * A terminal has no end of file: a reader sees EOF when the VEOF character (^D) arrives in
 * line mode, or a raw-mode line editor reads ^D on an empty line. So ending this stream types
 * that character, once the program has read everything before it, and again each time the
 * terminal has switched between line and raw mode since: the switch to raw mode turns a
 * line-mode EOF not yet read into a NUL byte (n_tty), which is how a shell's line editor,
 * starting or between two commands, would lose it.
 */
export function terminalInput(master: tty.WriteStream, fd: number): TerminalInput {
  let poll: NodeJS.Timeout | undefined
  let typedIn: boolean | undefined // the mode the last EOF was typed in
  const close = () => {
    if (poll) clearInterval(poll)
    poll = undefined
  }
  const typeEof = () => {
    const state = native().terminalInput(fd)
    if (!state) return close() // the container's side is gone
    if (state.unread > 0 || typedIn === state.canonical) return
    typedIn = state.canonical
    master.write(Buffer.of(state.eofChar || CTRL_D))
  }
  const stream = new Writable({
    // The end of input is not the end of the terminal: EOF is still being typed after it.
    autoDestroy: false,
    write: (chunk, _encoding, done) => master.write(chunk, done),
    // Runs once every write above is in the terminal, so `unread` counts all of it.
    final: (done) => {
      poll = setInterval(typeEof, EOF_POLL_MS).unref()
      typeEof()
      done()
    },
    destroy: (error, done) => {
      close()
      master.destroy()
      done(error)
    },
  })
  return { stream, close }
}
