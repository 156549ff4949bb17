/**
 * `trail gc --archive-before DATE`: the events logged before DATE leave the table for
 * `.trail/archive/` (Archive.ts), once every projection folded from the log is current past
 * them, so that nothing is lost and `--rebuild` reads them back from the archive.
 */
import * as Options from "@effect/cli/Options"
import { liveWorkerStates, StoreError } from "@trail/domain"
import type * as SqlClient from "@effect/sql/SqlClient"
import { Search } from "@trail/checkpoints"
import { Archive, Database, Events } from "@trail/store"
import { Inbox } from "@trail/workers"
import { Live } from "@trail/supervisor"
import { Effect, Option } from "effect"
import { parseDate } from "./LogReading.js"
import { Root, rootLayer } from "./WorkerCommands.js"

/** A projection of the event log: `current` brings it up to date and gives the id of the last event it has folded. */
interface Projection<R> {
  readonly name: string
  readonly current: Effect.Effect<number, StoreError, R>
}

/**
 * Every projection that folds the event log (and so rebuilds from it): each is brought current
 * before events are archived, and archiving stops if one is not past them. A new projection of
 * events belongs here. (Suspended: the libraries load on first access, see apps/cli/build.mjs.)
 */
export const projections = [
  {
    name: "inbox",
    // A catch-up folds every event appended before it began: the newest id read first is folded after it.
    current: Effect.suspend(() =>
      Effect.flatMap(Inbox.Inbox, (inbox) =>
        Effect.flatMap(Database.Database, (database) => Effect.zipLeft(database.read(Events.latestId), inbox.catchUp))
      )
    )
  },
  { name: "search", current: Effect.suspend(() => Effect.map(Search.catchUp, (caughtUp) => caughtUp.last_event_id)) },
  // The checkpoint index (Checkpoints.rebuildIndex) and the workers table are written in the
  // transaction of each event they fold: always current.
  {
    name: "checkpoints",
    current: Effect.suspend(() => Effect.flatMap(Database.Database, (database) => database.read(Events.latestId)))
  }
] as const satisfies ReadonlyArray<Projection<Inbox.Inbox | Database.Database | SqlClient.SqlClient>>

export const archiveBeforeOption = Options.text("archive-before").pipe(
  Options.optional,
  Options.withDescription(
    "Move the events logged before this ISO-8601 date/time (2026-11-01, UTC) to .trail/archive/events-<YYYY-MM>.ndjson.gz, once the inbox and every other projection is current past them (the log's prefix up to the first event at or after it)."
  )
)

/** Root + the Inbox over the Database (what bringing the projections current needs). */
const ArchiveLive = rootLayer((settings) => Live.inboxLayer(settings))

/**
 * Where a live worker's own events begin: they stay in the table (a live worker reads its log:
 * `Workers.tell` folds its events to know whether a permission dialog is open, and text typed into
 * an open dialog must deny first, never approve). Undefined when no worker is live. (A function:
 * @trail/domain is loaded on first use, see build.mjs.)
 */
const firstOfLiveWorker = () => `SELECT min(e.id) FROM workers w JOIN events e
  ON e.subject_type = 'worker' AND e.subject_id = w.id
  WHERE w.state IN (${liveWorkerStates.map((state) => `'${state}'`).join(", ")})`

/** `--archive-before`'s date (ms), parsed before gc does anything: a UsageError when it is not one. */
export const archiveDate = (option: Option.Option<string>) =>
  Effect.transposeOption(Option.map(option, (text) => parseDate("--archive-before", text)))

/**
 * Archives the prefix of the log logged before `before` (ms): up to the first event at or after
 * it, and never a live worker's events. Nothing to archive is a clean zero.
 */
export const archiveBefore = (before: number) =>
  Effect.gen(function* () {
    const database = yield* Database.Database
    const upTo = yield* database.read((db) => {
      const first = Events.firstAtOrAfter(db, before)
      const oldest = Events.oldestId(db)
      if (oldest === undefined || first === oldest) return 0
      const live = db.pluck(firstOfLiveWorker())
      const cut = first === undefined ? Events.latestId(db) : first - 1
      return typeof live === "number" ? Math.min(cut, live - 1) : cut
    })
    if (upTo < 1) return { archived_events: 0, deleted_events: 0, up_to: 0, files: [] } satisfies Archive.Archived
    for (const projection of projections) {
      const last = yield* projection.current
      if (last < upTo)
        return yield* new StoreError({
          reason: "busy",
          detail: `the ${projection.name} projection has folded events up to ${last}, not past ${upTo}: nothing archived`
        })
    }
    const archiveDir = Archive.dirOf((yield* Root).project.databaseFile)
    return yield* Archive.archive(archiveDir, upTo)
  }).pipe(Effect.provide(ArchiveLive))

/** {@link archiveBefore} when a date was given. */
export const archiveIfAsked = (before: Option.Option<number>) =>
  Option.match(before, {
    onNone: () => Effect.succeed(Option.none<Archive.Archived>()),
    onSome: (ms) => Effect.map(archiveBefore(ms), Option.some)
  })
