// The packaging checks (npm pack and install, the loader on other platforms and libcs,
// actionlint, TypeDoc): `npm run test:package`, which CI runs after `npm test`.
export default {
  files: ['__test__/packaging/*.spec.ts'],
  extensions: { ts: 'commonjs' },
  nodeArguments: ['--import=tsx'],
  timeout: '2m',
  workerThreads: false,
}
