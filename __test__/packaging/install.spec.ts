// Distribution: the loader's errors, a clean offline install from the packed tarballs (CJS,
// ESM, types, the `lonely` bin, no Rust toolchain), the workflow files (actionlint) and the API
// docs' references (TypeDoc). Runs as root: the installed package makes real containers. Every
// test is serial: they start npm, tsc and TypeDoc, heavy next to the suites running beside them.
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process'
import test from 'ava'

import { bindingError, detectLibc, loadBinding, notLinuxError, SUPPORTED_TARGETS, type Host } from '../../lib/native'
import { ourMounts } from '../mounts'

const ROOT = path.resolve(__dirname, '..', '..')
const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as {
  name: string
  version: string
  os?: string[]
  dependencies?: Record<string, string>
  scripts?: Record<string, string>
}
const IS_ROOT = process.getuid?.() === 0
const HOST_LIBC = detectLibc() === 'musl' ? 'musl' : 'glibc'
const HOST_TARGET = `linux-${process.arch}-${HOST_LIBC === 'musl' ? 'musl' : 'gnu'}`
const ADDON = path.join(ROOT, `lonely-container.${HOST_TARGET}.node`)
const TSC = path.join(ROOT, 'node_modules/typescript/bin/tsc')
const TYPEDOC = path.join(ROOT, 'node_modules/typedoc/bin/typedoc')

function tmp(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `lonely-${prefix}-`))
}



/** Runs a command; on failure the assertion message carries everything it printed. */
function sh(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): SpawnSyncReturns<string> {
  return spawnSync(cmd, args, { encoding: 'utf8', timeout: 120_000, ...opts })
}

function said(r: SpawnSyncReturns<string>): string {
  return `exit ${r.status} signal ${r.signal} error ${r.error?.message ?? '-'}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`
}

// ---------------------------------------------------------------------------------------------
// The loader, unit-style: the host and the require are injected.

const host = (platform: string, arch: string, libc: 'glibc' | 'musl' | null): Host => ({ platform, arch, libc: () => libc })

/** What binding.js throws when nothing loads: a summary, its attempts chained newest-outermost. */
function bindingJsError(...tries: string[]): Error {
  const chain = tries.reduce<Error | undefined>((prev, m) => new Error(m, { cause: prev }), undefined)
  return new Error('Cannot find native binding. npm has a bug related to optional dependencies', { cause: chain })
}

test.serial('loader: on macOS and Windows it throws "needs Linux" without trying to load anything', (t) => {
  for (const [platform, arch] of [['darwin', 'arm64'], ['win32', 'x64'], ['freebsd', 'x64']]) {
    let tried = false
    const e = t.throws(() => loadBinding(host(platform!, arch!, null), () => (tried = true)))
    t.regex(e!.message, /runs Linux containers and needs Linux; this is /)
    t.true(e!.message.includes(`${platform}/${arch}`), e!.message)
    t.is((e as Error & { code: string }).code, 'ERR_LONELY_NOT_LINUX')
    t.false(tried, 'nothing is required on a non-Linux OS')
  }
  t.is(notLinuxError({ platform: 'darwin', arch: 'x64' }).message.split('\n').length, 1, 'one line')
})

test.serial('loader: an unsupported CPU names the supported targets, the detected one, and the fixes', (t) => {
  const e = t.throws(() =>
    loadBinding(host('linux', 'riscv64', 'glibc'), () => {
      throw bindingJsError("Cannot find module './lonely-container.linux-riscv64-gnu.node'", "Cannot find module 'lonely-container-linux-riscv64-gnu'")
    }),
  )!
  t.is((e as Error & { code: string }).code, 'ERR_LONELY_NO_BINDING')
  t.regex(e.message, /linux\/riscv64 with glibc, target linux-riscv64-gnu/)
  t.regex(e.message, /Linux on x64 and arm64, with glibc or musl: linux-x64-gnu, linux-arm64-gnu, linux-x64-musl, linux-arm64-musl/)
  t.regex(e.message, /linux-riscv64-gnu is not one of them/)
  t.regex(e.message, /npm install lonely-container/)
  t.regex(e.message, /cargo/)
  t.regex(e.message, /Tried: Cannot find module '\.\/lonely-container\.linux-riscv64-gnu\.node'; Cannot find module 'lonely-container-linux-riscv64-gnu'$/m)
  t.truthy(e.cause, 'the original error is kept as cause')
})

test.serial('loader: a supported target whose package is missing says which package and how to get it', (t) => {
  for (const [arch, libc, target] of [['x64', 'musl', 'linux-x64-musl'], ['arm64', 'glibc', 'linux-arm64-gnu'], ['arm64', 'musl', 'linux-arm64-musl']] as const) {
    const e = t.throws(() =>
      loadBinding(host('linux', arch, libc), () => {
        throw bindingJsError(`Cannot find module './lonely-container.${target}.node'`, `Cannot find module 'lonely-container-${target}'`)
      }),
    )!
    t.true(SUPPORTED_TARGETS.includes(target))
    t.true(e.message.includes(`linux/${arch} with ${libc}, target ${target}`), e.message)
    t.true(e.message.includes(`The package lonely-container-${target} is not installed`), e.message)
    t.true(e.message.includes(`it installs lonely-container-${target}`), e.message)
    t.true(e.message.includes(`writes lonely-container.${target}.node`), e.message)
    t.notRegex(e.message, /is not one of them/)
  }
})

test.serial('loader: an addon that is there but fails to load is told apart from a missing one', (t) => {
  const e = t.throws(() =>
    loadBinding(host('linux', 'x64', 'glibc'), () => {
      throw bindingJsError("/lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.99' not found (required by lonely-container.linux-x64-gnu.node)", "Cannot find module 'lonely-container-linux-x64-gnu'")
    }),
  )!
  t.regex(e.message, /was found but did not load/)
  t.regex(e.message, /GLIBC_2\.99/)
  t.notRegex(e.message, /is not installed/)
})

test.serial('loader: an unknown libc is said to be unknown (glibc assumed, as binding.js does)', (t) => {
  const e = bindingError(host('linux', 'x64', null), new Error('boom'))
  t.regex(e.message, /linux\/x64 with an unknown libc \(glibc assumed\), target linux-x64-gnu/)
  t.regex(e.message, /Tried: boom/)
})

test.serial('loader: a working require is returned as is', (t) => {
  const binding = { cgroupMode: () => 'unified' }
  t.is(loadBinding(host('linux', 'x64', 'glibc'), () => binding), binding)
})

// The loader for real, in child processes with process.platform/arch (or the ldd check) stubbed
// before the compiled package is required.

function nodeWith(stub: string, script: string, cwd = ROOT): SpawnSyncReturns<string> {
  return sh(process.execPath, ['-e', `${stub}\n${script}`], { cwd })
}

const fresh = (ts: string, js: string) => fs.existsSync(path.join(ROOT, js)) && fs.statSync(path.join(ROOT, js)).mtimeMs >= fs.statSync(path.join(ROOT, ts)).mtimeMs

test.serial('the compiled package is current (the child-process and pack tests use it)', (t) => {
  for (const [ts, js] of [['index.ts', 'index.js'], ['lib/native.ts', 'lib/native.js'], ['cli.ts', 'cli.js']]) {
    t.true(fresh(ts!, js!), `${js} is older than ${ts}: run \`npm run build:ts\``)
  }
})

test.serial('on macOS the package loads and every call throws "needs Linux" (process.platform stubbed)', (t) => {
  const stub = "Object.defineProperty(process, 'platform', { value: 'darwin' }); Object.defineProperty(process, 'arch', { value: 'arm64' })"
  const script = `
    const lonely = require('./index.js')
    const out = { exports: Object.keys(lonely).sort() }
    const attempt = (name, f) => { try { f(); out[name] = 'no error' } catch (e) { out[name] = e.message } }
    attempt('spawn', () => lonely.spawn(['/bin/true']))
    attempt('explain', () => lonely.explain(['/bin/true']))
    attempt('cgroupMode', () => lonely.cgroupMode())
    attempt('liveContainers', () => lonely.liveContainers())
    attempt('images.list', () => lonely.images.list({ store: '/nonexistent-lonely-store' }))
    lonely.run(['/bin/true']).then(() => { out.run = 'resolved' }, (e) => { out.run = e.message })
      .then(() => lonely.images.load('/nonexistent.tar', { store: '/nonexistent-lonely-store' })).then(() => { out['images.load'] = 'resolved' }, (e) => { out['images.load'] = e.message })
      .then(() => console.log(JSON.stringify(out)))`
  const r = nodeWith(stub, script)
  t.is(r.status, 0, said(r))
  const out = JSON.parse(r.stdout) as Record<string, string | string[]>
  t.true((out.exports as string[]).includes('run') && (out.exports as string[]).includes('spawn'), 'require() works')
  for (const call of ['spawn', 'explain', 'cgroupMode', 'liveContainers', 'images.list', 'run', 'images.load']) {
    t.is(out[call], 'lonely-container runs Linux containers and needs Linux; this is darwin/arm64. Run it on a Linux machine or in a Linux VM (x64 or arm64, glibc or musl).', call)
  }
  // The CLI says the same, with docker's exit code for "could not set up".
  const dir = tmp('darwin')
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.writeFileSync(path.join(dir, 'darwin.js'), stub)
  const cli = sh(process.execPath, ['--require', path.join(dir, 'darwin.js'), 'cli.js', 'run', '--', '/bin/true'], { cwd: ROOT })
  t.is(cli.status, 125, said(cli))
  t.regex(cli.stderr, /needs Linux; this is darwin\/arm64/)
})

test.serial('on an unsupported CPU the real loader throws the one error (process.arch stubbed to riscv64)', (t) => {
  const r = nodeWith("Object.defineProperty(process, 'arch', { value: 'riscv64' })", "try { require('./index.js').cgroupMode() } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })) }")
  t.is(r.status, 0, said(r))
  const e = JSON.parse(r.stdout) as { code: string; message: string }
  t.is(e.code, 'ERR_LONELY_NO_BINDING')
  t.regex(e.message, /linux\/riscv64 with glibc, target linux-riscv64-gnu/)
  t.regex(e.message, /linux-riscv64-gnu is not one of them/)
  t.regex(e.message, /Tried: Cannot find module '\.\/lonely-container\.linux-riscv64-gnu\.node'; Cannot find module 'lonely-container-linux-riscv64-gnu'$/m)
})

test.serial('on musl the real loader looks for the musl package and says so (ldd stubbed to musl)', (t) => {
  const stub = `const fs = require('fs'); const read = fs.readFileSync
    fs.readFileSync = (f, ...a) => (f === '/usr/bin/ldd' ? 'musl libc (x86_64)' : read(f, ...a))`
  const r = nodeWith(stub, "try { require('./index.js').cgroupMode() } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })) }")
  t.is(r.status, 0, said(r))
  const e = JSON.parse(r.stdout) as { code: string; message: string }
  const target = `linux-${process.arch}-musl`
  t.true(e.message.includes(`with musl, target ${target}`), e.message)
  t.true(e.message.includes(`The package lonely-container-${target} is not installed`), e.message)
})

test.serial('with neither a local build nor the platform package, the real loader says how to fix it', (t) => {
  const dir = tmp('nobinding')
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  for (const f of ['index.js', 'binding.js', 'package.json']) fs.copyFileSync(path.join(ROOT, f), path.join(dir, f))
  fs.mkdirSync(path.join(dir, 'lib'))
  for (const f of fs.readdirSync(path.join(ROOT, 'lib')).filter((f) => f.endsWith('.js'))) fs.copyFileSync(path.join(ROOT, 'lib', f), path.join(dir, 'lib', f))
  const r = nodeWith('', "const l = require('./index.js'); l.run(['/bin/true']).catch((e) => console.log(JSON.stringify({ code: e.code, message: e.message })))", dir)
  t.is(r.status, 0, said(r))
  const e = JSON.parse(r.stdout) as { code: string; message: string }
  t.is(e.code, 'ERR_LONELY_NO_BINDING')
  t.true(e.message.includes(`The package lonely-container-${HOST_TARGET} is not installed`), e.message)
  t.regex(e.message, /npm install lonely-container/)
  t.regex(e.message, /npm ci && npm run build/)
})

// ---------------------------------------------------------------------------------------------
// A clean install from the packed tarballs, offline, with no Rust toolchain on PATH.

/** PATH without any directory that holds cargo, rustc or rustup; the env without npm's and Rust's variables. */
function envWithoutRust(cache: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(process.env)) {
    if (/^(npm_|CARGO|RUSTUP|RUSTC|RUST_)/i.test(k)) continue
    env[k] = v
  }
  env.PATH = (process.env.PATH ?? '')
    .split(':')
    .filter((d) => d && !['cargo', 'rustc', 'rustup'].some((b) => fs.existsSync(path.join(d, b))))
    .join(':')
  Object.assign(env, { npm_config_cache: cache, npm_config_update_notifier: 'false', npm_config_audit: 'false', npm_config_fund: 'false' })
  return env
}

interface Packed {
  dir: string
  root: string
  platform: string
  rootUnpacked: number
  platformUnpacked: number
  project: string
  env: NodeJS.ProcessEnv
}

let packed: Packed | undefined
let packError: string | undefined
const mountsAtStart = ourMounts()

function npmPack(cwd: string, dest: string): { file: string; unpackedSize: number; files: string[] } {
  const out = execFileSync('npm', ['pack', '--json', '--pack-destination', dest], { cwd, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' } })
  const [info] = JSON.parse(out) as Array<{ filename: string; unpackedSize: number; files: Array<{ path: string }> }>
  return { file: path.join(dest, info!.filename), unpackedSize: info!.unpackedSize, files: info!.files.map((f) => f.path) }
}

const RUNTIME = path.join(ROOT, 'target', 'release', 'lonely-runtime')
const installable = IS_ROOT && fs.existsSync(ADDON) && fs.existsSync(RUNTIME) && fs.existsSync(path.join(ROOT, 'binding.js'))
const itest = installable ? test.serial : test.skip
if (!installable) {
  test.skip(`clean install: needs root (the installed package makes containers) and a built ${path.basename(ADDON)}, lonely-runtime and binding.js (npm run build)`, () => {})
}

test.before(() => {
  if (!installable) return
  try {
    const dir = tmp('pack')
    const rootPack = npmPack(ROOT, dir)
    // The host's platform package, with the built addon, from a copy: npm/ itself stays as committed.
    const platDir = path.join(dir, `pkg-${HOST_TARGET}`)
    fs.cpSync(path.join(ROOT, 'npm', HOST_TARGET), platDir, { recursive: true })
    fs.copyFileSync(ADDON, path.join(platDir, path.basename(ADDON)))
    fs.copyFileSync(RUNTIME, path.join(platDir, 'lonely-runtime'))
    const platPack = npmPack(platDir, dir)
    const project = path.join(dir, 'project')
    fs.mkdirSync(project)
    fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }, null, 2))
    packed = {
      dir,
      root: rootPack.file,
      platform: platPack.file,
      rootUnpacked: rootPack.unpackedSize,
      platformUnpacked: platPack.unpackedSize,
      project,
      env: envWithoutRust(path.join(dir, 'empty-npm-cache')),
    }
    fs.writeFileSync(path.join(dir, 'root-files.json'), JSON.stringify(rootPack.files))
    fs.writeFileSync(path.join(dir, 'platform-files.json'), JSON.stringify(platPack.files))
  } catch (e) {
    packError = (e as Error).stack ?? String(e)
  }
})

test.after.always(() => {
  if (packed) fs.rmSync(packed.dir, { recursive: true, force: true })
})

function need(t: { fail: (m: string) => void }): Packed {
  if (!packed) {
    t.fail(`npm pack failed: ${packError}`)
    throw new Error('npm pack failed')
  }
  return packed
}

itest('packed tarballs: what is in them, no runtime dependencies, no install scripts, os linux; sizes', (t) => {
  const p = need(t)
  const rootFiles = JSON.parse(fs.readFileSync(path.join(p.dir, 'root-files.json'), 'utf8')) as string[]
  const platFiles = JSON.parse(fs.readFileSync(path.join(p.dir, 'platform-files.json'), 'utf8')) as string[]
  for (const f of ['package.json', 'README.md', 'index.js', 'index.d.ts', 'cli.js', 'binding.js', 'binding.d.ts', 'lib/native.js', 'lib/native.d.ts', 'lib/options.d.ts']) {
    t.true(rootFiles.includes(f), `root tarball lacks ${f}: ${rootFiles.join(' ')}`)
  }
  t.false(rootFiles.some((f) => f.endsWith('.node')), 'the root package ships no addon (the platform packages do)')
  t.false(rootFiles.some((f) => (f.endsWith('.ts') && !f.endsWith('.d.ts')) || f.startsWith('__test__/') || f.startsWith('crate/') || f.startsWith('core/') || f.startsWith('bench/')), rootFiles.join(' '))
  t.deepEqual(platFiles.sort(), ['README.md', path.basename(ADDON), 'lonely-runtime', 'package.json'].sort())
  const manifest = JSON.parse(execFileSync('tar', ['-xzOf', p.root, 'package/package.json'], { encoding: 'utf8' })) as typeof PKG & { optionalDependencies?: unknown }
  t.deepEqual(manifest.dependencies ?? {}, {}, 'no runtime dependencies')
  for (const s of ['preinstall', 'install', 'postinstall', 'prepare']) t.is(manifest.scripts?.[s], undefined, `no ${s} script`)
  t.deepEqual(manifest.os, ['linux'])
  const plat = JSON.parse(execFileSync('tar', ['-xzOf', p.platform, 'package/package.json'], { encoding: 'utf8' })) as { os: string[]; cpu: string[]; libc: string[]; main: string; version: string }
  t.deepEqual([plat.os, plat.cpu, plat.libc, plat.main, plat.version], [['linux'], [process.arch], [HOST_LIBC], path.basename(ADDON), PKG.version])
  const sizes = {
    addonBytes: fs.statSync(ADDON).size,
    rootTarballBytes: fs.statSync(p.root).size,
    rootUnpackedBytes: p.rootUnpacked,
    platformTarballBytes: fs.statSync(p.platform).size,
    platformUnpackedBytes: p.platformUnpacked,
  }
  t.log(`sizes: ${JSON.stringify(sizes)}`)
  t.true(sizes.rootTarballBytes < 200_000, 'the root package stays small (JS and types only)')
})

itest('clean install: offline, empty cache, no Rust on PATH; then require (CJS), import (ESM), tsc --strict and the lonely bin', (t) => {
  const p = need(t)
  for (const tool of ['cargo', 'rustc']) {
    const r = sh(tool, ['--version'], { env: p.env })
    t.is((r.error as NodeJS.ErrnoException | undefined)?.code, 'ENOENT', `${tool} must not be on the stripped PATH: ${said(r)}`)
  }
  const install = sh('npm', ['install', '--offline', '--no-audit', '--no-fund', p.root, p.platform], { cwd: p.project, env: p.env })
  t.is(install.status, 0, said(install))
  const nm = path.join(p.project, 'node_modules')
  t.true(fs.existsSync(path.join(nm, 'lonely-container/index.js')))
  t.true(fs.existsSync(path.join(nm, `lonely-container-${HOST_TARGET}`, path.basename(ADDON))))
  t.deepEqual(fs.readdirSync(nm).filter((d) => !d.startsWith('.')).sort(), ['lonely-container', `lonely-container-${HOST_TARGET}`].sort(), 'nothing else was installed')

  // CommonJS.
  const cjs = sh(process.execPath, ['-e', "require('lonely-container').run(['/bin/echo', 'hi']).then((r) => console.log(JSON.stringify(r.stdout)))"], { cwd: p.project, env: p.env })
  t.is(cjs.status, 0, said(cjs))
  t.is(cjs.stdout.trim(), '"hi"')
  const where = sh(process.execPath, ['-e', "console.log(require.resolve('lonely-container'))"], { cwd: p.project, env: p.env })
  t.is(where.stdout.trim(), path.join(nm, 'lonely-container/index.js'), 'the installed copy, not the checkout')

  // ESM: named imports (Node's CJS export detection) and the default import.
  fs.writeFileSync(
    path.join(p.project, 'esm.mjs'),
    [
      "import lonely, { run, spawn, images, ContainerError } from 'lonely-container'",
      "const r = await run(['/bin/echo', 'hi'])",
      "console.log(JSON.stringify({ stdout: r.stdout, same: lonely.run === run, spawn: typeof spawn, images: typeof images.load, error: typeof ContainerError }))",
    ].join('\n'),
  )
  const esm = sh(process.execPath, ['esm.mjs'], { cwd: p.project, env: p.env })
  t.is(esm.status, 0, said(esm))
  t.deepEqual(JSON.parse(esm.stdout), { stdout: 'hi', same: true, spawn: 'function', images: 'function', error: 'function' })

  // Types under tsc --strict, as CommonJS (.ts) and as ESM (.mts), with the repo's TypeScript
  // and @types/node. A deliberate misuse must be an error (@ts-expect-error), so this can fail.
  const body = [
    'const opts: ContainerOptions = { hostname: "box", limits: { memory: "64m", pids: 32 } satisfies Limits, capDrop: ["ALL"], env: { A: "1" } }',
    'export async function main(): Promise<void> {',
    '  const r: ContainerResult = await run(["/bin/echo", "hi"], opts)',
    '  const out: string = r.stdout',
    '  const code: number | undefined = r.exitCode',
    '  const b = await run(["/bin/true"], { encoding: "buffer" })',
    '  const bytes: Buffer = b.stdout',
    '  const c: ContainerProcess = spawn(["/bin/sh"], { stdin: "pipe" })',
    '  const exit = await c',
    '  const failed: boolean = exit.failed',
    '  const plan: string = explain(["/bin/true"])',
    '  const caps: readonly Capability[] = DEFAULT_CAPABILITIES',
    '  const imgs: Image[] = images.list()',
    '  try { await run(["/bin/false"]) } catch (e) { if (e instanceof ContainerError) console.log(e.exitCode, e.stage) }',
    '  // @ts-expect-error unknown options are type errors',
    '  await run(["/bin/true"], { hostnme: "x" })',
    '  // @ts-expect-error the command is an array',
    '  await run("/bin/true")',
    '  console.log(out, code, bytes, failed, plan, caps, imgs)',
    '}',
  ].join('\n')
  const imports = 'import { run, spawn, explain, images, ContainerError, ContainerProcess, DEFAULT_CAPABILITIES, type Capability, type ContainerOptions, type ContainerResult, type Image, type Limits } from "lonely-container"'
  fs.writeFileSync(path.join(p.project, 'use.ts'), `${imports}\n${body}\n`)
  fs.writeFileSync(path.join(p.project, 'use.mts'), `${imports}\n${body}\n`)
  const types = path.join(ROOT, 'node_modules/@types')
  for (const [file, mod] of [['use.ts', 'commonjs'], ['use.ts', 'nodenext'], ['use.mts', 'nodenext']] as const) {
    const resolution = mod === 'commonjs' ? 'node10' : 'nodenext'
    const r = sh(process.execPath, [TSC, '--strict', '--noEmit', '--target', 'ES2022', '--module', mod, '--moduleResolution', resolution, '--typeRoots', types, '--types', 'node', file], { cwd: p.project, env: p.env })
    t.is(r.status, 0, `tsc --strict --module ${mod} ${file}: ${said(r)}`)
  }
  // And a wrong type is caught, so the checks above can fail.
  fs.writeFileSync(path.join(p.project, 'wrong.ts'), `import { run } from "lonely-container"\nexport const n: number = run(["/bin/true"])\n`)
  const wrong = sh(process.execPath, [TSC, '--strict', '--noEmit', '--module', 'commonjs', '--moduleResolution', 'node10', '--typeRoots', types, '--types', 'node', 'wrong.ts'], { cwd: p.project, env: p.env })
  t.not(wrong.status, 0)
  t.regex(wrong.stdout, /TS2322/)

  // The bin.
  const bin = sh(path.join(nm, '.bin/lonely'), ['run', '--', '/bin/true'], { cwd: p.project, env: p.env })
  t.is(bin.status, 0, said(bin))
  const echo = sh(path.join(nm, '.bin/lonely'), ['run', '--hostname', 'box', '--', '/bin/sh', '-c', 'echo $(hostname)'], { cwd: p.project, env: p.env })
  t.is(echo.stdout, 'box\n', said(echo))
  const bad = sh(path.join(nm, '.bin/lonely'), ['run', '--', '/nonexistent'], { cwd: p.project, env: p.env })
  t.is(bad.status, 127, said(bad))

  // lonely-runtime, the OCI runtime binary, from the platform package: an engine execs it.
  const where2 = sh(path.join(nm, '.bin/lonely'), ['runtime-path'], { cwd: p.project, env: p.env })
  t.is(where2.stdout.trim(), path.join(nm, `lonely-container-${HOST_TARGET}`, 'lonely-runtime'), said(where2))
  const version = sh(where2.stdout.trim(), ['--version'], { cwd: p.project, env: p.env })
  t.is(version.status, 0, said(version))
  t.regex(version.stdout, /^lonely-runtime version /m)
  const api = sh(process.execPath, ['-e', "console.log(require('lonely-container').runtimePath())"], { cwd: p.project, env: p.env })
  t.is(api.stdout.trim(), where2.stdout.trim(), said(api))
})

itest('no host mount was left behind by the installed package', (t) => {
  t.is(ourMounts(), mountsAtStart)
})

// ---------------------------------------------------------------------------------------------
// Workflow files (they cannot run here): actionlint, which also runs shellcheck on run: blocks.

function findActionlint(): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(':'), path.join(os.homedir(), 'go/bin'), '/root/go/bin']
  try {
    const [gobin, gopath] = execFileSync('go', ['env', 'GOBIN', 'GOPATH'], { encoding: 'utf8' }).split('\n')
    if (gobin) dirs.push(gobin)
    if (gopath) dirs.push(path.join(gopath, 'bin'))
  } catch {
    // no Go
  }
  return dirs.map((d) => path.join(d, 'actionlint')).find((f) => fs.existsSync(f))
}

const ACTIONLINT = findActionlint()
const WORKFLOWS = fs.readdirSync(path.join(ROOT, '.github/workflows')).filter((f) => /\.ya?ml$/.test(f))
const alTest = ACTIONLINT ? test.serial : test.skip
alTest(`workflow files pass actionlint${ACTIONLINT ? '' : ' (skipped: actionlint not found; .ci/setup installs it with Go: go install github.com/rhysd/actionlint/cmd/actionlint@v1.7.12)'}`, (t) => {
  t.true(WORKFLOWS.length > 0)
  const r = sh(ACTIONLINT!, ['-no-color', ...WORKFLOWS.map((f) => path.join('.github/workflows', f))], { cwd: ROOT })
  t.is(r.status, 0, said(r))
  // A broken workflow is caught: the same linter on a copy with an undefined job dependency and a bad expression.
  const dir = tmp('actionlint')
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.mkdirSync(path.join(dir, '.github/workflows'), { recursive: true })
  fs.writeFileSync(
    path.join(dir, '.github/workflows/bad.yml'),
    'on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    needs: nosuch\n    steps:\n      - run: echo ${{ matrix.nope }}\n',
  )
  const bad = sh(ACTIONLINT!, ['-no-color', '.github/workflows/bad.yml'], { cwd: dir })
  t.not(bad.status, 0)
  t.regex(bad.stdout, /nosuch/)
})

// ---------------------------------------------------------------------------------------------
// API docs: TypeDoc over index.ts's doc comments; a broken {@link} fails.

const tdTest = fs.existsSync(TYPEDOC) ? test.serial : test.skip
const typedocArgs = ['--emit', 'none', '--validation.notExported', 'false', '--validation.invalidLink', '--treatWarningsAsErrors']

tdTest('API docs: TypeDoc resolves every reference in the public doc comments', (t) => {
  const r = sh(process.execPath, [TYPEDOC, ...typedocArgs], { cwd: ROOT })
  t.is(r.status, 0, said(r))
})

tdTest('API docs: a broken {@link} makes the same TypeDoc check fail', (t) => {
  const dir = tmp('typedoc')
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }))
  fs.writeFileSync(path.join(dir, 'x.ts'), '/** Calls {@link nosuchThing}. */\nexport function f(): number {\n  return 1\n}\n')
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions: { strict: true, types: [] }, files: ['x.ts'] }))
  const r = sh(process.execPath, [TYPEDOC, '--tsconfig', 'tsconfig.json', '--entryPoints', 'x.ts', '--name', 'x', '--readme', 'none', '--disableSources', ...typedocArgs], { cwd: dir })
  t.not(r.status, 0)
  t.regex(r.stdout + r.stderr, /Failed to resolve link to "nosuchThing"/)
})
