/**
 * `trail log`'s forensic timeline (SPEC §3): the event log cut into episodes, one per subject
 * (a worker, a session, a supervisor): {@link episodes} groups events in memory; {@link stream}
 * reads a {@link window} of the log (archive and table) from the store with bounded memory.
 */
import type { StoreError, Subject, SubjectType, TrailEvent } from "@trail/domain"
import { Archive, Database, Events } from "@trail/store"
import { Effect, Option, Stream } from "effect"

/** Every event of one subject, in log order. */
export interface Episode {
  readonly subject: Subject
  readonly events: ReadonlyArray<TrailEvent>
}

/**
 * Groups `events` (in log order) by subject: one episode per subject, episodes in the order their
 * first event was logged, each episode's events in the order given.
 */
export const episodes = (events: Iterable<TrailEvent>): Array<Episode> => {
  const bySubject = new Map<string, { subject: Subject; events: Array<TrailEvent> }>()
  for (const event of events) {
    // A subject is its type and id together: a worker and a session may share an id.
    const key = `${event.subject.type}:${event.subject.id}`
    const episode = bySubject.get(key)
    if (episode === undefined) bySubject.set(key, { subject: event.subject, events: [event] })
    else episode.events.push(event)
  }
  return [...bySubject.values()]
}

// ---------------------------------------------------------------------------------------------
// The same, streamed from the store with bounded memory (`trail log`).

/** The ids a timeline covers: `after` < id ≤ `upTo`. */
export interface Window {
  readonly after: number
  readonly upTo: number
}

/** Where a window starts: after an event id, or at the first event logged at or after a time (ms). */
export type Since = { readonly id: number } | { readonly at: number }

/** A subject (the kind `trail log --worker/--session` narrows to). */
export type Only = { readonly type: SubjectType; readonly id: string }

/**
 * The window `--since` and `--limit` select, from the archive (in `archiveDir`) and the table:
 * from `since` (default: the beginning) up to the newest event now, cut to its newest `limit`
 * events (of `only`'s subject when given; its limit counts the table's events only).
 * A time is resolved to the first event logged at or after it (clocks of many processes are
 * not in id order; the log is cut by id).
 */
export const window = (
  archiveDir: string,
  options: { readonly since?: Since | undefined; readonly limit?: number | undefined; readonly only?: Only | undefined }
): Effect.Effect<Window, StoreError, Database.Database> =>
  Effect.gen(function* () {
    const database = yield* Database.Database
    const { upTo, oldest } = yield* database.read((db) => ({
      upTo: Events.latestId(db),
      oldest: Events.oldestId(db)
    }))
    const since = options.since
    let after = 0
    if (since !== undefined && "id" in since) after = since.id
    else if (since !== undefined) {
      // The archive holds the lower ids: its first event at or after the time comes first (only
      // the month files that can hold one are read); else the table's.
      const archived = yield* Archive.archived(archiveDir, 0, since.at).pipe(
        Stream.flattenIterables,
        Stream.filter((e) => e.at >= since.at && (oldest === undefined || e.id < oldest)),
        Stream.runHead
      )
      const first = Option.isSome(archived)
        ? archived.value.id
        : yield* database.read((db) => Events.firstAtOrAfter(db, since.at))
      after = first === undefined ? upTo : first - 1
    }
    const limit = options.limit
    if (limit === undefined) return { after, upTo }
    const newest = yield* database.read((db) => Events.nthNewest(db, after, limit, options.only))
    if (newest !== undefined) return { after: newest - 1, upTo }
    if (options.only !== undefined || (oldest !== undefined && oldest <= after + 1)) return { after, upTo }
    // Fewer than `limit` in the table: the rest are the archive's newest, found in one pass that
    // keeps the ids of the last `need` archived events it read (a ring).
    const need = limit - (yield* database.read((db) => Events.countAfter(db, after)))
    // Appends since the first read filled the table's part of the window: it is the table's.
    if (need <= 0) {
      const again = yield* database.read((db) => Events.nthNewest(db, after, limit, options.only))
      return { after: again === undefined ? after : again - 1, upTo }
    }
    const ring = new Float64Array(need)
    const read = yield* Archive.archived(archiveDir, after).pipe(
      Stream.runFold(0, (n, batch) => {
        for (const e of batch) if (oldest === undefined || e.id < oldest) ring[n++ % need] = e.id
        return n
      })
    )
    // The oldest id kept is the first of the window: the window starts after the id before it.
    return read <= need ? { after, upTo } : { after: (ring[read % need] ?? after + 1) - 1, upTo }
  })

/** A piece of a streamed timeline: some events of one episode, in log order. */
export interface Piece {
  readonly subject: Subject
  /** The episode's first piece (a new subject begins). */
  readonly first: boolean
  readonly events: ReadonlyArray<TrailEvent>
}

/**
 * The episodes of `window` (as {@link episodes} groups them), handed to `emit` piece by piece:
 * episodes in the order of their first event, each one's events in log order, in pieces of at
 * most {@link Archive.BATCH} events. SQLite orders the window once into a temporary table (on
 * disk: its temp store), read back page by page; archived events of the window are first copied
 * with the table's into a temporary table, so memory stays bounded whatever the log's size.
 * With `only`, the one episode of that subject.
 */
export const stream = <E, R>(
  archiveDir: string,
  window: Window,
  emit: (piece: Piece) => Effect.Effect<void, E, R>,
  only?: Only
): Effect.Effect<void, E | StoreError, Database.Database | R> =>
  Effect.gen(function* () {
    const database = yield* Database.Database
    const oldest = yield* database.read(Events.oldestId)
    const reachesArchive = oldest === undefined || oldest > window.after + 1
    const source: Events.Source = reachesArchive ? "temp.archived_events" : "events"
    const body = Effect.gen(function* () {
      if (reachesArchive) yield* copyWindow(archiveDir, window)
      if (only !== undefined) {
        let first = true
        let last = window.after
        for (;;) {
          const page = yield* database.read((db) =>
            Events.ofSubjectBetween(db, source, only, last, window.upTo, Archive.BATCH)
          )
          const newest = page.at(-1)
          if (newest === undefined) return
          yield* emit({ subject: newest.subject, first, events: page })
          first = false
          last = newest.id
          if (page.length < Archive.BATCH) return
        }
      }
      yield* database.read((db) => Events.orderWindow(db, source, window))
      let from = { first: 0, id: 0 }
      for (;;) {
        const page = yield* database.read((db) => Events.orderedPage(db, source, from, Archive.BATCH))
        const end = page.at(-1)
        if (end === undefined) return
        // One piece per run of the page's events that share an episode.
        let start = 0
        for (let i = 1; i <= page.length; i++) {
          const head = page[start]
          if (head === undefined) break
          if (i < page.length && page[i]?.first === head.first) continue
          const events = page.slice(start, i).map((o) => o.event)
          yield* emit({ subject: head.event.subject, first: head.event.id === head.first, events })
          start = i
        }
        from = { first: end.first, id: end.event.id }
      }
    })
    const cleanup = database.read((db) => {
      Events.dropOrder(db)
      if (reachesArchive) Events.dropScratch(db)
    })
    yield* Effect.ensuring(body, Effect.ignore(cleanup))
  })

/** Copies the window's events, the archived ones then the table's, into the scratch table. */
const copyWindow = (archiveDir: string, window: Window) =>
  Effect.flatMap(Database.Database, (database) => {
    const copy = (batch: ReadonlyArray<TrailEvent>) =>
      database.read((db) => {
        // A transaction of the temporary database only: the store's own file is not locked.
        db.run("BEGIN")
        try {
          Events.toScratch(db, batch)
          db.run("COMMIT")
        } catch (error) {
          db.run("ROLLBACK")
          throw error
        }
      })
    return Effect.zipRight(
      database.read(Events.createScratch),
      Stream.runForEach(Archive.events(archiveDir, window.after, window.upTo), copy)
    )
  })
