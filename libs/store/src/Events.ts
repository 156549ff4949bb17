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
const LATEST = `SELECT coalesce(max(id), 0) FROM events`

const appended = (id: number, event: NewEvent) =>
  new TrailEvent({ id, ...event, data: { ...event.data } }, { disableValidation: true })

/** Appends `event` in a unit of work; returns it with its id. */
export const append = (db: Connection, event: NewEvent): TrailEvent => {
  const id = db.pluck(INSERT, event.at, event.type, event.subject.type, event.subject.id, JSON.stringify(event.data))
  if (typeof id !== "number") throw new Rows.RowShapeError("id", id)
  return appended(id, event)
}

const subjectTypes = SubjectType.literals

const decode = (value: unknown): TrailEvent => {
  const r = Rows.row(value, "event")
  const raw = Rows.text(r, "data")
  let data: unknown
  try {
    data = JSON.parse(raw)
  } catch {
    throw new Rows.RowShapeError("data", raw)
  }
  if (!Predicate.isRecord(data)) throw new Rows.RowShapeError("data", raw)
  return new TrailEvent(
    {
      id: Rows.int(r, "id"),
      at: Rows.num(r, "at"),
      type: Rows.text(r, "type"),
      subject: { type: Rows.oneOf(r, "subject_type", subjectTypes), id: Rows.text(r, "subject_id") },
      data
    },
    { disableValidation: true }
  )
}

/** Events with id > `after`, oldest first, at most `limit`. */
export const since = (db: Connection, after: number, limit: number): Array<TrailEvent> =>
  db.all(SINCE, after, limit).map(decode)

/** Every event about one subject, oldest first. */
export const ofSubject = (db: Connection, type: SubjectType, id: string): Array<TrailEvent> =>
  db.all(SUBJECT, type, id).map(decode)

/** The id of the newest event (0 when there is none). */
export const latestId = (db: Connection): number => Number(db.pluck(LATEST))

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

/** The id of the newest event (0 when there is none), through SqlClient. */
export const latestIdSql: SqlEffect<number> = Effect.flatMap(SqlClient.SqlClient, (sql) =>
  SqlSchema.single({
    Request: Schema.Void,
    Result: LatestRow,
    execute: () => sql`SELECT coalesce(max(id), 0) AS latest FROM events`
  })(undefined).pipe(
    Effect.map((row) => row.latest),
    Effect.catchTag("NoSuchElementException", () => Effect.succeed(0))
  )
)
