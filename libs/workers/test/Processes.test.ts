/**
 * The Processes service: the live layer reads and watches a real exit file in a temp dir and
 * asks the kernel about real pids; the test layer is driven by the test.
 */
import { spawnSync } from "node:child_process"
import * as fs from "node:fs"
import * as path from "node:path"
import * as NodeContext from "@effect/platform-node/NodeContext"
import * as FileSystem from "@effect/platform/FileSystem"
import { assert, describe, it } from "@effect/vitest"
import { Chunk, Effect, Exit, Fiber, Layer, Option, Stream, TestClock } from "effect"
import { Processes, TestProcesses, TestWatches, wallClockSleep, watchesTest } from "../src/Processes.js"

/** One turn of Node's event loop (no clock moves). */
const turn = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

describe("Processes", () => {
  it.scoped("live: an exit record renamed into place wakes a waiter; none is read while the program runs", () =>
    Effect.gen(function* () {
      const dir = yield* Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped())
      const processes = yield* Processes
      assert.isTrue(Option.isNone(yield* processes.readExit(dir)))
      const waiter = yield* Effect.fork(processes.waitForExit(dir))
      // Past its first read (wall-clock: the writer is another process).
      yield* wallClockSleep(200)
      assert.isTrue(Option.isNone(yield* Fiber.poll(waiter)), "still waiting")
      // What the wrapper does: write a temporary file, then rename it onto `exit`.
      yield* Effect.sync(() => {
        fs.writeFileSync(path.join(dir, "exit.tmp"), "7\n")
        fs.renameSync(path.join(dir, "exit.tmp"), path.join(dir, "exit"))
      })
      // The watch wakes it long before the 2 s fallback read would.
      const status = yield* Effect.raceFirst(
        Fiber.join(waiter),
        Effect.zipRight(wallClockSleep(1_500), Effect.dieMessage("not woken by the watch"))
      )
      assert.strictEqual(status, 7)
      assert.deepStrictEqual(yield* processes.readExit(dir), Option.some(7))
      assert.isTrue(yield* processes.isAlive(process.pid))
    }).pipe(Effect.provide(Processes.Live.pipe(Layer.provideMerge(NodeContext.layer))))
  )

  it.scoped(
    "live: an exit recorded while the watch starts (its event unseen) ends the wait at once, with no clock moving",
    () =>
      Effect.gen(function* () {
        const dir = yield* Effect.flatMap(FileSystem.FileSystem, (fs) => fs.makeTempDirectoryScoped())
        const processes = yield* Processes
        const waiter = yield* Effect.fork(processes.waitForExit(dir))
        // Under the TestClock the fallback read never comes: only a read after the watch's start can see it.
        for (let i = 0; i < 1_000 && Option.isNone(yield* Fiber.poll(waiter)); i++) yield* turn
        assert.deepStrictEqual(yield* Fiber.poll(waiter), Option.some(Exit.succeed(9)))
      }).pipe(
        Effect.provide(
          Processes.Live.pipe(
            Layer.provideMerge(
              Layer.effect(
                FileSystem.FileSystem,
                Effect.gen(function* () {
                  const fs = yield* FileSystem.FileSystem
                  const watches = yield* TestWatches
                  // The wrapper records the exit as the watch starts, before it subscribes: its event is lost.
                  const recordExit = (dir: string) =>
                    Effect.zipRight(
                      Effect.orDie(fs.writeFileString(path.join(dir, "exit"), "9\n")),
                      watches.touch(path.join(dir, "exit"))
                    )
                  return { ...fs, watch: (dir: string) => Stream.unwrap(Effect.as(recordExit(dir), fs.watch(dir))) }
                })
              ).pipe(Layer.provide(watchesTest), Layer.provide(NodeContext.layer))
            )
          )
        )
      )
  )

  it.scoped("live: aliveAmong answers for every pid at once, this process alive and an ended one not", () =>
    Effect.gen(function* () {
      const processes = yield* Processes
      // A child that has ended and been reaped: its pid no longer exists.
      const ended = spawnSync("true").pid
      const answers = yield* processes.aliveAmong([process.pid, ended], "5 seconds")
      assert.deepStrictEqual(
        [...answers],
        [
          [process.pid, true],
          [ended, false]
        ]
      )
    }).pipe(Effect.provide(Processes.Live.pipe(Layer.provideMerge(NodeContext.layer))))
  )

  it.scoped("test: aliveAmong leaves a stalled pid out after the timeout and answers for the others", () =>
    Effect.gen(function* () {
      const processes = yield* Processes
      const control = yield* TestProcesses
      const [alive, dead, stalled] = [yield* control.start, yield* control.start, yield* control.start]
      yield* control.exit(dead, "/w/dead")
      assert.deepStrictEqual(
        [...(yield* processes.aliveAmong([alive, dead], "5 seconds"))],
        [
          [alive, true],
          [dead, false]
        ]
      )
      yield* control.stall(stalled)
      const check = yield* Effect.fork(processes.aliveAmong([alive, stalled, dead], "5 seconds"))
      // Once the check sleeps on the clock.
      for (let i = 0; i < 1_000 && Chunk.isEmpty(yield* TestClock.sleeps()); i++) yield* turn
      yield* TestClock.adjust("4999 millis")
      assert.isTrue(Option.isNone(yield* Fiber.poll(check)), "waits for the stalled one until the timeout")
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(
        [...(yield* Fiber.join(check))],
        [
          [alive, true],
          [dead, false]
        ]
      )
    }).pipe(Effect.provide(Processes.Test))
  )

  it.scoped(
    "test: pids live until the test ends them; a waiter sees the recorded status; a stalled check never answers",
    () =>
      Effect.gen(function* () {
        const processes = yield* Processes
        const control = yield* TestProcesses
        const pid = yield* control.start
        assert.isTrue(yield* processes.isAlive(pid))
        const waiter = yield* Effect.fork(processes.waitForExit("/w/1"))
        yield* control.exit(pid, "/w/1", 3)
        assert.strictEqual(yield* Fiber.join(waiter), 3)
        assert.isFalse(yield* processes.isAlive(pid))
        const other = yield* control.start
        yield* control.stall(other)
        const check = yield* Effect.fork(processes.isAlive(other))
        yield* Effect.yieldNow()
        assert.isTrue(Option.isNone(yield* Fiber.poll(check)))
        yield* Fiber.interrupt(check)
      }).pipe(Effect.provide(Processes.Test))
  )
})
