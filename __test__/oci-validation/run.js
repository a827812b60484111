#!/usr/bin/env node
// Run the OCI runtime-tools validation suite against several runtimes and
// print a side-by-side table.
//
//   node __test__/oci-validation/run.js [--runtime name=path ...]
//        [--only t1,t2] [--json out.json] [--suite DIR] [--timeout SEC]
//        [--tap-dir DIR]   (keep each run's raw output as DIR/<runtime>/<test>.tap)
//
// The suite is built (or reused from the cache) by build.sh next to this file.
// Must run as root. Every test runs with cwd = the built module root and
// RUNTIME=<runtime path>, in its own process group, with a timeout.
//
// After each test the harness removes what the suite left behind, touching
// only things created during this run: containers whose bundle is a suite
// temp dir (/tmp/ocitest*), processes of the test's session or living in such
// a bundle, mounts below such a dir, the dirs themselves (/tmp/ocitest*,
// /tmp/oci-pid*) and the suite's fixed cgroup dirs (cgrouptest, testdir).
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn, spawnSync } = require('child_process');

const REPO_ROOT = path.resolve(__dirname, '..', '..');
const BUILD_SH = path.join(__dirname, 'build.sh');
const TMP = '/tmp';
// Temp dirs the suite creates: util.PrepareBundle -> ioutil.TempDir("", "ocitest"),
// validation/pidfile -> ioutil.TempDir("", "oci-pid").
const SUITE_TMP_RE = /^(ocitest|oci-pid)/;
// cgroup dirs with fixed names the suite creates (cgroups.AbsCgroupPath
// "/cgrouptest", RelCgroupPath "testdir/cgrouptest/container", and
// delete_only_create_resources' /sys/fs/cgroup/pids/cgrouptest).
const SUITE_CGROUP_NAMES = ['cgrouptest', 'testdir'];
const CGROUP_ROOT = '/sys/fs/cgroup';

// ---------------------------------------------------------------- arguments

function usage(msg) {
  if (msg) process.stderr.write(`run.js: ${msg}\n`);
  process.stderr.write(
    'usage: node __test__/oci-validation/run.js [--runtime name=path ...] [--only t1,t2]\n' +
      '       [--json out.json] [--suite DIR] [--timeout SEC] [--tap-dir DIR]\n',
  );
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { runtimes: [], only: null, json: null, suite: null, timeout: 60, tapDir: null };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const eq = a.indexOf('=');
    const [flag, inline] = a.startsWith('--') && eq > 0 ? [a.slice(0, eq), a.slice(eq + 1)] : [a, null];
    const value = () => {
      if (inline !== null) return inline;
      if (i + 1 >= argv.length) usage(`${flag} needs a value`);
      return argv[++i];
    };
    switch (flag) {
      case '--runtime': {
        const v = value();
        const k = v.indexOf('=');
        if (k <= 0) usage(`--runtime wants name=path, got ${v}`);
        opts.runtimes.push({ name: v.slice(0, k), path: path.resolve(v.slice(k + 1)) });
        break;
      }
      case '--only':
        opts.only = value().split(',').map((s) => s.trim().replace(/\.t$/, '')).filter(Boolean);
        break;
      case '--json':
        opts.json = path.resolve(value());
        break;
      case '--tap-dir':
        opts.tapDir = path.resolve(value());
        break;
      case '--suite':
        opts.suite = path.resolve(value());
        break;
      case '--timeout':
        opts.timeout = Number(value());
        if (!(opts.timeout > 0)) usage('--timeout wants a positive number of seconds');
        break;
      case '-h':
      case '--help':
        usage();
        break;
      default:
        usage(`unknown argument ${a}`);
    }
  }
  return opts;
}

// ---------------------------------------------------------------- helpers

function log(msg) {
  process.stderr.write(`[oci] ${msg}\n`);
}

function isExecutable(p) {
  try {
    fs.accessSync(p, fs.constants.X_OK);
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

function which(cmd) {
  for (const dir of (process.env.PATH || '/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const p = path.join(dir, cmd);
    if (isExecutable(p)) return p;
  }
  return null;
}

function truncate(s, n) {
  return s.length > n ? `${s.slice(0, n)}…` : s;
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// /proc/self/mountinfo, with the octal escapes of mount points decoded.
function readMounts() {
  const text = fs.readFileSync('/proc/self/mountinfo', 'utf8');
  return text
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const f = line.split(' ');
      const decode = (s) => s.replace(/\\([0-7]{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
      const dash = f.indexOf('-');
      return { id: f[0], mountPoint: decode(f[4]), fsType: f[dash + 1], source: decode(f[dash + 2] || ''), line };
    });
}

function under(p, dir) {
  return p === dir || p.startsWith(`${dir}/`);
}

function listSuiteTmp() {
  try {
    return fs
      .readdirSync(TMP)
      .filter((n) => SUITE_TMP_RE.test(n))
      .map((n) => path.join(TMP, n));
  } catch {
    return [];
  }
}

// Suite cgroup dirs: /sys/fs/cgroup/<controller>/{cgrouptest,testdir}
function listSuiteCgroups() {
  const out = [];
  let ctrls = [];
  try {
    ctrls = fs.readdirSync(CGROUP_ROOT);
  } catch {
    return out;
  }
  for (const c of ctrls) {
    for (const n of SUITE_CGROUP_NAMES) {
      const p = path.join(CGROUP_ROOT, c, n);
      try {
        if (fs.statSync(p).isDirectory()) out.push(p);
      } catch {}
    }
    // cgroup2 mounted directly at the root has no controller level
    if (SUITE_CGROUP_NAMES.includes(c)) out.push(path.join(CGROUP_ROOT, c));
  }
  return out;
}

function procStat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    // rest[0]=state rest[1]=ppid rest[2]=pgrp rest[3]=session
    return { comm: s.slice(s.indexOf('(') + 1, s.lastIndexOf(')')), state: rest[0], pgrp: Number(rest[2]), sid: Number(rest[3]) };
  } catch {
    return null;
  }
}

function allPids() {
  return fs
    .readdirSync('/proc')
    .filter((n) => /^\d+$/.test(n))
    .map(Number);
}

function readlinkSafe(p) {
  try {
    return fs.readlinkSync(p);
  } catch {
    return null;
  }
}

// Processes left by a test: same session as the test process (it ran with
// setsid), or root/cwd inside one of the suite's bundle dirs.
function findLeftoverProcs(sid, dirs) {
  const found = [];
  for (const pid of allPids()) {
    if (pid === process.pid) continue;
    const st = procStat(pid);
    if (!st || st.state === 'Z') continue; // zombies go away with their parent
    let why = null;
    if (sid && st.sid === sid) why = 'session';
    else if (dirs.length) {
      const root = readlinkSafe(`/proc/${pid}/root`);
      const cwd = readlinkSafe(`/proc/${pid}/cwd`);
      if (root && dirs.some((d) => under(root, d))) why = `root ${root}`;
      else if (cwd && dirs.some((d) => under(cwd, d))) why = `cwd ${cwd}`;
    }
    if (why) found.push({ pid, comm: st.comm, why });
  }
  return found;
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 30000, ...opts });
  return { status: r.status, stdout: r.stdout || '', stderr: r.stderr || '', error: r.error };
}

// ---------------------------------------------------------------- runtimes

// crun 1.8 refuses this hybrid cgroup host (cgroup2 at /sys/fs/cgroup/unified)
// and ociVersion > 1.1.0. The wrapper runs it in a private mount namespace
// with the unified hierarchy unmounted there (the host is untouched), and on
// create/run rewrites an ociVersion newer than 1.1.x in config.json to 1.1.0.
function writeCrunWrapper(dir, crun) {
  const p = path.join(dir, 'crun');
  const script = `#!/bin/sh
# written by lonely-container __test__/oci-validation/run.js
CRUN=${JSON.stringify(crun)}
cmd=""
bundle=""
prev=""
for a in "$@"; do
  case "$prev" in
    --bundle|-b) bundle="$a" ;;
  esac
  case "$a" in
    --bundle=*) bundle="\${a#--bundle=}" ;;
  esac
  if [ -z "$cmd" ]; then
    case "$a" in
      create|run) cmd="$a" ;;
    esac
  fi
  prev="$a"
done
if [ -n "$cmd" ]; then
  cfg="\${bundle:-.}/config.json"
  if [ -f "$cfg" ]; then
    sed -E -i 's/"ociVersion"[[:space:]]*:[[:space:]]*"1\\.([2-9]|[1-9][0-9]+)\\.[^"]*"/"ociVersion":"1.1.0"/' "$cfg"
  fi
fi
exec unshare -m --propagation private sh -c 'umount /sys/fs/cgroup/unified 2>/dev/null; exec "$0" "$@"' "$CRUN" "$@"
`;
  fs.writeFileSync(p, script, { mode: 0o755 });
  return p;
}

function defaultRuntimes(tmpDir) {
  const rts = [{ name: 'lonely', path: path.join(REPO_ROOT, 'target', 'release', 'lonely-runtime') }];
  if (isExecutable('/usr/sbin/runc')) rts.push({ name: 'runc', path: '/usr/sbin/runc' });
  const crun = which('crun');
  if (crun) rts.push({ name: 'crun', path: writeCrunWrapper(tmpDir, crun), real: crun });
  return rts;
}

// Containers known to a runtime, as [{id, bundle}] (table output of `list`).
function listContainers(rt) {
  const r = run(rt.path, ['list']);
  if (r.status !== 0) return [];
  const lines = r.stdout.split('\n').slice(1).filter((l) => l.trim());
  return lines.map((l) => {
    const f = l.trim().split(/\s+/);
    return { id: f[0], bundle: f.find((x, i) => i > 0 && x.startsWith('/')) || null };
  });
}

// ---------------------------------------------------------------- TAP

function parseTap(stdout) {
  const lines = stdout.split('\n');
  const points = [];
  const yamls = [];
  let plan = null;
  let cur = null; // YAML block being read
  let last = null; // last test point (YAML after it belongs to it)
  for (const line of lines) {
    if (cur) {
      if (/^\s+\.\.\.\s*$/.test(line)) {
        yamls.push({ after: last, text: cur.join('\n') });
        if (last) last.yaml = cur.join('\n');
        cur = null;
      } else cur.push(line);
      continue;
    }
    if (/^\s+---\s*$/.test(line)) {
      cur = [];
      continue;
    }
    let m = /^1\.\.(\d+)/.exec(line);
    if (m) {
      plan = Number(m[1]);
      continue;
    }
    m = /^(not )?ok\b\s*(\d+)?\s*(?:-\s*)?(.*)$/.exec(line);
    if (m) {
      last = { ok: !m[1], line, desc: m[3], skip: /#\s*skip/i.test(line), todo: /#\s*todo/i.test(line) };
      points.push(last);
    }
  }
  if (cur) yamls.push({ after: last, text: cur.join('\n') });
  return { plan, points, yamls };
}

// A JSON string body as its text (as written when it is not valid JSON).
function unquote(body) {
  try {
    return JSON.parse(`"${body}"`);
  } catch {
    return body;
  }
}

function yamlField(text, key) {
  const m = new RegExp(`"${key}"\\s*:\\s*"((?:[^"\\\\]|\\\\.)*)"`).exec(text || '');
  return m ? unquote(m[1]) : null;
}

function yamlError(text) {
  // tap-go emits the YAML block as JSON-style text: { "error": "..." }
  const m = /^\s*error:\s*(.*)$/m.exec(text);
  return yamlField(text, 'error') ?? (m ? unquote(m[1]) : null);
}

// one-line reason for a `not ok` point: its description plus the most
// telling line of its YAML (stderr when the error is a bare exit status)
function notOkReason(p, testStderr) {
  const err = p.yaml && yamlError(p.yaml);
  const stderr = p.yaml && yamlField(p.yaml, 'stderr');
  // RuntimeInsideValidate puts runtimetest's own TAP in the YAML "stdout"
  const inner = p.yaml && yamlField(p.yaml, 'stdout');
  const innerNotOk = inner && inner.split('\n').find((l) => /^not ok\b/.test(l));
  let why = err && !/^exit status \d+$/.test(err) ? firstLine(err) : firstLine(stderr) || firstLine(err);
  if (innerNotOk) why = `inner: ${innerNotOk}${why ? `; ${why}` : ''}`;
  if ((!why || /^exit status \d+$/.test(why)) && testStderr) why = usefulStderr(testStderr) || why;
  if (!why && p.yaml) {
    const actual = yamlField(p.yaml, 'actual');
    const expected = yamlField(p.yaml, 'expected');
    if (actual !== null || expected !== null) why = `expected ${expected}, actual ${actual}`;
  }
  return p.line + (why ? ` (${truncate(why, 200)})` : '');
}

// first stderr line that says more than "failed to create the container"
function usefulStderr(s) {
  return (
    (s || '')
      .split('\n')
      .map((x) => x.trim())
      .find((x) => x && !/^failed to (create|start|delete) the container$/.test(x) && !/^exit status \d+$/.test(x)) || ''
  );
}

// first meaningful line; for a go-multierror text ("2 errors occurred:\n\t* a\n\t* b")
// the items joined with "; "
function firstLine(s) {
  const lines = (s || '').split('\n').map((x) => x.trim()).filter(Boolean);
  if (lines.length > 1 && /^\d+ errors? occurred:$/.test(lines[0])) {
    return lines
      .slice(1)
      .filter((l) => l.startsWith('* '))
      .map((l) => l.slice(2))
      .join('; ');
  }
  return lines[0] || '';
}

// pass: exit 0, no `not ok`, plan matches the test points, and for plan
// 1..0 (hook tests and the hook *_fail programs report only through a YAML
// block) no YAML block carrying an "error". process_*_fail programs print no
// TAP at all: empty stdout + exit 0 is their pass. A test whose points are
// all skips is "skip".
function classify(res) {
  if (res.timedOut) return { status: 'timeout', reason: `no exit within ${res.timeoutSec}s` };
  const tap = parseTap(res.stdout);
  const notOk = tap.points.filter((p) => !p.ok && !p.todo);
  const details = notOk.slice(0, 3).map((p) => ({ line: p.line, yaml: p.yaml ? truncate(p.yaml, 600) : undefined }));
  const out = { tap: { plan: tap.plan, points: tap.points.length, notOk: notOk.length }, notOk: details };
  const stderrLine = () => {
    const l = res.stderr.split('\n').map((x) => x.trim()).filter(Boolean);
    return l.length ? l.slice(0, 2).join(' | ') : '';
  };
  if (res.exitCode !== 0) {
    out.status = 'FAIL';
    out.reason = notOk.length
      ? notOkReason(notOk[0], res.stderr)
      : `exit ${res.exitCode === null ? res.signal : res.exitCode}: ${truncate(usefulStderr(res.stderr) || stderrLine() || firstLine(res.stdout), 300)}`;
    return out;
  }
  if (notOk.length) {
    out.status = 'FAIL';
    out.reason = notOkReason(notOk[0], res.stderr);
    return out;
  }
  if (tap.plan === null && res.stdout.trim() === '' && /_fail$/.test(res.name || '')) {
    // process_*_fail programs don't speak TAP: they print nothing and exit 0
    // when the runtime rejected the config, and util.Fatal (exit 1) otherwise
    out.status = 'pass';
    return out;
  }
  if (tap.plan === null) {
    out.status = 'FAIL';
    out.reason = `no TAP plan: ${truncate(usefulStderr(res.stderr) || stderrLine() || firstLine(res.stdout), 300)}`;
    return out;
  }
  if (tap.plan === 0) {
    const errs = tap.yamls.map((y) => yamlError(y.text)).filter(Boolean);
    if (errs.length) {
      out.status = 'FAIL';
      out.reason = firstLine(errs[0]);
      out.diagnostics = tap.yamls.slice(0, 3).map((y) => truncate(y.text, 600));
      return out;
    }
  } else if (tap.plan !== tap.points.length) {
    out.status = 'FAIL';
    out.reason = `plan 1..${tap.plan} but ${tap.points.length} test points`;
    return out;
  }
  if (tap.points.length && tap.points.every((p) => p.skip)) {
    out.status = 'skip';
    out.reason = tap.points[0].line;
    return out;
  }
  out.status = 'pass';
  return out;
}

// ---------------------------------------------------------------- running

let current = null; // running test child, for SIGINT

function runTest(testPath, cwd, rtPath, timeoutSec) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(testPath, [], {
      cwd,
      env: { ...process.env, RUNTIME: rtPath },
      detached: true, // own session + process group
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    current = child;
    const out = [];
    const err = [];
    child.stdout.on('data', (d) => out.push(d));
    child.stderr.on('data', (d) => err.push(d));
    let timedOut = false;
    let exited = null;
    const killGroup = () => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, timeoutSec * 1000);
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      current = null;
      resolve({
        pid: child.pid,
        exitCode: exited ? exited.code : null,
        signal: exited ? exited.signal : null,
        timedOut,
        timeoutSec,
        durationMs: Date.now() - started,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    };
    child.on('error', (e) => {
      err.push(Buffer.from(String(e)));
      exited = { code: null, signal: 'spawn-error' };
      finish();
    });
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      // a leftover grandchild may still hold the pipes: don't wait for it
      setTimeout(() => {
        child.stdout.destroy();
        child.stderr.destroy();
        finish();
      }, 2000).unref();
    });
    child.on('close', finish);
  });
}

function umount(mp) {
  let r = run('umount', [mp]);
  if (r.status !== 0) r = run('umount', ['-l', mp]);
  return r.status === 0;
}

// Remove what a test left behind. `base` holds what existed before the run.
async function cleanup(rt, res, base) {
  const leaks = { containers: [], processes: [], mounts: [], dirs: [], cgroups: [], problems: [] };
  const newDirs = () => listSuiteTmp().filter((d) => !base.tmp.has(d));
  const suiteDirs = newDirs();

  // 1. containers whose bundle is a suite dir created during this run
  for (const c of listContainers(rt)) {
    if (!c.bundle || base.containers.has(`${rt.name}:${c.id}`)) continue;
    if (!(SUITE_TMP_RE.test(path.basename(c.bundle)) && path.dirname(c.bundle) === TMP && !base.tmp.has(c.bundle))) continue;
    leaks.containers.push(c.id);
    run(rt.path, ['kill', c.id, 'KILL']);
    let r = run(rt.path, ['delete', '--force', c.id]);
    if (r.status !== 0) r = run(rt.path, ['delete', c.id]);
    if (r.status !== 0) leaks.problems.push(`delete ${c.id}: ${firstLine(r.stderr)}`);
  }

  // 2. processes of the test's session or inside its bundles
  for (let round = 0; round < 5; round++) {
    const procs = findLeftoverProcs(res.pid, suiteDirs);
    if (!procs.length) break;
    for (const p of procs) {
      if (round === 0) leaks.processes.push(`${p.pid} ${p.comm} (${p.why})`);
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {}
    }
    await sleep(200);
  }

  // 3. mounts below the suite dirs (none of them existed before the run)
  const mounts = readMounts().filter((m) => !base.mountIds.has(m.id) && suiteDirs.some((d) => under(m.mountPoint, d)));
  mounts.sort((a, b) => b.mountPoint.length - a.mountPoint.length);
  for (const m of mounts) {
    leaks.mounts.push(`${m.mountPoint} (${m.fsType})`);
    if (!umount(m.mountPoint)) leaks.problems.push(`umount ${m.mountPoint} failed`);
  }

  // 4. the suite dirs, only once nothing is mounted below them
  const mountedNow = readMounts();
  for (const d of suiteDirs) {
    if (mountedNow.some((m) => under(m.mountPoint, d))) {
      leaks.problems.push(`kept ${d}: still has mounts`);
      continue;
    }
    leaks.dirs.push(d);
    const r = run('rm', ['-rf', '--one-file-system', '--', d]);
    if (r.status !== 0) leaks.problems.push(`rm ${d}: ${firstLine(r.stderr)}`);
  }

  // 5. the suite's fixed-name cgroup dirs (deepest first, after killing members)
  for (const cg of listSuiteCgroups().filter((p) => !base.cgroups.has(p))) {
    const r = run('find', [cg, '-depth', '-type', 'd']);
    for (const d of r.stdout.split('\n').filter(Boolean)) {
      leaks.cgroups.push(d);
      try {
        for (const pid of fs.readFileSync(path.join(d, 'cgroup.procs'), 'utf8').split('\n').filter(Boolean)) {
          try {
            process.kill(Number(pid), 'SIGKILL');
          } catch {}
        }
      } catch {}
      let ok = false;
      for (let i = 0; i < 10 && !ok; i++) {
        try {
          fs.rmdirSync(d);
          ok = true;
        } catch {
          await sleep(100);
        }
      }
      if (!ok) leaks.problems.push(`rmdir ${d} failed`);
    }
  }

  // dirs are expected (the suite removes its bundles itself, but not always)
  const any = leaks.containers.length + leaks.processes.length + leaks.mounts.length + leaks.cgroups.length + leaks.problems.length;
  return { leaks, any: any > 0 || leaks.dirs.length > 0 };
}

function findTests(suite) {
  const vdir = path.join(suite, 'validation');
  const tests = [];
  for (const n of fs.readdirSync(vdir).sort()) {
    const p = path.join(vdir, n);
    // newer runtime-tools: validation/<name>.t; v0.9.0: validation/<name>/<name>.t
    if (n.endsWith('.t') && isExecutable(p)) tests.push({ name: n.slice(0, -2), path: p });
    else if (isExecutable(path.join(p, `${n}.t`))) tests.push({ name: n, path: path.join(p, `${n}.t`) });
  }
  return tests;
}

function buildSuite() {
  log('building / locating the suite (build.sh)');
  const r = spawnSync('bash', [BUILD_SH], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (r.status !== 0) {
    log('build.sh failed');
    process.exit(1);
  }
  return r.stdout.trim().split('\n').pop();
}

function suiteInfo(suite) {
  const info = {};
  try {
    for (const l of fs.readFileSync(path.join(suite, '.built'), 'utf8').split('\n')) {
      const k = l.indexOf('=');
      if (k > 0) info[l.slice(0, k)] = l.slice(k + 1);
    }
  } catch {}
  return info;
}

function runtimeVersion(rt) {
  const r = run(rt.real || rt.path, ['--version']);
  return firstLine(r.stdout || r.stderr) || null;
}

function printTable(tests, rts, results) {
  const w0 = Math.max(4, ...tests.map((t) => t.name.length));
  const ws = rts.map((r) => Math.max(7, r.name.length));
  const row = (cells) => cells.map((c, i) => (i === 0 ? c.padEnd(w0) : c.padEnd(ws[i - 1]))).join('  ').trimEnd();
  const lines = [row(['test', ...rts.map((r) => r.name)]), row(['-'.repeat(w0), ...ws.map((w) => '-'.repeat(w))])];
  for (const t of tests) lines.push(row([t.name, ...rts.map((r) => (results[t.name][r.name] || {}).status || '-')]));
  process.stdout.write(`${lines.join('\n')}\n\n`);
  const totals = rts.map((r) => {
    const st = tests.map((t) => (results[t.name][r.name] || {}).status);
    const pass = st.filter((s) => s === 'pass').length;
    const skip = st.filter((s) => s === 'skip').length;
    return `${r.name} ${pass}/${tests.length}${skip ? ` (+${skip} skip)` : ''}`;
  });
  process.stdout.write(`${totals.join(' ')}\n`);
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  if (process.getuid() !== 0) usage('must run as root');

  const tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-oci-run-'));
  let interrupted = false;
  process.on('SIGINT', () => {
    interrupted = true;
    if (current) {
      try {
        process.kill(-current.pid, 'SIGKILL');
      } catch {}
    }
  });

  try {
    const rts = opts.runtimes.length ? opts.runtimes : defaultRuntimes(tmpDir);
    for (const rt of rts) {
      if (!isExecutable(rt.path)) {
        const hint = rt.name === 'lonely' ? ' (cargo build --release --locked -p lonely-runtime)' : '';
        throw new Error(`runtime ${rt.name}: ${rt.path} is not executable${hint}`);
      }
    }
    const suite = opts.suite || buildSuite();
    let tests = findTests(suite);
    if (opts.only) {
      const unknown = opts.only.filter((n) => !tests.some((t) => t.name === n));
      if (unknown.length) throw new Error(`unknown test(s): ${unknown.join(', ')}`);
      tests = tests.filter((t) => opts.only.includes(t.name));
    }
    const info = suiteInfo(suite);
    log(`suite ${suite} (runtime-tools ${info.version || '?'}), ${tests.length} tests`);
    log(`runtimes: ${rts.map((r) => `${r.name}=${r.path}`).join(' ')}`);

    // what the machine had before the run: never touched
    const base = {
      tmp: new Set(listSuiteTmp()),
      cgroups: new Set(listSuiteCgroups()),
      mountIds: new Set(readMounts().map((m) => m.id)),
      containers: new Set(),
    };
    for (const rt of rts) for (const c of listContainers(rt)) base.containers.add(`${rt.name}:${c.id}`);
    const mountsAtStart = readMounts().length;

    const results = {};
    for (const t of tests) results[t.name] = {};
    const passes = {};

    for (const rt of rts) {
      if (interrupted) break;
      const before = readMounts();
      const pass = {
        path: rt.path,
        real: rt.real,
        version: runtimeVersion(rt),
        mountsBefore: before.length,
        mountsAfter: null,
        durationMs: 0,
        leakedMounts: [],
        leaks: {},
      };
      passes[rt.name] = pass;
      const started = Date.now();
      for (const t of tests) {
        if (interrupted) break;
        const res = await runTest(t.path, suite, rt.path, opts.timeout);
        res.name = t.name;
        const c = classify(res);
        if (opts.tapDir) {
          fs.mkdirSync(path.join(opts.tapDir, rt.name), { recursive: true });
          fs.writeFileSync(
            path.join(opts.tapDir, rt.name, `${t.name}.tap`),
            `${res.stdout}\n# ---- stderr (exit ${res.exitCode}${res.timedOut ? ', timeout' : ''})\n${res.stderr}`,
          );
        }
        const { leaks, any } = await cleanup(rt, res, base);
        results[t.name][rt.name] = {
          status: c.status,
          exitCode: res.exitCode,
          signal: res.signal || undefined,
          durationMs: res.durationMs,
          reason: c.reason,
          tap: c.tap,
          notOk: c.notOk && c.notOk.length ? c.notOk : undefined,
          diagnostics: c.diagnostics,
          stderr: c.status !== 'pass' && res.stderr ? truncate(res.stderr, 600) : undefined,
          leftovers: any ? leaks : undefined,
        };
        for (const m of leaks.mounts) pass.leakedMounts.push(`${t.name}: ${m}`);
        if (any) {
          const parts = ['containers', 'processes', 'mounts', 'cgroups', 'problems']
            .filter((k) => leaks[k].length)
            .map((k) => `${k}=${leaks[k].length}`);
          if (parts.length) pass.leaks[t.name] = parts.join(' ');
        }
        log(`${rt.name.padEnd(7)} ${t.name.padEnd(40)} ${c.status}${c.reason ? `  ${truncate(c.reason, 120)}` : ''}`);
      }
      pass.durationMs = Date.now() - started;
      const after = readMounts();
      pass.mountsAfter = after.length;
      pass.newMountsNotCleaned = after.filter((m) => !before.some((b) => b.id === m.id)).map((m) => `${m.mountPoint} (${m.fsType})`);
    }

    printTable(tests, rts, results);
    for (const rt of rts) {
      const p = passes[rt.name];
      if (!p) continue;
      const extra = Object.entries(p.leaks).map(([t, s]) => `${t}: ${s}`);
      process.stdout.write(
        `${rt.name}: pass took ${(p.durationMs / 1000).toFixed(1)}s; mountinfo ${p.mountsBefore} -> ${p.mountsAfter}` +
          `; leaked mounts cleaned: ${p.leakedMounts.length}${extra.length ? `; leftovers: ${extra.join(', ')}` : ''}\n`,
      );
    }
    const mountsAtEnd = readMounts().length;
    if (mountsAtEnd !== mountsAtStart) log(`warning: mountinfo had ${mountsAtStart} lines at start, ${mountsAtEnd} now`);

    if (opts.json) {
      const doc = {
        suite: { dir: suite, ...info },
        host: { kernel: os.release() },
        date: new Date().toISOString(),
        timeoutSec: opts.timeout,
        mountinfo: { atStart: mountsAtStart, atEnd: mountsAtEnd },
        runtimes: passes,
        tests: results,
      };
      fs.mkdirSync(path.dirname(opts.json), { recursive: true });
      fs.writeFileSync(opts.json, `${JSON.stringify(doc, null, 2)}\n`);
      log(`wrote ${opts.json}`);
    }
    if (interrupted) process.exitCode = 130;
  } finally {
    fs.rmSync(tmpDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  log(e && e.stack ? e.stack : String(e));
  process.exit(1);
});
