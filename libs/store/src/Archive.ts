/**
 * The archive of the event log (SPEC "Storage"): `trail gc --archive-before DATE` moves a prefix
 * of the `events` table into `.trail/archive/events-<YYYY-MM>.ndjson.gz`, one file per UTC month
 * of the events' `at`, each line one event as `trail events` prints it. The log stays
 * authoritative: {@link events} reads every archived event in id order, then the table's, so a
 * projection rebuilt from it ({@link events} with `after` 0) sees the whole history.
 *
 * Writing is crash-safe in this order: each month file is copied beside itself, the new events
 * are appended to the copy as one more gzip member (RFC 1952 §2.2: a gzip file is a series of
 * members; Node's gunzip reads them all), the copy is fsynced and renamed over the file, the
 * folder is fsynced, and only then are the rows deleted, {@link BATCH} ids per immediate
 * transaction (one delete of a million rows would hold the write lock for minutes, longer than a
 * hook waits for it). A crash before or between the deletes leaves events in both places; a
 * re-run archives them again, and the reader drops an id it has already given (ids only grow),
 * so nothing is lost or read twice.
 *
 * Memory is bounded: the writer holds one page of the table, the reader one line per month file
 * (a k-way merge by id: a late event with an earlier clock lands in an earlier month's file) and
 * one batch.
 */
import { once } from "node:events"
import * as fs from "node:fs"
import * as path from "node:path"
import * as readline from "node:readline"
import * as stream from "node:stream"
import * as zlib from "node:zlib"
import { StoreError, type TrailEvent } from "@trail/domain"
import { Effect, Option, Predicate, Stream } from "effect"
import type * as SqlClient from "@effect/sql/SqlClient"
import * as Database from "./Database.js"
import * as Events from "./Events.js"
import * as Rows from "./Rows.js"

/** The archive folder under a root's state folder (`.trail/archive`). */
export const DIR = "archive"

/** The archive folder beside the store file `databaseFile` (`.trail/state.db` → `.trail/archive`). */
export const dirOf = (databaseFile: string): string => path.join(path.dirname(databaseFile), DIR)

/** How many events a page of the writer or a batch of the reader holds. */
export const BATCH = 5_000

const FILE = /^events-(\d{4})-(\d{2})\.ndjson\.gz$/

/** The file (name only) holding events logged in `at`'s UTC month: `events-2026-11.ndjson.gz`. */
export const fileName = (at: number): string => {
  const date = new Date(at)
  return `events-${String(date.getUTCFullYear()).padStart(4, "0")}-${String(date.getUTCMonth() + 1).padStart(2, "0")}.ndjson.gz`
}

const ioError = (what: string) => (cause: unknown) =>
  new StoreError({ reason: "io", detail: `${what}: ${cause instanceof Error ? cause.message : String(cause)}` })

/** The archive's month files in `dir` (absolute paths, oldest month first); none when there is no folder. */
export const files = (dir: string): Effect.Effect<Array<string>, StoreError> =>
  Effect.try({
    try: () =>
      fs.existsSync(dir)
        ? fs
            .readdirSync(dir)
            .filter((name) => FILE.test(name))
            .sort()
            .map((name) => path.join(dir, name))
        : [],
    catch: ioError(`reading ${dir}`)
  })

/** One archive line decoded (by Events' decoder, field by field: a Schema decode per line would dominate a rebuild). */
const decodeLine = (file: string, line: string): TrailEvent => {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch {
    throw new StoreError({ reason: "corrupt", detail: `${file} holds a line that is not JSON: ${line.slice(0, 80)}` })
  }
  try {
    const r = Rows.row(value, "event")
    const subject = Rows.row(r["subject"], "subject")
    return Events.eventOf(r["id"], r["at"], r["type"], subject["type"], subject["id"], r["data"])
  } catch (error) {
    throw new StoreError({
      reason: "corrupt",
      detail: `${file} holds a line that is not an event (${error instanceof Error ? error.message : String(error)})`
    })
  }
}

/** The events of one month file, in the file's order (ids increasing within a file). */
async function* fileEvents(file: string): AsyncGenerator<TrailEvent> {
  const source = fs.createReadStream(file)
  const input = zlib.createGunzip()
  // `pipe` would leave the file's errors (EACCES, ENOENT) unhandled, which ends the process:
  // the pipeline forwards them to `input`, where the line reader rethrows them.
  stream.pipeline(source, input, () => {})
  const lines = readline.createInterface({ input, crlfDelay: Infinity })
  try {
    for await (const line of lines) if (line !== "") yield decodeLine(file, line)
  } catch (error) {
    if (error instanceof StoreError) throw error
    // zlib's codes (Z_DATA_ERROR, Z_BUF_ERROR: not gzip, truncated) mean the file is corrupt.
    const code = Predicate.hasProperty(error, "code") ? String(error.code) : ""
    const message = error instanceof Error ? error.message : String(error)
    throw code.startsWith("Z_")
      ? new StoreError({ reason: "corrupt", detail: `${file} is not a readable gzip file (${message})` })
      : ioError(`reading ${file}`)(error)
  } finally {
    lines.close()
    source.destroy()
    input.destroy()
  }
}

/** Every archived event with id > `after` in id order, each id once, in batches of at most `batch`. */
async function* mergedBatches(paths: ReadonlyArray<string>, after: number, batch: number) {
  const sources = paths.map((file) => fileEvents(file))
  try {
    const heads: Array<TrailEvent | undefined> = []
    for (const source of sources) heads.push((await source.next()).value ?? undefined)
    let last = after
    let out: Array<TrailEvent> = []
    for (;;) {
      let min = -1
      for (let i = 0; i < heads.length; i++) {
        const head = heads[i]
        if (head !== undefined && (min === -1 || head.id < (heads[min]?.id ?? Infinity))) min = i
      }
      const event = heads[min]
      const source = sources[min]
      if (event === undefined || source === undefined) break
      heads[min] = (await source.next()).value ?? undefined
      if (event.id <= last) continue
      last = event.id
      out.push(event)
      if (out.length >= batch) {
        yield out
        out = []
      }
    }
    if (out.length > 0) yield out
  } finally {
    for (const source of sources) await source.return(undefined)
  }
}

/** Whether the month file `file` can hold an event at or after `at` (ms): its month ends after it. */
const endsAfter = (file: string, at: number) => {
  const match = FILE.exec(path.basename(file))
  return match === null || Date.UTC(Number(match[1]), Number(match[2]), 1) > at
}

/**
 * Every archived event with id > `after`, in id order, each id once, in batches of at most
 * {@link BATCH}; with `notBefore` (ms), only from the month files that can hold events at or
 * after it (the others are not read).
 */
export const archived = (
  dir: string,
  after = 0,
  notBefore?: number
): Stream.Stream<ReadonlyArray<TrailEvent>, StoreError> =>
  Stream.unwrap(
    Effect.map(files(dir), (paths) =>
      Stream.fromAsyncIterable(
        mergedBatches(
          notBefore === undefined ? paths : paths.filter((file) => endsAfter(file, notBefore)),
          after,
          BATCH
        ),
        (cause) => (cause instanceof StoreError ? cause : ioError(`reading the archive in ${dir}`)(cause))
      )
    )
  )

/** How {@link events} reads the `events` table: its oldest id, and pages of it in id order. */
export interface TableReader<R> {
  readonly oldest: Effect.Effect<number | undefined, StoreError, R>
  /** Events with `after` < id ≤ `upTo`, oldest first, at most `limit`. */
  readonly page: (after: number, upTo: number, limit: number) => Effect.Effect<ReadonlyArray<TrailEvent>, StoreError, R>
}

/** The table read through the unit of work's connection (fast; not inside a `Database.transaction`). */
export const unitOfWork: TableReader<Database.Database> = {
  oldest: Effect.flatMap(Database.Database, (database) => database.read(Events.oldestId)),
  page: (after, upTo, limit) =>
    Effect.flatMap(Database.Database, (database) =>
      database.read((db) => Events.between(db, "events", after, upTo, limit))
    )
}

/**
 * The table read through `SqlClient`: inside a `Database.transaction` (a projection's rebuild),
 * where the unit of work's connection would wait for the transaction's own lock.
 */
export const sqlClient: TableReader<SqlClient.SqlClient> = {
  oldest: Database.orStoreError(Events.oldestIdSql),
  page: (after, upTo, limit) => Database.orStoreError(Events.betweenSql(after, upTo, limit))
}

/**
 * The whole log after `after` (0: from the beginning), in id order and in batches of at most
 * {@link BATCH}: the archive's events, then the table's with higher ids, read page by page
 * through `reader` (`upTo`: stop after this id). Memory stays at one batch whatever the log's size.
 */
export const eventsWith =
  <R>(reader: TableReader<R>) =>
  (dir: string, after = 0, upTo = Number.MAX_SAFE_INTEGER): Stream.Stream<ReadonlyArray<TrailEvent>, StoreError, R> =>
    Stream.unwrap(
      Effect.gen(function* () {
        const oldest = yield* reader.oldest
        // The archive holds ids below the table's: read it only when the window reaches there.
        const fromArchive =
          oldest !== undefined && oldest <= after + 1
            ? Stream.empty
            : archived(dir, after).pipe(
                Stream.map((batch) => batch.filter((e) => e.id <= upTo && (oldest === undefined || e.id < oldest))),
                Stream.filter((batch) => batch.length > 0)
              )
        let last = after
        const fromTable = Stream.paginateEffect(true, (more) =>
          more
            ? Effect.map(
                reader.page(last, upTo, BATCH),
                (page): readonly [ReadonlyArray<TrailEvent>, Option.Option<boolean>] => {
                  const newest = page.at(-1)
                  if (newest !== undefined) last = newest.id
                  return [page, page.length === BATCH ? Option.some(true) : Option.none()]
                }
              )
            : Effect.succeed([[], Option.none()] as const)
        ).pipe(Stream.filter((page) => page.length > 0))
        return Stream.concat(
          fromArchive.pipe(
            Stream.tap((batch) =>
              Effect.sync(() => {
                last = Math.max(last, batch.at(-1)?.id ?? last)
              })
            )
          ),
          fromTable
        )
      })
    )

/** {@link eventsWith} the {@link unitOfWork} reader: `trail log`, `trail events`, anything outside a transaction. */
export const events = eventsWith(unitOfWork)

/** One month file being rewritten: a copy of it (if it exists) with a gzip member being appended. */
interface MonthWriter {
  readonly file: string
  readonly temporary: string
  readonly gzip: zlib.Gzip
  readonly done: Promise<void>
}

const openMonth = async (file: string): Promise<MonthWriter> => {
  const temporary = `${file}.${process.pid}.tmp`
  if (fs.existsSync(file)) await fs.promises.copyFile(file, temporary)
  else await fs.promises.writeFile(temporary, "", { mode: 0o600 })
  const gzip = zlib.createGzip()
  const out = fs.createWriteStream(temporary, { flags: "a" })
  gzip.pipe(out)
  const done = new Promise<void>((resolve, reject) => {
    out.on("finish", resolve)
    out.on("error", reject)
    gzip.on("error", reject)
  })
  return { file, temporary, gzip, done }
}

const fsync = async (file: string) => {
  const handle = await fs.promises.open(file, "r")
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/**
 * What {@link archive} moved: how many events were copied into the archive, how many of them were
 * deleted from the table (fewer when a projection fell behind meanwhile: the rest stay in both
 * places, harmless duplicates; absent when no delete ran), up to which id, and into which month
 * files (names).
 */
export interface Archived {
  readonly archived_events: number
  /** Of those, deleted from the table (fewer when a projection fell behind meanwhile: the rest stay, read once). */
  readonly deleted_events: number
  readonly up_to: number
  readonly files: ReadonlyArray<string>
}

/** The last event id the projection `table` (`inbox_state`, `search_state`) has folded; undefined without a row. */
const projectionLast = (db: Database.Connection, table: string): number | undefined => {
  const last = db.pluck(`SELECT last_event_id FROM ${table} WHERE id = 1`)
  return typeof last === "number" ? last : undefined
}

/**
 * Deletes the table's events with id ≤ `upTo`, {@link BATCH} ids per immediate transaction, so
 * that a hook never waits long for the write lock. Each transaction first checks that the
 * projections built from the table are still current past its chunk (the inbox's, and search's
 * when it has folded anything): a concurrent rebuild may have stored an older position, and its
 * catch-up needs the rows. Then it stops: the rows left are already archived, harmless
 * duplicates. Returns how many rows were deleted.
 */
const deleteArchived = (upTo: number): Effect.Effect<number, StoreError, Database.Database> =>
  Effect.gen(function* () {
    const database = yield* Database.Database
    const oldest = yield* database.read(Events.oldestId)
    let deleted = 0
    for (let below = (oldest ?? upTo + 1) - 1; below < upTo;) {
      const end = Math.min(below + BATCH, upTo)
      const chunk = yield* database.immediate((db) => {
        const search = projectionLast(db, "search_state")
        if ((projectionLast(db, "inbox_state") ?? 0) < end || (search !== undefined && search < end)) return undefined
        return Events.deleteUpTo(db, end)
      })
      if (chunk === undefined) break
      deleted += chunk
      below = end
    }
    return deleted
  })

/**
 * Moves the events with id ≤ `upTo` from the table into the month files of `dir` (created with
 * mode 0700), then deletes them from the table in chunks (see {@link deleteArchived} and the
 * module's note on the order). The caller has brought every projection current past `upTo`.
 * Fails with an `io` StoreError when a file cannot be written (the table is then untouched).
 */
export const archive = (dir: string, upTo: number): Effect.Effect<Archived, StoreError, Database.Database> =>
  Effect.gen(function* () {
    const database = yield* Database.Database
    const writers = new Map<string, MonthWriter>()
    const written = yield* Effect.tryPromise({
      try: async () => {
        await fs.promises.mkdir(dir, { recursive: true, mode: 0o700 })
        return writers
      },
      catch: ioError(`creating ${dir}`)
    }).pipe(
      Effect.zipRight(
        Effect.iterate(
          { last: 0, count: 0 },
          {
            while: ({ last }) => last >= 0,
            body: ({ last, count }) =>
              Effect.flatMap(
                database.read((db) => Events.between(db, "events", last, upTo, BATCH)),
                (page) =>
                  Effect.tryPromise({
                    try: async () => {
                      const byMonth = new Map<string, Array<string>>()
                      for (const event of page) {
                        const name = fileName(event.at)
                        const lines = byMonth.get(name) ?? []
                        lines.push(`${JSON.stringify(event)}\n`)
                        byMonth.set(name, lines)
                      }
                      for (const [name, lines] of byMonth) {
                        let writer = writers.get(name)
                        if (writer === undefined) {
                          writer = await openMonth(path.join(dir, name))
                          writers.set(name, writer)
                        }
                        if (!writer.gzip.write(lines.join(""))) await once(writer.gzip, "drain")
                      }
                      const newest = page.at(-1)
                      return newest === undefined || page.length < BATCH
                        ? { last: -1, count: count + page.length }
                        : { last: newest.id, count: count + page.length }
                    },
                    catch: ioError(`writing the archive in ${dir}`)
                  })
              )
          }
        )
      ),
      Effect.flatMap(({ count }) =>
        Effect.tryPromise({
          try: async () => {
            for (const writer of writers.values()) {
              writer.gzip.end()
              await writer.done
              await fsync(writer.temporary)
            }
            for (const writer of writers.values()) await fs.promises.rename(writer.temporary, writer.file)
            if (writers.size > 0) await fsync(dir)
            return count
          },
          catch: ioError(`writing the archive in ${dir}`)
        })
      ),
      Effect.onError(() =>
        Effect.sync(() => {
          for (const writer of writers.values()) {
            writer.gzip.destroy()
            fs.rmSync(writer.temporary, { force: true })
          }
        })
      )
    )
    const deleted = written > 0 ? yield* deleteArchived(upTo) : 0
    return { archived_events: written, deleted_events: deleted, up_to: upTo, files: [...writers.keys()].sort() }
  })
