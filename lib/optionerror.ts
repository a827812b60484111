// Bad options are TypeError/RangeError with an `option` property naming the option (`stdio`,
// `mounts[0].source`, `limits.memory`...), so that callers (the CLI) never parse messages.

export type OptionError = (TypeError | RangeError) & { option: string }

export function optionError(Kind: typeof TypeError | typeof RangeError, option: string, message: string): OptionError {
  return Object.assign(new Kind(message), { option })
}

/** The option a validation error names, if it is one. */
export function optionOf(e: unknown): string | undefined {
  return (e instanceof TypeError || e instanceof RangeError) && typeof (e as Partial<OptionError>).option === 'string' ? (e as OptionError).option : undefined
}
