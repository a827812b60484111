// Loads the Rust addon. On any OS but Linux the package still loads; using it says why not.
// On Linux the napi-rs loader (binding.js) picks a local build in a checkout
// (`lonely-container.<target>.node` beside it) or the platform package npm installed
// (`lonely-container-<target>`); when neither loads, this file turns its list of attempts
// into one error that says what is supported, what this machine is, and how to fix it.
import * as fs from 'node:fs'

import type * as Binding from '../binding'

/** The targets prebuilt binaries are published for: `linux-<arch>-<gnu|musl>`. */
export const SUPPORTED_TARGETS = ['linux-x64-gnu', 'linux-arm64-gnu', 'linux-x64-musl', 'linux-arm64-musl'] as const

/** What the loader needs to know about the machine; tests pass their own. */
export interface Host {
  platform: string
  arch: string
  /** `glibc`, `musl`, or `null` when it could not be told. Only read on Linux. */
  libc: () => 'glibc' | 'musl' | null
}

/** Same order as binding.js: /usr/bin/ldd's text, then the process report, else unknown. */
export function detectLibc(): 'glibc' | 'musl' | null {
  try {
    const ldd = fs.readFileSync('/usr/bin/ldd', 'utf8')
    if (ldd.includes('musl')) return 'musl'
    if (/GNU C Library|glibc|GLIBC/i.test(ldd)) return 'glibc'
  } catch {
    // no ldd (distroless images): ask the report
  }
  try {
    const report = process.report?.getReport() as { header?: { glibcVersionRuntime?: string }; sharedObjects?: string[] } | undefined
    if (report?.header?.glibcVersionRuntime) return 'glibc'
    if (report?.sharedObjects?.some((f) => f.includes('libc.musl-') || f.includes('ld-musl-'))) return 'musl'
  } catch {
    // report unavailable
  }
  return null
}

const processHost: Host = {
  get platform() {
    return process.platform
  },
  get arch() {
    return process.arch
  },
  libc: detectLibc,
}

/** The messages of an error and its `cause` chain, first line of each, oldest attempt first. */
function attempts(error: unknown): string[] {
  const out: string[] = []
  for (let e = error as { message?: unknown; cause?: unknown } | null | undefined, n = 0; e && n < 50; e = e.cause as typeof e, n++) {
    if (typeof e.message === 'string') out.push(e.message.split('\n')[0] ?? '')
  }
  // binding.js puts its own summary first and chains its attempts newest-outermost.
  // Its WASI fallbacks are left out: this package ships no WASI build.
  const own = out.length > 1 && /native binding/.test(out[0] ?? '') ? out.slice(1).reverse() : out
  return own.filter((m) => m && !/wasi/i.test(m))
}

/** The one error the package throws when no addon loads on Linux. */
export function bindingError(host: Host, cause: unknown): Error {
  const libc = host.libc()
  const abi = libc === 'musl' ? 'musl' : 'gnu'
  const target = `linux-${host.arch}-${abi}`
  const detected = `${host.platform}/${host.arch} with ${libc ?? 'an unknown libc (glibc assumed)'}`
  const supported = (SUPPORTED_TARGETS as readonly string[]).includes(target)
  const tried = attempts(cause)
  const notFound = tried.every((m) => /Cannot find module|Unsupported architecture/.test(m))
  const lines = [
    `lonely-container: no native addon loads on this machine (${detected}, target ${target}).`,
    `Prebuilt binaries exist for Linux on x64 and arm64, with glibc or musl: ${SUPPORTED_TARGETS.join(', ')}.`,
  ]
  if (!supported) {
    lines.push(`${target} is not one of them: build the addon from source on this machine (below).`)
  } else if (notFound) {
    lines.push(
      `The package lonely-container-${target} is not installed (npm installs it as an optional dependency on a matching machine;` +
        ` --omit=optional, --no-optional or a node_modules copied from another machine leave it out).`,
    )
  } else {
    lines.push(`The addon for ${target} was found but did not load (see "tried" below): a glibc older than 2.17, a damaged install, or a binary for another machine.`)
  }
  lines.push(
    `Fix: run \`npm install lonely-container\` on this machine (it installs lonely-container-${target}),` +
      ` or build from source: install Rust (cargo, https://rustup.rs), a C toolchain and libseccomp-dev, then in a checkout run` +
      ` \`npm ci && npm run build\`, which writes lonely-container.${target}.node beside binding.js.`,
  )
  if (tried.length > 0) lines.push(`Tried: ${tried.join('; ')}`)
  const error = new Error(lines.join('\n'), { cause }) as Error & { code: string }
  error.code = 'ERR_LONELY_NO_BINDING'
  return error
}

/** The error every call throws on an OS other than Linux. */
export function notLinuxError(host: Pick<Host, 'platform' | 'arch'>): Error {
  const error = new Error(
    `lonely-container runs Linux containers and needs Linux; this is ${host.platform}/${host.arch}.` +
      ' Run it on a Linux machine or in a Linux VM (x64 or arm64, glibc or musl).',
  ) as Error & { code: string }
  error.code = 'ERR_LONELY_NOT_LINUX'
  return error
}

/** Loads the addon with `load` on `host`, or throws the one error that explains why not. */
export function loadBinding<T>(host: Host, load: () => T): T {
  if (host.platform !== 'linux') throw notLinuxError(host)
  try {
    return load()
  } catch (e) {
    throw bindingError(host, e)
  }
}

let loaded: typeof Binding | undefined

export function native(): typeof Binding {
  if (loaded) return loaded
  loaded = loadBinding(processHost, () => require('../binding.js') as typeof Binding)
  return loaded
}
