// `lonely volume ls|create|inspect|rm`: named volumes, directories under the store's volumes/.
import * as fs from 'node:fs'
import * as path from 'node:path'

import { UsageError } from './flags'
import { volumesDir } from './mounts'

const VOLUME_HELP = `Usage: lonely volume COMMAND [--store DIR]

Named volumes (-v NAME:/path, --mount type=volume,source=NAME,...): directories of the store,
made on first use and kept until removed.

Commands:
  ls [-q]         List volumes
  create NAME     Make a volume
  inspect NAME... Print volumes as JSON (name and mountpoint)
  rm NAME...      Remove volumes and their files
`

export function volumeCommand(args: string[]): Promise<number> {
  let store: string | undefined
  let quiet = false
  const rest: string[] = []
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    if (a === '--store') store = args[++i]
    else if (a.startsWith('--store=')) store = a.slice('--store='.length)
    else if (a === '-q' || a === '--quiet') quiet = true
    else if (a === '-h' || a === '--help') rest.unshift('help')
    else if (a.startsWith('-')) throw new UsageError(`unknown flag: ${a}\nSee 'lonely volume --help'.`)
    else rest.push(a)
  }
  const dir = volumesDir(store)
  const [sub, ...names] = rest
  const named = (what: string) => {
    if (names.length === 0) throw new UsageError(`"lonely volume ${what}" requires at least one volume name`)
    return names.map((n) => {
      if (!/^[A-Za-z0-9][A-Za-z0-9_.-]+$/.test(n)) throw new UsageError(`invalid volume name ${JSON.stringify(n)}: use [A-Za-z0-9][A-Za-z0-9_.-]+`)
      return { name: n, dir: path.join(dir, n) }
    })
  }
  switch (sub) {
    case undefined:
    case 'help':
      process.stdout.write(VOLUME_HELP)
      return Promise.resolve(0)
    case 'ls': {
      const all = fs.existsSync(dir) ? fs.readdirSync(dir).sort() : []
      process.stdout.write(quiet ? all.map((n) => `${n}\n`).join('') : `DRIVER    VOLUME NAME\n${all.map((n) => `local     ${n}\n`).join('')}`)
      return Promise.resolve(0)
    }
    case 'create':
      for (const v of named('create')) {
        fs.mkdirSync(v.dir, { recursive: true, mode: 0o755 })
        process.stdout.write(`${v.name}\n`)
      }
      return Promise.resolve(0)
    case 'inspect': {
      const found = named('inspect').map((v) => {
        if (!fs.existsSync(v.dir)) throw new UsageError(`no such volume: ${v.name}`)
        return { Driver: 'local', Mountpoint: v.dir, Name: v.name }
      })
      process.stdout.write(`${JSON.stringify(found, null, 4)}\n`)
      return Promise.resolve(0)
    }
    case 'rm':
      for (const v of named('rm')) {
        if (!fs.existsSync(v.dir)) throw new UsageError(`no such volume: ${v.name}`)
        fs.rmSync(v.dir, { recursive: true })
        process.stdout.write(`${v.name}\n`)
      }
      return Promise.resolve(0)
    default:
      throw new UsageError(`'${sub}' is not a lonely volume command.\nSee 'lonely volume --help'.`)
  }
}
