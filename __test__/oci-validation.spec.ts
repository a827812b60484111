// A fast subset of the OCI runtime-tools validation suite in `npm test` (the whole suite, side
// by side with runc and crun, is `npm run test:oci`): the programs lonely-runtime passes on any
// host, each through run.js as test:oci runs it, with its cleanup and leak accounting.
import test from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { spawnSync } from 'node:child_process'

const RUNTIME = path.join(__dirname, '..', 'target', 'release', 'lonely-runtime')
const SUITE = path.join(process.env.LONELY_OCI_CACHE ?? '/var/cache/lonely-oci', 'runtime-tools-v0.9.0')
// Lifecycle, mounts, namespaces by path, kernel paths, seccomp, sysctl, user ids, devices and
// their cgroup, hooks' failures: what lonely's planner and runtime decide, not what the host has.
// Not here: the slow ones (delete and kill wait out their timeouts, readonly_paths), and the
// suite's races (poststart: the command's echo against the hook's; pidfile).
const SUBSET = [
  'create', 'state', 'hostname', 'mounts', 'linux_ns_path', 'linux_ns_nopath', 'linux_ns_itype', 'linux_masked_paths',
  'linux_seccomp', 'linux_sysctl', 'linux_uid_mappings', 'linux_devices', 'linux_cgroups_devices',
  'linux_cgroups_pids', 'poststop_fail', 'prestart_fail', 'process_user', 'process_capabilities_fail',
  'root_readonly_true',
]
const built = fs.existsSync(path.join(SUITE, '.built'))
const vtest = built ? test : test.skip
if (!built) test(`oci-validation: skipped, the suite is not built (bash __test__/oci-validation/build.sh, needs Go; .ci/setup runs it)`, (t) => t.pass())

vtest('runtime-tools validation, fast subset: every program passes under lonely-runtime and no mount is left in the caller\'s namespace', (t) => {
  const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-oci-subset-')), 'results.json')
  try {
    const r = spawnSync(process.execPath, [path.join(__dirname, 'oci-validation', 'run.js'), '--runtime', `lonely=${RUNTIME}`, '--suite', SUITE, '--only', SUBSET.join(','), '--json', out], { encoding: 'utf8', timeout: 300_000 })
    t.is(r.status, 0, r.stderr.slice(-2000))
    const doc = JSON.parse(fs.readFileSync(out, 'utf8'))
    const failed = SUBSET.filter((name) => doc.tests[name]?.lonely?.status !== 'pass').map((name) => `${name}: ${doc.tests[name]?.lonely?.reason ?? 'not run'}`)
    t.deepEqual(failed, [], r.stdout)
    t.deepEqual(doc.runtimes.lonely.leakedMounts, [], 'no mount leaked into the caller\'s namespace')
  } finally {
    fs.rmSync(path.dirname(out), { recursive: true, force: true })
  }
})
