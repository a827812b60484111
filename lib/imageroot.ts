// A container's root from an image: the image's layers stacked read-only with overlayfs
// and a fresh writable upper layer per container, discarded when it ends (unless `keep`).
// The image config is applied as docker does; options override it.
import * as fs from 'node:fs'
import * as path from 'node:path'
import { inspect as show0 } from 'node:util'

import { inspect as inspectImage, store as storeDir, type Image, type ImageConfig } from './images'

const show = (v: unknown) => show0(v, { breakLength: Infinity })
let sequence = 0

export interface ImageRootSpec {
  /** Top layer first, as overlayfs wants `lowerdir`. */
  lowerdirs: string[]
  upper: string
  work: string
}

export interface ImageRoot {
  spec: ImageRootSpec
  image: Image
  /** The container's own directory (upper + work); removed by `discard`. */
  dir: string
  discard: () => void
}

/** Removes container directories a dead Node process left behind (`<pid>-<n>`). */
function sweep(containers: string): void {
  let names: string[]
  try {
    names = fs.readdirSync(containers)
  } catch {
    return
  }
  for (const name of names) {
    const pid = Number(name.split('-')[0])
    if (!Number.isInteger(pid) || pid === process.pid) continue
    try {
      process.kill(pid, 0)
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') fs.rmSync(path.join(containers, name), { recursive: true, force: true })
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
  if (typeof ref !== 'string' || ref === '') throw new TypeError(`Option \`image\` must be an image name or id; got ${show(ref)}.`)
  const dir = storeDir(store === undefined ? {} : { store })
  try {
    return { image: inspectImage(ref, { store: dir }), store: dir }
  } catch (e) {
    throw new RangeError(`Option \`image\` names no image in the store ${dir}: ${show(ref)} (${(e as Error).message}).`)
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
  const dir = path.join(containers, `${process.pid}-${sequence++}`)
  fs.mkdirSync(dir, { mode: 0o700 })
  const upper = path.join(dir, 'upper')
  const work = path.join(dir, 'work')
  fs.mkdirSync(upper, { mode: 0o755 })
  fs.mkdirSync(work, { mode: 0o700 })
  return {
    spec: { lowerdirs: found.image.layers.map((l) => l.dir).reverse(), upper, work },
    image: found.image,
    dir,
    discard: () => fs.rmSync(dir, { recursive: true, force: true }),
  }
}

/** The command docker would run: Entrypoint, then the given command or else Cmd. */
export function imageCommand(command: string[], config: ImageConfig): string[] {
  const argv = [...(config.entrypoint ?? []), ...(command.length ? command : config.cmd ?? [])]
  if (argv.length === 0) throw new RangeError(`Option \`command\` is required: the image sets no Entrypoint or Cmd; got ${show(command)}.`)
  return argv
}

/** `uid[:gid]` from the image's `User`, numeric or looked up in its topmost /etc/passwd and /etc/group. */
export function imageUser(config: ImageConfig, image: Image): { uid: number; gid: number } | undefined {
  if (!config.user) return undefined
  const [user, group] = config.user.split(':')
  const lookup = (file: string, name: string): number | undefined => {
    for (const layer of [...image.layers].reverse()) {
      let text: string
      try {
        text = fs.readFileSync(path.join(layer.dir, 'etc', file), 'utf8')
      } catch {
        continue
      }
      const line = text.split('\n').find((l) => l.split(':')[0] === name)
      return line ? Number(line.split(':')[2]) : undefined
    }
    return undefined
  }
  const uid = /^\d+$/.test(user) ? Number(user) : lookup('passwd', user)
  if (uid === undefined) throw new RangeError(`Option \`image\`: the image's User ${show(config.user)} is not in its /etc/passwd.`)
  let gid: number | undefined
  if (group === undefined) {
    const passwdGid = (() => {
      for (const layer of [...image.layers].reverse()) {
        try {
          const line = fs.readFileSync(path.join(layer.dir, 'etc', 'passwd'), 'utf8').split('\n').find((l) => l.split(':')[2] === String(uid))
          return line ? Number(line.split(':')[3]) : undefined
        } catch {
          continue
        }
      }
      return undefined
    })()
    gid = passwdGid ?? 0
  } else {
    gid = /^\d+$/.test(group) ? Number(group) : lookup('group', group)
    if (gid === undefined) throw new RangeError(`Option \`image\`: the image's group ${show(group)} is not in its /etc/group.`)
  }
  return { uid, gid }
}
