import * as nodeFs from "node:fs"
import * as path from "node:path"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as FileSystem from "@effect/platform/FileSystem"
import { assert, describe, it } from "@effect/vitest"
import { Effect, Exit } from "effect"
import * as HookSettings from "../src/HookSettings.js"

const tempDir = Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped())

describe("HookSettings", () => {
  it.scoped("install then uninstall gives back the same bytes, through a chain of links, mode kept", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const target = path.join(dir, "dots", "settings.json")
      const file = path.join(dir, "settings.json")
      const text = '{\n    "model": "opus"\n}\n'
      nodeFs.mkdirSync(path.dirname(target))
      nodeFs.writeFileSync(target, text)
      nodeFs.chmodSync(target, 0o600)
      nodeFs.symlinkSync("dots/settings.json", path.join(dir, "middle.json"))
      nodeFs.symlinkSync("middle.json", file)

      const installed = yield* HookSettings.install(file, "trail hook claude")
      assert.strictEqual(installed.added.length, 6)
      assert.deepStrictEqual(installed.installed, installed.added)
      assert.isTrue(nodeFs.lstatSync(file).isSymbolicLink())
      assert.strictEqual(nodeFs.statSync(target).mode & 0o777, 0o600)
      assert.deepStrictEqual(yield* HookSettings.installedIn(file), installed.added)

      const again = yield* HookSettings.install(file, "trail hook claude")
      assert.deepStrictEqual(again.added, [])

      const uninstalled = yield* HookSettings.uninstall(file)
      assert.strictEqual(uninstalled.removed.length, 6)
      assert.strictEqual(nodeFs.readFileSync(target, "utf8"), text)
      assert.deepStrictEqual(nodeFs.readdirSync(path.join(dir, "dots")), ["settings.json"])
    }).pipe(Effect.provide(NodeContext.layer))
  )

  it.scoped("a dangling link gets its target created; a missing file is left missing by uninstall", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const file = path.join(dir, "settings.json")
      nodeFs.symlinkSync("made/here.json", file)
      yield* HookSettings.install(file, "trail hook claude")
      assert.isTrue(nodeFs.lstatSync(file).isSymbolicLink())
      assert.strictEqual(nodeFs.statSync(path.join(dir, "made", "here.json")).mode & 0o777, 0o644)

      const none = path.join(dir, "none.json")
      assert.deepStrictEqual(yield* HookSettings.uninstall(none), { settings_file: none, removed: [] })
      assert.isFalse(nodeFs.existsSync(none))
    }).pipe(Effect.provide(NodeContext.layer))
  )

  it.scoped("a file that cannot be read is named with the OS reason, not called invalid JSON; nothing is written", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      // A folder where the settings file should be: reading it fails with EISDIR.
      const folder = path.join(dir, "settings.json")
      nodeFs.mkdirSync(folder)
      const unreadable: Array<readonly [string, string]> = [[folder, "EISDIR"]]
      // Permission bits do not stop root.
      if (process.getuid?.() !== 0) {
        const locked = path.join(dir, "locked.json")
        nodeFs.writeFileSync(locked, "{}", { mode: 0o000 })
        unreadable.push([locked, "EACCES"])
      }
      for (const [file, reason] of unreadable) {
        for (const attempt of [
          HookSettings.install(file, "trail hook claude").pipe(Effect.asVoid),
          HookSettings.uninstall(file).pipe(Effect.asVoid),
          HookSettings.installedIn(file).pipe(Effect.asVoid)
        ]) {
          const error = yield* Effect.flip(attempt)
          assert.strictEqual(error._tag, "ConfigError")
          assert.include(error.message, `${file}: cannot be read`)
          assert.include(error.message, reason)
          assert.notInclude(error.message, "JSON")
        }
      }
      assert.deepStrictEqual(nodeFs.readdirSync(folder), [])
      assert.deepStrictEqual(nodeFs.readdirSync(dir).sort(), unreadable.map(([f]) => path.basename(f)).sort())

      const broken = path.join(dir, "broken.json")
      nodeFs.writeFileSync(broken, "{ not json")
      const invalid = yield* Effect.flip(HookSettings.installedIn(broken))
      assert.include(invalid.message, `${broken}: is not valid JSON`)
    }).pipe(Effect.provide(NodeContext.layer))
  )

  it.scoped("refuses invalid JSON, a wrong shape, inexact numbers and a link loop, leaving the file as it was", () =>
    Effect.gen(function* () {
      const dir = yield* tempDir
      const cases = [
        ["broken.json", "{ not json", "is not valid JSON"],
        ["shape.json", '{"hooks": []}', "hooks is not an object"],
        ["numbers.json", '{"big": 12345678901234567890}', "would change (12345678901234567890)"]
      ] as const
      for (const [name, text, reason] of cases) {
        const file = path.join(dir, name)
        nodeFs.writeFileSync(file, text)
        const exit = yield* Effect.exit(HookSettings.install(file, "trail hook claude"))
        assert.isTrue(Exit.isFailure(exit), name)
        if (Exit.isFailure(exit)) assert.include(String(exit.cause), reason)
        assert.strictEqual(nodeFs.readFileSync(file, "utf8"), text)
      }

      const loop = path.join(dir, "loop.json")
      nodeFs.symlinkSync("loop.json", loop)
      const looped = yield* Effect.flip(HookSettings.install(loop, "trail hook claude"))
      assert.strictEqual(looped._tag, "ConfigError")
    }).pipe(Effect.provide(NodeContext.layer))
  )
})
