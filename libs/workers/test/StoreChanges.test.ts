import * as nodeFs from "node:fs"
import * as path from "node:path"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as FileSystem from "@effect/platform/FileSystem"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Fiber, Queue, Stream } from "effect"
import * as StoreChanges from "../src/StoreChanges.js"

describe("StoreChanges.changes", () => {
  // Real file-system events: this is about the watcher, so it runs on real time.
  it.live("signals a burst of writes to the database files once, and ignores other files", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const dir = yield* Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped())
        const signals = yield* Queue.unbounded<void>()
        yield* StoreChanges.changes(dir, { quiet: "150 millis" }).pipe(
          Stream.runForEach((signal) => Queue.offer(signals, signal)),
          Effect.forkScoped
        )
        // The first signal comes once the folder is watched.
        yield* Queue.take(signals).pipe(Effect.timeout("10 seconds"))
        yield* Effect.sleep("400 millis")
        assert.strictEqual(yield* Queue.size(signals), 0)

        nodeFs.writeFileSync(path.join(dir, "unrelated.txt"), "x")
        nodeFs.writeFileSync(path.join(dir, "state.db"), "a")
        nodeFs.writeFileSync(path.join(dir, "state.db-wal"), "b")
        nodeFs.appendFileSync(path.join(dir, "state.db"), "c")
        yield* Queue.take(signals).pipe(Effect.timeout("5 seconds"))
        yield* Effect.sleep("400 millis")
        assert.strictEqual(yield* Queue.size(signals), 0)
      })
    ).pipe(Effect.provide(NodeContext.layer))
  )

  it.live("after its first signal, stays quiet while only other files change", () =>
    Effect.scoped(
      Effect.gen(function* () {
        const dir = yield* Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped())
        const signals = yield* Stream.runCollect(
          StoreChanges.changes(dir, { quiet: "20 millis" }).pipe(Stream.interruptWhen(Effect.sleep("500 millis")))
        ).pipe(Effect.fork)
        yield* Effect.sleep("100 millis")
        nodeFs.writeFileSync(path.join(dir, "hook-errors.log"), "x")
        nodeFs.writeFileSync(path.join(dir, "trail.sock"), "y")
        assert.strictEqual(Chunk.size(yield* Fiber.join(signals)), 1)
      })
    ).pipe(Effect.provide(NodeContext.layer))
  )
})
