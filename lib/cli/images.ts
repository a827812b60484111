// `lonely load`, `images`, `rmi` over the library's image store.
import { images } from '../../index'
import { MAIN_HELP, UsageError } from './flags'

/** `lonely load|images|rmi` with docker's flags (-i/--input, --store), and lonely's `load --keep-setuid`. */
export async function imageCommand(cmd: 'load' | 'images' | 'rmi', args: string[]): Promise<number> {
  let store: string | undefined
  let input: string | undefined
  let keepSetuid = false
  let force = false
  let checking = false
  let repair = false
  const rest: string[] = []
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    const value = () => {
      if (a.includes('=')) return a.slice(a.indexOf('=') + 1)
      if (i + 1 >= args.length) throw new UsageError(`flag needs an argument: ${a}`)
      return args[++i]
    }
    if (a === '--store' || a.startsWith('--store=')) store = value()
    else if (cmd === 'load' && (a === '-i' || a === '--input' || a.startsWith('--input='))) input = value()
    else if (cmd === 'load' && a === '--keep-setuid') keepSetuid = true
    else if (cmd === 'rmi' && (a === '-f' || a === '--force')) force = true
    else if (cmd === 'images' && a === '--check') checking = true
    else if (cmd === 'images' && a === '--repair') repair = true
    else if (a === '-h' || a === '--help') {
      process.stdout.write(MAIN_HELP)
      return 0
    } else if (a.startsWith('-')) throw new UsageError(`unknown flag: ${a}\nSee 'lonely --help'.`)
    else rest.push(a)
  }
  const opts = store === undefined ? {} : { store }
  if (cmd === 'load') {
    if (!input) throw new UsageError('"lonely load" requires -i FILE (a docker save archive, an OCI archive or an OCI layout directory)')
    const bar = process.stderr.isTTY
    const loaded = await images.load(input, {
      ...opts,
      ...(keepSetuid ? { keepSetuid } : {}),
      onProgress: bar
        ? (p) => process.stderr.write(`\r\x1b[Klayer ${p.layer + 1}/${p.layers} ${p.diffId.slice(7, 19)}: ${p.reused ? 'already stored' : p.state} ${p.total ? Math.floor((100 * p.done) / p.total) : 100}%`)
        : undefined,
    })
    if (bar) process.stderr.write('\r\x1b[K')
    // What the load skipped or changed (setuid bits cleared, device nodes...), as run's notes.
    for (const note of loaded.notes) process.stderr.write(`lonely: note: ${note}\n`)
    for (const img of loaded.images) {
      process.stdout.write(img.names.length ? img.names.map((n) => `Loaded image: ${n}\n`).join('') : `Loaded image ID: ${img.id}\n`)
    }
    return 0
  }
  if (cmd === 'images' && (checking || repair)) {
    const damage = images.check({ ...opts, repair })
    for (const d of damage) process.stdout.write(`${d.names[0] ?? d.image.slice(7, 19)}: layer ${d.layer.slice(7, 19)} ${d.problem}${repair ? ' (removed: load the image again)' : ''}\n`)
    if (damage.length === 0) process.stdout.write('every image is whole\n')
    return damage.length && !repair ? 1 : 0
  }
  if (cmd === 'images') {
    const rows = images.list(opts).flatMap((img) => (img.names.length ? img.names : ['<none>:<none>']).map((n) => {
      const colon = n.lastIndexOf(':')
      return [n.slice(0, colon), n.slice(colon + 1), img.id.slice(7, 19), `${(img.size / 1e6).toFixed(1)}MB`]
    }))
    const all = [['REPOSITORY', 'TAG', 'IMAGE ID', 'SIZE'], ...rows]
    const widths = [0, 1, 2].map((c) => Math.max(...all.map((r) => r[c].length)))
    for (const r of all) process.stdout.write(`${r.slice(0, 3).map((v, c) => v.padEnd(widths[c] + 3)).join('')}${r[3]}\n`)
    return 0
  }
  if (rest.length === 0) throw new UsageError('"lonely rmi" requires at least one image')
  for (const ref of rest) {
    const removed = await images.remove(ref, { ...opts, ...(force ? { force } : {}) })
    for (const n of removed.untagged) process.stdout.write(`Untagged: ${n}\n`)
    for (const id of removed.deleted) process.stdout.write(`Deleted: ${id}\n`)
  }
  return 0
}

