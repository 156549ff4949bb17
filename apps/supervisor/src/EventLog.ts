/**
 * The live {@link EventLog}: every event appended to the store, by this process or any other,
 * published once on a `PubSub` in id order.
 *
 * Other processes' appends are noticed without polling: every commit writes the database's
 * write-ahead log (`state.db-wal`), so a file-system watch on the state folder wakes a tail that
 * reads `events WHERE id > last` (one indexed range read) and publishes what it finds. A local
 * append calls `poke` to skip the watch. A slow fallback read (every `fallbackMs`, default 5 s, on
 * Effect's Clock) covers file systems whose watches miss events. The wakes are `Wakes.wakes`':
 * the tail first reads once the watch is up, and a burst of commits is one read.
 *
 * The watch can fire before the commit is visible: SQLite appends the commit's frames to the WAL
 * (the write that wakes us) and only then updates the WAL index (shared memory, which raises no
 * file event). A wake by the watch can also be no commit at all: this process's own writes on
 * the store's other connection (the inbox's fold), a checkpoint, the second WAL write of a commit
 * already read. So a wake by the watch that finds nothing new watches SQLite's
 * `PRAGMA data_version` on the store's unit-of-work connection (it changes when any other
 * connection has committed since the last look, ~3 µs a look; sqlite.org/pragma.html#pragma_data_version)
 * every {@link SETTLE_STEPS_MS} of wall-clock time, {@link SETTLE_MS} in all (the writer is
 * another process; its progress is not on our Clock), and reads again as soon as it changes
 * ({@link settle}: plain timers, one Effect for all the looks).
 * A newer commit is then read within a step, not after a fixed back-off of 5, 25 and 100 ms
 * (during which every newer wake waited too: up to 290 ms from wake to publish under the
 * hook-rate bench, docs/benchmarks.md). A poke or the fallback read never waits: a poke follows
 * a commit already visible. While idle nothing is polled: the looks follow a wake and end.
 *
 * The watch is @effect/platform's `FileSystem.watch`; tests drive it (`Processes.watchesTest`) or
 * poke.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as SqlClient from "@effect/sql/SqlClient"
import { EventLog, type TrailEvent } from "@trail/domain"
import { Database, Events } from "@trail/store"
import { Wakes } from "@trail/workers"
import { Cause, Effect, Layer, PubSub, Queue, Stream } from "effect"

const BATCH = 500

/**
 * The waits (wall-clock ms) between looks at `PRAGMA data_version` after a watch wake that found
 * nothing: 1 ms for the first 10 ms (a writer between its WAL write and its WAL-index update is
 * usually there), then 5 ms, {@link SETTLE_MS} in all (a writer descheduled in between on a
 * loaded machine).
 */
export const SETTLE_STEPS_MS: ReadonlyArray<number> = [
  ...Array.from({ length: 10 }, () => 1),
  ...Array.from({ length: 24 }, () => 5)
]

/** How long (wall-clock ms) a watch wake that found nothing keeps looking: the sum of {@link SETTLE_STEPS_MS}. */
export const SETTLE_MS = SETTLE_STEPS_MS.reduce((sum, ms) => sum + ms, 0)

/**
 * Looks at `look()` after each wait of {@link SETTLE_STEPS_MS} from step `from` on until it
 * differs from `seen`: then its value and the step to go on from, or null once the steps have run
 * out. Its looks run in plain JavaScript, one timer at a time, not as a fiber sleep and an effect
 * per look: a watch wake follows every commit (the supervisor's own renewals too), and the looks
 * through Effect allocated ~0.4 MB per renewal tick of 100 workers (docs/benchmarks.md, issue
 * 14). A look that throws counts as a change: the caller's read, which reports the error,
 * follows. Interrupting it clears its timer.
 */
export const settle = (
  look: () => unknown,
  seen: unknown,
  from = 0
): Effect.Effect<{ readonly version: unknown; readonly next: number } | null> =>
  Effect.async((resume) => {
    let step = from
    let timer: ReturnType<typeof setTimeout> | undefined
    const wait = () => {
      const ms = SETTLE_STEPS_MS[step++]
      if (ms === undefined) return resume(Effect.succeed(null))
      timer = setTimeout(lookNow, ms)
    }
    const lookNow = () => {
      let now: unknown
      try {
        now = look()
      } catch {
        return resume(Effect.succeed({ version: seen, next: step }))
      }
      if (now === seen) return wait()
      resume(Effect.succeed({ version: now, next: step }))
    }
    wait()
    return Effect.sync(() => clearTimeout(timer))
  })

export const make = (options: { readonly stateDir: string; readonly fallbackMs?: number }) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const database = yield* Database.Database
    const fs = yield* FileSystem.FileSystem
    const since = (after: number, limit: number) =>
      Events.sinceSql(after, limit).pipe(Database.orStoreError, Effect.provideService(SqlClient.SqlClient, sql))
    const pubsub = yield* Effect.acquireRelease(PubSub.unbounded<TrailEvent>(), PubSub.shutdown)
    let last = yield* Events.latestIdSql.pipe(Database.orStoreError, Effect.provideService(SqlClient.SqlClient, sql))

    /**
     * Publishes every event after `last`; returns how many. Read on the store's unit-of-work
     * connection (rows decoded by hand): through SqlClient and the row schema a read of 150 hook
     * events took ~3–5 ms of CPU, here ~0.3–0.6 ms (docs/benchmarks.md, hook-rate). This fiber is
     * forked outside any SqlClient transaction, so the read cannot wait for its own lock.
     */
    const drain = Effect.gen(function* () {
      let published = 0
      for (;;) {
        const after = last
        const batch = yield* database.read((db) => Events.since(db, after, BATCH))
        const newest = batch.at(-1)
        if (newest === undefined) return published
        last = newest.id
        published += batch.length
        yield* PubSub.publishAll(pubsub, batch)
        if (batch.length < BATCH) return published
      }
    })
    // The settle's looks call the connection from a timer, outside `read`: a read of its own (no
    // write lock: nothing of this process to wait for) on a connection whose units of work are
    // synchronous (none is open between them), open as long as this layer's scope.
    const look = yield* database.read((db) => () => db.pluck("PRAGMA data_version"))
    // The version is looked at before each read: a commit visible after it changes it.
    const version = database.read(look)
    const drainSettled = Effect.gen(function* () {
      let seen = yield* version
      if ((yield* drain) > 0) return
      let from = 0
      for (;;) {
        const changed = yield* settle(look, seen, from)
        if (changed === null) return
        seen = changed.version
        from = changed.next
        if ((yield* drain) > 0) return
      }
    })

    const base = (path: string) => path.slice(path.lastIndexOf("/") + 1)
    const pokes = yield* Queue.sliding<void>(1)
    // The watch is up before the first drain: a commit after `last` was read is drained then.
    yield* Wakes.wakes({
      dir: options.stateDir,
      accept: (path) => base(path).startsWith("state.db"),
      fallback: options.fallbackMs ?? 5_000,
      also: Stream.fromQueue(pokes)
    }).pipe(
      Stream.runForEach((wake) =>
        (wake === "watch" ? drainSettled : drain).pipe(
          Effect.catchAll((error) => Effect.logWarning("event tail", Cause.fail(error)))
        )
      ),
      Effect.provideService(FileSystem.FileSystem, fs),
      Effect.forkScoped
    )

    return EventLog.of({
      since: (after, limit = 10_000) => since(after, limit),
      subscribe: PubSub.subscribe(pubsub),
      poke: Effect.asVoid(Queue.offer(pokes, undefined))
    })
  })

/** The EventLog of the root whose state folder is `stateDir`; needs the store's Database, SqlClient and FileSystem. */
export const layer = (options: { readonly stateDir: string; readonly fallbackMs?: number }) =>
  Layer.scoped(EventLog, make(options))
