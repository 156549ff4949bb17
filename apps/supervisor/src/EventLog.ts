/**
 * The live {@link EventLog}: every event appended to the store, by this process or any other,
 * published once on a `PubSub` in id order.
 *
 * Other processes' appends are noticed without polling: every commit writes the database's
 * write-ahead log (`state.db-wal`), so a file-system watch on the state folder wakes a tail that
 * reads `events WHERE id > last` (one indexed range read) and publishes what it finds. A local
 * append calls `poke` to skip the watch. A slow fallback read (every `fallbackMs`, default 5 s)
 * covers file systems whose watches miss events.
 */
import { watch } from "node:fs"
import { EventLog, type TrailEvent } from "@trail/domain"
import { Database, Events } from "@trail/store"
import { Effect, Layer, PubSub, Queue, Schedule } from "effect"

const BATCH = 500

export const make = (options: { readonly stateDir: string; readonly fallbackMs?: number }) =>
  Effect.gen(function* () {
    const database = yield* Database.Database
    const pubsub = yield* Effect.acquireRelease(PubSub.unbounded<TrailEvent>(), PubSub.shutdown)
    const wake = yield* Queue.sliding<void>(1)
    let last = yield* database.read(Events.latestId)

    const drain = Effect.gen(function* () {
      for (;;) {
        const batch = yield* database.read((db) => Events.since(db, last, BATCH))
        if (batch.length === 0) return
        last = batch[batch.length - 1]!.id
        yield* PubSub.publishAll(pubsub, batch)
        if (batch.length < BATCH) return
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
      Effect.zipRight(drain),
      Effect.catchAll((error) => Effect.logWarning(`event tail: ${error.message}`)),
      Effect.forever,
      Effect.forkScoped
    )
    yield* wake.offer(undefined).pipe(Effect.repeat(Schedule.spaced(options.fallbackMs ?? 5_000)), Effect.forkScoped)

    return EventLog.of({
      since: (after, limit = 10_000) => database.read((db) => Events.since(db, after, limit)),
      subscribe: PubSub.subscribe(pubsub),
      poke: Effect.asVoid(wake.offer(undefined))
    })
  })

/** The EventLog of the root whose state folder is `stateDir`; needs the Database. */
export const layer = (options: { readonly stateDir: string; readonly fallbackMs?: number }) =>
  Layer.scoped(EventLog, make(options))
