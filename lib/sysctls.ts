// Namespaced sysctls (docker's --sysctl), and docker's two defaults for a container with a
// network namespace of its own. Written by the child once its namespaces exist, before
// pivot_root (core/src/planner/mod.rs), so never the host's.
import * as fs from 'node:fs'

import { optionError } from './optionerror'
import { show } from './show'

/** Which namespace a sysctl belongs to: the container must have its own of it. */
function namespaceOf(key: string): 'net' | 'ipc' | 'uts' | undefined {
  if (key.startsWith('net.')) return 'net'
  if (key.startsWith('fs.mqueue.') || key.startsWith('kernel.shm') || key.startsWith('kernel.msg') || key === 'kernel.sem') return 'ipc'
  if (key === 'kernel.domainname') return 'uts'
  return undefined
}

const CLEAN = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$/

/** The host kernel has this sysctl (docker sets its defaults only then). */
const exists = (key: string): boolean => fs.existsSync(`/proc/sys/${key.replaceAll('.', '/')}`)

/**
 * The sysctls a container gets: docker's defaults when it has its own network namespace
 * (`net.ipv4.ip_unprivileged_port_start=0`: any user binds ports below 1024;
 * `net.ipv4.ping_group_range=0 2147483647`: any group opens ICMP echo sockets, not in a user
 * namespace, where docker does not set it either), then the caller's `sysctls` over them.
 */
export function normalizeSysctls(value: unknown, ns: { net: boolean; ipc: boolean; uts: boolean; user: boolean }): Record<string, string> {
  const out: Record<string, string> = {}
  if (ns.net) {
    if (exists('net.ipv4.ip_unprivileged_port_start')) out['net.ipv4.ip_unprivileged_port_start'] = '0'
    // In a user namespace the kernel takes only gids mapped there (EINVAL otherwise).
    if (!ns.user && exists('net.ipv4.ping_group_range')) out['net.ipv4.ping_group_range'] = '0 2147483647'
  }
  if (value === undefined) return out
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw optionError(TypeError, 'sysctls', `Option \`sysctls\` must be an object of sysctl names to values, like { 'net.ipv4.ip_unprivileged_port_start': '1024' }; got ${show(value)}.`)
  }
  for (const [key, v] of Object.entries(value)) {
    const name = `sysctls.${key}`
    const kind = CLEAN.test(key) ? namespaceOf(key) : undefined
    if (!kind) {
      throw optionError(RangeError, 'sysctls', `Option \`sysctls\` has \`${key}\`, which is not a namespaced sysctl (only net.*, kernel.shm*, kernel.msg*, kernel.sem, fs.mqueue.*, kernel.domainname, as docker); got ${show(value)}.`)
    }
    if (!ns[kind]) {
      throw optionError(RangeError, name, `Option \`${name}\` needs the container's own ${kind} namespace (\`namespaces.${kind}\`): it would set the host's; got ${show(v)}.`)
    }
    if ((typeof v !== 'string' && typeof v !== 'number') || String(v).includes('\0') || String(v) === '') {
      throw optionError(TypeError, name, `Option \`${name}\` must be a non-empty string (or a number); got ${show(v)}.`)
    }
    out[key] = String(v)
  }
  return out
}
