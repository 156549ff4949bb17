/**
 * Appending to and reading the `events` table inside a unit of work of the {@link Database}, so
 * that a state change and the event recording it commit in one transaction (ARCHITECTURE, "Data
 * flow"). Reads decode each row with checked readers; a row that is not an event is `corrupt`.
 */
import { type NewEvent, SubjectType, TrailEvent } from "@trail/domain"
import type { Connection } from "./Database.js"
import * as Rows from "./Rows.js"

const INSERT = `INSERT INTO events (at, type, subject_type, subject_id, data) VALUES (@at, @type, @subject_type, @subject_id, @data)`
const SINCE = `SELECT id, at, type, subject_type, subject_id, data FROM events WHERE id > ? ORDER BY id LIMIT ?`
const SUBJECT = `SELECT id, at, type, subject_type, subject_id, data FROM events
  WHERE subject_type = ? AND subject_id = ? ORDER BY id`
const LATEST = `SELECT coalesce(max(id), 0) FROM events`

/** Appends `event`; returns it with its id. */
export const append = (db: Connection, event: NewEvent): TrailEvent => {
  const info = db.prepare(INSERT).run({
    at: event.at,
    type: event.type,
    subject_type: event.subject.type,
    subject_id: event.subject.id,
    data: JSON.stringify(event.data)
  })
  return new TrailEvent(
    { id: Number(info.lastInsertRowid), ...event, data: { ...event.data } },
    { disableValidation: true }
  )
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
  if (typeof data !== "object" || data === null || Array.isArray(data)) throw new Rows.RowShapeError("data", raw)
  return new TrailEvent(
    {
      id: Rows.int(r, "id"),
      at: Rows.num(r, "at"),
      type: Rows.text(r, "type"),
      subject: { type: Rows.oneOf(r, "subject_type", subjectTypes), id: Rows.text(r, "subject_id") },
      data: data as Record<string, unknown>
    },
    { disableValidation: true }
  )
}

/** Events with id > `after`, oldest first, at most `limit`. */
export const since = (db: Connection, after: number, limit: number): Array<TrailEvent> =>
  db.prepare(SINCE).all(after, limit).map(decode)

/** Every event about one subject, oldest first. */
export const ofSubject = (db: Connection, type: SubjectType, id: string): Array<TrailEvent> =>
  db.prepare(SUBJECT).all(type, id).map(decode)

/** The id of the newest event (0 when there is none). */
export const latestId = (db: Connection): number => Number(db.prepare(LATEST).pluck().get())
