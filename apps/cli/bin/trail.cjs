#!/usr/bin/env node
// The `trail` executable. Loads the bundle (dist/trail.cjs, built by `npm run build`, which
// `npm ci` runs through `prepare`) with V8's code cache (dist/trail.cjs.cache): compiling the
// bundle is most of a cold start, and trail is started once per agent call. `trail hook claude`,
// which runs on every prompt of every Claude Code session, loads its own small bundle
// (dist/hook.cjs) the same way, without the rest of the CLI.
"use strict"
const fs = require("node:fs")
const path = require("node:path")
const vm = require("node:vm")
const Module = require("node:module")

const isHook = process.argv.length === 4 && process.argv[2] === "hook" && process.argv[3] === "claude"
const file = path.join(__dirname, "..", "dist", isHook ? "hook.cjs" : "trail.cjs")
const cacheFile = `${file}.cache`

let source
try {
  source = fs.readFileSync(file, "utf8")
} catch {
  // A hook must stay silent and succeed, whatever happens.
  if (isHook) process.exit(0)
  process.stderr.write(
    `${JSON.stringify({ error: { code: "not-built", message: "trail is not built: run `npm run build` at the repository root" } })}\n`
  )
  process.exit(1)
}

let cachedData
try {
  cachedData = fs.readFileSync(cacheFile)
} catch {
  cachedData = undefined
}

const script = new vm.Script(Module.wrap(source), { filename: file, cachedData })
const refresh =
  process.env.TRAIL_WRITE_CODE_CACHE === "1" || cachedData === undefined || script.cachedDataRejected === true
if (refresh) {
  // Written after the run so the cache holds the functions this command compiled. Best effort:
  // an unwritable install just runs without a cache.
  process.once("exit", () => {
    try {
      const tmp = `${cacheFile}.${process.pid}.tmp`
      fs.writeFileSync(tmp, script.createCachedData())
      fs.renameSync(tmp, cacheFile)
    } catch {}
  })
}
// Code run by a vm.Script cannot import() ES modules (the TUI is one); this file can.
globalThis.__trailImport = (url) => import(url)
const module_ = { exports: {} }
script.runInThisContext()(module_.exports, Module.createRequire(file), module_, file, path.dirname(file))
