// The container's stdin/stdout/stderr: pipes, input, inherit, ignore, raw fds, large
// output, encodings, maxBuffer, stripFinalNewline, spawn() streams and tty. Every test
// checks that nothing leaked; tests are serial because they measure process-wide counts.
import test, { type ExecutionContext } from 'ava'
import * as fs from 'node:fs'
import * as os from 'node:os'
import * as path from 'node:path'
import { execFile } from 'node:child_process'

import { ContainerError, create, run, spawn, type ContainerProcess } from '../index'
import { settled, type Snapshot, expectNoLeak, warmUp, endSuite } from './helpers'

const REPO = path.resolve(__dirname, '..')
let warm: Snapshot
let scratch = ''

test.before(async () => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'lonely-stdio-'))
  warm = await warmUp()
})

test.after.always((t) => endSuite(t, warm, () => scratch && fs.rmSync(scratch, { recursive: true, force: true })))

/** A serial test that makes containers and checks afterwards that none of them leaked anything. */
function ctest(title: string, fn: (t: ExecutionContext) => Promise<void>): void {
  test.serial(title, async (t) => {
    const before = await settled(warm, 10)
    await fn(t)
    await expectNoLeak(t, before)
  })
}

async function readAll(stream: NodeJS.ReadableStream | null): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of stream!) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}

// ---------------------------------------------------------------- pipe

ctest('pipe is the default: stdout and stderr are collected separately', async (t) => {
  const r = await run(['/bin/sh', '-c', 'echo out; echo err >&2'], { stdin: 'ignore' })
  t.is(r.stdout, 'out')
  t.is(r.stderr, 'err')
  t.is(r.exitCode, 0)
})

ctest('spawn() with the default stdio has three streams', async (t) => {
  const c = spawn(['/bin/sh', '-c', 'echo out; echo err >&2'])
  t.truthy(c.stdin)
  const [out, err] = await Promise.all([readAll(c.stdout), readAll(c.stderr)])
  c.stdin!.end()
  const exit = await c
  t.is(out.toString(), 'out\n')
  t.is(err.toString(), 'err\n')
  t.is(exit.exitCode, 0)
})

// Node's child_process destroys a child's stdin when it exits; a container's piped stdin
// that the caller never ended must not stay open forever either.
ctest('run() without input closes its stdin pipe once the container ended (no fd leak)', async (t) => {
  for (let i = 0; i < 5; i++) t.is((await run(['true'])).exitCode, 0)
})

ctest('spawn() closes a stdin the caller never touched once the container ended (no fd leak)', async (t) => {
  for (let i = 0; i < 5; i++) t.is((await spawn(['true'], { stdout: 'ignore', stderr: 'ignore' })).exitCode, 0)
})

// ---------------------------------------------------------------- input

ctest('input as a string reaches stdin, then EOF', async (t) => {
  const r = await run(['cat'], { input: 'hello\nworld' })
  t.is(r.stdout, 'hello\nworld')
  const wc = await run(['wc', '-c'], { input: 'x'.repeat(70000) })
  t.is(wc.stdout.trim(), '70000')
})

ctest('input as a Buffer reaches stdin byte for byte', async (t) => {
  const bytes = Buffer.from([0, 1, 2, 0x7f, 0x80, 0xfe, 0xff, 0x0a])
  const r = await run(['cat'], { input: bytes, encoding: 'buffer' })
  t.true(Buffer.isBuffer(r.stdout))
  t.deepEqual(r.stdout, bytes)
  const u8 = await run(['cat'], { input: new Uint8Array([65, 66, 67]) })
  t.is(u8.stdout, 'ABC')
})

// ---------------------------------------------------------------- inherit

function node(script: string, stdin: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, ['--import', 'tsx', '-e', script], { cwd: REPO, timeout: 60_000 }, (error, stdout, stderr) => {
      if (error && typeof error.code !== 'number') return reject(error)
      resolve({ code: error ? (error.code as unknown as number) : 0, stdout, stderr })
    })
    child.stdin!.end(stdin)
  })
}

ctest('stdio inherit: the container reads the parent\'s stdin and writes to its stdout and stderr', async (t) => {
  const script = `
    const { run } = require('./index.ts')
    run(['/bin/sh', '-c', 'cat; echo to-stdout; echo to-stderr >&2'], { stdio: 'inherit' }).then(
      (r) => process.stdout.write('result=' + JSON.stringify([r.exitCode, r.stdout, r.stderr]) + '\\n'),
      (e) => { console.error('FAILED', e); process.exit(3) })`
  const r = await node(script, 'from-parent-stdin\n')
  t.is(r.code, 0, r.stderr)
  t.is(r.stdout, 'from-parent-stdin\nto-stdout\nresult=[0,"",""]\n')
  t.is(r.stderr, 'to-stderr\n')
})

// ---------------------------------------------------------------- ignore

ctest('stdout ignore: the output is gone, stderr is still collected', async (t) => {
  const r = await run(['/bin/sh', '-c', 'echo gone; echo kept >&2'], { stdin: 'ignore', stdout: 'ignore' })
  t.is(r.stdout, '')
  t.is(r.stderr, 'kept')
  const c = spawn(['true'], { stdio: 'ignore' })
  t.is(c.stdin, null)
  t.is(c.stdout, null)
  t.is(c.stderr, null)
  t.is((await c).exitCode, 0)
})

ctest('stdin ignore: stdin reads EOF at once', async (t) => {
  const r = await run(['/bin/sh', '-c', 'cat; echo "cat=$?"'], { stdin: 'ignore', timeout: 10_000 })
  t.is(r.stdout, 'cat=0')
  t.false(r.timedOut)
})

ctest('stdio ignore for all three: nothing is collected', async (t) => {
  const r = await run(['/bin/sh', '-c', 'cat; echo out; echo err >&2'], { stdio: 'ignore', timeout: 10_000 })
  t.is(r.exitCode, 0)
  t.is(r.stdout, '')
  t.is(r.stderr, '')
})

// ---------------------------------------------------------------- raw fds

ctest('a raw fd as stdout receives what the container wrote; the caller\'s fd stays open', async (t) => {
  const file = path.join(scratch, 'out.txt')
  const fd = fs.openSync(file, 'w')
  try {
    const r = await run(['/bin/sh', '-c', 'echo raw-out; echo raw-err >&2'], { stdin: 'ignore', stdout: fd })
    t.is(r.stdout, '')
    t.is(r.stderr, 'raw-err')
    fs.writeSync(fd, 'after\n')
  } finally {
    fs.closeSync(fd)
  }
  t.is(fs.readFileSync(file, 'utf8'), 'raw-out\nafter\n')
})

ctest('a raw fd as stdin feeds the container', async (t) => {
  const file = path.join(scratch, 'in.txt')
  fs.writeFileSync(file, 'from a file\n')
  const fd = fs.openSync(file, 'r')
  try {
    const r = await run(['cat'], { stdin: fd })
    t.is(r.stdout, 'from a file')
  } finally {
    fs.closeSync(fd)
  }
})

ctest('stdio as an array sets each stream', async (t) => {
  const file = path.join(scratch, 'err.txt')
  const fd = fs.openSync(file, 'w')
  try {
    const r = await run(['/bin/sh', '-c', 'echo o; echo e >&2'], { stdio: ['ignore', 'pipe', fd] })
    t.is(r.stdout, 'o')
    t.is(r.stderr, '')
  } finally {
    fs.closeSync(fd)
  }
  t.is(fs.readFileSync(file, 'utf8'), 'e\n')
})

// ---------------------------------------------------------------- volume

ctest('10 MB on stdout and 10 MB on stderr at once, without deadlock or corruption', async (t) => {
  const size = 10 * 1024 * 1024
  const r = await run(['/bin/sh', '-c', `yes abcdefghi | head -c ${size} & yes ABCDEFGHI | head -c ${size} >&2; wait`], {
    stdin: 'ignore', encoding: 'buffer', timeout: 60_000,
  })
  t.is(r.exitCode, 0)
  t.is(r.stdout.length, size)
  t.is(r.stderr.length, size)
  t.true(r.stdout.equals(Buffer.from('abcdefghi\n'.repeat(size / 10))), 'stdout content')
  t.true(r.stderr.equals(Buffer.from('ABCDEFGHI\n'.repeat(size / 10))), 'stderr content')
})

// ---------------------------------------------------------------- encoding, maxBuffer, stripFinalNewline

ctest('encoding buffer gives Buffers; utf8 (default) gives strings', async (t) => {
  const r = await run(['/bin/sh', '-c', 'head -c 4 /dev/zero; printf "\\377" >&2'], { stdin: 'ignore', encoding: 'buffer' })
  t.true(Buffer.isBuffer(r.stdout))
  t.true(Buffer.isBuffer(r.stderr))
  t.deepEqual(r.stdout, Buffer.alloc(4))
  t.deepEqual(r.stderr, Buffer.from([0xff]))
  const s = await run(['echo', 'héllo'], { stdin: 'ignore' })
  t.is(typeof s.stdout, 'string')
  t.is(s.stdout, 'héllo')
})

ctest('maxBuffer exceeded on stdout rejects naming maxBuffer and kills the container', async (t) => {
  const started = Date.now()
  const e = await t.throwsAsync(run(['/bin/sh', '-c', 'head -c 100000 /dev/zero; sleep 60'], { stdin: 'ignore', maxBuffer: 1000, encoding: 'buffer' }), { instanceOf: ContainerError })
  t.is(e!.message, 'stdout exceeded maxBuffer (1000 bytes): /bin/sh -c head -c 100000 /dev/zero; sleep 60')
  t.is((e!.stdout as unknown as Buffer).length, 1000)
  t.is(e!.signal, 'SIGKILL')
  t.is(e!.exitCode, undefined)
  t.true(e!.failed)
  t.true(Date.now() - started < 30_000, 'the container was killed, not waited for')
})

ctest('maxBuffer exceeded on stderr, with reject false, resolves with the error', async (t) => {
  const r = await run(['/bin/sh', '-c', 'head -c 5000 /dev/zero >&2; sleep 60'], { stdin: 'ignore', maxBuffer: 100, reject: false })
  t.true(r instanceof ContainerError)
  t.is((r as ContainerError).message, 'stderr exceeded maxBuffer (100 bytes): /bin/sh -c head -c 5000 /dev/zero >&2; sleep 60')
  t.is(r.stderr.length, 100)
  t.is(r.signal, 'SIGKILL')
})

ctest('output exactly at maxBuffer is not an error', async (t) => {
  const r = await run(['head', '-c', '1000', '/dev/zero'], { stdin: 'ignore', maxBuffer: 1000, encoding: 'buffer' })
  t.is(r.stdout.length, 1000)
  t.is(r.exitCode, 0)
})

ctest('stripFinalNewline: one final newline is stripped by default, none with false', async (t) => {
  const cmd = ['/bin/sh', '-c', 'printf "a\\n\\n"; printf "b\\r\\n" >&2']
  const d = await run(cmd, { stdin: 'ignore' })
  t.is(d.stdout, 'a\n')
  t.is(d.stderr, 'b')
  const k = await run(cmd, { stdin: 'ignore', stripFinalNewline: false })
  t.is(k.stdout, 'a\n\n')
  t.is(k.stderr, 'b\r\n')
})

// ---------------------------------------------------------------- spawn streams

ctest('spawn(): write to stdin, read stdout with for await, then await the container', async (t) => {
  const c = spawn(['cat'], { stderr: 'ignore' })
  t.true(c.pid > 0)
  c.stdin!.write('one\n')
  c.stdin!.end('two\n')
  const out = await readAll(c.stdout)
  const exit = await c
  t.is(out.toString(), 'one\ntwo\n')
  t.is(exit.exitCode, 0)
  t.is(c.exitCode, 0)
})

ctest('spawn(): a real conversation over stdin/stdout', async (t) => {
  const c = spawn(['/bin/sh', '-c', 'read a; echo got-$a; read b; echo got-$b'], { stderr: 'ignore' })
  const it = c.stdout![Symbol.asyncIterator]()
  let buffered = ''
  const nextLine = async (): Promise<string | null> => {
    while (!buffered.includes('\n')) {
      const { value, done } = await it.next()
      if (done) return null
      buffered += value.toString()
    }
    const line = buffered.slice(0, buffered.indexOf('\n'))
    buffered = buffered.slice(line.length + 1)
    return line
  }
  // The second line is written only after the reply to the first one came back.
  c.stdin!.write('first\n')
  t.is(await nextLine(), 'got-first')
  c.stdin!.end('second\n')
  t.is(await nextLine(), 'got-second')
  t.is(await nextLine(), null)
  t.is((await c).exitCode, 0)
})

// ---------------------------------------------------------------- tty

/** Reads a tty's output, counting the pty master's EIO (the container's side closed) as its end. */
function readTty(c: ContainerProcess): Promise<string> {
  const chunks: Buffer[] = []
  return new Promise((resolve, reject) => {
    c.stdout!.on('data', (chunk: Buffer) => chunks.push(chunk))
    c.stdout!.on('error', (e: NodeJS.ErrnoException) => (e.code === 'EIO' ? resolve(Buffer.concat(chunks).toString()) : reject(e)))
    c.stdout!.on('close', () => resolve(Buffer.concat(chunks).toString()))
  })
}

async function ttyOutput(c: ContainerProcess): Promise<string> {
  const out = await readTty(c)
  await c
  c.stdin?.destroy() // see the leak tests above: nothing closes it otherwise
  return out
}

ctest('tty: true, resize() sets the terminal size the container sees (and it gets SIGWINCH); false without a terminal', async (t) => {
  const c = spawn(['/bin/sh', '-c', 'trap "echo winch" WINCH; stty size; echo ready; read x; stty size'], { tty: true })
  let out = ''
  c.stdout!.on('data', (d) => (out += d))
  for (let i = 0; i < 200 && !out.includes('ready'); i++) await new Promise((r) => setTimeout(r, 10))
  t.true(c.resize(100, 40))
  for (let i = 0; i < 200 && !out.includes('winch'); i++) await new Promise((r) => setTimeout(r, 10))
  c.stdin!.write('\n')
  await c
  t.regex(out, /winch[\s\S]*40 100/, out)
  t.throws(() => c.resize(-1, 40), { instanceOf: RangeError, message: /`columns` must be an integer from 0 to 65535/ })
  t.false(c.resize(80, 24), 'ended: false')
  const plain = spawn(['true'], { stdin: 'ignore' })
  t.false(plain.resize(80, 24), 'no terminal: false')
  await plain
})

// docker run -t sends its client's terminal size with the create, so the command's first
// TIOCGWINSZ sees it; lonely's `tty: { columns, rows }` is that size, and `tty: true` (no
// client size to take) is 80x24. Before, a terminal started as 0x0 until resize().
ctest('tty: { columns, rows } is the size the command\'s first TIOCGWINSZ sees (stty size), as docker run -t\'s client size; tty: true is 80x24; for exec() too, its own size and not PID 1\'s', async (t) => {
  const size = async (tty: unknown) => (await run(['stty', 'size'], { tty: tty as never, input: '' })).stdout
  t.is(await size(true), '24 80')
  t.is(await size({ columns: 132, rows: 43 }), '43 132')
  t.is(await size({ columns: 100 }), '24 100')
  t.is(await size({ rows: 50 }), '50 80')
  // spawn(): the size is there before the first byte, no resize() needed.
  const c = spawn(['stty', 'size'], { tty: { columns: 200, rows: 60 } })
  t.is(await ttyOutput(c), '60 200\r\n')
  const box = await create(undefined, { tty: { columns: 50, rows: 10 } })
  t.teardown(() => box.stop().catch(() => {}))
  t.is((await box.run(['stty', 'size', '-F', '/dev/pts/0'])).stdout, '10 50', 'PID 1\'s terminal (the first of its own devpts)')
  t.is((await box.run(['stty', 'size'], { tty: true, input: '' })).stdout, '24 80', 'an exec\'s own terminal')
  t.is((await box.run(['stty', 'size'], { tty: { columns: 90, rows: 30 }, input: '' })).stdout, '30 90')
  t.throws(() => box.exec(['true'], { tty: { columns: 0, rows: 30 } }), { instanceOf: RangeError, message: 'Option `tty.columns` must be an integer from 1 to 65535; got 0.' })
  await box.stop()
  for (const [bad, kind, message] of [
    [{ columns: 80.5 }, RangeError, 'Option `tty.columns` must be an integer from 1 to 65535; got 80.5.'],
    [{ rows: 70000 }, RangeError, 'Option `tty.rows` must be an integer from 1 to 65535; got 70000.'],
    [{ cols: 80 }, RangeError, 'Option `tty` has an unknown key `cols` (known: columns, rows); got { cols: 80 }.'],
    ['yes', TypeError, 'Option `tty` must be a boolean or { columns, rows }; got \'yes\'.'],
  ] as const) {
    t.throws(() => spawn(['true'], { tty: bad as never }), { instanceOf: kind, message })
  }
})

ctest('tty: true gives a terminal on stdin/stdout/stderr, stderr merged into stdout', async (t) => {
  const c = spawn(['/bin/sh', '-c', '[ -t 0 ] && echo in-tty; [ -t 1 ] && echo out-tty; [ -t 2 ] && echo err-tty; echo to-stderr >&2; echo TERM=$TERM'], { tty: true })
  t.is(c.stderr, null)
  t.is(typeof c.ttyFd, 'number')
  t.is(await ttyOutput(c), 'in-tty\r\nout-tty\r\nerr-tty\r\nto-stderr\r\nTERM=xterm\r\n')
  t.is(c.exitCode, 0)
})

ctest('tty: true, the terminal has a name inside the container (`tty` prints /dev/pts/N)', async (t) => {
  const c = spawn(['/bin/sh', '-c', 'tty; echo "tty=$?"; ls /dev/pts'], { tty: true })
  const [name, status, ...pts] = (await ttyOutput(c)).split('\r\n').filter(Boolean)
  t.regex(name, /^\/dev\/pts\/\d+$/)
  t.is(status, 'tty=0')
  t.true(pts.join(' ').split(/\s+/).includes(name.replace('/dev/pts/', '')), `ls /dev/pts: ${pts.join(' ')}`)
})

ctest('tty: true, stdout ends cleanly for a `for await` reader when the container exits (EIO is EOF)', async (t) => {
  const errors: string[] = []
  for (let i = 0; i < 10; i++) {
    const c = spawn(['/bin/sh', '-c', 'sleep 0.05; echo hi'], { tty: true })
    let out = ''
    try {
      for await (const chunk of c.stdout!) out += chunk.toString()
    } catch (e) {
      errors.push((e as NodeJS.ErrnoException).code ?? String(e))
    }
    await c
    c.stdin!.destroy()
    if (!errors.length) t.is(out, 'hi\r\n')
  }
  t.deepEqual(errors, [], 'the stream errored instead of ending')
})

ctest('tty: true, ending stdin is the terminal\'s EOF: a line-mode reader (cat) sees it and exits', async (t) => {
  const r = await run(['cat'], { tty: true, input: 'hello\n', timeout: 60_000 })
  t.false(r.timedOut, 'cat never saw EOF')
  t.is(r.exitCode, 0)
  t.true(r.stdout.split('\r\n').includes('hello'), r.stdout)
})

/**
 * A container that, once told (a file appears in its /tmp), puts its terminal in raw mode and
 * reads bytes until a ^D, printing each: a line editor starting after its input was typed.
 */
async function rawReaderAfterEof(type: (c: ContainerProcess) => void, timeout: number): Promise<{ out: string; exit: Awaited<ContainerProcess> }> {
  const script = 'while [ ! -e /tmp/go ]; do sleep 0.01; done; stty raw -echo; while :; do c=$(head -c 1 | od -An -tx1 | tr -d " "); printf "[%s]" "$c"; [ "$c" = 04 ] && exit 0; done'
  const c = spawn(['/bin/sh', '-c', script], { tty: true, timeout })
  const out = readTty(c)
  type(c)
  // The EOF goes in while the terminal is still in line mode (n_tty stores it as a marker).
  await new Promise((r) => setTimeout(r, 100))
  fs.writeFileSync(`/proc/${c.pid}/root/tmp/go`, '')
  const exit = await c
  c.stdin?.destroy()
  return { out: await out, exit }
}

ctest('tty: true, the EOF survives the terminal\'s switch to raw mode (which turns a pending EOF into NUL); control: a ^D written once is lost', async (t) => {
  const fixed = await rawReaderAfterEof((c) => c.stdin!.end(), 60_000)
  t.false(fixed.exit.timedOut, fixed.out)
  t.is(fixed.exit.exitCode, 0)
  t.regex(fixed.out, /\[04\]$/)
  const control = await rawReaderAfterEof((c) => c.stdin!.write('\x04'), 3000)
  t.true(control.exit.timedOut, `the reader saw a ^D: ${control.out}`)
  t.regex(control.out, /^\[00\]/, 'the line-mode EOF became a NUL byte')
})

ctest('run() with tty: true collects the merged output and closes the terminal', async (t) => {
  const r = await run(['/bin/sh', '-c', 'echo one; echo two >&2'], { tty: true, input: '' })
  t.is(r.stdout, 'one\r\ntwo')
  t.is(r.stderr, '')
  t.is(r.exitCode, 0)
})

test.serial('output nobody reads does not keep its pipes open after the container ends (as child_process)', async (t) => {
  const count = () => fs.readdirSync('/proc/self/fd').filter((fd) => { try { return fs.readlinkSync(`/proc/self/fd/${fd}`).startsWith('pipe:') } catch { return false } }).length
  const before = count()
  for (let i = 0; i < 20; i++) await spawn(['sh', '-c', 'echo out; echo err >&2'], { stdin: 'ignore' })
  await new Promise((r) => setTimeout(r, 300))
  t.is(count(), before, 'two pipes per container would be left without the drain on exit')
})
