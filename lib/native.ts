// Loads the Rust addon. On any OS but Linux the package still loads; using it says why not.
import type * as Binding from '../binding'

let loaded: typeof Binding | undefined

export function native(): typeof Binding {
  if (loaded) return loaded
  if (process.platform !== 'linux') {
    throw new Error(`lonely-container runs Linux containers and needs Linux; this is ${process.platform}/${process.arch}.`)
  }
  loaded = require('../binding.js') as typeof Binding
  return loaded
}
