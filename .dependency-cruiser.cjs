// The layering, checked rather than hoped for (ARCHITECTURE.md, style rule 10). Run by `npm test`
// (npm run lint:deps); tests/ops/dependency-rules.test.ts shows each rule failing on a violation.
/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'machines-are-pure',
      comment: 'machines/ declare their I/O as actor slots; they import xstate and each other, nothing else',
      severity: 'error',
      from: { path: '^machines/' },
      to: { pathNot: ['^machines/', '(^|/)node_modules/xstate/'] },
    },
    {
      name: 'store-below-supervisor',
      comment: 'src/store is the bottom layer: types it shares with the supervisor live in the store or the adapter',
      severity: 'error',
      from: { path: '^src/store/' },
      to: { path: '^src/(supervisor|connections|delivery|api)/' },
    },
    {
      name: 'platform-client-in-its-adapter',
      comment: "a platform's client library is used only in src/platforms/<name>/ (GramJS: telegram)",
      severity: 'error',
      from: { path: '^(src|machines)/', pathNot: '^src/platforms/telegram/' },
      to: { path: '(^|/)node_modules/telegram/' },
    },
    {
      name: 'core-through-the-interface',
      comment: 'the core reaches a platform through src/platforms/adapter.ts and registry.ts; only src/platforms/index.ts registers one',
      severity: 'error',
      from: { path: '^src/', pathNot: ['^src/platforms/'] },
      to: { path: '^src/platforms/[^/]+/' },
    },
    {
      name: 'client-stands-alone',
      comment: 'the client package is published on its own: its src/ imports only itself and its dependencies (the daemon is reached over HTTP)',
      severity: 'error',
      from: { path: '^clients/typescript/src/' },
      to: { path: '^(src|machines|tests)/' },
    },
    {
      name: 'daemon-without-client',
      comment: 'the daemon never depends on its client package',
      severity: 'error',
      from: { path: '^(src|machines)/' },
      to: { path: '^clients/' },
    },
    {
      name: 'no-cycles',
      comment: 'import cycles make load order and layering accidental',
      severity: 'error',
      from: { path: '^(src|machines|clients/typescript/src)/' },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // Types only: a type import is a compile-time edge, still layering, so it counts.
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    exclude: { path: '^(node_modules|dist|src/console/dist|data)/' },
    moduleSystems: ['es6'],
  },
};
