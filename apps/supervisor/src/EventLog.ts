/**
 * The live {@link EventLog}: every event appended to the store, by this process or any other,
 * published once on a `PubSub` in id order.
 *
 * Other processes' appends are noticed without polling: every commit writes the database's
 * write-ahead log (`state.db-wal`), so a file-system watch on the state folder wakes a tail that
 * reads `events WHERE id > last` (one indexed range read) and publishes what it finds. A local
 * append calls `poke` to skip the watch. A slow fallback read (every `fallbackMs`, default 5 s)
 * covers file systems whose watches miss events.
 *
 * The watch can fire before the commit is visible: SQLite appends the commit's frames to the WAL
 * (the write that wakes us) and only then updates the WAL index (shared memory, which raises no
 * file event). So a wake that finds nothing new reads again after 5, 25 and 100 ms of wall-clock
 * time (the writer is another process; its progress is not on our Clock).
 */
import { watch } from "node:fs"
import * as SqlClient from "@effect/sql/SqlClient"
import { EventLog, type TrailEvent } from "@trail/domain"
import { Database, Events } from "@trail/store"
import { Substrate } from "@trail/workers"
import { Effect, Layer, PubSub, Queue, Schedule } from "effect"

const BATCH = 500

export const make = (options: { readonly stateDir: string; readonly fallbackMs?: number }) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const since = (after: number, limit: number) =>
      Events.sinceSql(after, limit).pipe(Database.orStoreError, Effect.provideService(SqlClient.SqlClient, sql))
    const pubsub = yield* Effect.acquireRelease(PubSub.unbounded<TrailEvent>(), PubSub.shutdown)
    const wake = yield* Queue.sliding<void>(1)
    let last = yield* Events.latestIdSql.pipe(Database.orStoreError, Effect.provideService(SqlClient.SqlClient, sql))

    /** Publishes every event after `last`; returns how many. */
    const drain = Effect.gen(function* () {
      let published = 0
      for (;;) {
        const batch = yield* since(last, BATCH)
        if (batch.length === 0) return published
        last = batch[batch.length - 1]!.id
        published += batch.length
        yield* PubSub.publishAll(pubsub, batch)
        if (batch.length < BATCH) return published
      }
    })
    const drainSettled = Effect.gen(function* () {
      if ((yield* drain) > 0) return
      for (const ms of [5, 25, 100]) {
        yield* Substrate.wallClockSleep(ms)
        if ((yield* drain) > 0) return
      }
    })

    yield* Effect.acquireRelease(
      Effect.sync(() => {
        const watcher = watch(options.stateDir, { persistent: false }, (_event, file) => {
          if (file === null || file.startsWith("state.db")) wake.unsafeOffer(undefined)
        })
        watcher.on("error", () => undefined)
        return watcher
      }),
      (watcher) => Effect.sync(() => watcher.close())
    )
    yield* Queue.take(wake).pipe(
      Effect.zipRight(Queue.takeAll(wake)),
      Effect.zipRight(drainSettled),
      Effect.catchAll((error) => Effect.logWarning(`event tail: ${error.message}`)),
      Effect.forever,
      Effect.forkScoped
    )
    yield* wake.offer(undefined).pipe(Effect.repeat(Schedule.spaced(options.fallbackMs ?? 5_000)), Effect.forkScoped)

    return EventLog.of({
      since: (after, limit = 10_000) => since(after, limit),
      subscribe: PubSub.subscribe(pubsub),
      poke: Effect.asVoid(wake.offer(undefined))
    })
  })

/** The EventLog of the root whose state folder is `stateDir`; needs the store's SqlClient. */
export const layer = (options: { readonly stateDir: string; readonly fallbackMs?: number }) =>
  Layer.scoped(EventLog, make(options))
