// Where lonely-runtime (the OCI runtime binary an engine execs: containerd's BinaryName, podman's
// --runtime) is on this machine: a checkout's build, else the platform package npm installed.
import * as fs from 'node:fs'
import * as path from 'node:path'

import { detectLibc, notLinuxError } from './native'

/** The absolute path of this machine's lonely-runtime, or an error that names the package to install. */
export function runtimePath(): string {
  if (process.platform !== 'linux') throw notLinuxError(process)
  const target = `linux-${process.arch}-${detectLibc() === 'musl' ? 'musl' : 'gnu'}`
  // As binding.js prefers a checkout's addon: a checkout's `npm run build:runtime` first.
  const candidates = [path.join(__dirname, '..', 'target', 'release', 'lonely-runtime')]
  try {
    candidates.push(path.join(path.dirname(require.resolve(`lonely-container-${target}/package.json`)), 'lonely-runtime'))
  } catch {
    // the platform package is not installed: said below
  }
  for (const candidate of candidates) {
    try {
      fs.accessSync(candidate, fs.constants.X_OK)
      return candidate
    } catch {
      // next
    }
  }
  const error = new Error(
    `lonely-runtime is not installed for ${target} (tried ${candidates.join(', ')}): it ships in the package` +
      ` lonely-container-${target} (\`npm install lonely-container\` on this machine installs it), or a checkout builds it with \`npm run build:runtime\`.`,
  ) as Error & { code: string }
  error.code = 'ERR_LONELY_NO_RUNTIME'
  throw error
}
