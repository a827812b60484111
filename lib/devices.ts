// docker's --device: a host device node made in the container's /dev with the host's type,
// numbers, mode and owner (the core validates the target and makes the node).
import * as fs from 'node:fs'

import { optionError } from './optionerror'
import { show } from './show'

export interface Device {
  /** The host's node, e.g. `/dev/fuse` (a symlink to one is followed). */
  source: string
  /** Where it appears in the container. Default: `source`. */
  target?: string
}

export interface DeviceNode {
  path: string
  kind: 'c' | 'b'
  major: number
  minor: number
  mode: number
  uid: number
  gid: number
}

/** Linux's dev_t split (the glibc encoding): major and minor of `rdev`. */
function numbers(rdev: number): { major: number; minor: number } {
  const dev = BigInt(rdev)
  return {
    major: Number(((dev >> 8n) & 0xfffn) | ((dev >> 32n) & ~0xfffn)),
    minor: Number((dev & 0xffn) | ((dev >> 12n) & ~0xffn)),
  }
}

/** The nodes of `devices` (strings are sources), each a host character or block device. */
export function deviceNodes(value: unknown): DeviceNode[] {
  if (value === undefined) return []
  if (!Array.isArray(value)) throw optionError(TypeError, 'devices', `Option \`devices\` must be an array of host device paths or { source, target }; got ${show(value)}.`)
  return value.map((d, i) => {
    const at = `devices[${i}]`
    const { source, target } = typeof d === 'string' ? { source: d, target: undefined } : ((d ?? {}) as Device)
    if (typeof source !== 'string' || !source.startsWith('/')) throw optionError(TypeError, at, `Option \`${at}\` must name a host device by absolute path; got ${show(d)}.`)
    if (target !== undefined && (typeof target !== 'string' || !target.startsWith('/dev/'))) throw optionError(RangeError, `${at}.target`, `Option \`${at}.target\` must be a path under /dev; got ${show(target)}.`)
    let st: fs.Stats
    try {
      st = fs.statSync(source)
    } catch (e) {
      throw optionError(RangeError, at, `Option \`${at}\` names ${show(source)}, which cannot be read on the host: ${(e as NodeJS.ErrnoException).code}.`)
    }
    if (!st.isCharacterDevice() && !st.isBlockDevice()) throw optionError(RangeError, at, `Option \`${at}\` names ${show(source)}, which is not a character or block device.`)
    return { path: target ?? source, kind: st.isBlockDevice() ? 'b' : 'c', ...numbers(st.rdev), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid }
  })
}

/** Every character and block device under the host's /dev but its pseudo-terminals (docker --privileged). */
export function hostDevices(dir = '/dev'): string[] {
  const found: string[] = []
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = `${dir}/${entry.name}`
    if (entry.isDirectory() && !['/dev/pts', '/dev/shm', '/dev/mqueue'].includes(p)) found.push(...hostDevices(p))
    else if (entry.isCharacterDevice() || entry.isBlockDevice()) found.push(p)
  }
  return found
}
