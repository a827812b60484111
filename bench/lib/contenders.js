'use strict'
// The contenders, each as "start one container that runs the same program, wait until it
// has exited and its pipes are closed". Every one gets stdin/stdout/stderr pipes and its
// output drained, as lonely's run() does.
const cp = require('node:child_process')
const path = require('node:path')

let lonely
/** The one container lonely-exec runs in (made on first use; it ends with the worker). */
let execInto
let libRoot = path.join(__dirname, '..', '..')
/** lonely-container's index.js: this checkout's, or the one `--lib` names. */
function lib() {
  if (!lonely) lonely = require(path.join(libRoot, 'index.js'))
  return lonely
}

const NS_FLAGS = ['--pid', '--fork', '--mount', '--uts', '--ipc', '--net', '--cgroup']

/** Spawns through child_process and resolves on 'close' (exit + stdio closed); rejects on non-zero exit. */
function cpRun(cmd, args) {
  return new Promise((resolve, reject) => {
    const c = cp.spawn(cmd, args)
    let err = ''
    c.stdout.on('data', () => {})
    c.stderr.on('data', (d) => {
      if (err.length < 4000) err += d
    })
    c.on('error', reject)
    c.on('close', (code, signal) => {
      if (code === 0) resolve()
      else reject(new Error(`${[cmd, ...args].join(' ')}: ${signal ? `killed by ${signal}` : `exit ${code}`}${err.trim() ? `: ${err.trim()}` : ''}`))
    })
  })
}

/** Spawns through child_process; resolves with ms from spawn() to the first stdout byte, after exit + close. */
function cpFirstByte(cmd, args, expect) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint()
    let first = null
    let out = ''
    const c = cp.spawn(cmd, args)
    c.stdout.on('data', (d) => {
      if (first === null) first = Number(process.hrtime.bigint() - t0) / 1e6
      out += d
    })
    c.stderr.resume()
    c.on('error', reject)
    c.on('close', (code) => {
      if (code !== 0 || out !== expect) reject(new Error(`${cmd} ${args.join(' ')}: exit ${code}, stdout ${JSON.stringify(out)}`))
      else resolve(first)
    })
  })
}

function lonelyFirstByte(command, options, expect) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint()
    let first = null
    let out = ''
    let p
    try {
      p = lib().spawn(command, options)
    } catch (e) {
      return reject(e)
    }
    p.stdin?.end()
    p.stderr?.resume()
    p.stdout.on('data', (d) => {
      if (first === null) first = Number(process.hrtime.bigint() - t0) / 1e6
      out += d
    })
    const closed = new Promise((r) => p.stdout.on('close', r))
    Promise.all([p.wait(), closed]).then(([exit]) => {
      if (exit.exitCode !== 0 || out !== expect) reject(new Error(`lonely ${command.join(' ')}: exit ${exit.exitCode}, stdout ${JSON.stringify(out)}`))
      else resolve(first)
    }, reject)
  })
}

/**
 * All contenders known to the bench. `env` = { rootfs, bundle, crunState, runcState, tools,
 * unified, crunMode: 'direct' | 'unshare-m' | null, idPrefix }.
 * Each: { name, label, run() -> Promise, firstByte?() -> Promise<ms>, needs: tool | null }.
 */
function contenders(env) {
  const { rootfs, bundle, tools } = env
  if (env.libRoot) libRoot = env.libRoot
  let seq = 0
  const id = () => `${env.idPrefix}-${seq++}`
  const crunArgs = () => ['--root', env.crunState, 'run', '--bundle', bundle, id()]
  const unifiedSh = `umount ${env.unified} && exec "$0" "$@"`
  const list = [
    {
      name: 'node-spawn',
      label: "child_process.spawn('/bin/true') on the host, no isolation",
      run: () => cpRun('/bin/true', []),
      firstByte: () => cpFirstByte('echo', ['hi'], 'hi\n'),
    },
    {
      name: 'node-spawn-busybox',
      label: "child_process.spawn(rootfs + '/bin/true'): the same static busybox lonely runs, no isolation",
      run: () => cpRun(path.join(rootfs, 'bin/true'), []),
      firstByte: () => cpFirstByte(path.join(rootfs, 'bin/echo'), ['hi'], 'hi\n'),
    },
    {
      name: 'lonely',
      label: "run(['/bin/true'], { rootfs }) with the default isolation",
      run: () => lib().run(['/bin/true'], { rootfs }),
      firstByte: () => lonelyFirstByte(['echo', 'hi'], { rootfs }, 'hi\n'),
    },
    {
      name: 'lonely-exec',
      label: "container.run(['/bin/true']) in one container made once with create(undefined, { rootfs }) (docker exec's job): joins its namespaces and cgroup, same privileges",
      run: async () => {
        execInto ??= lib().create(undefined, { rootfs })
        return (await execInto).run(['/bin/true'])
      },
    },
    {
      name: 'lonely-inherit',
      label: "run(['/bin/true'], { rootfs, stdin: 'ignore', stdout: 'inherit', stderr: 'inherit' }): docker's way of inheriting, pipes of ours relayed to this process's fds 1 and 2",
      run: () => lib().run(['/bin/true'], { rootfs, stdin: 'ignore', stdout: 'inherit', stderr: 'inherit' }),
    },
    {
      name: 'lonely-no-netns',
      label: "run(['/bin/true'], { rootfs, namespaces: { net: false } }): the default but the host's network (not isolated); shows what a network namespace costs",
      run: () => lib().run(['/bin/true'], { rootfs, namespaces: { net: false } }),
    },
    {
      name: 'lonely-mirror',
      label: "run(['/bin/true']) on the default read-only host mirror root",
      run: () => lib().run(['/bin/true']),
    },
    {
      name: 'node→unshare',
      label: `spawn('unshare', [${NS_FLAGS.join(' ')} --root=rootfs --mount-proc /bin/true])`,
      needs: 'unshare',
      run: () => cpRun(tools.unshare, [...NS_FLAGS, `--root=${rootfs}`, '--mount-proc', '/bin/true']),
    },
    {
      name: 'node→bwrap',
      label: "spawn('bwrap', ['--unshare-all', '--ro-bind', rootfs, '/', '--proc', '/proc', '--dev', '/dev', '--die-with-parent', '/bin/true'])",
      needs: 'bwrap',
      run: () => cpRun(tools.bwrap, ['--unshare-all', '--ro-bind', rootfs, '/', '--proc', '/proc', '--dev', '/dev', '--die-with-parent', '/bin/true']),
      firstByte: () => cpFirstByte(tools.bwrap, ['--unshare-all', '--ro-bind', rootfs, '/', '--proc', '/proc', '--dev', '/dev', '--die-with-parent', 'echo', 'hi'], 'hi\n'),
    },
    {
      name: 'crun',
      label:
        env.crunMode === 'unshare-m'
          ? `spawn('unshare', ['-m', 'sh', '-c', 'umount ${env.unified} && exec crun run --bundle B id'])  (raw: includes the unshare -m sh row)`
          : "spawn('crun', ['run', '--bundle', B, id])",
      needs: 'crun',
      run: () => (env.crunMode === 'unshare-m' ? cpRun(tools.unshare, ['-m', 'sh', '-c', unifiedSh, tools.crun, ...crunArgs()]) : cpRun(tools.crun, crunArgs())),
    },
    {
      name: 'unshare -m sh',
      label: `spawn('unshare', ['-m', 'sh', '-c', 'umount ${env.unified}']): the wrapper crun needs on this host, alone`,
      needs: 'unshare',
      run: () => cpRun(tools.unshare, ['-m', 'sh', '-c', `umount ${env.unified}`]),
    },
    {
      name: 'crun-direct',
      label: "spawn('crun', ['run', '--bundle', B, id]) from a bench process that itself runs in an `unshare -m` with the cgroup2 unmounted",
      needs: 'crun',
      run: () => cpRun(tools.crun, crunArgs()),
    },
    {
      name: 'runc',
      label: "spawn('runc', ['run', '--bundle', B, id])",
      needs: 'runc',
      run: () => cpRun(tools.runc, ['--root', env.runcState, 'run', '--bundle', bundle, id()]),
    },
  ]
  return Object.fromEntries(list.map((c) => [c.name, c]))
}

module.exports = { contenders, cpRun, lib }
