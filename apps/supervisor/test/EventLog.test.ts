/**
 * The live EventLog on a real SQLite file in a temp dir. Events are appended the way trail
 * appends them (a worker's lifecycle through the Workers service), in this connection or in
 * another one on the same file (what another trail process does). Real time: the point is the
 * file-system watch that wakes the tail.
 */
import { assert, describe, it } from "@effect/vitest"
import { defaultConfig, EventLog, type TrailEvent } from "@trail/domain"
import { Database, Events } from "@trail/store"
import { Processes, Substrate, Workers } from "@trail/workers"
import { IDLE_KIND, trustedRoot } from "@trail/workers/testing"
import { Duration, Effect, Fiber, Layer, Option, Queue } from "effect"
import * as EventLogLive from "../src/EventLog.js"
import * as Live from "../src/Live.js"

/** A root in a scoped temp dir with a trusted `idle` kind; the settings of its services. */
const makeRoot = Effect.map(trustedRoot("trail-eventlog-", { idle: IDLE_KIND }), (root): Live.RootSettings => ({
  project: {
    root: root.root,
    stateDir: root.stateDir,
    databaseFile: root.databaseFile,
    configFile: root.configFile
  },
  config: { ...defaultConfig, worker: { ...defaultConfig.worker, substrate: "process" } },
  trailCommand: ["true"],
  userKindsDir: root.userKindsDir
}))

/** Spawns an idle worker and kills it when the scope closes (keep that scope inside the Workers layer); returns its id. */
const spawnIdle = Effect.gen(function* () {
  const workers = yield* Workers.Workers
  const worker = yield* workers.spawn({ text: "look", kind: "idle" })
  yield* Effect.addFinalizer(() => Effect.ignore(workers.kill(worker.id)))
  return worker.id
})

/** Takes `n` events from `queue`, failing the test after 10 s rather than hanging. */
const takeN = (queue: Queue.Dequeue<TrailEvent>, n: number) =>
  Effect.forEach(Array.from({ length: n }), () => Queue.take(queue)).pipe(
    Effect.timeoutFail({ duration: Duration.seconds(10), onTimeout: () => new Error(`${n} events did not arrive`) })
  )

/** The EventLog and Workers over one connection; the fallback read is pushed out of the test's way. */
const local = (settings: Live.RootSettings) =>
  EventLogLive.layer({ stateDir: settings.project.stateDir, fallbackMs: 600_000 }).pipe(
    Layer.provideMerge(Live.workersLayer(settings))
  )

describe("EventLog", () => {
  it.live("since: the appended events after an id, oldest first, at most limit", () =>
    Effect.gen(function* () {
      const settings = yield* makeRoot
      yield* Effect.gen(function* () {
        const log = yield* EventLog
        assert.deepStrictEqual(yield* log.since(0), [])
        const id = yield* spawnIdle
        const all = yield* log.since(0)
        assert.deepStrictEqual(
          all.slice(0, 2).map((event) => [event.type, event.subject.id]),
          [
            ["worker.spawned", id],
            ["worker.running", id]
          ]
        )
        const ids = all.map((event) => event.id)
        assert.deepStrictEqual(
          ids,
          [...ids].sort((a, b) => a - b)
        )
        assert.strictEqual(new Set(ids).size, ids.length)
        const [first, second] = all
        assert.deepStrictEqual(yield* log.since(first?.id ?? -1), all.slice(1))
        assert.deepStrictEqual(yield* log.since(0, 1), all.slice(0, 1))
        assert.deepStrictEqual(yield* log.since(second?.id ?? -1, 0), [])
      }).pipe(Effect.scoped, Effect.provide(local(settings)))
    }).pipe(Effect.scoped, Effect.provide(Live.outside))
  )

  it.live("a subscriber gets each local append once, in id order", () =>
    Effect.gen(function* () {
      const settings = yield* makeRoot
      yield* Effect.gen(function* () {
        const log = yield* EventLog
        const subscription = yield* log.subscribe
        yield* spawnIdle
        yield* log.poke
        const written = yield* log.since(0)
        const seen = yield* takeN(subscription, written.length)
        assert.deepStrictEqual(
          seen.map((event) => event.id),
          written.map((event) => event.id)
        )
        // A second worker's events come next: nothing of the first is published again.
        const second = yield* spawnIdle
        yield* log.poke
        const [next] = yield* takeN(subscription, 1)
        assert.deepStrictEqual([next?.type, next?.subject.id], ["worker.spawned", second])
      }).pipe(Effect.scoped, Effect.provide(local(settings)))
    }).pipe(Effect.scoped, Effect.provide(Live.outside))
  )

  it.live("another connection's append reaches subscribers without a poke", () =>
    Effect.gen(function* () {
      const settings = yield* makeRoot
      // The store exists before anything reads it (`trail init` migrates it): open it once to write.
      yield* Effect.provide(Effect.void, Live.workersLayer(settings))
      // This connection only reads: the EventLog over its own Database.
      const reader = EventLogLive.layer({ stateDir: settings.project.stateDir, fallbackMs: 600_000 }).pipe(
        Layer.provide(Database.layer({ filename: settings.project.databaseFile }))
      )
      yield* Effect.gen(function* () {
        const log = yield* EventLog
        const subscription = yield* log.subscribe
        // The writer: Workers over a second connection to the same file.
        // Scoped inside its layer: the worker is killed (more events) while that connection is open.
        const id = yield* spawnIdle.pipe(Effect.scoped, Effect.provide(Live.workersLayer(settings)))
        const [spawned] = yield* takeN(subscription, 1)
        assert.deepStrictEqual([spawned?.type, spawned?.subject.id], ["worker.spawned", id])
      }).pipe(Effect.scoped, Effect.provide(reader))
    }).pipe(Effect.scoped, Effect.provide(Live.outside))
  )

  it.live("a watch wake whose commit is visible only later publishes it within a look, not after a back-off", () =>
    Effect.gen(function* () {
      const settings = yield* makeRoot
      yield* Effect.provide(Effect.void, Live.workersLayer(settings))
      const wal = `${settings.project.stateDir}/state.db-wal`
      // The reader's watch is the test's: the wake comes when the test says, before the commit.
      const reader = EventLogLive.layer({ stateDir: settings.project.stateDir, fallbackMs: 600_000 }).pipe(
        Layer.provideMerge(Database.layer({ filename: settings.project.databaseFile })),
        Layer.provideMerge(Processes.watchesTest)
      )
      yield* Effect.gen(function* () {
        const log = yield* EventLog
        const watches = yield* Processes.TestWatches
        const subscription = yield* log.subscribe
        // Let the tail read once at its start.
        yield* Substrate.wallClockSleep(50)
        const woke = Date.now()
        yield* watches.touch(wal)
        // The commit becomes visible 40 ms after its wake (a writer descheduled between its WAL
        // write and its WAL-index update) and raises no other wake.
        yield* Substrate.wallClockSleep(40)
        // The writer: a second connection to the same file (another process's hook).
        const appended = yield* Effect.flatMap(Database.Database, (writer) =>
          writer.immediate((db) =>
            Events.append(db, {
              at: Date.now(),
              type: "session.stopped",
              subject: { type: "session", id: "s" },
              data: {}
            })
          )
        ).pipe(Effect.provide(Database.layer({ filename: settings.project.databaseFile })))
        const [event] = yield* takeN(subscription, 1)
        const after = Date.now() - woke
        assert.strictEqual(event?.id, appended.id)
        // The back-off it replaces looked again 5, 30 and 130 ms after the wake: this one was 130.
        assert.isBelow(after, 110, `published ${after} ms after its wake`)
        assert.isTrue(Option.isNone(yield* Queue.poll(subscription)))
      }).pipe(Effect.scoped, Effect.provide(reader))
    }).pipe(Effect.scoped, Effect.provide(Live.outside))
  )

  it.live(
    "settle looks at the version step by step until it changes; from a step on; the remaining steps, then null",
    () =>
      Effect.gen(function* () {
        let looks = 0
        // The version changes at the 12th look (the first after the 1 ms steps), then stays.
        const look = () => (++looks >= 12 ? 2 : 1)
        const changed = yield* EventLogLive.settle(look, 1)
        assert.deepStrictEqual(changed, { version: 2, next: 12 })
        assert.strictEqual(looks, 12)
        // Going on from there with the new version: the remaining steps' looks, then null.
        const started = Date.now()
        assert.isNull(yield* EventLogLive.settle(look, 2, 12))
        assert.strictEqual(looks, EventLogLive.SETTLE_STEPS_MS.length)
        // Real timers never fire early: the remaining steps' waits (22 of 5 ms), less Date.now's rounding.
        const remaining = EventLogLive.SETTLE_STEPS_MS.slice(12).reduce((sum, ms) => sum + ms, 0)
        assert.isAtLeast(Date.now() - started, remaining - 2)
      })
  )

  it.live(
    "settle: a look that throws counts as a change (the read after it reports); interrupting it stops its looks",
    () =>
      Effect.gen(function* () {
        const thrown = yield* EventLogLive.settle(() => {
          throw new Error("SQLITE_BUSY")
        }, 1)
        assert.deepStrictEqual(thrown, { version: 1, next: 1 })
        let looks = 0
        const fiber = yield* Effect.fork(
          EventLogLive.settle(() => {
            looks++
            return 1
          }, 1)
        )
        yield* Substrate.wallClockSleep(20)
        yield* Fiber.interrupt(fiber)
        const seen = looks
        assert.isAbove(seen, 0)
        yield* Substrate.wallClockSleep(30)
        assert.strictEqual(looks, seen, "no look after the interruption")
      })
  )
})
