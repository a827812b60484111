// Issue 16: what a docker user types behaves as docker. Each test quotes docker's behaviour in
// its name and runs `lonely` (bin/lonely, as npm installs it) on a loaded image or a rootfs,
// next to a control that shows the difference would be seen.
import test from 'ava'
import * as fs from 'node:fs'
import * as path from 'node:path'
import { execFileSync, spawn, spawnSync } from 'node:child_process'

import { create, images, run as libRun, spawn as libSpawn } from '../index'
import { BUSYBOX, dockerArchive, makeBusyboxRoot, ourMounts, removeDetached, removeRoot } from './helpers'

const REPO = path.resolve(__dirname, '..')
const LAUNCHER = path.join(REPO, 'bin/lonely')
const itest = BUSYBOX ? test.serial : test.skip

// Not under /tmp: writes to the image's own /tmp must land on a disk, as docker's do.
let work = ''
let store = ''
let root = ''
let mountsBefore = ''
const IMAGE = 'parity/box:1'
const NOUSER = 'parity/nouser:1'
const STOPPER = 'parity/stopper:1'

interface Outcome {
  code: number | null
  stdout: string
  stderr: string
}

function lonely(args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(LAUNCHER, args, { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d))
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d))
    const guard = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.on('error', reject)
    child.on('close', (code) => {
      clearTimeout(guard)
      resolve({ code, stdout, stderr })
    })
  })
}

test.before(async () => {
  if (!BUSYBOX) return
  mountsBefore = ourMounts()
  work = fs.mkdtempSync('/var/tmp/lonely-parity-')
  store = path.join(work, 'store')
  root = makeBusyboxRoot()
  fs.writeFileSync(path.join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000:Alice:/home/alice:/bin/sh\nbob:x:1001:1001::/home/bob:/bin/sh\n')
  fs.writeFileSync(path.join(root, 'etc/group'), 'root:x:0:\nstaff:x:50:alice\ndev:x:60:bob,alice\nalice:x:1000:\nbob:x:1001:\nops:x:70:\n')
  fs.writeFileSync(path.join(root, 'tmp/seed'), 'from the image\n')
  fs.writeFileSync(path.join(root, 'etc/os'), 'parity box\n')
  const archive = dockerArchive(root, work, [
    { tag: IMAGE, cmd: ['cat', '/etc/os'], config: { WorkingDir: '/app/src' } },
    { tag: NOUSER, cmd: ['id'], config: { User: 'nosuch' } },
    { tag: STOPPER, cmd: ['sh', '-c', 'trap "echo got-usr1; exit 0" USR1; echo ready; while :; do sleep 0.05; done'], config: { StopSignal: 'USR1', Labels: { 'org.example.team': 'images', tier: 'base' } } },
  ])
  await images.load(archive, { store })
})

test.after.always(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true })
  if (root) removeRoot(root)
})

itest('docker run IMAGE COMMAND: the first word after the options is the image when the store has it; IMAGE alone runs its Cmd', async (t) => {
  const withCommand = await lonely(['run', '--store', store, IMAGE, 'cat', '/etc/os'])
  t.is(withCommand.code, 0, withCommand.stderr)
  t.is(withCommand.stdout, 'parity box\n')
  const cmdOnly = await lonely(['run', '--store', store, IMAGE])
  t.is(cmdOnly.stdout, 'parity box\n', cmdOnly.stderr)
  const byId = await lonely(['run', '--store', store, images.inspect(IMAGE, { store }).id.slice(7, 19), 'cat', '/etc/os'])
  t.is(byId.stdout, 'parity box\n', byId.stderr)
  // `IMAGE -- COMMAND` still works, and a `--` after it is the command's (tini -- cmd).
  const dashed = await lonely(['run', '--store', store, IMAGE, '--', 'echo', '--', 'x'])
  t.is(dashed.stdout, '-- x\n', dashed.stderr)
})

itest('docker says "Unable to find image" for a missing name:tag: lonely exits 125 naming `lonely load` and `--`, and with --store any word is an image', async (t) => {
  const missing = await lonely(['run', '--store', store, 'debian:bookworm', 'cat', '/etc/debian_version'])
  t.is(missing.code, 125)
  t.regex(missing.stderr, /no such image "debian:bookworm" in the store .*: load it first with `lonely load --store .* -i FILE`/)
  const word = await lonely(['run', '--store', store, 'sh', '-c', 'true'])
  t.is(word.code, 125)
  t.regex(word.stderr, /no such image "sh" in the store/)
  // Control: without --store and with a word no image is called, it is the command, as before.
  const command = await lonely(['run', 'sh', '-c', 'echo mirror'])
  t.is(command.stdout, 'mirror\n', command.stderr)
  // A bare word that is neither: the exec error says no image has that name either.
  const neither = await lonely(['run', 'debian', 'cat', '/x'])
  t.is(neither.code, 127)
  t.regex(neither.stderr, /exec `debian`: No such file or directory.*no such image "debian"/)
  const noStore = path.join(work, 'never-made')
  t.is((await lonely(['run', '--store', noStore, 'x:1'])).code, 125)
  t.false(fs.existsSync(noStore), 'looking an image up makes no store')
})

test('docker run --env-file FILE: K=V and K lines, comments and blank lines skipped, -e wins; Node\'s own --env-file never sees it (control: plain `node cli.js` exits 9)', async (t) => {
  const file = path.join(fs.mkdtempSync('/var/tmp/lonely-envfile-'), 'vars')
  fs.writeFileSync(file, '# a comment\nA=1\n\n  B=two words\nFROM_HOST\nC=\nD="quoted"\n')
  try {
    const r = await lonely(['run', '--env-file', file, '-e', 'A=9', '--', '/bin/sh', '-c', 'echo "$A|$B|$FROM_HOST|${C-unset}|$D"'], { ...process.env, FROM_HOST: 'copied' })
    t.is(r.code, 0, r.stderr)
    t.is(r.stdout, '9|two words|copied||"quoted"\n')
    const bad = await lonely(['run', '--env-file', `${file}.missing`, '--', 'true'])
    t.is(bad.code, 125)
    t.regex(bad.stderr, /invalid value ".*vars\.missing" for --env-file: cannot be read: ENOENT/)
    fs.writeFileSync(file, 'OK=1\nBAD KEY=1\n')
    const badLine = await lonely(['run', '--env-file', file, '--', 'true'])
    t.regex(badLine.stderr, /for --env-file: line 2 must be K=V or K, K without spaces \(got "BAD KEY=1"\)/)
    const control = spawnSync(process.execPath, [path.join(REPO, 'cli.js'), 'run', '--env-file', `${file}.missing`, '--', 'true'], { encoding: 'utf8' })
    t.is(control.status, 9, 'Node 20 takes --env-file after the script name: the launcher is what protects lonely')
  } finally {
    fs.rmSync(path.dirname(file), { recursive: true, force: true })
  }
})

itest('docker run -u NAME / UID / NAME:GROUP: looked up in the container\'s /etc/passwd and /etc/group with its supplementary groups and HOME; control: the host\'s uid 4 (sync, group 65534) is not used', async (t) => {
  const id = async (user: string, ...more: string[]) => {
    const r = await lonely(['run', '--rootfs', root, '-u', user, ...more, '--', '/bin/sh', '-c', 'echo "$(id -u):$(id -g):$(id -G) $HOME"'])
    t.is(r.code, 0, r.stderr)
    return r.stdout.trim()
  }
  t.is(await id('alice'), '1000:1000:1000 50 60 /home/alice')
  t.is(await id('1000'), '1000:1000:1000 50 60 /home/alice', 'a uid with an entry is that user')
  t.is(await id('alice:staff'), '1000:50:50 60 /home/alice')
  t.is(await id('bob:70'), '1001:70:70 60 /home/bob')
  t.is(await id('4'), '4:0:0 /', 'a uid the container does not know: group 0, HOME=/')
  t.is(await id('alice', '--group-add', 'ops', '--group-add', '99'), '1000:1000:1000 50 60 70 99 /home/alice')
  const noUser = await lonely(['run', '--rootfs', root, '-u', 'nosuch', '--', 'true'])
  t.is(noUser.code, 125)
  t.regex(noUser.stderr, /invalid value for -u\/--user: user has no user 'nosuch' in the container's \/etc\/passwd/)
  const noGroup = await lonely(['run', '--rootfs', root, '-u', 'alice:nogrp', '--', 'true'])
  t.regex(noGroup.stderr, /no group 'nogrp' in the container's \/etc\/group/)
  const imageUser = await lonely(['run', '--store', store, NOUSER])
  t.is(imageUser.code, 125)
  t.regex(imageUser.stderr, /no user 'nosuch' in the container's \/etc\/passwd/)
  // docker exec -u NAME too.
  const c = await lonely(['run', '-d', '--rootfs', root, '--', 'sleep', '30'])
  t.is(c.code, 0, c.stderr)
  const ctr = c.stdout.trim()
  try {
    const e = await lonely(['exec', '-u', 'alice:dev', ctr, 'id'])
    t.is(e.stdout, 'uid=1000(alice) gid=60(dev) groups=50(staff),60(dev)\n', e.stderr)
  } finally {
    await lonely(['rm', '-f', ctr])
  }
})

itest('docker mounts no /tmp: the image\'s and the rootfs\'s own /tmp are used (its files seen, 100 MB written under -m 64m is no OOM kill); the read-only mirror keeps a tmpfs', async (t) => {
  const image = await lonely(['run', '--store', store, '-m', '64m', IMAGE, 'sh', '-c', 'cat /tmp/seed; grep -c " /tmp " /proc/self/mountinfo; for i in 0 1 2 3 4 5 6 7 8 9; do dd if=/dev/zero of=/tmp/big bs=1M count=10 seek=$((i * 10)) conv=notrunc 2>/dev/null && sync || exit 9; done; stat -c %s /tmp/big'])
  t.is(image.code, 0, image.stderr)
  // In 10 MB steps, each synced: cgroup v1 has no per-cgroup dirty throttling, so one 100 MB burst of dirty pages could OOM there.
  t.is(image.stdout, `from the image\n0\n${100 * 1024 * 1024}\n`)
  const rootfs = await lonely(['run', '--rootfs', root, '--', 'sh', '-c', 'cat /tmp/seed; grep -c " /tmp " /proc/self/mountinfo'])
  t.is(rootfs.stdout, 'from the image\n0\n', rootfs.stderr)
  // Control: the mirror's /tmp is a tmpfs of its own (the host's /tmp is not there).
  const mirror = await lonely(['run', '--', '/bin/sh', '-c', 'grep " /tmp " /proc/self/mountinfo | grep -c tmpfs'])
  t.is(mirror.stdout, '1\n', mirror.stderr)
  t.is(ourMounts(), mountsBefore)
})

itest('docker creates a missing -w DIR and WorkingDir, owned by the user; docker exec -w of a missing directory fails', async (t) => {
  const made = await lonely(['run', '--rootfs', root, '-u', 'alice', '-w', '/work/deep/er', '--', '/bin/sh', '-c', 'pwd; stat -c "%U:%G %a" /work /work/deep/er; touch mine && echo writable'])
  t.is(made.code, 0, made.stderr)
  t.is(made.stdout, '/work/deep/er\nalice:alice 755\nalice:alice 755\nwritable\n')
  t.true(fs.existsSync(path.join(root, 'work/deep/er/mine')))
  fs.rmSync(path.join(root, 'work'), { recursive: true })
  // An existing directory keeps its owner.
  const kept = await lonely(['run', '--rootfs', root, '-u', 'alice', '-w', '/etc', '--', 'stat', '-c', '%U', '.'])
  t.is(kept.stdout, 'root\n', kept.stderr)
  const workingDir = await lonely(['run', '--store', store, IMAGE, 'pwd'])
  t.is(workingDir.stdout, '/app/src\n', workingDir.stderr)
  // Control: a read-only root cannot get it, and says so at chdir.
  const readOnly = await lonely(['run', '--rootfs', root, '--read-only', '-w', '/nope', '--', 'true'])
  t.is(readOnly.code, 125)
  t.regex(readOnly.stderr, /chdir `\/nope`: .*ENOENT/)
  t.false(fs.existsSync(path.join(root, 'nope')))
  const c = await lonely(['run', '-d', '--rootfs', root, '--', 'sleep', '30'])
  const ctr = c.stdout.trim()
  try {
    const e = await lonely(['exec', '-w', '/missing', ctr, 'pwd'])
    t.not(e.code, 0)
    t.regex(e.stderr, /chdir `\/missing`/)
    t.false(fs.existsSync(path.join(root, 'missing')))
  } finally {
    await lonely(['rm', '-f', ctr])
  }
})

itest('docker -v: a missing host path is made, named volumes live in the store and outlast the container (lonely volume ls/inspect/rm); z/Z/cached are ignored with a note', async (t) => {
  const missing = path.join(work, 'made', 'by', 'v')
  const made = await lonely(['run', '--rootfs', root, '-v', `${missing}:/data:z`, '--', 'sh', '-c', 'echo kept > /data/f'])
  t.is(made.code, 0, made.stderr)
  t.is(fs.readFileSync(path.join(missing, 'f'), 'utf8'), 'kept\n')
  t.regex(made.stderr, /^lonely: note: -v ".*:z": option z ignored \(SELinux relabeling/)
  const first = await lonely(['run', '--store', store, '-v', 'cache:/cache', IMAGE, 'sh', '-c', 'echo one > /cache/x'])
  t.is(first.code, 0, first.stderr)
  const second = await lonely(['run', '--store', store, '--mount', 'type=volume,src=cache,dst=/c,readonly', IMAGE, 'sh', '-c', 'cat /c/x; touch /c/y 2>&1 | grep -c Read-only'])
  t.is(second.stdout, 'one\n1\n', second.stderr)
  t.is((await lonely(['volume', 'ls', '--store', store])).stdout, 'DRIVER    VOLUME NAME\nlocal     cache\n')
  const inspected = JSON.parse((await lonely(['volume', 'inspect', '--store', store, 'cache'])).stdout)
  t.deepEqual(inspected, [{ Driver: 'local', Mountpoint: path.join(store, 'volumes', 'cache'), Name: 'cache' }])
  t.is((await lonely(['volume', 'rm', '--store', store, 'cache'])).code, 0)
  t.is((await lonely(['volume', 'ls', '-q', '--store', store])).stdout, '')
  // Control: --mount type=bind does not make its source, as docker's.
  const bind = await lonely(['run', '--rootfs', root, '--mount', `type=bind,source=${path.join(work, 'absent')},target=/a`, '--', 'true'])
  t.is(bind.code, 125)
  t.false(fs.existsSync(path.join(work, 'absent')))
  t.is(ourMounts(), mountsBefore)
})

itest('docker -v SRC:DST:rslave and --mount bind-propagation=rshared: a mount the host makes below SRC after the start appears inside; rshared also sends the container\'s own to the host; control: a bind without the option sees nothing', async (t) => {
  const src = path.join(work, 'propagated')
  fs.mkdirSync(src)
  // Each container says it is up, waits for the host's mount, then looks and mounts its own.
  // Bounded waits (30 s): a container that never came up fails the test with its output, no hang.
  const look = (id: string) => ['sh', '-c', `touch /v/up-${id}; i=0; while [ ! -e /v/go ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; cat /v/late/f 2>/dev/null || echo nothing; mkdir /v/in-${id}; mount -t tmpfs in /v/in-${id} && echo mounted`]
  const run = (id: string, bind: string[]) => `"$LONELY" run --rootfs "$ROOT" --cap-add SYS_ADMIN --security-opt seccomp=unconfined ${bind.map((b) => `'${b}'`).join(' ')} -- ${look(id).map((a) => `'${a.replace(/'/g, "'\\''")}'`).join(' ')} > "$W/${id}.out" 2>&1 &`
  // The caller: a mount namespace of its own (gone with it) where SRC is a shared tmpfs.
  const script = [
    'set -eu',
    'mount -t tmpfs src "$SRC"; mount --make-shared "$SRC"; mkdir "$SRC/late"',
    run('slave', ['-v', `${src}:/v:rslave`]),
    run('shared', ['--mount', `type=bind,src=${src},dst=/v,bind-propagation=rshared`]),
    run('plain', ['-v', `${src}:/v`]),
    'for id in slave shared plain; do i=0; while [ ! -e "$SRC/up-$id" ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done; [ -e "$SRC/up-$id" ] || { echo "$id never came up: $(cat "$W/$id.out")" >&2; }; done',
    'mount -t tmpfs late "$SRC/late"; echo "from the host" > "$SRC/late/f"; touch "$SRC/go"',
    'wait',
    'for id in slave shared plain; do if mountpoint -q "$SRC/in-$id"; then echo "caller sees in-$id"; fi; done',
  ].join('\n')
  const r = spawnSync('unshare', ['-m', '--propagation', 'unchanged', 'sh', '-c', script], {
    encoding: 'utf8', timeout: 90_000, killSignal: 'SIGKILL', env: { ...process.env, LONELY: LAUNCHER, ROOT: root, W: work, SRC: src },
  })
  t.is(r.status, 0, r.stderr)
  const out = (id: string) => fs.readFileSync(path.join(work, `${id}.out`), 'utf8')
  t.is(out('slave'), 'from the host\nmounted\n')
  t.is(out('shared'), 'from the host\nmounted\n')
  t.is(out('plain'), 'nothing\nmounted\n', 'control: private')
  t.is(r.stdout, 'caller sees in-shared\n', 'only the rshared bind sends its mounts back')
  t.is(ourMounts(), mountsBefore)
})

itest('docker run --label / -l / --label-file: kept with a detached container over its image\'s Labels, shown by inspect, found by ps --filter label=KEY[=VALUE]; accepted on a foreground run', async (t) => {
  const env = { ...process.env, LONELY_STATE_DIR: fs.mkdtempSync(path.join(work, 'state-')) }
  const file = path.join(work, 'labels')
  fs.writeFileSync(file, '# team file\nfrom=file\n\ntier=file\n')
  try {
    const web = await lonely(['run', '-d', '--store', store, '--label-file', file, '-l', 'tier=web', '--label', 'solo', STOPPER], env)
    t.is(web.code, 0, web.stderr)
    const db = await lonely(['run', '-d', '--rootfs', root, '-l', 'tier=db', '--', 'sleep', '100'], env)
    t.is(db.code, 0, db.stderr)
    const [webId, dbId] = [web.stdout.trim().slice(0, 12), db.stdout.trim().slice(0, 12)]
    const inspected = JSON.parse((await lonely(['inspect', webId], env)).stdout)
    t.deepEqual(inspected[0].labels, { 'org.example.team': 'images', tier: 'web', from: 'file', solo: '' }, 'the image\'s, the file\'s, then -l, later ones winning')
    const ps = async (...filters: string[]) => (await lonely(['ps', '-q', ...filters.flatMap((f) => ['--filter', f])], env)).stdout.trim().split('\n').filter(Boolean).sort()
    t.deepEqual(await ps('label=tier=web'), [webId])
    t.deepEqual(await ps('label=solo'), [webId])
    t.deepEqual(await ps('label=tier'), [webId, dbId].sort())
    t.deepEqual(await ps('label=tier=db', 'label=solo'), [], 'every filter must hold')
    t.deepEqual(await ps(), [webId, dbId].sort(), 'control: no filter lists both')
    const bad = await lonely(['ps', '--filter', 'status=running'], env)
    t.is(bad.code, 125)
    t.regex(bad.stderr, /invalid filter "status=running": lonely ps filters by label=KEY or label=KEY=VALUE/)
    const badLabel = await lonely(['run', '-d', '--rootfs', root, '-l', '=x', '--', 'true'], env)
    t.regex(badLabel.stderr, /invalid value "=x" for -l\/--label: must be KEY=VALUE or KEY/)
    const foreground = await lonely(['run', '--rm', '-l', 'ci=job', '--rootfs', root, '--', 'echo', 'ran'], env)
    t.is(foreground.stdout, 'ran\n', foreground.stderr)
    await t.throwsAsync(create(['true'], { labels: { a: 'b' } }), { instanceOf: RangeError, message: /Option `labels` goes with `detached: true`/ })
    await t.throwsAsync(create(['true'], { detached: true, stateDir: env.LONELY_STATE_DIR, labels: { a: 1 as never } }), { instanceOf: TypeError, message: /Option `labels.a` must be a string; got 1/ })
  } finally {
    await removeDetached(env.LONELY_STATE_DIR)
  }
  t.is(ourMounts(), mountsBefore)
})

itest('docker --tmpfs DST:OPTS: size, mode, uid, gid, ro and exec reach the kernel; noexec by default as docker; -m takes 1GiB as docker', async (t) => {
  const r = await lonely(['run', '--rootfs', root, '-m', '1GiB', '--tmpfs', '/t:size=10m,mode=750,uid=1000,gid=50', '--tmpfs', '/r:ro', '--tmpfs', '/x:exec', '--', 'sh', '-c',
    'stat -c "%a %u:%g" /t; df -k /t | tail -1 | awk "{print \\$2}"; touch /r/f 2>&1 | grep -c Read-only; for m in /t /x; do grep " $m " /proc/self/mountinfo | grep -c noexec; done; true'])
  t.is(r.code, 0, r.stderr)
  t.is(r.stdout, '750 1000:50\n10240\n1\n1\n0\n')
  const units = await lonely(['run', '-m', '1GiBs', '--', 'true'])
  t.regex(units.stderr, /invalid value for -m\/--memory: limits\.memory/, 'control: a unit docker does not know is refused')
  // Control: a program on a default --tmpfs does not run (noexec), one on :exec does.
  const run = await lonely(['run', '--rootfs', root, '--tmpfs', '/n', '--tmpfs', '/e:exec', '--', 'sh', '-c', 'cp /bin/busybox /n/true; cp /bin/busybox /e/true; /n/true 2>/dev/null || echo n-refused; /e/true && echo e-runs'])
  t.is(run.stdout, 'n-refused\ne-runs\n', run.stderr)
})

itest('docker stops a container with its image\'s StopSignal (--timeout and `lonely stop`), and --timeout exits 128+signal even when the command handled it and exited 0', async (t) => {
  const timed = await lonely(['run', '--store', store, '--timeout', '0.5', STOPPER])
  t.is(timed.stdout, 'ready\ngot-usr1\n', timed.stderr)
  t.is(timed.code, 128 + 10)
  // Control: --stop-signal overrides it (SIGTERM is not trapped: sh as PID 1 ignores it, SIGKILL after the grace).
  const overridden = await lonely(['run', '--store', store, '--timeout', '0.5', '--stop-signal', 'TERM', '--stop-timeout', '0.3', STOPPER])
  t.is(overridden.stdout, 'ready\n')
  t.is(overridden.code, 137)
  const d = await lonely(['run', '-d', '--store', store, STOPPER])
  t.is(d.code, 0, d.stderr)
  const id = d.stdout.trim()
  try {
    for (let i = 0; i < 100 && !(await lonely(['logs', id])).stdout.includes('ready'); i++) await new Promise((r) => setTimeout(r, 50))
    t.is((await lonely(['stop', '-t', '5', id])).code, 0)
    t.is((await lonely(['logs', id])).stdout, 'ready\ngot-usr1\n')
    t.is((await lonely(['wait', id])).stdout, '0\n', 'it ended on its trap, not on SIGKILL')
  } finally {
    await lonely(['rm', '-f', id])
  }
})

test('docker --device HOST[:CONTAINER]: the host\'s node (type, numbers, mode) in the container\'s /dev, and it opens; control: without the flag it is not there', async (t) => {
  const r = await lonely(['run', '--device', '/dev/fuse', '--device', '/dev/net/tun:/dev/tun0', '--', 'sh', '-c', 'stat -c "%n %F %t:%T %a" /dev/fuse /dev/tun0; : < /dev/tun0 && echo tun-opens'])
  t.is(r.code, 0, r.stderr)
  const mode = (fs.statSync('/dev/fuse').mode & 0o777).toString(8)
  t.is(r.stdout, `/dev/fuse character special file a:e5 ${mode}\n/dev/tun0 character special file a:c8 ${(fs.statSync('/dev/net/tun').mode & 0o777).toString(8)}\ntun-opens\n`)
  const control = await lonely(['run', '--', 'sh', '-c', 'ls /dev/fuse /dev/tun0 2>&1 | grep -c "No such file"'])
  t.is(control.stdout, '2\n')
  const bad = await lonely(['run', '--device', '/etc/passwd', '--', 'true'])
  t.regex(bad.stderr, /invalid value for --device: devices\[0\] names '\/etc\/passwd', which is not a character or block device/)
  const perms = await lonely(['run', '--device', '/dev/fuse:r', '--', 'true'])
  t.regex(perms.stderr, /invalid value "\/dev\/fuse:r" for --device: access "r" needs a device cgroup rule/)
})

test('docker --privileged: every capability, no seccomp, no masked paths, the host\'s device nodes; control: the default has none of it', async (t) => {
  const probe = 'grep -E "^(CapEff|Seccomp):" /proc/self/status | tr -s "\\t" " "; stat -c "%F" /proc/keys; ls /dev/fuse 2>&1 | grep -c "No such"; true'
  const privileged = await lonely(['run', '--privileged', '--', 'sh', '-c', probe])
  t.is(privileged.code, 0, privileged.stderr)
  // Every capability lonely itself has (this machine's root lacks CAP_SYS_RESOURCE).
  const all = /^CapBnd:\s+(\w+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'))![1]
  t.is(privileged.stdout, `CapEff: ${all}\nSeccomp: 0\nregular empty file\n0\n`)
  const plain = await lonely(['run', '--', 'sh', '-c', probe])
  t.is(plain.stdout, 'CapEff: 00000000a80425fb\nSeccomp: 2\ncharacter special file\n1\n')
})

test('docker --shm-size and --oom-score-adj: /dev/shm\'s size (default 64m) and /proc/self/oom_score_adj', async (t) => {
  const r = await lonely(['run', '--shm-size', '1g', '--oom-score-adj', '500', '--', 'sh', '-c', 'df -k /dev/shm | tail -1 | tr -s " " | cut -d" " -f2; cat /proc/self/oom_score_adj'])
  t.is(r.stdout, '1048576\n500\n', r.stderr)
  const control = await lonely(['run', '--', 'sh', '-c', 'df -k /dev/shm | tail -1 | tr -s " " | cut -d" " -f2'])
  t.is(control.stdout, '65536\n')
  t.regex((await lonely(['run', '--oom-score-adj', '2000', '--', 'true'])).stderr, /--oom-score-adj: oomScoreAdj must be an integer from -1000 to 1000/)
})

/** The container's memory cgroup directory on the host, from /proc/<pid>/cgroup (v1 memory or v2). */
function memoryCgroup(pid: number): string | undefined {
  const mounts = fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => / - cgroup2? /.test(l))
  for (const line of fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n')) {
    const [, names, own] = line.split(':')
    for (const m of mounts) {
      const [left, right] = m.split(' - ')
      const [fstype, , opts] = right.split(' ')
      const v1 = fstype === 'cgroup' && names.split(',').includes('memory') && opts.split(',').includes('memory')
      const dir = path.join(left.split(' ')[4], own)
      if ((v1 || (names === '' && fstype === 'cgroup2')) && (fs.existsSync(path.join(dir, 'memory.soft_limit_in_bytes')) || fs.existsSync(path.join(dir, 'memory.low')))) return dir
    }
  }
  return undefined
}

test('docker --memory-reservation: the soft limit is in the container\'s cgroup (v1 memory.soft_limit_in_bytes, v2 memory.low); above --memory it is refused', async (t) => {
  const proc = libSpawn(['sleep', '30'], { limits: { memory: '64m', memoryReservation: '32MiB' }, stdio: 'ignore' })
  try {
    const dir = memoryCgroup(proc.pid)
    t.truthy(dir, 'the container has a memory cgroup')
    const file = fs.existsSync(path.join(dir!, 'memory.soft_limit_in_bytes')) ? 'memory.soft_limit_in_bytes' : 'memory.low'
    t.is(fs.readFileSync(path.join(dir!, file), 'utf8').trim(), String(32 * 1024 * 1024))
  } finally {
    proc.kill('SIGKILL')
    await proc.wait()
  }
  // Control: without it the soft limit is the kernel's "none".
  const plain = libSpawn(['sleep', '30'], { limits: { memory: '64m' }, stdio: 'ignore' })
  try {
    const dir = memoryCgroup(plain.pid)!
    const file = fs.existsSync(path.join(dir, 'memory.soft_limit_in_bytes')) ? 'memory.soft_limit_in_bytes' : 'memory.low'
    t.not(fs.readFileSync(path.join(dir, file), 'utf8').trim(), String(32 * 1024 * 1024))
  } finally {
    plain.kill('SIGKILL')
    await plain.wait()
  }
  const over = await lonely(['run', '-m', '64m', '--memory-reservation', '128m', '--', 'true'])
  t.regex(over.stderr, /invalid value for --memory-reservation: limits\.memoryReservation must be at most limits\.memory/)
})

test('docker --sysctl KEY=VALUE and --domainname: namespaced ones set inside, others refused; the host\'s value is untouched', async (t) => {
  const before = fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8')
  const r = await lonely(['run', '--sysctl', 'net.ipv4.ip_forward=1', '--domainname', 'example.org', '--', 'sh', '-c', 'cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/domainname'])
  t.is(r.stdout, '1\nexample.org\n', r.stderr)
  t.is(fs.readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8'), before)
  t.regex((await lonely(['run', '--sysctl', 'kernel.panic=1', '--', 'true'])).stderr, /--sysctl: sysctls has `kernel.panic`, which is not a namespaced sysctl/)
  t.regex((await lonely(['run', '--network', 'host', '--sysctl', 'net.ipv4.ip_forward=1', '--', 'true'])).stderr, /needs the container's own net namespace/)
})

test('explain() / --print-plan: every step with its parameters, the pooled namespace and cgroup joins a real run does, the clone flags and the command', async (t) => {
  const r = await lonely(['run', '--print-plan', '-u', '1000', '-m', '64m', '-h', 'box', '--', '/bin/echo', 'hi'])
  t.is(r.code, 0, r.stderr)
  for (const step of [/^clone: pid,mnt,uts$/m, /setns: net made ahead of time$/m, /setns: ipc made ahead of time$/m, /join cgroup$/m, /unshare: cgroup$/m,
    /sethostname: box$/m, /set credentials: uid 1000, gid \d+, groups \[/m, /prctl PR_CAPBSET_DROP: keep 0x[0-9a-f]+$/m, /seccomp: \d+ BPF instructions$/m, /mount proc: source=proc attrs 0x[0-9a-f]+$/m, /^exec `\/bin\/echo hi`$/m]) {
    t.regex(r.stdout, step)
  }
  // Control: without a limit there is no cgroup to join; with the host's network, no pooled netns.
  const plain = await lonely(['run', '--print-plan', '--network', 'host', '--', 'true'])
  t.notRegex(plain.stdout, /join cgroup|setns: net/)
  t.regex(plain.stdout, /setns: ipc made ahead of time/)
})

itest('docker run --platform: the image\'s own platform runs; another is refused naming what the image is (lonely emulates and pulls nothing)', async (t) => {
  const arch = process.arch === 'arm64' ? 'arm64' : 'amd64'
  const other = arch === 'arm64' ? 'amd64' : 'arm64'
  const same = await lonely(['run', '--store', store, '--platform', `linux/${arch}`, IMAGE])
  t.is(same.stdout, 'parity box\n', same.stderr)
  const refused = await lonely(['run', '--store', store, '--platform', `linux/${other}`, IMAGE])
  t.is(refused.code, 125)
  t.regex(refused.stderr, new RegExp(`invalid value "linux/${other}" for --platform: the image "parity/box:1" is linux/${arch}: lonely runs no other platform`))
  const host = await lonely(['run', '--platform', `linux/${other}`, '--', 'true'])
  t.regex(host.stderr, /this host is linux\//)
  t.is((await lonely(['run', '--platform', 'amd64', '--', 'true'])).code, 125)
})

const GCC = ['/usr/bin/gcc', '/usr/bin/cc'].find((p) => fs.existsSync(p))
const suidTest = BUSYBOX && GCC && process.geteuid?.() === 0 ? test.serial : test.skip

suidTest('docker honours setuid (sudo, su) in an image: lonely clears the bits at load with a `lonely: note:`; --keep-setuid plus --security-opt allow-setuid and no-new-privileges=false give docker\'s; controls: any one missing leaves the euid the user\'s', async (t) => {
  // An image with a static setuid-root helper that prints its euid, run as alice (uid 1000).
  const dir = fs.mkdtempSync(path.join(work, 'suid-'))
  const suidRoot = makeBusyboxRoot()
  try {
    fs.writeFileSync(path.join(dir, 'euid.c'), '#include <stdio.h>\n#include <unistd.h>\nint main(void) { printf("%d\\n", (int)geteuid()); return 0; }\n')
    execFileSync(GCC!, ['-static', '-O2', '-o', path.join(suidRoot, 'bin/euid'), path.join(dir, 'euid.c')])
    fs.chmodSync(path.join(suidRoot, 'bin/euid'), 0o4755)
    fs.writeFileSync(path.join(suidRoot, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/tmp:/bin/sh\n')
    // Two images (two configs) of the same layer, in one store: one loaded with the bits, one without.
    const archive = (tag: string) => dockerArchive(suidRoot, fs.mkdtempSync(path.join(dir, 'a-')), [{ tag, cmd: ['/bin/euid'], config: { User: 'alice', Labels: { tag } } }])
    const [STRIPPED, KEPT] = ['suid/stripped:1', 'suid/kept:1']
    const suidStore = path.join(dir, 'store')
    const plain = await lonely(['load', '--store', suidStore, '-i', archive(STRIPPED)])
    t.is(plain.code, 0, plain.stderr)
    t.is(plain.stdout, `Loaded image: ${STRIPPED}\n`)
    t.regex(plain.stderr, /^lonely: note: layer sha256:[0-9a-f]{64}: setuid\/setgid bits cleared on 1 \(\.\/bin\/euid\): keep them with keepSetuid \(lonely load --keep-setuid\)$/m)
    const kept = await lonely(['load', '--store', suidStore, '--keep-setuid', '-i', archive(KEPT)])
    t.is(kept.code, 0, kept.stderr)
    t.regex(kept.stderr, /^lonely: note: layer sha256:[0-9a-f]{64}: setuid\/setgid bits kept \(keepSetuid\) on 1 \(\.\/bin\/euid\)$/m)
    // Same layer, two directories: one loaded without the bits is never taken for one with them.
    const [a, b] = [STRIPPED, KEPT].map((ref) => images.inspect(ref, { store: suidStore }))
    t.deepEqual([a.keepSetuid, b.keepSetuid], [false, true])
    t.is(a.layers[0].diffId, b.layers[0].diffId)
    t.not(a.layers[0].dir, b.layers[0].dir)
    t.is(fs.statSync(path.join(a.layers[0].dir, 'bin/euid')).mode & 0o7777, 0o755)
    t.is(fs.statSync(path.join(b.layers[0].dir, 'bin/euid')).mode & 0o7777, 0o4755)
    // The library: the same notes in the result (a stored layer's are repeated), and a checked option.
    const again = await images.load(archive(KEPT), { store: suidStore, keepSetuid: true })
    t.is(again.layersReused, 1)
    t.true(again.notes.some((n) => /\(already stored\): setuid\/setgid bits kept \(keepSetuid\) on 1/.test(n)), again.notes.join('\n'))
    await t.throwsAsync(images.load(archive(KEPT), { store: suidStore, keepSetuid: 'yes' as never }), { instanceOf: TypeError, message: 'Option `keepSetuid` must be a boolean; got \'yes\'.' })

    const euid = async (ref: string, ...opts: string[]) => {
      const r = await lonely(['run', '--store', suidStore, ...opts.flatMap((o) => ['--security-opt', o]), ref])
      t.is(r.code, 0, r.stderr)
      return r.stdout
    }
    const both = ['allow-setuid', 'no-new-privileges=false']
    t.is(await euid(KEPT, ...both), '0\n', 'both opt-ins: the setuid bit counts, as in docker')
    t.is(await euid(KEPT), '1000\n', 'the default: nosuid and no_new_privs')
    t.is(await euid(KEPT, 'no-new-privileges=false'), '1000\n', 'control: the overlay is nosuid without allow-setuid')
    t.is(await euid(KEPT, 'allow-setuid'), '1000\n', 'control: no_new_privs without no-new-privileges=false')
    t.is(await euid(STRIPPED, ...both), '1000\n', 'control: the bit was cleared at load')
    // The library's options: the same.
    const run = async (allowSetuid: boolean) => (await libRun([], { image: KEPT, store: suidStore, allowSetuid, noNewPrivileges: false })).stdout
    t.is(await run(true), '0')
    t.is(await run(false), '1000')
    // rmi removes both directories of the layer (each image had its own).
    for (const ref of [STRIPPED, KEPT]) await images.remove(ref, { store: suidStore })
    t.false(fs.existsSync(a.layers[0].dir))
    t.false(fs.existsSync(b.layers[0].dir))
    t.is(ourMounts(), mountsBefore)
  } finally {
    removeRoot(suidRoot)
    fs.rmSync(dir, { recursive: true, force: true })
  }
})
