import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFileSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import { build } from "esbuild"
import { HAND_OFF_AFTER, make, WALK_PART } from "../src/Walker.js"
import { MAIN_HUNGRY, pack, shareWhenAsked, unpack, walkFrames, type Frame } from "../src/walk.js"

const walker = make()
import { configOf, makeRoot } from "./helpers.js"

const scan = (root: string, raw: Record<string, unknown> = {}) => {
  const config = configOf(raw)
  return walker.scan({ root, scan: config.scan, staticSignal: config.strategy.static_signal })
}

/** walkWorker.ts bundled as the CLI ships it, in a temp dir of the scope. */
const bundledWorker = Effect.gen(function* () {
  const dir = yield* Effect.flatMap(FileSystem.FileSystem, (fs) =>
    fs.makeTempDirectoryScoped({ prefix: "trail-walk-worker-" })
  )
  const script = path.join(dir, "walk-worker.cjs")
  yield* Effect.promise(() =>
    build({
      entryPoints: [new URL("../src/walkWorker.ts", import.meta.url).pathname],
      outfile: script,
      bundle: true,
      platform: "node",
      format: "cjs",
      logLevel: "silent"
    })
  )
  return script
})

/** Writes a one-byte file, and its folders, synchronously (thousands of them in a test stay fast). */
const writeFile = (root: string, file: string) => {
  fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true })
  fs.writeFileSync(path.join(root, file), "x")
}

const byPath = (folders: ReadonlyArray<{ readonly path: string }>) => folders.map((f) => f.path)

describe("Walker", () => {
  it.layer(NodeContext.layer)((it) => {
    it.scoped("honours nested .gitignore and .ignore with git's precedence and skips hidden folders", () =>
      Effect.gen(function* () {
        const project = yield* makeRoot({
          ".gitignore": "build/\n*.log\n",
          ".ignore": "vendor/\n",
          "README.md": "hello",
          "src/index.ts": "12345",
          "src/debug.log": "ignored by the root rule",
          "src/sub/.gitignore": "!keep.log\ntmp/\n",
          "src/sub/keep.log": "re-included below",
          "src/sub/a.ts": "a",
          "src/sub/tmp/x.ts": "ignored by the nested rule",
          "build/out.js": "ignored",
          "vendor/lib/x.js": "ignored by .ignore",
          ".cache/blob": "hidden",
          "docs/guide/intro.md": "docs"
        })
        const result = yield* scan(project.root)
        assert.deepStrictEqual(byPath(result.folders), [".", "docs/guide", "src", "src/sub"])
        const src = result.folders.find((f) => f.path === "src")!
        assert.deepStrictEqual([src.fileCount, src.bytes], [1, 0]) // bytes: only for static_signal = "bytes"
        const sub = result.folders.find((f) => f.path === "src/sub")!
        assert.strictEqual(sub.fileCount, 2) // keep.log, a.ts (the hidden .gitignore does not count)
        // .trail, .cache (hidden), build, vendor (ignored), src/sub/tmp (ignored), docs (no direct files)
        assert.strictEqual(result.excluded, 6)
      })
    )

    it.scoped('bytes are measured (a stat per file) only with static_signal = "bytes"', () =>
      Effect.gen(function* () {
        const project = yield* makeRoot({
          "a/x.ts": "12345",
          "a/y.ts": "123",
          "a/.env": "hidden: not counted",
          "b/z.ts": ""
        })
        const sizes = (folders: ReadonlyArray<{ readonly path: string; readonly bytes: number }>) =>
          folders.map((f) => [f.path, f.bytes])
        const measured = yield* scan(project.root, { strategy: { static_signal: "bytes" } })
        assert.deepStrictEqual(sizes(measured.folders), [
          ["a", 8],
          ["b", 0]
        ])
        const counted = yield* scan(project.root, { strategy: { static_signal: "file_count" } })
        assert.deepStrictEqual(sizes(counted.folders), [
          ["a", 0],
          ["b", 0]
        ])
      })
    )

    it.scoped("respect_gitignore = false walks ignored folders (hidden ones stay skipped)", () =>
      Effect.gen(function* () {
        const project = yield* makeRoot({
          ".gitignore": "build/\n",
          "build/out.js": "x",
          ".hidden/a": "x",
          "a/b.ts": "x"
        })
        const result = yield* scan(project.root, { scan: { respect_gitignore: false } })
        // The root holds only a hidden file: it is not a folder.
        assert.deepStrictEqual(byPath(result.folders), ["a", "build"])
      })
    )

    it.scoped("include, exclude and min_files shape what is registered", () =>
      Effect.gen(function* () {
        const project = yield* makeRoot({
          "src/api/a.ts": "x",
          "src/api/b.ts": "x",
          "src/db/a.ts": "x",
          "src/gen/a.ts": "x",
          "src/gen/b.ts": "x",
          "src/gen/deep/c.ts": "x",
          "docs/a.md": "x",
          "docs/b.md": "x"
        })
        const result = yield* scan(project.root, {
          scan: { include: ["src/**"], exclude: ["src/gen"], min_files: 2 }
        })
        assert.deepStrictEqual(byPath(result.folders), ["src/api"])
      })
    )

    it.scoped("hidden files (.gitignore, .editorconfig, .env, .trail.toml) neither count nor make folders", () =>
      Effect.gen(function* () {
        const project = yield* makeRoot({
          ".trail.toml": "",
          ".trail.toml.example": "",
          ".gitignore": "*.log\n",
          ".editorconfig": "root = true\n",
          "cfg/.env": "SECRET=1",
          "a/x.ts": "x",
          "a/.trail.toml": ""
        })
        const result = yield* scan(project.root)
        assert.deepStrictEqual(
          result.folders.map((f) => [f.path, f.fileCount]),
          [["a", 1]]
        )
        assert.strictEqual(result.files, 1)
      })
    )

    it.scoped('include = ["**/*"] keeps the root folder', () =>
      Effect.gen(function* () {
        const project = yield* makeRoot({ "README.md": "x", "src/a.ts": "x", "src/deep/b.ts": "x" })
        const all = yield* scan(project.root, { scan: { include: ["**/*"] } })
        assert.deepStrictEqual(byPath(all.folders), [".", "src", "src/deep"])
        const src = yield* scan(project.root, { scan: { include: ["src/**"] } })
        assert.deepStrictEqual(byPath(src.folders), ["src", "src/deep"])
        const braces = yield* scan(project.root, { scan: { include: ["{.,src/deep}"] } })
        assert.deepStrictEqual(byPath(braces.folders), [".", "src/deep"])
      })
    )

    it.scoped("a pattern that backtracks exponentially as a regular expression does not slow the walk", () =>
      Effect.gen(function* () {
        const name = "a".repeat(60)
        const pattern = "a*a*a*a*a*a*a*a*a*a*a*a*c"
        const project = yield* makeRoot({
          ".gitignore": `${pattern}\n`,
          [`${name}/x.ts`]: "x",
          [`${name}/${name}`]: "x",
          [`${name}c/y.ts`]: "ignored"
        })
        const started = Date.now()
        const result = yield* scan(project.root, { scan: { exclude: [pattern, `**/${pattern}/**`] } })
        assert.isBelow(Date.now() - started, 2_000)
        assert.deepStrictEqual(byPath(result.folders), [name])
        assert.strictEqual(result.folders[0]!.fileCount, 2)
      })
    )

    it.scoped("an unreadable folder is left out and named", () =>
      Effect.gen(function* () {
        const project = yield* makeRoot({ "open/a.ts": "x", "locked/b.ts": "x", "locked/inner/c.ts": "x" })
        const locked = path.join(project.root, "locked")
        fs.chmodSync(locked, 0o000)
        yield* Effect.addFinalizer(() => Effect.sync(() => fs.chmodSync(locked, 0o755)))
        // root can read anything: then there is nothing unreadable to report.
        const canRead = (() => {
          try {
            fs.readdirSync(locked)
            return true
          } catch {
            return false
          }
        })()
        const result = yield* scan(project.root)
        assert.deepStrictEqual(byPath(result.folders), canRead ? ["locked", "locked/inner", "open"] : ["open"])
        assert.deepStrictEqual(result.unreadable, canRead ? [] : ["locked"])
      })
    )

    it.scoped("does not follow symlinked directories", () =>
      Effect.gen(function* () {
        const project = yield* makeRoot({ "real/a.ts": "x" })
        fs.symlinkSync(path.join(project.root, "real"), path.join(project.root, "link"))
        fs.symlinkSync(project.root, path.join(project.root, "real", "loop"))
        const result = yield* scan(project.root)
        assert.deepStrictEqual(byPath(result.folders), ["real"])
      })
    )

    it.scoped("churn counts commits of the last 90 days touching files directly in each folder", () =>
      Effect.gen(function* () {
        const project = yield* makeRoot({ "src/a.ts": "1", "src/lib/b.ts": "1", "docs/c.md": "1" })
        const git = (...args: Array<string>) =>
          execFileSync("git", args, {
            cwd: project.root,
            env: {
              ...process.env,
              GIT_AUTHOR_NAME: "t",
              GIT_AUTHOR_EMAIL: "t@t",
              GIT_COMMITTER_NAME: "t",
              GIT_COMMITTER_EMAIL: "t@t"
            }
          })
        git("init", "-q")
        git("add", "-A")
        git("commit", "-qm", "one")
        fs.writeFileSync(path.join(project.root, "src/a.ts"), "2")
        fs.writeFileSync(path.join(project.root, "src/lib/b.ts"), "2")
        git("commit", "-qam", "two")
        fs.writeFileSync(path.join(project.root, "src/a.ts"), "3")
        git("commit", "-qam", "three")
        const result = yield* scan(project.root, { strategy: { static_signal: "churn" } })
        const churn = Object.fromEntries(result.folders.map((f) => [f.path, f.churn]))
        assert.deepStrictEqual(churn, { docs: 1, src: 3, "src/lib": 2 })
      })
    )

    it.scoped("churn outside a git repository is a clear scan error", () =>
      Effect.gen(function* () {
        const project = yield* makeRoot({ "a/b.ts": "x" })
        const error = yield* Effect.flip(scan(project.root, { strategy: { static_signal: "churn" } }))
        assert.strictEqual(error._tag, "ScanError")
        assert.include(error.message, "git repository")
      })
    )

    it.scoped("a large walk shared with a worker thread finds exactly what one thread finds", () =>
      Effect.gen(function* () {
        // > HAND_OFF_AFTER folders, with ignore rules that the worker must apply too.
        const files: Record<string, string> = { ".gitignore": "*.log\nbuild/\n" }
        for (let i = 0; i < HAND_OFF_AFTER * 3; i++) {
          const dir = `pkg${i % 7}/mod${i}`
          files[`${dir}/index.ts`] = "x".repeat(i % 13)
          files[`${dir}/debug.log`] = "ignored"
          if (i % 10 === 0) files[`${dir}/build/out.js`] = "ignored"
          if (i % 25 === 0) files[`${dir}/.gitignore`] = "index.ts\n"
        }
        const project = yield* makeRoot(files)
        const script = yield* bundledWorker
        const dir = path.dirname(script)
        const config = configOf({})
        const options = { root: project.root, scan: config.scan, staticSignal: config.strategy.static_signal }
        const alone = yield* make().scan(options)
        const shared = yield* make(script).scan(options)
        const brokenWorker = yield* make(path.join(dir, "missing.cjs")).scan(options)
        assert.isAbove(alone.folders.length, HAND_OFF_AFTER)
        assert.deepStrictEqual(shared, alone)
        assert.deepStrictEqual(brokenWorker, alone)
        assert.isFalse(alone.folders.some((f) => f.path.includes("build")))
        // pkg0/mod0's own .gitignore hides its index.ts, the root's hides debug.log, and the hidden
        // .gitignore does not count: nothing is left, so it is no folder.
        assert.isUndefined(alone.folders.find((f) => f.path === "pkg0/mod0"))
        assert.strictEqual(alone.folders.find((f) => f.path === "pkg1/mod1")?.fileCount, 1)
      })
    )

    it.scoped("a worker that finishes while this thread still walks is not lost", () =>
      Effect.gen(function* () {
        // More than one part (WALK_PART folders), so this thread yields to the event loop between
        // parts while the worker's answer may already be there.
        const files: Record<string, string> = {}
        for (let i = 0; i < WALK_PART * 3; i++) files[`pkg${i % 5}/mod${i}/index.ts`] = "x"
        const project = yield* makeRoot(files)
        const script = yield* bundledWorker
        const config = configOf({})
        const options = { root: project.root, scan: config.scan, staticSignal: config.strategy.static_signal }
        const alone = yield* make().scan(options)
        // This thread is held for 1 s, synchronously (as on a loaded machine), so the worker's
        // answer arrives before anything awaits it. Before the fix the scan then waited forever.
        const held = new Int32Array(new SharedArrayBuffer(4))
        let holds = 0
        const shared = yield* make(script)
          .scan({ ...options, onProgress: () => void (holds++ === 0 && Atomics.wait(held, 0, 0, 1_000)) })
          .pipe(Effect.timeoutFail({ duration: "20 seconds", onTimeout: () => new Error("the scan never ended") }))
        assert.isAbove(holds, 0)
        assert.deepStrictEqual(shared, alone)
      })
    )

    it.scoped("a thread gives every other pending folder when the other raises its flag, once per raise", () =>
      Effect.gen(function* () {
        const files: Record<string, string> = {}
        for (let i = 0; i < 10; i++) files[`p${i}/x.ts`] = "x"
        const project = yield* makeRoot(files)
        const settings = {
          root: project.root,
          respectGitignore: true,
          measureBytes: false,
          minFiles: 1,
          include: [],
          exclude: []
        }
        const flags = new Int32Array(new SharedArrayBuffer(8))
        const given: Array<Array<Frame>> = []
        const handOff = shareWhenAsked(flags, MAIN_HUNGRY, (frames) => given.push(frames))
        const root = (): Array<Frame> => [{ rel: "", sources: [] }]
        // Flag down: nothing is given.
        assert.strictEqual(walkFrames(settings, root(), { handOff }).folders.length, 10)
        assert.strictEqual(given.length, 0)
        Atomics.store(flags, MAIN_HUNGRY, 1)
        const kept = walkFrames(settings, root(), { handOff })
        assert.strictEqual(Atomics.load(flags, MAIN_HUNGRY), 0)
        assert.strictEqual(given.length, 1) // once: the flag was lowered as it gave
        assert.deepStrictEqual(
          given[0]?.map((f) => f.rel),
          ["p0", "p2", "p4", "p6", "p8"]
        )
        const theirs = walkFrames(settings, given[0] ?? [])
        const paths = (folders: ReadonlyArray<{ readonly path: string }>) => folders.map((f) => f.path).sort()
        assert.deepStrictEqual(paths(kept.folders), ["p1", "p3", "p5", "p7", "p9"])
        assert.deepStrictEqual(paths(theirs.folders), ["p0", "p2", "p4", "p6", "p8"])
      })
    )

    it("a result packed to cross threads unpacks to itself, newlines in paths and no folders included", () => {
      const result = {
        folders: [
          { path: "a", fileCount: 3, bytes: 10, churn: 0 as const },
          { path: "odd\nname/x", fileCount: 1, bytes: 2 ** 40, churn: 0 as const }
        ],
        excluded: 4,
        files: 5,
        unreadable: ["locked"]
      }
      assert.deepStrictEqual(unpack(pack(result)), result)
      const empty = { folders: [], excluded: 1, files: 0, unreadable: [] }
      assert.deepStrictEqual(unpack(pack(empty)), empty)
    })

    it.scoped("this thread, run dry, takes half of what the worker still has to walk", () =>
      Effect.gen(function* () {
        // This thread walks the root, z and 254 of z's leaves, then gives [a, z/c001] to the
        // worker and keeps z/c000: alone it would walk 257 folders. `a` holds 1,500.
        const project = yield* makeRoot()
        for (let i = 0; i < 256; i++) writeFile(project.root, `z/c${String(i).padStart(3, "0")}/x.ts`)
        for (let i = 0; i < 1500; i++) writeFile(project.root, `a/m${i}/x.ts`)
        const script = yield* bundledWorker
        const config = configOf({})
        const options = { root: project.root, scan: config.scan, staticSignal: config.strategy.static_signal }
        const alone = yield* make().scan(options)
        let walkedHere = 0
        const shared = yield* make(script).scan({
          ...options,
          onProgress: (progress) => void (walkedHere = Math.max(walkedHere, progress.folders))
        })
        assert.deepStrictEqual(shared, alone)
        assert.isAtLeast(walkedHere, 500)
      })
    )

    it.scoped("the worker, run dry, takes half of what this thread still has to walk", () =>
      Effect.gen(function* () {
        // The worker gets [a, z/c001] (two folders); this thread keeps z/c000, which holds 1,500,
        // and is held for 1 s at its 500th folder so that the worker is idle before it goes on.
        const project = yield* makeRoot()
        writeFile(project.root, "a/x.ts")
        for (let i = 0; i < 256; i++) writeFile(project.root, `z/c${String(i).padStart(3, "0")}/x.ts`)
        for (let i = 0; i < 1500; i++) writeFile(project.root, `z/c000/m${i}/x.ts`)
        const script = yield* bundledWorker
        const config = configOf({ strategy: { static_signal: "bytes" } })
        const options = { root: project.root, scan: config.scan, staticSignal: config.strategy.static_signal }
        const alone = yield* make().scan(options)
        const held = new Int32Array(new SharedArrayBuffer(4))
        let walkedHere = 0
        const shared = yield* make(script).scan({
          ...options,
          onProgress: (progress) => {
            if (walkedHere === 0) Atomics.wait(held, 0, 0, 1_000)
            walkedHere = Math.max(walkedHere, progress.folders)
          }
        })
        assert.deepStrictEqual(shared, alone)
        // Alone this thread would have walked 1,758 folders.
        assert.isBelow(walkedHere, 1500)
      })
    )

    it.scoped("an unreadable root is a scan error", () =>
      Effect.gen(function* () {
        const error = yield* Effect.flip(scan("/nonexistent/trail-root"))
        assert.strictEqual(error._tag, "ScanError")
      })
    )
  })
})
