/**
 * Appending to and reading the `events` table, so that a state change and the event recording it
 * commit in one transaction (ARCHITECTURE, "Data flow"): inside a unit of work of the
 * {@link Database} (`append`, `since`, `ofSubject`, `latestId` on a {@link Connection}) or inside
 * a `SqlClient` transaction (the `*Sql` effects). Rows are decoded; a row that is not an event is
 * `corrupt`.
 */
import * as SqlClient from "@effect/sql/SqlClient"
import type { SqlError } from "@effect/sql/SqlError"
import * as SqlSchema from "@effect/sql/SqlSchema"
import { type NewEvent, SubjectType, TrailEvent } from "@trail/domain"
import { Effect, type ParseResult, Predicate, Schema } from "effect"
import type { Connection } from "./Database.js"
import * as Rows from "./Rows.js"

const INSERT = `INSERT INTO events (at, type, subject_type, subject_id, data) VALUES (?, ?, ?, ?, ?) RETURNING id`
const SINCE = `SELECT id, at, type, subject_type, subject_id, data FROM events WHERE id > ? ORDER BY id LIMIT ?`
const SUBJECT = `SELECT id, at, type, subject_type, subject_id, data FROM events
  WHERE subject_type = ? AND subject_id = ? ORDER BY id`
// AUTOINCREMENT's counter: the newest id ever given, still right once the table's older events
// were archived or every event was (the next append gets the id after it).
const LATEST = `SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)`

const appended = (id: number, event: NewEvent): TrailEvent => ({ id, ...event, data: { ...event.data } })

/** Appends `event` in a unit of work; returns it with its id. */
export const append = (db: Connection, event: NewEvent): TrailEvent => {
  const id = db.pluck(INSERT, event.at, event.type, event.subject.type, event.subject.id, JSON.stringify(event.data))
  if (typeof id !== "number") throw new Rows.RowShapeError("id", id)
  return appended(id, event)
}

const subjectTypes = SubjectType.literals

/**
 * The event its stored fields make, each checked (throws {@link Rows.RowShapeError}): the one
 * decoder of the `events` rows here and of the archive's lines (Archive.ts). `data` is the parsed
 * object. The event is a plain record of `TrailEvent`'s fields, not an instance of its class: a
 * rebuild decodes every event of the log, and the class's constructor cost as much as the rest
 * of the decode (issue 14).
 */
export const eventOf = (
  id: unknown,
  at: unknown,
  type: unknown,
  subjectType: unknown,
  subjectId: unknown,
  data: unknown
): TrailEvent => {
  if (!Predicate.isRecord(data)) throw new Rows.RowShapeError("data", data)
  return {
    id: Rows.asInt(id, "id"),
    at: Rows.asNum(at, "at"),
    type: Rows.asText(type, "type"),
    subject: {
      type: Rows.asOneOf(subjectType, "subject_type", subjectTypes),
      id: Rows.asText(subjectId, "subject_id")
    },
    data
  }
}

/** A row of `SELECT ${COLUMNS}` read raw (`Connection.raw`), from column `offset` on. */
const decode = (value: unknown, offset = 0): TrailEvent => {
  const cells = Rows.cells(value, "event")
  const raw = Rows.asText(cells[offset + 5], "data")
  let data: unknown
  try {
    data = JSON.parse(raw)
  } catch {
    throw new Rows.RowShapeError("data", raw)
  }
  if (!Predicate.isRecord(data)) throw new Rows.RowShapeError("data", raw)
  return eventOf(cells[offset], cells[offset + 1], cells[offset + 2], cells[offset + 3], cells[offset + 4], data)
}

/** Events with id > `after`, oldest first, at most `limit`. */
export const since = (db: Connection, after: number, limit: number): Array<TrailEvent> =>
  db.raw(SINCE, after, limit).map((row) => decode(row))

/** Every event about one subject, oldest first. */
export const ofSubject = (db: Connection, type: SubjectType, id: string): Array<TrailEvent> =>
  db.raw(SUBJECT, type, id).map((row) => decode(row))

/** The id of the newest event appended (0 when there is none), archived or not. */
export const latestId = (db: Connection): number => Number(db.pluck(LATEST))

// ---------------------------------------------------------------------------------------------
// Windows of the log, read in pages of bounded size (`trail log`, `trail events`, the archive).

/**
 * A table holding events: the log itself, or the connection's scratch copy of archived events
 * (Archive.ts) that `trail log` groups beside it. Both have the `events` columns and an index on
 * (subject_type, subject_id, id).
 */
export type Source = "events" | "temp.archived_events"

/** Creates the connection's empty scratch table for archived events (dropped by {@link dropScratch}). */
export const createScratch = (db: Connection): void => {
  db.run(`DROP TABLE IF EXISTS temp.archived_events`)
  db.run(`CREATE TEMP TABLE archived_events (
    id INTEGER PRIMARY KEY, at INTEGER NOT NULL, type TEXT NOT NULL,
    subject_type TEXT NOT NULL, subject_id TEXT NOT NULL, data TEXT NOT NULL)`)
  db.run(`CREATE INDEX temp.archived_events_by_subject ON archived_events (subject_type, subject_id, id)`)
}

/** Copies `events` into the scratch table (in one transaction of the caller's). */
export const toScratch = (db: Connection, events: ReadonlyArray<TrailEvent>): void => {
  for (const e of events)
    db.run(
      `INSERT OR IGNORE INTO temp.archived_events (id, at, type, subject_type, subject_id, data) VALUES (?, ?, ?, ?, ?, ?)`,
      e.id,
      e.at,
      e.type,
      e.subject.type,
      e.subject.id,
      JSON.stringify(e.data)
    )
}

export const dropScratch = (db: Connection): void => void db.run(`DROP TABLE IF EXISTS temp.archived_events`)

const COLUMNS = "id, at, type, subject_type, subject_id, data"

/** Events of `source` with `after` < id ≤ `upTo`, oldest first, at most `limit`. */
export const between = (db: Connection, source: Source, after: number, upTo: number, limit: number) =>
  db
    .raw(`SELECT ${COLUMNS} FROM ${source} WHERE id > ? AND id <= ? ORDER BY id LIMIT ?`, after, upTo, limit)
    .map((row) => decode(row))

/** The id of the oldest event in the table (undefined when it is empty). */
export const oldestId = (db: Connection): number | undefined => {
  const id = db.pluck(`SELECT min(id) FROM events`)
  return typeof id === "number" ? id : undefined
}

/**
 * The id of the first event with `at` ≥ `at` (ms) in the table, or undefined. Reads in id order
 * and stops at the first match, so its cost is the number of events before it (no index on
 * `at`: times come from many processes' clocks and are not in id order, so a log cut by time is
 * cut at the first event at or after it).
 */
export const firstAtOrAfter = (db: Connection, at: number): number | undefined => {
  const id = db.pluck(`SELECT id FROM events WHERE at >= ? ORDER BY id LIMIT 1`, at)
  return typeof id === "number" ? id : undefined
}

/**
 * The id of the `n`-th newest event with id > `after` in the table (n ≥ 1), of one subject when
 * `subject` is given, or undefined when there are fewer.
 */
export const nthNewest = (
  db: Connection,
  after: number,
  n: number,
  subject?: { readonly type: SubjectType; readonly id: string }
): number | undefined => {
  const id =
    subject === undefined
      ? db.pluck(`SELECT id FROM events WHERE id > ? ORDER BY id DESC LIMIT 1 OFFSET ?`, after, n - 1)
      : db.pluck(
          `SELECT id FROM events WHERE subject_type = ? AND subject_id = ? AND id > ? ORDER BY id DESC LIMIT 1 OFFSET ?`,
          subject.type,
          subject.id,
          after,
          n - 1
        )
  return typeof id === "number" ? id : undefined
}

/** How many events of the table have id > `after`. */
export const countAfter = (db: Connection, after: number): number =>
  Number(db.pluck(`SELECT count(*) FROM events WHERE id > ?`, after))

/**
 * Orders the window `after` < id ≤ `upTo` of `source` by episode into the connection's temporary
 * `log_order` (on disk: SQLite's temp store): each event's id beside the id of its subject's
 * first event in the window. One set-based statement; {@link orderedPage} then reads it in order.
 * Returns how many events the window holds.
 */
export const orderWindow = (
  db: Connection,
  source: Source,
  window: { readonly after: number; readonly upTo: number }
) => {
  db.run(`DROP TABLE IF EXISTS temp.log_order`)
  db.run(
    `CREATE TEMP TABLE log_order (first INTEGER NOT NULL, id INTEGER NOT NULL, PRIMARY KEY (first, id)) WITHOUT ROWID`
  )
  return db.run(
    `INSERT INTO temp.log_order (first, id)
      SELECT f.first, e.id FROM ${source} e JOIN (
        SELECT subject_type, subject_id, min(id) AS first FROM ${source} WHERE id > @after AND id <= @upTo
        GROUP BY subject_type, subject_id) f
      ON f.subject_type = e.subject_type AND f.subject_id = e.subject_id
      WHERE e.id > @after AND e.id <= @upTo`,
    { after: window.after, upTo: window.upTo }
  )
}

/** An event of an ordered window, beside the id of its episode's first event. */
export interface Ordered {
  readonly first: number
  readonly event: TrailEvent
}

/**
 * The next `limit` events of the window {@link orderWindow} ordered, after position
 * (`first`, `id`): episodes in the order of their first event, each one's events in id order.
 */
export const orderedPage = (
  db: Connection,
  source: Source,
  from: { readonly first: number; readonly id: number },
  limit: number
): Array<Ordered> =>
  db
    .raw(
      `SELECT o.first, e.id, e.at, e.type, e.subject_type, e.subject_id, e.data
        FROM temp.log_order o JOIN ${source} e ON e.id = o.id
        WHERE (o.first, o.id) > (?, ?) ORDER BY o.first, o.id LIMIT ?`,
      from.first,
      from.id,
      limit
    )
    .map((row) => ({ first: Rows.asInt(Rows.cells(row, "ordered")[0], "first"), event: decode(row, 1) }))

export const dropOrder = (db: Connection): void => void db.run(`DROP TABLE IF EXISTS temp.log_order`)

/** Events of one subject in `source` with `after` < id ≤ `upTo`, oldest first, at most `limit`. */
export const ofSubjectBetween = (
  db: Connection,
  source: Source,
  subject: { readonly type: SubjectType; readonly id: string },
  after: number,
  upTo: number,
  limit: number
) =>
  db
    .raw(
      `SELECT ${COLUMNS} FROM ${source} WHERE subject_type = ? AND subject_id = ? AND id > ? AND id <= ? ORDER BY id LIMIT ?`,
      subject.type,
      subject.id,
      after,
      upTo,
      limit
    )
    .map((row) => decode(row))

/** Deletes the events with id ≤ `upTo` (after they were archived); returns how many. */
export const deleteUpTo = (db: Connection, upTo: number): number => db.run(`DELETE FROM events WHERE id <= ?`, upTo)

// ---------------------------------------------------------------------------------------------
// The same through SqlClient (inside `Database.transaction` when it writes).

/** An `events` row as stored: `data` is a JSON object. */
const EventRow = Schema.Struct({
  id: Schema.Int,
  at: Schema.Number,
  type: Schema.String,
  subject_type: SubjectType,
  subject_id: Schema.String,
  data: Schema.parseJson(TrailEvent.fields.data)
})

/** A stored row decoded to the domain's event. */
export const EventFromRow = Schema.transform(EventRow, TrailEvent, {
  strict: true,
  decode: (row) => ({
    id: row.id,
    at: row.at,
    type: row.type,
    subject: { type: row.subject_type, id: row.subject_id },
    data: row.data
  }),
  encode: (event) => ({
    id: event.id,
    at: event.at,
    type: event.type,
    subject_type: event.subject.type,
    subject_id: event.subject.id,
    data: event.data
  })
})

type SqlEffect<A> = Effect.Effect<A, SqlError | ParseResult.ParseError, SqlClient.SqlClient>

const IdRow = Schema.Struct({ id: Schema.Int })

/** Appends `event` through SqlClient (in the caller's transaction); returns it with its id. */
export const appendSql = (event: NewEvent): SqlEffect<TrailEvent> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    SqlSchema.single({
      Request: Schema.Void,
      Result: IdRow,
      execute: () =>
        sql`INSERT INTO events ${sql.insert({
          at: event.at,
          type: event.type,
          subject_type: event.subject.type,
          subject_id: event.subject.id,
          data: JSON.stringify(event.data)
        })} RETURNING id`
    })(undefined).pipe(
      Effect.catchTag("NoSuchElementException", () => Effect.dieMessage("INSERT … RETURNING returned no row")),
      Effect.map((row) => appended(row.id, event))
    )
  )

/** The events a query over the `events` table selects, decoded, through SqlClient. */
const eventsWhere = (
  query: (sql: SqlClient.SqlClient, columns: string) => ReturnType<SqlClient.SqlClient["unsafe"]>
): SqlEffect<ReadonlyArray<TrailEvent>> =>
  Effect.flatMap(SqlClient.SqlClient, (sql) =>
    SqlSchema.findAll({
      Request: Schema.Void,
      Result: EventFromRow,
      execute: () => query(sql, "id, at, type, subject_type, subject_id, data")
    })(undefined)
  )

/** Events with id > `after`, oldest first, at most `limit`, through SqlClient. */
export const sinceSql = (after: number, limit: number) =>
  eventsWhere(
    (sql, columns) => sql`SELECT ${sql.literal(columns)} FROM events WHERE id > ${after} ORDER BY id LIMIT ${limit}`
  )

/** Every event about one subject, oldest first, through SqlClient. */
export const ofSubjectSql = (type: SubjectType, id: string) =>
  eventsWhere(
    (sql, columns) =>
      sql`SELECT ${sql.literal(columns)} FROM events WHERE subject_type = ${type} AND subject_id = ${id} ORDER BY id`
  )

const LatestRow = Schema.Struct({ latest: Schema.Int })

/** The id of the newest event appended (0 when there is none), archived or not, through SqlClient. */
export const latestIdSql: SqlEffect<number> = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  SqlSchema.single({
    Request: Schema.Void,
    Result: LatestRow,
    execute: () => sql`SELECT coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0) AS latest`
  })(undefined).pipe(
    Effect.map((row) => row.latest),
    Effect.catchTag("NoSuchElementException", () => Effect.succeed(0))
  )
)

/** Events with `after` < id ≤ `upTo`, oldest first, at most `limit`, through SqlClient. */
export const betweenSql = (after: number, upTo: number, limit: number) =>
  eventsWhere(
    (sql, columns) =>
      sql`SELECT ${sql.literal(columns)} FROM events WHERE id > ${after} AND id <= ${upTo} ORDER BY id LIMIT ${limit}`
  )

const OldestRow = Schema.Struct({ oldest: Schema.NullOr(Schema.Int) })

/** The id of the oldest event in the table (undefined when it is empty), through SqlClient. */
export const oldestIdSql: SqlEffect<number | undefined> = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  SqlSchema.single({
    Request: Schema.Void,
    Result: OldestRow,
    execute: () => sql`SELECT min(id) AS oldest FROM events`
  })(undefined).pipe(
    Effect.map((row) => row.oldest ?? undefined),
    Effect.catchTag("NoSuchElementException", () => Effect.succeed(undefined))
  )
)
