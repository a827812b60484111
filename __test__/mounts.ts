// Which mounts of this mount namespace the tests count as theirs (no addon needed: the
// install suite uses it too).
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'

/** Where a container's mounts would land in ours, were its mount namespace to leak. */
const PLAN_TOP = new Set(['/', '/proc', '/sys', '/dev', '/tmp', '/run', '/etc', '/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/root', '/home', '/mnt', '/opt', '/srv', '/var'])
/** Filesystems host services mount below /proc, /sys and /dev (automounts...); no plan makes them. */
const SERVICE_FS = new Set(['autofs', 'binfmt_misc', 'cgroup', 'cgroup2', 'hugetlbfs', 'debugfs', 'tracefs', 'configfs', 'fusectl', 'securityfs', 'pstore', 'bpf', 'efivarfs', 'rpc_pipefs', 'nfsd'])
const REPO = path.resolve(__dirname, '..')

/**
 * The mounts of this mount namespace that a test of ours could have made or leaked, one
 * mountinfo line each without the ids (sorted, joined): those on the tests' own directories
 * (os.tmpdir()/lonely-*) and the repo, on a top-level path a container plan mounts, and below
 * /proc, /sys and /dev. Mounts other work on the machine makes elsewhere are not counted.
 */
export function ourMounts(): string {
  const tmp = path.join(os.tmpdir(), 'lonely-')
  return fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean).filter((line) => {
    const fields = line.split(' ')
    const at = fields[4]!.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)))
    const fstype = fields[fields.indexOf('-') + 1] ?? ''
    if (at.startsWith(tmp) || at === REPO || at.startsWith(REPO + '/') || PLAN_TOP.has(at)) return true
    return /^\/(proc|sys|dev)\//.test(at) && !SERVICE_FS.has(fstype)
  }).map((line) => line.split(' ').slice(3).join(' ')).sort().join('\n')
}
