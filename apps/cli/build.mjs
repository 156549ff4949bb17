// Bundles the CLI into one ESM file (dist/trail.mjs) so `trail` starts fast: one module to
// load instead of hundreds. better-sqlite3 stays external (a native addon).
import { build } from "esbuild"
import { readFileSync } from "node:fs"

const { version } = JSON.parse(readFileSync(new URL("./package.json", import.meta.url), "utf8"))

await build({
  entryPoints: [new URL("./src/main.ts", import.meta.url).pathname],
  outfile: new URL("./dist/trail.mjs", import.meta.url).pathname,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  minify: true,
  sourcemap: "linked",
  legalComments: "none",
  external: ["better-sqlite3"],
  define: { __TRAIL_VERSION__: JSON.stringify(version) },
  // CommonJS dependencies (ignore, picomatch) call require() for node built-ins.
  banner: { js: 'import{createRequire as __trailCreateRequire}from"node:module";const require=__trailCreateRequire(import.meta.url);' },
  logLevel: "warning"
})
