import * as NodeContext from "@effect/platform-node/NodeContext"
import * as Path from "@effect/platform/Path"
import { assert, describe, it } from "@effect/vitest"
import { defaultConfig, FolderPath } from "@trail/domain"
import Sqlite from "better-sqlite3"
import { Effect, Either, Layer, Option } from "effect"
import * as fs from "node:fs"
import * as path from "node:path"
import * as Project from "../src/Project.js"
import * as Scheduler from "../src/Scheduler.js"
import { configOf, makeRoot, makeScheduler } from "./helpers.js"

describe("Project", () => {
  it.layer(NodeContext.layer)((it) => {
    it.scoped("finds the root by walking up to .trail/, or from an explicit path", () =>
      Effect.gen(function* () {
        const project = yield* makeRoot({ "a/b/c/file.txt": "x" })
        fs.writeFileSync(project.databaseFile, "SQLite format 3\0")
        const found = yield* Project.findRoot({ explicit: Option.none(), cwd: path.join(project.root, "a/b/c") })
        assert.strictEqual(found.root, project.root)
        assert.strictEqual(found.databaseFile, path.join(project.root, ".trail", "state.db"))
        const explicit = yield* Project.findRoot({ explicit: Option.some(project.root), cwd: "/" })
        assert.strictEqual(explicit.root, project.root)
        const missing = yield* Effect.flip(
          Project.findRoot({ explicit: Option.some(path.join(project.root, "a")), cwd: "/" })
        )
        assert.strictEqual(missing._tag, "RootNotFound")
        const nowhere = yield* Effect.flip(Project.findRoot({ explicit: Option.none(), cwd: "/" }))
        assert.strictEqual(nowhere._tag, "RootNotFound")
      })
    )

    it.scoped("only init creates a store: a missing or emptied state.db fails (store-missing / store-corrupt)", () =>
      Effect.gen(function* () {
        const project = yield* makeRoot({ "a/file.txt": "x" })
        const find = Project.findRoot({ explicit: Option.none(), cwd: project.root })
        const missing = yield* Effect.flip(find)
        assert.deepInclude(missing, { _tag: "StoreError", reason: "missing" })
        assert.include(missing.message, "trail init")
        assert.isFalse(fs.existsSync(project.databaseFile))
        // What `trail init` does: the store is created, 0600 in a 0700 .trail/.
        fs.rmSync(project.stateDir, { recursive: true })
        yield* Project.layOut(project)
        const scheduler = yield* makeScheduler(project)
        yield* scheduler.scan()
        assert.strictEqual(fs.statSync(project.stateDir).mode & 0o777, 0o700)
        assert.strictEqual(fs.statSync(project.databaseFile).mode & 0o777, 0o600)
        for (const side of ["-wal", "-shm"]) {
          const file = project.databaseFile + side
          if (fs.existsSync(file)) assert.strictEqual(fs.statSync(file).mode & 0o777, 0o600)
        }
        assert.strictEqual((yield* find).root, project.root)
        fs.truncateSync(project.databaseFile, 0)
        const emptied = yield* Effect.flip(find)
        assert.deepInclude(emptied, { _tag: "StoreError", reason: "corrupt" })
        assert.include(emptied.message, "emptied or truncated")
        // A store opened for an existing root refuses too, rather than making a fresh database.
        const opened = yield* Effect.flip(
          Layer.build(Scheduler.layerFor({ project, config: configOf() }, { create: false }))
        )
        assert.deepInclude(opened, { _tag: "StoreError", reason: "corrupt" })
        assert.strictEqual(fs.statSync(project.databaseFile).size, 0)
        // A database with no trail schema (what SQLite makes of an emptied file once anything
        // writes to it) is no store either: refused, and left as it is.
        fs.rmSync(project.databaseFile)
        const blank = new Sqlite(project.databaseFile)
        blank.pragma("journal_mode = WAL")
        blank.close()
        const size = fs.statSync(project.databaseFile).size
        assert.isAbove(size, 0)
        const schemaless = yield* Effect.flip(
          Layer.build(Scheduler.layerFor({ project, config: configOf() }, { create: false }))
        )
        assert.deepInclude(schemaless, { _tag: "StoreError", reason: "corrupt" })
        assert.include(schemaless.message, "trail init")
        assert.strictEqual(fs.statSync(project.databaseFile).size, size)
      })
    )

    it.scoped("loads .trail.toml: missing means defaults, bad TOML and bad values name the problem", () =>
      Effect.gen(function* () {
        const project = yield* makeRoot()
        assert.deepStrictEqual(yield* Project.loadConfig(project), defaultConfig)
        fs.writeFileSync(project.configFile, '[lease]\nttl_secs = 30\n[strategy]\ndefault = "round-robin"\n')
        const config = yield* Project.loadConfig(project)
        assert.strictEqual(config.lease.ttl_secs, 30)
        assert.strictEqual(config.strategy.default, "round-robin")
        fs.writeFileSync(project.configFile, "[lease\nttl_secs = 30\n")
        const syntax = yield* Effect.flip(Project.loadConfig(project))
        assert.include(syntax.message, "line 1")
        fs.writeFileSync(project.configFile, "[strategy]\nalpha = 2\n")
        const value = yield* Effect.flip(Project.loadConfig(project))
        assert.deepInclude(value, { key: "strategy.alpha", value: "2" })
      })
    )

    it.scoped("layOut writes .trail/.gitignore, and the example only when no .trail.toml exists", () =>
      Effect.gen(function* () {
        const project = yield* makeRoot()
        assert.isTrue(yield* Project.layOut(project))
        assert.include(fs.readFileSync(path.join(project.stateDir, ".gitignore"), "utf8"), "!kinds/")
        const example = fs.readFileSync(path.join(project.root, ".trail.toml.example"), "utf8")
        const parsed = yield* Project.parseConfig(example, ".trail.toml.example")
        assert.deepStrictEqual(parsed, defaultConfig)
        fs.writeFileSync(project.configFile, "")
        fs.rmSync(path.join(project.root, ".trail.toml.example"))
        assert.isFalse(yield* Project.layOut(project))
        assert.isFalse(fs.existsSync(path.join(project.root, ".trail.toml.example")))
      })
    )

    it.scoped("layOut refuses a root that is not an existing folder, and creates nothing", () =>
      Effect.gen(function* () {
        const project = yield* makeRoot({ "file.txt": "x" })
        const p = yield* Path.Path
        for (const root of [path.join(project.root, "typo"), path.join(project.root, "file.txt")]) {
          const error = yield* Effect.flip(Project.layOut(Project.projectAt(p, root)))
          assert.strictEqual(error._tag, "ScanError")
          assert.include(error.message, "not an existing folder")
        }
        assert.isFalse(fs.existsSync(path.join(project.root, "typo")))
      })
    )

    it.effect("toFolderPath normalises relative paths and accepts absolute ones inside the root only", () =>
      Effect.gen(function* () {
        const p = yield* Path.Path
        const at = (raw: string) => Project.toFolderPath(p, "/repo", raw)
        assert.deepStrictEqual(at("./src/api/"), Either.right(FolderPath.make("src/api")))
        assert.deepStrictEqual(at("/repo/src/api"), Either.right(FolderPath.make("src/api")))
        assert.deepStrictEqual(at("/repo"), Either.right(FolderPath.make(".")))
        for (const bad of ["/elsewhere/src", "/repo/../etc", "../x", "src/../../x"]) {
          const result = at(bad)
          assert.isTrue(Either.isLeft(result), bad)
          if (Either.isLeft(result)) assert.strictEqual(result.left._tag, "PathOutsideRoot")
        }
      })
    )
  })
})
