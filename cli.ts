#!/usr/bin/env node
// The `lonely` command: docker's names over the library (./index). One module per
// subcommand in lib/cli/; this file dispatches and turns failures into docker's exit codes.
import { ContainerError } from './index'
import { EXIT_CANNOT_EXECUTE, EXIT_NOT_FOUND, EXIT_RUNTIME, MAIN_HELP, UsageError, runHelp, version } from './lib/cli/flags'
import { imageCommand } from './lib/cli/images'
import { containerCommand } from './lib/cli/containers'
import { run } from './lib/cli/run'
import { cp } from './lib/cli/cp'
import { volumeCommand } from './lib/cli/volumes'
import { runtimePath } from './lib/runtimepath'

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv
  switch (cmd) {
    case undefined:
    case '-h':
    case '--help':
      process.stdout.write(MAIN_HELP)
      return 0
    case 'help':
      process.stdout.write(rest[0] === 'run' ? runHelp() : MAIN_HELP)
      return 0
    case '-v':
    case '--version':
    case 'version':
      process.stdout.write(`lonely ${version()}\n`)
      return 0
    case 'runtime-path':
      // For an engine's config: BinaryName = "$(lonely runtime-path)", podman --runtime "$(lonely runtime-path)".
      process.stdout.write(`${runtimePath()}\n`)
      return 0
    case 'run':
      return run(rest)
    case 'create':
      return run(rest, true)
    case 'cp':
      return cp(rest)
    case 'volume':
      return volumeCommand(rest)
    case 'load':
    case 'images':
    case 'rmi':
      return imageCommand(cmd, rest)
    case 'ps':
    case 'exec':
    case 'start':
    case 'attach':
    case 'logs':
    case 'stop':
    case 'kill':
    case 'rm':
    case 'wait':
    case 'top':
    case 'inspect':
      return containerCommand(cmd, rest)
    default:
      if (cmd.startsWith('-')) throw new UsageError(`unknown flag: ${cmd}\nSee 'lonely --help'.`)
      throw new UsageError(`'${cmd}' is not a lonely command.\nSee 'lonely --help'.`)
  }
}

/** docker's statuses: 127 not found, 126 found but not executable, 125 everything else of ours. */
function failureStatus(e: unknown): number {
  if (e instanceof ContainerError && e.stage === 'exec') return e.code === 'ENOENT' ? EXIT_NOT_FOUND : EXIT_CANNOT_EXECUTE
  return EXIT_RUNTIME
}

/** The status a process killed by SIGPIPE has in a shell (128 + 13): what `cat`, `git`, `yes` end with. */
const EXIT_SIGPIPE = 141

/**
 * A reader that went away (`lonely images | head -1`) ends lonely at once and quietly, as a CLI
 * tool ends on SIGPIPE (Node ignores the signal, so the write fails with EPIPE instead).
 */
function quietOnClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e
    process.exit(EXIT_SIGPIPE)
  })
}

if (require.main === module) {
  quietOnClosedPipe(process.stdout)
  quietOnClosedPipe(process.stderr)
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code
      // A paused stdin (after -i) must not keep lonely alive.
      process.stdout.write('', () => process.exit(code))
    },
    (e: unknown) => {
      const message = e instanceof Error ? e.message : String(e)
      process.stderr.write(`lonely: ${message}\n`)
      process.exit(failureStatus(e))
    },
  )
}
