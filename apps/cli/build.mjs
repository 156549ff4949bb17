// Bundles the CLI into one CommonJS file (dist/trail.cjs) so `trail` starts fast: one script to
// compile instead of hundreds of modules; only better-sqlite3's native addon is loaded from
// node_modules. Then runs real commands with TRAIL_WRITE_CODE_CACHE=1 so bin/trail.cjs can load
// the bundle with V8's code cache (dist/trail.cjs.cache).
import { build } from "esbuild"
import { execFileSync } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs"
import { tmpdir } from "node:os"
import { dirname, join, relative } from "node:path"
import { fileURLToPath } from "node:url"

const here = (p) => fileURLToPath(new URL(p, import.meta.url))
const { version } = JSON.parse(readFileSync(here("./package.json"), "utf8"))

/**
 * Dependencies whose module initialisation is costly and which most commands never call: each
 * import of one is answered by a stand-in that loads the real module on first call. The bundle
 * initialises every module it imports when it starts, so without this `trail --version` would pay
 * for building string-width's Unicode tables (an RGI_Emoji regular expression and an
 * Intl.Segmenter: ~40 ms), for loading SQLite's native addon and for the YAML parser. Each is
 * only ever called (`stringWidth(text)`, `parse(text)`) or constructed (`new Sqlite(file)`),
 * which is all a stand-in forwards.
 */
const LAZY = {
  "string-width": (real) =>
    `let impl; export default function stringWidth(...args) { return (impl ??= require(${real}).default)(...args) }`,
  // The package's JavaScript is bundled (and so in the code cache); only its native addon is loaded
  // from disk, by the path it had when the bundle was built (nativeBinding, see below), which spares
  // every start the `bindings` package's search through a dozen candidate paths (~10 ms).
  "better-sqlite3": (real, file) =>
    `let impl, addon; export default function Database(file, options) { impl ??= require(${real}); addon ??= loadSqliteAddon(); return new impl(file, { ...options, nativeBinding: addon }) }` +
    sqliteAddonLoader(file),
  // Kind files' frontmatter (libs/workers/src/Kinds.ts): only `parse` is used.
  yaml: (real) => `let impl; export function parse(...args) { return (impl ??= require(${real})).parse(...args) }`
}
/**
 * Node built-in modules that only some commands use (processes, hashing, worker threads, the
 * terminal, gzip): the bundle requires every module's imports when it starts, and loading these
 * costs each `trail` start ~10 ms. Each is answered by an object whose exports, named when the
 * bundle is built, load the real module on first access.
 */
const LAZY_BUILTINS = ["child_process", "crypto", "readline", "worker_threads", "zlib"]
const lazyBuiltins = {
  name: "lazy-builtins",
  setup(build) {
    const filter = new RegExp(`^(node:)?(${LAZY_BUILTINS.join("|")})$`)
    build.onResolve({ filter }, (args) =>
      args.namespace === "lazy-builtin"
        ? { path: args.path, external: true }
        : { path: args.path.replace(/^node:/, ""), namespace: "lazy-builtin" }
    )
    build.onLoad({ filter: /.*/, namespace: "lazy-builtin" }, async (args) => {
      const names = Object.keys(await import(`node:${args.path}`)).filter((name) => name !== "default")
      const real = JSON.stringify(`node:${args.path}`)
      const getters = names.map(
        (name) => `${JSON.stringify(name)}: { get: () => load()[${JSON.stringify(name)}], enumerable: true }`
      )
      return {
        contents: `let real; const load = () => (real ??= require(${real})); module.exports = Object.defineProperties({}, { ${getters.join(", ")} })`,
        loader: "js"
      }
    })
  }
}

/**
 * The workspace libraries (and @effect/sql, and fast-check, which effect's Schema imports for its
 * arbitraries): every import of one is answered by a stand-in whose exports require the real module
 * on first access. esbuild initialises a module that is only ever `require()`d when that `require`
 * runs, so a command initialises the scheduler, the store, the workers, the checkpoints and the
 * supervisor only when its handler first touches them: `trail --version` and `--help` none, `trail
 * next` the scheduler and the store. So nothing may touch them while the command tree is built:
 * the tree imports the few light modules it needs by path (@trail/workers/Processes, /Permission),
 * and module-level values that name a library are functions or `Effect.suspend`ed. The stand-in
 * requires the very file the import resolved to, so every importer shares one instance.
 * @trail/domain stays eager: behind a stand-in the inbox's fold of 1,000,000 events peaked ~30 MB
 * higher (513 against 484 MB, docs/benchmarks.md), for ~10 ms less start-up.
 */
const LAZY_LIBRARIES = [
  "@trail/checkpoints",
  "@trail/scheduler",
  "@trail/store",
  "@trail/supervisor",
  "@trail/workers",
  "@effect/sql/SqlClient",
  "@effect/sql/SqlSchema",
  "fast-check"
]
/** The names a module exports (its `export *` followed), from an esbuild metafile. */
const exportNames = async (file) => {
  const result = await build({
    entryPoints: [file],
    bundle: true,
    write: false,
    metafile: true,
    format: "esm",
    platform: "node",
    packages: "external",
    logLevel: "silent"
  })
  return Object.values(result.metafile.outputs).flatMap((output) => output.exports)
}
const lazyLibraries = {
  name: "lazy-libraries",
  setup(build) {
    const filter = new RegExp(`^(${LAZY_LIBRARIES.map((name) => name.replace(/[/.]/g, "\\$&")).join("|")})$`)
    build.onResolve({ filter }, async (args) => {
      if (args.pluginData?.resolving === true) return undefined
      const real = await build.resolve(args.path, {
        resolveDir: args.resolveDir,
        kind: args.kind,
        pluginData: { resolving: true }
      })
      if (real.errors.length > 0) return { errors: real.errors }
      return { path: real.path, namespace: "lazy-library" }
    })
    build.onLoad({ filter: /.*/, namespace: "lazy-library" }, async (args) => {
      // A library's index of `export * (as Name) from "./File.js"` lines is answered module by
      // module: `Inbox` loads Inbox.ts (and what it imports), not the whole library. Anything
      // else is one module.
      const lines = readFileSync(args.path, "utf8")
        .replace(/\/\*[\s\S]*?\*\//g, "")
        .split("\n")
        .map((line) => line.replace(/\/\/.*$/, "").trim())
        .filter((line) => line !== "")
      const reExports = lines.map((line) => /^export \* (?:as (\w+) )?from "(\.\/[\w.]+)"$/.exec(line))
      const parts = reExports.every((match) => match !== null)
        ? await Promise.all(
            reExports.map(async ([, name, relative]) => {
              const file = await build.resolve(relative, { resolveDir: dirname(args.path), kind: "import-statement" })
              if (file.errors.length > 0) throw new Error(`${args.path}: ${relative}: ${file.errors[0].text}`)
              return { file: file.path, names: name === undefined ? await exportNames(file.path) : null, name }
            })
          )
        : [{ file: args.path, names: await exportNames(args.path), name: undefined }]
      const properties = parts.flatMap(({ names, name }, index) => {
        const load = `load(${index})`
        return names === null
          ? [`${JSON.stringify(name)}: { get: () => ${load}, enumerable: true }`]
          : names.map((n) => `${JSON.stringify(n)}: { get: () => ${load}[${JSON.stringify(n)}], enumerable: true }`)
      })
      return {
        contents: `const modules = [${parts.map(({ file }) => `() => require(${JSON.stringify(file)})`).join(", ")}]; const loaded = []; const load = (index) => (loaded[index] ??= modules[index]()); module.exports = Object.defineProperties({}, { ${properties.join(", ")} })`,
        resolveDir: dirname(args.path),
        loader: "js"
      }
    })
  }
}

/**
 * `import { Effect, Layer } from "effect"` in the workspace's own sources becomes
 * `import * as Effect from "effect/Effect"` and so on. The barrel ("effect") re-exports each of its
 * ~175 modules; once a module the bundle initialises lazily (lazyLibraries) depends on it, esbuild
 * initialises it as a whole, and with it every module of effect (and fast-check), whatever the
 * command uses. Imported module by module, only what is used is initialised. Type-only names stay
 * on the barrel (they are erased); the line count is kept so the source map stays true.
 */
const effectModules = {
  name: "effect-modules",
  setup(build) {
    build.onLoad({ filter: /\/(libs|apps)\/[^/]+\/src\/.*\.ts$/ }, (args) => {
      const source = readFileSync(args.path, "utf8")
      const contents = source.replace(/^import \{([^}]*)\} from "effect"$/gm, (statement, names) => {
        const specifiers = names
          .split(",")
          .map((name) => name.trim())
          .filter((name) => name !== "")
        const types = specifiers.filter((name) => name.startsWith("type "))
        const values = specifiers.filter((name) => !name.startsWith("type "))
        if (values.some((name) => !/^[A-Z]\w*$/.test(name)))
          throw new Error(`${args.path}: ${statement}: only modules of effect are imported from its barrel`)
        const lines = [
          ...values.map((name) => `import * as ${name} from "effect/${name}"`),
          ...(types.length === 0
            ? []
            : [`import type { ${types.map((name) => name.slice("type ".length)).join(", ")} } from "effect"`])
        ]
        return lines.join("; ") + "\n".repeat(statement.split("\n").length - 1)
      })
      return { contents, loader: "ts" }
    })
  }
}

/**
 * SQLite's native addon, of the very package whose JavaScript the stand-in bundles (its `index`
 * at `file`): by its path relative to the bundle (dist/) when the bundle was built, or, when the
 * install was moved or copied (node_modules beside it), found as Node finds packages — and then
 * only of the version the JavaScript was bundled from (an addon of another version would fail in
 * ways that do not name the cause).
 */
const sqliteAddonLoader = (file) => {
  const packageDir = dirname(dirname(file))
  const { version: built } = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8"))
  const addon = "build/Release/better_sqlite3.node"
  return `
function loadSqliteAddon() {
  const path = require("node:path")
  try {
    return require(path.join(__dirname, ${JSON.stringify(relative(here("./dist"), join(packageDir, addon)))}))
  } catch (error) {
    if (error?.code !== "MODULE_NOT_FOUND") throw error
  }
  const manifest = require.resolve("better-sqlite3/package.json", { paths: [__dirname] })
  const found = JSON.parse(require("node:fs").readFileSync(manifest, "utf8")).version
  if (found !== ${JSON.stringify(built)})
    throw new Error(\`trail was built with better-sqlite3 ${built} and finds \${found} (\${manifest}): run npm run build\`)
  return require(path.join(path.dirname(manifest), ${JSON.stringify(addon)}))
}`
}

const lazyDefaults = {
  name: "lazy-defaults",
  setup(build) {
    const filter = new RegExp(`^(${Object.keys(LAZY).join("|")})$`)
    build.onResolve({ filter }, async (args) => {
      if (args.namespace === "lazy" || args.pluginData?.resolving === true) return undefined
      // One stand-in per real file (two importers may resolve the name to different versions).
      const real = await build.resolve(args.path, {
        resolveDir: args.resolveDir,
        kind: args.kind,
        pluginData: { resolving: true }
      })
      if (real.errors.length > 0) return { errors: real.errors }
      return {
        path: real.external ? args.path : real.path,
        namespace: "lazy",
        pluginData: { name: args.path, resolveDir: args.resolveDir }
      }
    })
    build.onLoad({ filter: /.*/, namespace: "lazy" }, (args) => ({
      contents: LAZY[args.pluginData.name](JSON.stringify(args.path), args.path),
      resolveDir: args.pluginData.resolveDir,
      loader: "js"
    }))
  }
}

const common = {
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  minify: true,
  legalComments: "none",
  logLevel: "warning"
}

await build({
  ...common,
  entryPoints: [here("./src/main.ts")],
  outfile: here("./dist/trail.cjs"),
  sourcemap: "linked",
  plugins: [lazyDefaults, lazyBuiltins, lazyLibraries, effectModules],
  define: { __TRAIL_VERSION__: JSON.stringify(version) }
})

// \`trail hook claude\` on its own (src/hook.ts): it runs on every prompt of every session.
await build({
  ...common,
  entryPoints: [here("./src/hookMain.ts")],
  outfile: here("./dist/hook.cjs"),
  plugins: [lazyDefaults],
  // The checkpoint follow-ups (src/hookCheckpoint.ts) are their own bundle, loaded only when needed.
  external: ["./hookCheckpoint.js"]
})

// What a SessionStart with an armed checkpoint and a PreCompact run (the Effect runtime and the store).
await build({
  ...common,
  entryPoints: [here("./src/hookCheckpoint.ts")],
  outfile: here("./dist/hook-checkpoint.cjs"),
  plugins: [lazyDefaults]
})

// The walk worker (libs/scheduler/src/walkWorker.ts): small, so a worker thread starts fast.
await build({
  ...common,
  entryPoints: [here("../../libs/scheduler/src/walkWorker.ts")],
  outfile: here("./dist/walk-worker.cjs")
})

// The interactive inbox (src/tui): Ink needs ES modules with top-level await, so it is its own
// bundle, imported by the CLI only for `trail inbox --tui`.
await build({
  ...common,
  format: "esm",
  entryPoints: [here("./src/tui/InboxTui.ts")],
  outfile: here("./dist/tui.mjs"),
  alias: { "react-devtools-core": here("./src/tui/devtoolsStub.ts") },
  banner: {
    js: 'import { createRequire as __trailRequire } from "node:module"; const require = __trailRequire(import.meta.url);'
  },
  define: { "process.env.NODE_ENV": '"production"' }
})

// Warm the code cache on the hottest paths, in a freshly initialised root.
const root = mkdtempSync(join(tmpdir(), "trail-warm-"))
try {
  mkdirSync(join(root, "src"))
  writeFileSync(join(root, "src", "a.ts"), "export {}\n")
  const trail = (args, env = {}, stderr = "inherit") =>
    execFileSync(process.execPath, [here("./bin/trail.cjs"), "--root", root, ...args], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "ignore", stderr]
    })
  trail(["init"])
  // Each run adds the functions it compiled to the cache the previous one wrote: the hot paths of
  // agents (next, done) and of workers (the protocol; w1 does not exist, which is still the path).
  const warm = { TRAIL_WRITE_CODE_CACHE: "1" }
  trail(["next", "--task", "warm-up", "--agent", "build"], warm)
  trail(["done", "--task", "warm-up", "--path", "src", "--agent", "build"], warm)
  // A person's (the inbox, a listing): the libraries a command needs are loaded when it runs
  // (lazyLibraries), so only the commands run here have theirs in the cache.
  trail(["inbox", "--limit", "50"], warm)
  trail(["list", "--task", "warm-up", "--limit", "100"], warm)
  // The hook's own bundle (dist/hook.cjs.cache), on a Stop payload.
  execFileSync(process.execPath, [here("./bin/trail.cjs"), "hook", "claude"], {
    cwd: root,
    env: { ...process.env, ...warm },
    input: JSON.stringify({ session_id: "warm-up", hook_event_name: "Stop", cwd: root, last_assistant_message: "ok" }),
    stdio: ["pipe", "ignore", "inherit"]
  })
  try {
    trail(["worker", "note", "warm-up"], { ...warm, TRAIL_WORKER_ID: "w1" }, "ignore")
  } catch {
    // exits 1 (no worker w1): expected
  }
} finally {
  rmSync(root, { recursive: true, force: true })
}
