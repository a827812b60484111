// `lonely cp`: docker cp between a detached container and the host (or a tar stream on
// stdin/stdout, `-`), through the library's copyOut/copyIn (tar archives; nothing inside the
// container follows a symlink of its own). A destination that does not exist yet takes the
// source's place under its new name, as docker's does.
import * as fs from 'node:fs'
import * as path from 'node:path'

import { containers, type Container } from '../../index'
import { native } from '../native'
import { UsageError } from './flags'

export const CP_HELP = `Usage: lonely cp CONTAINER:SRC_PATH DEST_PATH|-
       lonely cp SRC_PATH|- CONTAINER:DEST_PATH

Copy files between a detached container and the host (- : a tar archive on stdout or stdin).
`

const LIMIT = 4 * 1024 * 1024 * 1024

/** `name:path` with a known container, or null for a host path. */
function side(arg: string): { c: Container; at: string } | null {
  const colon = arg.indexOf(':')
  if (colon <= 0 || arg.startsWith('/') || arg.startsWith('.')) return null
  try {
    return { c: containers.get(arg.slice(0, colon)), at: arg.slice(colon + 1) || '/' }
  } catch {
    throw new UsageError(`No such container: ${arg.slice(0, colon)}`)
  }
}

async function readStdin(): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

/** Unpacks at `dest` with `into`: into it if it is a directory, else as it (its parent must exist). */
async function unpack(dest: string, into: (dir: string, rename?: string) => Promise<void>): Promise<void> {
  try {
    await into(dest)
  } catch (e) {
    // Not a directory there (nothing, or a file): the top entry takes its name.
    if (!/`[^`]*`: (ENOENT|ENOTDIR)/.test(String((e as Error).message))) throw e
    await into(path.posix.dirname(dest), path.posix.basename(dest))
  }
}

export async function cp(args: string[]): Promise<number> {
  if (args[0] === '--help' || args[0] === '-h') {
    process.stdout.write(CP_HELP)
    return 0
  }
  if (args.length !== 2) throw new UsageError(`"lonely cp" requires exactly 2 arguments.\n${CP_HELP}`)
  const [src, dest] = [side(args[0]), side(args[1])]
  if ((src === null) === (dest === null)) throw new UsageError('lonely cp copies between a container and the host: one of the two paths must be CONTAINER:PATH')
  if (src) {
    const tar = await src.c.copyOut(src.at, { maxBuffer: LIMIT })
    if (args[1] === '-') {
      await new Promise<void>((resolve, reject) => process.stdout.write(tar, (e) => (e ? reject(e) : resolve())))
      return 0
    }
    const host = path.resolve(args[1])
    await unpack(host, (dir, rename) => native().copyIn(0, null, dir, tar, rename ?? null))
    return 0
  }
  const tar = args[0] === '-' ? await readStdin() : await native().copyOut(0, null, path.resolve(args[0]), LIMIT)
  if (args[0] !== '-' && !fs.existsSync(args[0])) throw new UsageError(`no such file or directory: ${args[0]}`)
  await unpack(dest!.at, (dir, rename) => dest!.c.copyIn(dir, tar, rename ? { rename } : {}))
  return 0
}
