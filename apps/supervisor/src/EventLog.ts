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
 * file event). So a wake by the watch that finds nothing new reads again after 5, 25 and 100 ms
 * of wall-clock time (the writer is another process; its progress is not on our Clock). A poke or
 * the fallback read never waits: a poke follows a commit already visible.
 *
 * The watch is @effect/platform's `FileSystem.watch`; tests drive it (`Processes.watchesTest`) or
 * poke.
 */
import * as FileSystem from "@effect/platform/FileSystem"
import * as SqlClient from "@effect/sql/SqlClient"
import { EventLog, type TrailEvent } from "@trail/domain"
import { Database, Events } from "@trail/store"
import { Substrate, Wakes } from "@trail/workers"
import { Cause, Effect, Layer, PubSub, Queue, Stream } from "effect"

const BATCH = 500

export const make = (options: { readonly stateDir: string; readonly fallbackMs?: number }) =>
  Effect.gen(function* () {
    const sql = yield* SqlClient.SqlClient
    const fs = yield* FileSystem.FileSystem
    const since = (after: number, limit: number) =>
      Events.sinceSql(after, limit).pipe(Database.orStoreError, Effect.provideService(SqlClient.SqlClient, sql))
    const pubsub = yield* Effect.acquireRelease(PubSub.unbounded<TrailEvent>(), PubSub.shutdown)
    let last = yield* Events.latestIdSql.pipe(Database.orStoreError, Effect.provideService(SqlClient.SqlClient, sql))

    /** Publishes every event after `last`; returns how many. */
    const drain = Effect.gen(function* () {
      let published = 0
      for (;;) {
        const batch = yield* since(last, BATCH)
        const newest = batch.at(-1)
        if (newest === undefined) return published
        last = newest.id
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

/** The EventLog of the root whose state folder is `stateDir`; needs the store\'s SqlClient and FileSystem. */
export const layer = (options: { readonly stateDir: string; readonly fallbackMs?: number }) =>
  Layer.scoped(EventLog, make(options))
