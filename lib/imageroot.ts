// A container's root from an image: the image's layers stacked read-only with overlayfs
// and a fresh writable upper layer per container, discarded when it ends (unless `keep`).
// The image config is applied as docker does; options override it.
import * as fs from 'node:fs'
import { randomBytes } from 'node:crypto'
import * as path from 'node:path'

import { inspect as inspectImage, store as storeDir, type Image, type ImageConfig } from './images'
import { native } from './native'
import { show } from './show'
import { optionError } from './optionerror'

export interface ImageRootSpec {
  /** Top layer first, as overlayfs wants `lowerdir`. */
  lowerdirs: string[]
  upper: string
  work: string
}

export interface ImageRoot {
  spec: ImageRootSpec
  image: Image
  /** The container's own directory (upper + work + its lock); removed by `discard`. */
  dir: string
  /** Removes the directory (and so ends its lock). */
  discard: () => void
  /** Keeps the directory for good (`keep: true`): marked kept, then unlocked. */
  release: () => void
  /** The fd of its lock (a detached container's monitor holds it too). */
  lock: number
}

/** A container directory's lock, held (flock) by the process whose container lives in it. */
const LOCK = 'lock'
/** Marks a directory `keep: true` left: never swept. */
const KEPT = 'kept'

/**
 * Removes container directories nobody holds any more (their process died without cleaning
 * up). Alive means its lock is held, by any process in any PID namespace: never a pid test.
 */
function sweep(containers: string): void {
  let names: string[]
  try {
    names = fs.readdirSync(containers)
  } catch {
    return
  }
  for (const name of names) {
    const dir = path.join(containers, name)
    if (fs.existsSync(path.join(dir, KEPT))) continue
    let fd: number | null
    try {
      fd = native().lockFile(path.join(dir, LOCK))
    } catch {
      continue // not a container directory of ours (no lock can be made there): leave it
    }
    if (fd === null) continue // alive
    try {
      fs.rmSync(dir, { recursive: true, force: true })
    } finally {
      fs.closeSync(fd)
    }
  }
}

let swept = false

export interface FoundImage {
  image: Image
  store: string
}

/** The image `ref` names in the store (validated; reads only). */
export function findImage(ref: unknown, store: unknown): FoundImage {
  if (typeof ref !== 'string' || ref === '') throw optionError(TypeError, `image`, `Option \`image\` must be an image name or id; got ${show(ref)}.`)
  const dir = storeDir(store === undefined ? {} : { store })
  try {
    return { image: inspectImage(ref, { store: dir }), store: dir }
  } catch (e) {
    throw optionError(RangeError, `image`, `Option \`image\` names no image in the store ${dir}: ${show(ref)} (${(e as Error).message}).`)
  }
}

/** The container's own upper and work directories (after every option was validated). */
export function makeImageRoot(found: FoundImage): ImageRoot {
  const containers = path.join(found.store, 'containers')
  fs.mkdirSync(containers, { recursive: true, mode: 0o700 })
  if (!swept) {
    sweep(containers)
    swept = true
  }
  // A random name: the container's mountinfo shows it (upperdir), and it must say nothing.
  const dir = path.join(containers, randomBytes(8).toString('hex'))
  fs.mkdirSync(dir, { mode: 0o700 })
  const lock = native().lockFile(path.join(dir, LOCK))
  if (lock === null) throw new Error(`lock \`${dir}\`: held by another process (a random name repeated)`)
  // Its lease: `rmi` refuses an image whose id a held container directory records.
  fs.writeFileSync(path.join(dir, 'image'), found.image.id)
  const upper = path.join(dir, 'upper')
  const work = path.join(dir, 'work')
  fs.mkdirSync(upper, { mode: 0o755 })
  fs.mkdirSync(work, { mode: 0o700 })
  let locked = true
  const unlock = () => {
    if (locked) fs.closeSync(lock)
    locked = false
  }
  return {
    spec: { lowerdirs: found.image.layers.map((l) => l.dir).reverse(), upper, work },
    image: found.image,
    dir,
    discard: () => {
      fs.rmSync(dir, { recursive: true, force: true })
      unlock()
    },
    release: () => {
      fs.writeFileSync(path.join(dir, KEPT), '')
      unlock()
    },
    lock,
  }
}

/** The command docker would run: Entrypoint, then the given command or else Cmd. */
export function imageCommand(command: string[], config: ImageConfig): string[] {
  const argv = [...(config.entrypoint ?? []), ...(command.length ? command : config.cmd ?? [])]
  if (argv.length === 0) throw optionError(RangeError, `command`, `Option \`command\` is required: the image sets no Entrypoint or Cmd; got ${show(command)}.`)
  return argv
}

