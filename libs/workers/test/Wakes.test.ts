/**
 * The folder-watch helper under TestClock, on the test watches (`Processes.watchesTest`): no
 * real-time wait; between steps the test lets the helper's fibers run for event-loop turns. And
 * trail's Node watch (`watchBackend`) on a real temp folder, in real time.
 */
import * as nodeFs from "node:fs"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as FileSystem from "@effect/platform/FileSystem"
import { assert, describe, it } from "@effect/vitest"
import { Deferred, Effect, Layer, Queue, Ref, Stream, TestClock } from "effect"
import { TestWatches, watchesTest } from "../src/Processes.js"
import { type Wake, watchBackend, wakes } from "../src/Wakes.js"

/** One turn of Node's event loop: the helper's fibers and file reads run; no clock moves. */
const turn = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

/**
 * Lets the other fibers run until `check` holds, turn after turn of the event loop, for at most
 * `ms` of wall time (a real watch's start or failure is file-system work in Node's thread pool,
 * which other test files keep busy: 200 turns once passed before it was done); whether it did.
 */
const eventually = (check: Effect.Effect<boolean>, ms = 5_000) =>
  Effect.gen(function* () {
    for (const start = performance.now(); performance.now() - start < ms;) {
      if (yield* check) return true
      yield* turn
    }
    return yield* check
  })

/** The test watches, whose watch of a folder first runs `atStart` (before it subscribes: its own touch is lost). */
const watchesStartingWith = (
  atStart: (path: string) => Effect.Effect<void, never, FileSystem.FileSystem | TestWatches>
) =>
  Layer.effect(
    FileSystem.FileSystem,
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const context = yield* Effect.context<FileSystem.FileSystem | TestWatches>()
      return {
        ...fs,
        watch: (path: string) => Stream.unwrap(Effect.as(Effect.provide(atStart(path), context), fs.watch(path)))
      }
    })
  ).pipe(Layer.provideMerge(watchesTest), Layer.provideMerge(NodeContext.layer))

const plain = watchesTest.pipe(Layer.provideMerge(NodeContext.layer))

describe("Wakes.wakes", () => {
  it.scoped("a file written while the watch starts is read at the start wake, the watch being up by then", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped()
      const seen = yield* Queue.unbounded<string>()
      yield* wakes({ dir, fallback: "5 seconds" }).pipe(
        Stream.mapEffect(() => Effect.orDie(fs.readFileString(`${dir}/note`).pipe(Effect.orElseSucceed(() => "")))),
        Stream.runForEach((text) => Queue.offer(seen, text)),
        Effect.forkScoped
      )
      assert.isTrue(yield* eventually(Effect.map(Queue.size(seen), (n) => n > 0)), "the start wake came")
      assert.strictEqual(yield* Queue.take(seen), "written at the watch's start")
      // And the watch is up: a later write wakes the reader with no clock moving.
      yield* fs.writeFileString(`${dir}/note`, "later")
      yield* (yield* TestWatches).touch(`${dir}/note`)
      assert.isTrue(yield* eventually(Effect.map(Queue.size(seen), (n) => n > 0)), "the watch woke it")
      assert.strictEqual(yield* Queue.take(seen), "later")
    }).pipe(
      Effect.provide(
        watchesStartingWith((path) =>
          Effect.gen(function* () {
            yield* Effect.orDie(
              (yield* FileSystem.FileSystem).writeFileString(`${path}/note`, "written at the watch's start")
            )
            yield* (yield* TestWatches).touch(`${path}/note`)
          })
        )
      )
    )
  )

  it.scoped("1,000 file events make a bounded number of reads, and events the filter refuses none", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const watches = yield* TestWatches
      const dir = yield* fs.makeTempDirectoryScoped()
      const reads = yield* Ref.make<ReadonlyArray<Wake>>([])
      const release = yield* Deferred.make<void>()
      yield* wakes({ dir, accept: (path) => path.endsWith(".db"), fallback: "5 seconds" }).pipe(
        Stream.runForEach((wake) =>
          Effect.zipRight(
            Ref.update(reads, (all) => [...all, wake]),
            // The first read is slow: the burst lands while it runs.
            wake === "start" ? Deferred.await(release) : Effect.void
          )
        ),
        Effect.forkScoped
      )
      assert.isTrue(yield* eventually(Effect.map(Ref.get(reads), (r) => r.length === 1)))
      for (let i = 0; i < 1_000; i++) yield* watches.touch(`${dir}/state.db`)
      for (let i = 0; i < 1_000; i++) yield* watches.touch(`${dir}/other.txt`)
      yield* Deferred.succeed(release, undefined)
      assert.isTrue(yield* eventually(Effect.map(Ref.get(reads), (r) => r.length >= 2)))
      for (let i = 0; i < 50; i++) yield* turn
      assert.deepStrictEqual(yield* Ref.get(reads), ["start", "watch"])

      // A burst while the reader is idle: still a bounded number of reads.
      for (let i = 0; i < 1_000; i++) yield* watches.touch(`${dir}/state.db`)
      for (let i = 0; i < 50; i++) yield* turn
      const idle = (yield* Ref.get(reads)).length - 2
      assert.isAtLeast(idle, 1)
      assert.isAtMost(idle, 10, `${idle} reads for 1,000 events`)

      // The fallback wakes on the clock.
      yield* TestClock.adjust("5 seconds")
      assert.isTrue(yield* eventually(Effect.map(Ref.get(reads), (r) => r.at(-1) === "fallback")))
    }).pipe(Effect.provide(plain))
  )

  it.scoped("a folder that cannot be watched leaves the start and the fallback wakes, and says why once", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped()
      const reads = yield* Ref.make(0)
      const stops = yield* Ref.make<ReadonlyArray<string>>([])
      yield* wakes({
        dir: `${dir}/gone`,
        fallback: "2 seconds",
        onStop: (reason) => Ref.update(stops, (all) => [...all, reason])
      }).pipe(
        Stream.runForEach(() => Ref.update(reads, (n) => n + 1)),
        Effect.forkScoped
      )
      assert.isTrue(yield* eventually(Effect.map(Ref.get(reads), (n) => n === 1)))
      yield* TestClock.adjust("2 seconds")
      assert.isTrue(yield* eventually(Effect.map(Ref.get(reads), (n) => n === 2)))
      // The reader is told once why live wakes stopped (a view shows it).
      const told = yield* Ref.get(stops)
      assert.strictEqual(told.length, 1)
      assert.match(told[0] ?? "", /gone|ENOENT|no such/i)
    }).pipe(Effect.provide(NodeContext.layer))
  )
})

describe("Wakes.watchBackend (Node's fs.watch, coalesced)", () => {
  it.scopedLive("a create, many changes and a remove arrive as few chunks, one event per name, by kind", () =>
    Effect.gen(function* () {
      const fs = yield* FileSystem.FileSystem
      const dir = yield* fs.makeTempDirectoryScoped()
      const chunks = yield* Ref.make<ReadonlyArray<ReadonlyArray<FileSystem.WatchEvent>>>([])
      yield* fs.watch(dir).pipe(
        Stream.runForEachChunk((chunk) => Ref.update(chunks, (all) => [...all, [...chunk]])),
        Effect.forkScoped
      )
      yield* Effect.sleep(100)
      yield* fs.writeFileString(`${dir}/made`, "x")
      yield* Effect.sleep(100)
      // 500 writes within one turn of the event loop, then more within the next 20 ms.
      for (let i = 0; i < 500; i++) nodeFs.appendFileSync(`${dir}/log`, "y")
      yield* Effect.sleep(5)
      for (let i = 0; i < 500; i++) nodeFs.appendFileSync(`${dir}/log`, "z")
      yield* Effect.sleep(100)
      yield* fs.remove(`${dir}/made`)
      const seen = yield* eventuallyValue(chunks, (all) =>
        all.flat().some((event) => event._tag === "Remove" && event.path === "made")
      )
      const events = seen.flat()
      assert.isTrue(events.some((event) => event._tag === "Create" && event.path === "made"))
      assert.isTrue(events.some((event) => event._tag === "Update" && event.path === "log"))
      // Each chunk names each file once; 1,000 writes to `log` came in a few chunks.
      for (const chunk of seen) assert.strictEqual(new Set(chunk.map((event) => event.path)).size, chunk.length)
      assert.isAtMost(events.filter((event) => event.path === "log").length, 6)
    }).pipe(Effect.provide(NodeContext.layer.pipe(Layer.provide(watchBackend))))
  )
})

/** The value of `ref` once `check` holds of it (polled every 10 ms of real time, at most 5 s). */
const eventuallyValue = <A>(ref: Ref.Ref<A>, check: (a: A) => boolean) =>
  Effect.gen(function* () {
    for (let i = 0; i < 500; i++) {
      const value = yield* Ref.get(ref)
      if (check(value)) return value
      yield* Effect.sleep(10)
    }
    return yield* Ref.get(ref)
  })
