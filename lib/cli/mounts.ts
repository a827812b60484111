// docker's -v, --mount and --tmpfs as library mounts, each error naming its flag and value;
// named volumes are directories of the store (`lonely volume`).
import * as path from 'node:path'

import type { Mount } from '../../index'
import { PROPAGATIONS, type Propagation } from '../options'
import { store as storeDir } from '../images'
import { invalid } from './flags'

/** A flag's mount, what the CLI must do on the host first, and what it tells the user. */
export interface FlagMount {
  mount: Mount
  /** A host directory to make before the container runs (docker makes a missing -v source). */
  make?: string
  notes: string[]
}

/** docker's volume names. */
const VOLUME_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]+$/

/** Where the store keeps its named volumes. */
export function volumesDir(store: string | undefined): string {
  return path.join(storeDir(store === undefined ? {} : { store }), 'volumes')
}

function volumeSource(long: string, raw: string, name: string, store: string | undefined): string {
  if (!VOLUME_NAME.test(name)) throw invalid(long, raw, `${JSON.stringify(name)} is neither a host path (absolute, or starting with ".") nor a volume name ([A-Za-z0-9][A-Za-z0-9_.-]+)`)
  return path.join(volumesDir(store), name)
}

/** Options docker takes that mean nothing here (SELinux labels, macOS consistency, volume copy-up). */
const IGNORED: Record<string, string> = {
  z: 'SELinux relabeling: lonely does not label (no SELinux policy is loaded for it)',
  Z: 'SELinux relabeling: lonely does not label (no SELinux policy is loaded for it)',
  cached: 'a consistency mode of Docker Desktop for Mac',
  delegated: 'a consistency mode of Docker Desktop for Mac',
  consistent: 'a consistency mode of Docker Desktop for Mac',
  nocopy: 'lonely never copies the image\'s files into a new volume',
}

/** `-v SRC:DST[:OPTS]`. */
export function volumeFlag(v: string, store: string | undefined): FlagMount {
  const parts = v.split(':')
  if (parts.length < 2 || parts.length > 3 || !parts[0] || !parts[1]) {
    throw invalid('volume', v, 'must be SRC:DST or SRC:DST:OPTS (anonymous volumes are not supported)')
  }
  const [src, target, opts] = parts
  let readonly = false
  let propagation: Propagation | undefined
  const notes: string[] = []
  for (const opt of opts === undefined ? [] : opts.split(',')) {
    if (opt === 'ro' || opt === 'rw') readonly = opt === 'ro'
    else if ((PROPAGATIONS as readonly string[]).includes(opt)) propagation = opt as Propagation
    else if (opt in IGNORED) notes.push(`-v ${JSON.stringify(v)}: option ${opt} ignored (${IGNORED[opt]})`)
    else throw invalid('volume', v, `unknown option ${JSON.stringify(opt)}: use ro, rw, ${PROPAGATIONS.join(', ')} (z, Z, cached, delegated, consistent and nocopy are ignored)`)
  }
  const source = src.startsWith('/') || src.startsWith('.') ? path.resolve(src) : volumeSource('volume', v, src, store)
  return { mount: { type: 'bind', source, target, readonly, ...(propagation && { propagation }) }, make: source, notes }
}

/** `--mount type=bind|volume|tmpfs,...` (docker's CSV of key=value). */
export function mountFlag(m: string, store: string | undefined): FlagMount {
  const fields = new Map<string, string | undefined>()
  for (const field of m.split(',')) {
    const eq = field.indexOf('=')
    const key = eq < 0 ? field : field.slice(0, eq)
    const canonical = ({ dst: 'target', destination: 'target', src: 'source', ro: 'readonly' } as Record<string, string>)[key] ?? key
    if (fields.has(canonical)) throw invalid('mount', m, `${key} is given twice`)
    fields.set(canonical, eq < 0 ? undefined : field.slice(eq + 1))
  }
  const type = fields.get('type') ?? 'volume'
  const target = fields.get('target')
  if (!target) throw invalid('mount', m, 'needs target=DST (or dst=, destination=)')
  const readonlyValue = fields.get('readonly')
  if (readonlyValue !== undefined && !['true', 'false', '1', '0'].includes(readonlyValue)) throw invalid('mount', m, `readonly must be true or false (got ${JSON.stringify(readonlyValue)})`)
  const readonly = fields.has('readonly') && readonlyValue !== 'false' && readonlyValue !== '0'
  const known: Record<string, string[]> = {
    bind: ['type', 'source', 'target', 'readonly', 'bind-propagation', 'consistency'],
    volume: ['type', 'source', 'target', 'readonly', 'volume-nocopy', 'consistency'],
    tmpfs: ['type', 'target', 'readonly', 'tmpfs-size', 'tmpfs-mode'],
  }
  if (!(type in known)) throw invalid('mount', m, `type must be bind, volume or tmpfs (got ${JSON.stringify(type)})`)
  for (const key of fields.keys()) if (!known[type].includes(key)) throw invalid('mount', m, `${key} does not go with type=${type} (known: ${known[type].join(', ')})`)
  const notes = fields.has('consistency') ? [`--mount ${JSON.stringify(m)}: consistency ignored (${IGNORED.cached})`] : []
  const propagation = fields.get('bind-propagation') as Propagation | undefined
  if (propagation !== undefined && !PROPAGATIONS.includes(propagation)) throw invalid('mount', m, `bind-propagation must be one of ${PROPAGATIONS.join(', ')} (got ${JSON.stringify(propagation)})`)
  if (type === 'tmpfs') {
    const mount: Mount = { type: 'tmpfs', target, readonly }
    const size = fields.get('tmpfs-size')
    if (size !== undefined) mount.size = size
    const mode = fields.get('tmpfs-mode')
    if (mode !== undefined) {
      if (!/^[0-7]{1,4}$/.test(mode)) throw invalid('mount', m, `tmpfs-mode must be octal, like 1777 (got ${JSON.stringify(mode)})`)
      mount.mode = parseInt(mode, 8)
    }
    return { mount, notes }
  }
  const src = fields.get('source')
  if (type === 'bind') {
    // docker --mount type=bind refuses a missing source (only -v makes it).
    if (!src) throw invalid('mount', m, 'type=bind needs source=SRC')
    return { mount: { type: 'bind', source: path.resolve(src), target, readonly, ...(propagation && { propagation }) }, notes }
  }
  if (!src) throw invalid('mount', m, 'type=volume needs source=NAME (anonymous volumes are not supported)')
  const source = volumeSource('mount', m, src, store)
  return { mount: { type: 'bind', source, target, readonly }, make: source, notes }
}

/** `--tmpfs DST[:OPTS]` with docker's options; noexec unless `exec`, as docker's default. */
export function tmpfsFlag(t: string): FlagMount {
  const colon = t.indexOf(':')
  const target = colon < 0 ? t : t.slice(0, colon)
  if (!target) throw invalid('tmpfs', t, 'must be DST[:OPTS]')
  const mount: Extract<Mount, { type: 'tmpfs' }> = { type: 'tmpfs', target, noexec: true }
  for (const opt of colon < 0 ? [] : t.slice(colon + 1).split(',')) {
    const eq = opt.indexOf('=')
    const [key, value] = eq < 0 ? [opt, undefined] : [opt.slice(0, eq), opt.slice(eq + 1)]
    if (key === 'size' && value) mount.size = value
    else if (key === 'mode' && value !== undefined && /^[0-7]{1,4}$/.test(value)) mount.mode = parseInt(value, 8)
    else if (key === 'mode') throw invalid('tmpfs', t, `mode must be octal, like 1777 (got ${JSON.stringify(value ?? '')})`)
    else if ((key === 'uid' || key === 'gid') && value !== undefined && /^\d+$/.test(value)) mount[key] = Number(value)
    else if (key === 'uid' || key === 'gid') throw invalid('tmpfs', t, `${key} must be a number (got ${JSON.stringify(value ?? '')})`)
    else if (opt === 'ro' || opt === 'rw') mount.readonly = opt === 'ro'
    else if (opt === 'exec' || opt === 'noexec') mount.noexec = opt === 'noexec'
    else if (opt === 'nosuid' || opt === 'nodev') continue // always so
    else if (opt === 'suid' || opt === 'dev') throw invalid('tmpfs', t, `${opt} is refused: lonely's tmpfs mounts are always nosuid and nodev`)
    else throw invalid('tmpfs', t, `unsupported option ${JSON.stringify(opt)}: use size=N, mode=M, uid=N, gid=N, ro, rw, exec, noexec`)
  }
  return { mount, notes: [] }
}
