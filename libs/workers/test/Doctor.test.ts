import * as nodeFs from "node:fs"
import * as path from "node:path"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as FileSystem from "@effect/platform/FileSystem"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import { defaultConfig, Host } from "@trail/domain"
import { Database, Migrations } from "@trail/store"
import { Effect, Either, Layer, TestClock } from "effect"
import * as Doctor from "../src/Doctor.js"
import * as HookSettings from "../src/HookSettings.js"
import { Processes, TestProcesses } from "../src/Processes.js"

/** This machine is "here"; its pids are the test's. */
const outside = Layer.mergeAll(NodeContext.layer, Processes.Test, Host.fixed({ hostname: "here", pid: 1 }))

const noKinds = Effect.fail({ message: "no kinds here" })

/** A folder under `dir` holding an executable `trail`: a PATH on which the hooks' `trail` is found. */
const pathWithTrail = (dir: string) => {
  const bin = path.join(dir, "bin")
  nodeFs.mkdirSync(bin, { recursive: true })
  nodeFs.writeFileSync(path.join(bin, "trail"), "#!/bin/sh\n", { mode: 0o755 })
  return bin
}

/** A migrated store at `file` whose supervisor lock names `pid` on `host`, its lease until `expires` (ms; the TestClock starts at 0). */
const storeWithLock = (file: string, pid: number, host: string, expires = 30_000) =>
  Effect.gen(function* () {
    yield* Migrations.migrate
    const sql = yield* SqlClient.SqlClient
    yield* sql`INSERT OR REPLACE INTO supervisor (id, owner, pid, host, started_at, lease_expires_at)
               VALUES (1, ${`${pid}@${host}`}, ${pid}, ${host}, 0, ${expires})`
  }).pipe(Effect.provide(Database.layer({ filename: file })))

describe("Doctor.report", () => {
  it.effect("without a root, reports only the root, failed", () =>
    Effect.gen(function* () {
      const report = yield* Doctor.report({
        root: Either.left({ message: "no .trail/ above /x" }),
        hookFiles: [],
        kinds: noKinds,
        path: ""
      })
      assert.deepStrictEqual(report, {
        ok: false,
        checks: [{ name: "root", ok: false, detail: "no .trail/ above /x" }]
      })
    }).pipe(Effect.provide(outside))
  )

  it.scoped("reads the store through SqlClient and reports every check in order", () =>
    Effect.gen(function* () {
      const dir = yield* Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped())
      const stateDir = path.join(dir, ".trail")
      nodeFs.mkdirSync(stateDir)
      const project = { root: dir, stateDir, databaseFile: path.join(stateDir, "state.db") }
      // A lock held on another host counts as running: its pid cannot be probed from here.
      yield* storeWithLock(project.databaseFile, 4242, "elsewhere")
      const full = path.join(dir, "full.json")
      yield* HookSettings.install(full, "trail hook claude")
      const broken = path.join(dir, "broken.json")
      nodeFs.writeFileSync(broken, "{")
      nodeFs.writeFileSync(path.join(stateDir, "hook-errors.log"), "first\nsecond\n")

      const report = yield* Doctor.report({
        root: Either.right({
          project,
          config: { ...defaultConfig, worker: { ...defaultConfig.worker, substrate: "process" } }
        }),
        hookFiles: [
          ["project", full],
          ["user", broken]
        ],
        kinds: noKinds,
        path: pathWithTrail(dir)
      })
      assert.deepStrictEqual(
        report.checks.map((c) => [c.name, c.ok]),
        [
          ["root", true],
          ["store", true],
          ["supervisor", true],
          ["tmux", true],
          ["kinds", false],
          ["hooks (project)", true],
          ["hooks (user)", false],
          ["hook errors", true]
        ]
      )
      assert.isFalse(report.ok)
      const detail = (name: string) => report.checks.find((c) => c.name === name)?.detail ?? ""
      assert.strictEqual(
        detail("store"),
        `${project.databaseFile}: integrity ok, schema ${Migrations.LATEST_MIGRATION}/${Migrations.LATEST_MIGRATION}, 0 event(s)`
      )
      assert.strictEqual(detail("supervisor"), "running (pid 4242 on elsewhere)")
      assert.strictEqual(detail("kinds"), "cannot be checked: no kinds here")
      assert.include(detail("hooks (project)"), "all 6 installed")
      assert.strictEqual(detail("hook errors"), "2 dropped payload(s); last: second")
    }).pipe(Effect.provide(outside))
  )

  it.scoped(
    "a supervisor on this host is running while its pid lives; a store that is not a database fails its check",
    () =>
      Effect.gen(function* () {
        const dir = yield* Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped())
        const project = { root: dir, stateDir: dir, databaseFile: path.join(dir, "state.db") }
        const processes = yield* TestProcesses
        const pid = yield* processes.start
        yield* storeWithLock(project.databaseFile, pid, "here")
        const input = {
          root: Either.right({ project, config: defaultConfig }),
          hookFiles: [],
          kinds: noKinds,
          path: ""
        }
        const supervisor = (report: Doctor.Report) => report.checks.find((c) => c.name === "supervisor")?.detail ?? ""
        assert.strictEqual(supervisor(yield* Doctor.report(input)), `running (pid ${pid} on here)`)
        yield* processes.exit(pid, dir)
        assert.include(supervisor(yield* Doctor.report(input)), "not running")
        // A holder whose pid lives but whose lease ran out unrenewed (a wedged supervisor) does
        // not hold the root: `trail supervise` would take it over.
        const wedged = yield* processes.start
        yield* storeWithLock(project.databaseFile, wedged, "here", 30_000)
        assert.strictEqual(supervisor(yield* Doctor.report(input)), `running (pid ${wedged} on here)`)
        yield* TestClock.adjust("30 seconds")
        assert.include(supervisor(yield* Doctor.report(input)), "not running")
        // The same on another host, where no pid can be probed.
        yield* storeWithLock(project.databaseFile, 4242, "elsewhere", 30_000)
        assert.include(supervisor(yield* Doctor.report(input)), "not running")

        nodeFs.rmSync(project.databaseFile)
        nodeFs.writeFileSync(
          project.databaseFile,
          "this is not a database, it is text long enough to be read".repeat(20)
        )
        const corrupt = yield* Doctor.report(input)
        const store = corrupt.checks.find((c) => c.name === "store")
        assert.isFalse(store?.ok)
        assert.include(store?.detail ?? "", "corrupt")
      }).pipe(Effect.provide(outside))
  )

  it.scoped("with checkpoint.on_precompact = true, says where the PreCompact hook is missing, as for the others", () =>
    Effect.gen(function* () {
      const dir = yield* Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped())
      const project = { root: dir, stateDir: dir, databaseFile: path.join(dir, "state.db") }
      yield* storeWithLock(project.databaseFile, 4242, "elsewhere")
      const six = path.join(dir, "six.json")
      yield* HookSettings.install(six, "trail hook claude")
      const seven = path.join(dir, "seven.json")
      yield* HookSettings.install(seven, "trail hook claude", { preCompact: true })
      const on = { ...defaultConfig, checkpoint: { ...defaultConfig.checkpoint, on_precompact: true } }
      const checks = (config: typeof defaultConfig, files: ReadonlyArray<readonly [HookSettings.Scope, string]>) =>
        Effect.map(
          Doctor.report({
            root: Either.right({ project, config }),
            hookFiles: files,
            kinds: noKinds,
            path: pathWithTrail(dir)
          }),
          (report) => new Map(report.checks.map((c) => [c.name, c.detail]))
        )

      const missing = yield* checks(on, [["project", six]])
      assert.include(missing.get("hooks (project)"), "PreCompact")
      assert.include(missing.get("hooks (project)"), "`trail hooks install`")
      assert.include(missing.get("precompact"), "checkpoint.on_precompact = true")

      const present = yield* checks(on, [
        ["project", six],
        ["local", seven]
      ])
      assert.include(present.get("hooks (local)"), "all 7 installed")
      assert.isFalse(present.has("precompact"))
      // Off: the six are all there is to install.
      const off = yield* checks(defaultConfig, [["project", six]])
      assert.include(off.get("hooks (project)"), "all 6 installed")
      assert.isFalse(off.has("precompact"))
    }).pipe(Effect.provide(outside))
  )

  it.scoped(
    "hooks that run a bare `trail` fail their own check when trail is not on the PATH, and say how to mend it",
    () =>
      Effect.gen(function* () {
        const dir = yield* Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped())
        const project = { root: dir, stateDir: dir, databaseFile: path.join(dir, "state.db") }
        yield* storeWithLock(project.databaseFile, 4242, "elsewhere")
        const shared = path.join(dir, "settings.json")
        yield* HookSettings.install(shared, "trail hook claude")
        const local = path.join(dir, "settings.local.json")
        yield* HookSettings.install(local, "/usr/bin/node /opt/trail/bin/trail.cjs hook claude")
        const report = (onPath: string) =>
          Doctor.report({
            root: Either.right({ project, config: defaultConfig }),
            hookFiles: [
              ["project", shared],
              ["local", local]
            ],
            kinds: noKinds,
            path: onPath
          })
        const missing = yield* report(path.join(dir, "empty"))
        const check = missing.checks.find((c) => c.name === "hook command (project)")
        assert.isDefined(check)
        assert.isFalse(check?.ok)
        assert.include(check?.detail, "`trail hook claude`")
        assert.include(check?.detail, "trail hooks install --local")
        // A command by absolute path is not looked up; the installed hooks are still all there.
        assert.isUndefined(missing.checks.find((c) => c.name === "hook command (local)"))
        assert.include(missing.checks.find((c) => c.name === "hooks (project)")?.detail, "all 6 installed")
        const found = yield* report(pathWithTrail(dir))
        assert.isFalse(found.checks.some((c) => c.name.startsWith("hook command")))
      }).pipe(Effect.provide(outside))
  )
})
