// The client side of a detached container's attach socket (`<state dir>/attach`, served by
// lonely-monitor): its output live from now on, its stdin, its window size, and its exit.
// Frames both ways: type (1 byte), length (4 bytes, little-endian), payload (core/init/monitor.c).
import * as net from 'node:net'
import * as path from 'node:path'
import { PassThrough, Writable } from 'node:stream'

import { parseStatus } from './detached'
import { signalName } from './result'

const STDIN = 0
const RESIZE = 1
const CLOSE_STDIN = 2
const START = 3
const STDOUT = 1
const STDERR = 2
const EXIT = 3
const STARTED = 4

/** How the container ended, as its monitor told the attached. */
export interface AttachedExit {
  exitCode?: number
  signal?: NodeJS.Signals
}

export interface Attachment {
  /** Typed into the container's stdin (or its terminal); `end()` closes a piped stdin (a terminal has its ^D). */
  stdin: Writable
  stdout: PassThrough
  /** Empty with a terminal (it merges stderr into stdout). */
  stderr: PassThrough
  /** Sets the container's terminal size (with a terminal), as ContainerProcess.resize(). */
  resize(columns: number, rows: number): void
  /** The container's exit, if it ended while attached; null once detached (or the monitor went away). */
  exited: Promise<AttachedExit | null>
  /** Leaves the container running. */
  detach(): void
}

function frame(type: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(5)
  head[0] = type
  head.writeUInt32LE(payload.length, 1)
  return Buffer.concat([head, payload])
}

/** Calls `onFrame` for each whole frame the socket delivers (frames span and share chunks). */
function onFrames(socket: net.Socket, onFrame: (type: number, payload: Buffer) => void): void {
  let pending: Buffer = Buffer.alloc(0)
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk
    while (pending.length >= 5) {
      const length = pending.readUInt32LE(1)
      if (pending.length < 5 + length) break
      const [type, payload] = [pending[0]!, pending.subarray(5, 5 + length)]
      pending = pending.subarray(5 + length)
      onFrame(type, payload)
    }
  })
}

function parseExit(text: string): AttachedExit {
  const status = parseStatus(text)
  const signal = signalName(status.signal)
  return signal ? { signal } : { exitCode: status.exitCode }
}

/** Connects to the attach socket of the container whose state directory is `dir`. */
export function attachTo(dir: string): Promise<Attachment> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(path.join(dir, 'attach'))
    socket.once('error', reject)
    socket.once('connect', () => {
      socket.off('error', reject)
      const stdout = new PassThrough()
      const stderr = new PassThrough()
      let exit: AttachedExit | null = null
      onFrames(socket, (type, payload) => {
        if (type === STDOUT) stdout.write(payload)
        else if (type === STDERR) stderr.write(payload)
        else if (type === EXIT) {
          exit = parseExit(payload.toString('utf8'))
          socket.end() // the monitor lingers until we close
        }
      })
      socket.on('error', () => socket.destroy())
      const exited = new Promise<AttachedExit | null>((done) =>
        socket.once('close', () => {
          stdout.end()
          stderr.end()
          done(exit)
        }),
      )
      const stdin = new Writable({
        write: (chunk: Buffer, _encoding, callback) => (socket.writable ? socket.write(frame(STDIN, chunk), () => callback()) : callback()),
        final: (callback) => (socket.writable ? socket.write(frame(CLOSE_STDIN, Buffer.alloc(0)), () => callback()) : callback()),
      })
      resolve({
        stdin,
        stdout,
        stderr,
        exited,
        resize(columns, rows) {
          const size = Buffer.alloc(4)
          size.writeUInt16LE(rows, 0)
          size.writeUInt16LE(columns, 2)
          if (socket.writable) socket.write(frame(RESIZE, size))
        },
        detach: () => socket.destroy(),
      })
    })
  })
}

/** Tells the monitor of a created container (`start: false`) to let its PID 1 go on; resolves once it has. */
export function startHeld(dir: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(path.join(dir, 'attach'))
    let started = false
    socket.once('error', reject)
    socket.once('connect', () => socket.write(frame(START, Buffer.alloc(0))))
    // Output frames may come first; the reply is a frame of type STARTED.
    onFrames(socket, (type) => {
      if (type !== STARTED) return
      started = true
      socket.destroy()
    })
    socket.once('close', () => (started ? resolve() : reject(new Error('the container ended before it started'))))
  })
}
