// docker's users: `name|uid[:group|gid]` looked up in the container's own /etc/passwd and
// /etc/group (read inside its root, never through a symlink to the host's), with the user's
// supplementary groups and home directory, as runc's GetExecUser does for docker.
import { native } from './native'
import { optionError } from './optionerror'
import { show } from './show'

/** The largest /etc/passwd or /etc/group read from a root (a real one is a few KiB). */
const MAX_ID_FILE = 1 << 20

export interface User {
  uid: number
  gid: number
  /** The supplementary groups /etc/group lists the user in (none for a uid it does not know). */
  groups: number[]
  /** Its /etc/passwd home directory, if it has an entry. */
  home?: string
}

/** The entries of a root's /etc/passwd or /etc/group, read once per lookup. */
class IdFiles {
  #files = new Map<string, string[][]>()
  constructor(
    /** The root's directories, top last: an image's layers, the rootfs, or `/` for the mirror. */
    private readonly dirs: string[],
    private readonly option: string,
  ) {}

  entries(file: 'passwd' | 'group'): string[][] {
    let entries = this.#files.get(file)
    if (entries === undefined) {
      let text: string | undefined
      try {
        text = native().readImageFile(this.dirs, `etc/${file}`, MAX_ID_FILE)?.toString('utf8')
      } catch (e) {
        throw optionError(RangeError, this.option, `Option \`${this.option}\`: cannot look up the user in /etc/${file}: ${(e as Error).message}.`)
      }
      entries = (text ?? '').split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(':'))
      this.#files.set(file, entries)
    }
    return entries
  }

  find(file: 'passwd' | 'group', field: number, value: string): string[] | undefined {
    return this.entries(file).find((e) => e[field] === value)
  }
}

const numeric = (s: string) => /^\d+$/.test(s)

function idOf(entry: string[]): number {
  return Number(entry[2])
}

/**
 * `spec` (docker's `-u`) in the root made of `dirs` (top last). A name must have an entry; a
 * numeric uid need not (then gid 0, no groups, no home). `option` names the option in errors.
 */
export function resolveUser(dirs: string[], spec: string, option: string): User {
  const parts = spec.split(':')
  if (parts.length > 2 || parts[0] === '' || parts[1] === '') {
    throw optionError(RangeError, option, `Option \`${option}\` must be \`name\`, \`uid\`, \`name:group\` or \`uid:gid\`; got ${show(spec)}.`)
  }
  const [user, group] = parts
  const files = new IdFiles(dirs, option)
  const entry = numeric(user) ? files.find('passwd', 2, user) : files.find('passwd', 0, user)
  if (!entry && !numeric(user)) throw optionError(RangeError, option, `Option \`${option}\` has no user ${show(user)} in the container's /etc/passwd (got ${show(spec)}).`)
  const uid = entry ? idOf(entry) : Number(user)
  let gid: number
  if (group !== undefined) gid = groupId(files, group, option, spec)
  else gid = entry && numeric(entry[3] ?? '') ? Number(entry[3]) : 0
  // The groups that list the user's name as a member (its primary one needs no listing).
  const name = entry?.[0]
  const groups = name === undefined ? [] : files.entries('group').filter((g) => (g[3] ?? '').split(',').includes(name) && numeric(g[2] ?? '')).map(idOf)
  return { uid, gid, groups: [...new Set(groups)], ...(entry?.[5] ? { home: entry[5] } : {}) }
}

function groupId(files: IdFiles, group: string, option: string, spec: unknown): number {
  if (numeric(group)) return Number(group)
  const entry = files.find('group', 0, group)
  if (!entry || !numeric(entry[2] ?? '')) throw optionError(RangeError, option, `Option \`${option}\` has no group ${show(group)} in the container's /etc/group (got ${show(spec)}).`)
  return idOf(entry)
}

/** Group ids or names (docker's --group-add), names looked up in the root's /etc/group. */
export function resolveGroups(dirs: string[], groups: Array<number | string>, option: string): number[] {
  const files = new IdFiles(dirs, option)
  return groups.map((g, i) => (typeof g === 'number' ? g : groupId(files, g, `${option}[${i}]`, g)))
}
