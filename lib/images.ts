// Images: `docker save` archives, OCI image archives and OCI layout directories, loaded
// into a content-addressed store (layers deduplicated by diff_id), listed, inspected and
// removed. Loading and removing run on the libuv threadpool; list and inspect are quick
// synchronous reads. Options are validated like the container options: errors name the
// option and echo the value.
import * as os from 'node:os'
import * as path from 'node:path'

import { native } from './native'
import { ownOnly } from './own'
import { show } from './show'
import { optionError } from './optionerror'

/** What a container of the image runs by default; `run()` options override it. */
export interface ImageConfig {
  /** Undefined when the image sets none; `[]` when it clears its base image's. */
  entrypoint?: string[]
  cmd?: string[]
  /** `KEY=value`, in order. */
  env: string[]
  workingDir?: string
  /** `name`, `uid`, `name:group` or `uid:gid`, as the image's /etc/passwd and /etc/group know them. */
  user?: string
  labels: Record<string, string>
  stopSignal?: string
  exposedPorts: string[]
  volumes: string[]
  architecture: string
  os: string
  variant?: string
  created?: string
}

export interface ImageLayer {
  /** sha256 of the uncompressed layer tar: the layer's name in the store. */
  diffId: string
  /** Absolute path of the layer's directory: an overlayfs lower directory. */
  dir: string
  /** Uncompressed size in bytes. */
  size: number
}

export interface Image {
  /** `sha256:<hex>` of the image config, as docker's image ids. */
  id: string
  /** `alpine:3.20`, `test/two:v1`... (Docker Hub's `docker.io/library/` prefix dropped); empty when it is known by id only. */
  names: string[]
  /** The manifest's digest (OCI archives and layouts); undefined for `docker save` archives. */
  manifest?: string
  /** Lowest first: `layers[0]` is the base. Stacked with overlayfs, they are given in reverse. */
  layers: ImageLayer[]
  config: ImageConfig
  /** Sum of the uncompressed layer sizes. */
  size: number
  loaded: Date
  /** Its layers were loaded with `keepSetuid`: their setuid/setgid bits are kept (else cleared). */
  keepSetuid: boolean
}

export interface LoadProgress {
  /** `extracting` a new layer, `verifying` the blob of a layer already stored, `done` with one. */
  state: 'extracting' | 'verifying' | 'done'
  /** The layer was already in the store (nothing written). */
  reused: boolean
  /** 0-based, over all layers of all images in the archive. */
  layer: number
  layers: number
  diffId: string
  /** Bytes of this layer's blob read so far, and its size. */
  bytes: number
  size: number
  /** Bytes of all layer blobs read so far, and their total. */
  done: number
  total: number
}

/** The first (usually the only) image of the archive, and what the load did. */
export interface LoadedImage extends Image {
  /** Every image of the archive, this one first. */
  images: Image[]
  layersAdded: number
  layersReused: number
  /** What was skipped or changed: device nodes, setuid bits, xattrs, other platforms... */
  notes: string[]
}

export interface StoreOptions {
  /** The store directory. Default: `/var/lib/lonely` for root, else `$XDG_DATA_HOME/lonely` or `~/.local/share/lonely`. */
  store?: string
}

export interface LoadOptions extends StoreOptions {
  /** Called on the JS thread while layers are read (about every MiB, and once per layer when done). */
  onProgress?: (progress: LoadProgress) => void
  /**
   * Default false: setuid/setgid bits are cleared as layers are extracted (a note names the
   * files). True keeps them, for `sudo`/`su` in the image: such layers are stored apart from
   * layers loaded without them, and the image (the last load of it wins) uses them. They raise
   * privileges only in a container run with `allowSetuid: true` and `noNewPrivileges: false`.
   */
  keepSetuid?: boolean
}

export interface RemoveResult {
  /** Names removed. */
  untagged: string[]
  /** Image ids removed (an image goes with its last name, or when removed by id). */
  deleted: string[]
  /** Layer directories deleted because no image uses them any more. */
  layersRemoved: number
}


/** The store used when no `store` option is given. */
export function defaultStore(): string {
  if (process.geteuid?.() === 0) return '/var/lib/lonely'
  const xdg = process.env.XDG_DATA_HOME
  if (xdg && path.isAbsolute(xdg)) return path.join(xdg, 'lonely')
  return path.join(os.homedir(), '.local', 'share', 'lonely')
}

function checkKeys(fn: string, options: unknown, known: readonly string[]): Record<string, unknown> {
  if (options === undefined) return Object.create(null)
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw optionError(TypeError, `options`, `Option \`options\` of ${fn} must be an object; got ${show(options)}.`)
  }
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) throw optionError(TypeError, key, `Unknown option \`${key}\` for ${fn} (known: ${known.join(', ')}).`)
  }
  return ownOnly(options) as Record<string, unknown>
}

function pathString(option: string, value: unknown): string {
  if (typeof value !== 'string' || value === '') throw optionError(TypeError, `${option}`, `Option \`${option}\` must be a non-empty path string; got ${show(value)}.`)
  if (value.includes('\0')) throw optionError(RangeError, `${option}`, `Option \`${option}\` must not contain a NUL byte; got ${show(value)}.`)
  return path.resolve(value)
}

/** The store directory an options object names (validated), or the default one. */
export function store(options: Record<string, unknown>): string {
  if (options.store === undefined) return defaultStore()
  const dir = pathString('store', options.store)
  // The layer directories become overlayfs `lowerdir=a:b:c` options, where these separate.
  if (/[:,\\]/.test(dir)) throw optionError(RangeError, `store`, `Option \`store\` must not contain \`:\`, \`,\` or \`\\\` (overlayfs option separators); got ${show(options.store)}.`)
  return dir
}

function reference(value: unknown): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw optionError(TypeError, `ref`, `Option \`ref\` must be an image name (\`name[:tag]\`) or id (\`sha256:...\`); got ${show(value)}.`)
  }
  if (value.includes('\0')) throw optionError(RangeError, `ref`, `Option \`ref\` must not contain a NUL byte; got ${show(value)}.`)
  return value
}

type Native = ReturnType<typeof native>
type NativeImage = ReturnType<Native['inspectImage']>

const orUndefined = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v)

function image(n: NativeImage): Image {
  const c = n.config
  return {
    id: n.id,
    names: n.names,
    manifest: orUndefined(n.manifest),
    layers: n.layers.map((l) => ({ diffId: l.diffId, dir: l.dir, size: l.size })),
    config: {
      entrypoint: orUndefined(c.entrypoint),
      cmd: orUndefined(c.cmd),
      env: c.env,
      workingDir: orUndefined(c.workingDir),
      user: orUndefined(c.user),
      labels: { ...c.labels },
      stopSignal: orUndefined(c.stopSignal),
      exposedPorts: c.exposedPorts,
      volumes: c.volumes,
      architecture: c.architecture,
      os: c.os,
      variant: orUndefined(c.variant),
      created: orUndefined(c.created),
    },
    size: n.size,
    loaded: new Date(n.loaded * 1000),
    keepSetuid: n.keepSetuid,
  }
}

/**
 * Loads a `docker save` archive, an OCI image archive or an OCI image layout directory
 * (plain, gzip or zstd layers) into the store. Every blob is checked against its sha256;
 * layers already stored are not written again. Resolves with the first image.
 */
export async function load(archive: string, options?: LoadOptions): Promise<LoadedImage> {
  const file = pathString('path', archive)
  const o = checkKeys('images.load()', options, ['store', 'onProgress', 'keepSetuid'])
  const dir = store(o)
  if (o.keepSetuid !== undefined && typeof o.keepSetuid !== 'boolean') {
    throw optionError(TypeError, `keepSetuid`, `Option \`keepSetuid\` must be a boolean; got ${show(o.keepSetuid)}.`)
  }
  const onProgress = o.onProgress
  if (onProgress !== undefined && typeof onProgress !== 'function') {
    throw optionError(TypeError, `onProgress`, `Option \`onProgress\` must be a function; got ${show(onProgress)}.`)
  }
  let thrown: { error: unknown } | undefined
  const progress = onProgress
    ? (p: Parameters<NonNullable<Parameters<Native['loadImage']>[3]>>[0]) => {
        if (thrown) return
        try {
          ;(onProgress as (p: LoadProgress) => void)({ ...p, state: p.state as LoadProgress['state'] })
        } catch (error) {
          thrown = { error } // reported once the load has finished; the load itself goes on
        }
      }
    : undefined
  let result: Awaited<ReturnType<Native['loadImage']>>
  try {
    result = await native().loadImage(file, dir, o.keepSetuid === true, progress)
  } finally {
    // Progress calls queued just before the end are delivered before this settles.
    if (progress) await new Promise((resolve) => setImmediate(resolve))
  }
  if (thrown) throw thrown.error
  const all = result.images.map(image)
  return { ...all[0], images: all, layersAdded: result.layersAdded, layersReused: result.layersReused, notes: result.notes }
}

/** Every image of the store, newest first. */
export function list(options?: StoreOptions): Image[] {
  const o = checkKeys('images.list()', options, ['store'])
  return native().listImages(store(o)).map(image)
}

/**
 * The image `ref` names: `name[:tag]` (`:latest` implied), `name@sha256:<manifest digest>`,
 * `sha256:<id>` or a unique prefix of an id. `layers[].dir` are its layer directories, lowest first.
 */
export function inspect(ref: string, options?: StoreOptions): Image {
  const r = reference(ref)
  const o = checkKeys('images.inspect()', options, ['store'])
  return image(native().inspectImage(store(o), r))
}

/**
 * Removes the name `ref` (the image goes with its last name), or given an id the image and
 * all its names; then deletes the layers no image uses any more. As docker's `rmi`: an image a
 * running container uses is refused (its layers are under it; even with `force`), one a kept
 * container (`keep: true`) uses is refused unless `force`.
 */
export async function remove(ref: string, options?: StoreOptions & { force?: boolean }): Promise<RemoveResult> {
  const r = reference(ref)
  const o = checkKeys('images.remove()', options, ['store', 'force'])
  const force = (o as { force?: unknown }).force ?? false
  if (typeof force !== 'boolean') throw optionError(TypeError, 'force', `Option \`force\` must be a boolean; got ${show(force)}.`)
  return native().removeImage(store(o), r, force)
}

/** A layer an image needs that the store does not have whole. */
export interface LayerDamage {
  image: string
  names: string[]
  layer: string
  /** `missing`, or `incomplete: ...` (a deletion or an extraction that did not finish). */
  problem: string
}

/**
 * Checks every image's layers: each must be whole (its completion marker written after it was
 * renamed into place). `repair: true` removes what damage left, so that loading the image's
 * archive again extracts those layers anew (a damaged image never runs: inspect and run refuse it).
 */
export function check(options?: StoreOptions & { repair?: boolean }): LayerDamage[] {
  const o = checkKeys('images.check()', options, ['store', 'repair'])
  const repair = (o as { repair?: unknown }).repair ?? false
  if (typeof repair !== 'boolean') throw optionError(TypeError, 'repair', `Option \`repair\` must be a boolean; got ${show(repair)}.`)
  return native().checkImages(store(o), repair)
}

export const images = { load, list, inspect, remove, check, defaultStore }
