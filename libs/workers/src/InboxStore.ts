/**
 * The inbox projection's rows (migration 0009: `inbox_items`, `inbox_sessions`, `inbox_workers`,
 * `inbox_ended`, `inbox_state`) read and written on the store's synchronous {@link Connection},
 * so that the cost of a fold or a read follows what it touches, not the size of the inbox:
 *
 * - {@link catchUpBatch} folds the next events after `last_event_id` into a draft that holds
 *   only what they touch ({@link loadTouched}) and writes only the rows the fold changed: O(k).
 * - {@link clear} stores the empty projection that a fold from nothing starts from, and
 *   {@link replaceAll} writes a whole state folded in memory, in one transaction.
 * - {@link page} reads visible items in attention order (SPEC §3 "Order") through the
 *   `inbox_items_attention` index, `LIMIT n`: no sort of every row.
 * - {@link pageWithTail} reads the same page as if the events not folded yet were: folded in
 *   memory over what they touch, written nowhere (a reader that cannot get the write lock, or
 *   whose own fold other processes' commits have since overtaken).
 *
 * An item's row holds its fields in columns (`event_id` for its id `i<event id>`, the rest by
 * name) and, as JSON in `item`, only what no column holds (bullets, provenance: its actions follow
 * from its kind); a session's row likewise (id, socket, pane in columns, the rest as JSON in
 * `session`). A rebuild writes a quarter of a million of each at scale: the smaller rows cost
 * less to make and to write. Rows written before (the whole item or session as JSON) read the same.
 *
 * Every function throws SQLite's error, or {@link Unreadable} for a stored row this version of
 * trail cannot read back (the caller rebuilds the projection from the log).
 */
import {
  actionsOf,
  attentionCompare,
  attentionRank,
  beginFold,
  foldInto,
  type InboxDraft,
  type InboxState,
  ReviewItem,
  ReviewKind,
  Session,
  SubjectType,
  type TrailEvent,
  WorkerCardInfo
} from "@trail/domain"
import { type Database, Events, Migrations, Rows } from "@trail/store"
import { Either, Schema } from "effect"

type Connection = Database.Connection

/** A stored row of the projection that this version of trail cannot read back. */
export class Unreadable extends Error {}

const decoder = <A, I>(schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknownEither(Schema.parseJson(schema))
  return (text: unknown): A => {
    const decoded = decode(text)
    if (Either.isLeft(decoded)) throw new Unreadable(String(decoded.left))
    return decoded.right
  }
}

/**
 * What an item's row keeps as JSON in its `item` column: the fields no column holds (its actions
 * follow from its kind). A row written before issue 14 holds the whole item there: it reads the
 * same (the columns win, the other keys are ignored).
 */
const ItemRest = Schema.Struct(ReviewItem.fields).pipe(Schema.pick("bullets", "provenance"))
/** What a session's row keeps as JSON in its `session` column: the fields besides id, socket and pane (same note). */
const SessionRest = Schema.Struct(Session.fields).pipe(Schema.omit("id", "socket", "pane"))
const decodeItemRestOnce = decoder(ItemRest)

/** How many decoded `item` texts {@link decodeItemRest} keeps. */
const DECODED_ITEMS = 10_000
const decodedItems = new Map<string, Schema.Schema.Type<typeof ItemRest>>()

/**
 * An item row's JSON, decoded once per distinct text: a reader that reads the inbox at every
 * burst of events (the supervisor, the TUI, a hook-rate follower) finds mostly the rows it read
 * before, and decoding them again was most of a read. The same text decodes to the same value,
 * so this changes no result; the {@link DECODED_ITEMS} most recently decoded are kept.
 */
const decodeItemRest = (text: unknown) => {
  if (typeof text !== "string") return decodeItemRestOnce(text)
  const known = decodedItems.get(text)
  if (known !== undefined) return known
  const rest = decodeItemRestOnce(text)
  decodedItems.set(text, rest)
  if (decodedItems.size > DECODED_ITEMS) {
    const oldest = decodedItems.keys().next()
    if (oldest.done !== true) decodedItems.delete(oldest.value)
  }
  return rest
}
const decodeSessionRest = decoder(SessionRest)
const decodeWorker = decoder(WorkerCardInfo)

/** The columns {@link itemOfRow} reads. */
const ITEM = "event_id, kind, subject_type, subject_id, headline, since, dismissed, skipped_until, item"
/** Where a column of {@link ITEM} sits in a raw row (a page's `rank` comes right after them). */
const ITEM_CELL = Object.fromEntries(ITEM.split(", ").map((column, index) => [column, index]))
const RANK_CELL = ITEM.split(", ").length
/** The columns {@link sessionOfRow} reads. */
const SESSION = "id, socket, pane, session"

/** `read` with a row of an unexpected shape (a newer trail's kind, say) as {@link Unreadable}. */
const unreadable = <A>(read: () => A): A => {
  try {
    return read()
  } catch (error) {
    if (error instanceof Rows.RowShapeError) throw new Unreadable(error.message)
    throw error
  }
}

const kinds = ReviewKind.literals
const subjectTypes = SubjectType.literals

/**
 * An item from its row read raw (`Connection.raw`: {@link ITEM}'s columns in order, any after
 * them ignored). Raw rows, not objects: a reader of every visible item (the supervisor, the TUI,
 * `trail inbox` as JSON) reads ~1,000 of them at each burst of events, and the store's driver
 * made an object of each in ~3.5 µs against ~1.9 µs for its array (docs/benchmarks.md, hook-rate).
 */
const itemOfRow = (row: unknown): ReviewItem =>
  unreadable(() => {
    const [eventId, kindCell, subjectType, subjectId, headline, since, dismissed, skippedUntil, rest] = Rows.cells(
      row,
      "inbox item"
    )
    const kind = Rows.asOneOf(kindCell, "kind", kinds)
    const { bullets, provenance } = decodeItemRest(rest)
    return {
      id: `i${Rows.asInt(eventId, "event_id")}`,
      kind,
      subject: {
        type: Rows.asOneOf(subjectType, "subject_type", subjectTypes),
        id: Rows.asText(subjectId, "subject_id")
      },
      headline: Rows.asText(headline, "headline"),
      since: Rows.asNum(since, "since"),
      bullets,
      actions: actionsOf[kind],
      provenance,
      dismissed: Rows.asInt(dismissed, "dismissed") === 1,
      skipped_until: skippedUntil === null ? null : Rows.asNum(skippedUntil, "skipped_until")
    }
  })

/** A session from its row ({@link SESSION}'s columns). */
const sessionOfRow = (row: unknown): Session =>
  unreadable(() => {
    const r = Rows.row(row, "inbox session")
    return {
      id: Rows.text(r, "id"),
      socket: Rows.textOrNull(r, "socket"),
      pane: Rows.textOrNull(r, "pane"),
      ...decodeSessionRest(r.session)
    }
  })

/** The event id of an item id (`i<event id>`), or null for anything else. */
export const eventIdOf = (itemId: string): number | null =>
  /^i[1-9]\d*$/.test(itemId) ? Number(itemId.slice(1)) : null

/** An item's row: {@link SQL.upsertItem}'s values. */
const itemValues = (item: ReviewItem): Array<unknown> => {
  const eventId = eventIdOf(item.id)
  if (eventId === null) throw new Unreadable(`item id ${item.id} is not i<event id>`)
  return [
    eventId,
    item.kind,
    attentionRank[item.kind],
    item.subject.type,
    item.subject.id,
    item.headline,
    item.since,
    item.dismissed ? 1 : 0,
    item.skipped_until,
    JSON.stringify({ bullets: item.bullets, provenance: item.provenance })
  ]
}

/** A session's row: {@link SQL.upsertSession}'s values. */
const sessionValues = (session: Session): Array<unknown> => [
  session.id,
  session.socket,
  session.pane,
  JSON.stringify({
    agent: session.agent,
    cwd: session.cwd,
    transcript_path: session.transcript_path,
    state: session.state,
    started_at: session.started_at,
    updated_at: session.updated_at
  })
]

/** Column of the single-column rows this module reads. */
const column = (row: unknown, name: string): unknown =>
  typeof row === "object" && row !== null ? Reflect.get(row, name) : undefined

const ITEM_COLUMNS = "(event_id, kind, rank, subject_type, subject_id, headline, since, dismissed, skipped_until, item)"
const SESSION_COLUMNS = "(id, socket, pane, session)"

const SQL = {
  last: `SELECT last_event_id FROM inbox_state WHERE id = 1`,
  setLast: `INSERT INTO inbox_state (id, last_event_id) VALUES (1, ?)
    ON CONFLICT (id) DO UPDATE SET last_event_id = excluded.last_event_id`,
  itemById: `SELECT ${ITEM} FROM inbox_items WHERE event_id = ?`,
  itemsOfSubject: `SELECT ${ITEM} FROM inbox_items WHERE subject_type = ? AND subject_id = ?`,
  session: `SELECT ${SESSION} FROM inbox_sessions WHERE id = ?`,
  sessionsInPane: `SELECT ${SESSION} FROM inbox_sessions WHERE socket IS ? AND pane = ?`,
  sessionsInTmux: `SELECT ${SESSION} FROM inbox_sessions WHERE pane IS NOT NULL AND socket IS NOT NULL`,
  worker: `SELECT info FROM inbox_workers WHERE id = ?`,
  ended: `SELECT 1 FROM inbox_ended WHERE subject = ?`,
  upsertItem: `INSERT OR REPLACE INTO inbox_items ${ITEM_COLUMNS} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  deleteItem: `DELETE FROM inbox_items WHERE event_id = ?`,
  upsertSession: `INSERT OR REPLACE INTO inbox_sessions ${SESSION_COLUMNS} VALUES (?, ?, ?, ?)`,
  deleteSession: `DELETE FROM inbox_sessions WHERE id = ?`,
  upsertWorker: `INSERT OR REPLACE INTO inbox_workers (id, info) VALUES (?, ?)`,
  end: `INSERT OR IGNORE INTO inbox_ended (subject) VALUES (?)`,
  unend: `DELETE FROM inbox_ended WHERE subject = ?`
} as const

/** The id of the last event folded into the stored projection, or null when none is stored. */
export const lastFolded = (db: Connection): number | null => {
  const last = db.pluck(SQL.last)
  return typeof last === "number" ? last : null
}

const writeItem = (db: Connection, item: ReviewItem) => db.run(SQL.upsertItem, ...itemValues(item))

const writeSession = (db: Connection, session: Session) => db.run(SQL.upsertSession, ...sessionValues(session))

/** The pane a session-type event's hook ran in (the fold's `touchSession` reads the same fields). */
const paneOfEvent = (event: TrailEvent) => {
  const pane = event.data.pane
  const socket = event.data.socket
  return typeof pane === "string" ? { pane, socket: typeof socket === "string" ? socket : null } : null
}

/**
 * The part of the stored state that folding `events` reads: the items of their subjects (and of
 * the subjects of the items their `data.item` names), their sessions, the sessions in their panes
 * with those sessions' items, their workers' facts and their subjects' ended flags.
 */
export const loadTouched = (db: Connection, last: number, events: ReadonlyArray<TrailEvent>): InboxState => {
  const items = new Map<string, ReviewItem>()
  const sessions = new Map<string, Session>()
  const workers = new Map<string, WorkerCardInfo>()
  const ended = new Set<string>()
  const subjects = new Map<string, { readonly type: string; readonly id: string }>()
  const panes = new Map<string, { readonly socket: string | null; readonly pane: string }>()
  for (const event of events) {
    subjects.set(`${event.subject.type}:${event.subject.id}`, event.subject)
    const ref = event.data.item
    const eventId = typeof ref === "string" ? eventIdOf(ref) : null
    if (eventId !== null) {
      const row = db.raw(SQL.itemById, eventId)[0]
      if (row !== undefined) {
        const item = itemOfRow(row)
        subjects.set(`${item.subject.type}:${item.subject.id}`, item.subject)
      }
    }
    if (event.subject.type === "session") {
      const where = paneOfEvent(event)
      if (where !== null) panes.set(`${where.socket ?? ""}\u0000${where.pane}`, where)
    }
  }
  const addSession = (row: unknown) => {
    const session = sessionOfRow(row)
    sessions.set(session.id, session)
    subjects.set(`session:${session.id}`, { type: "session", id: session.id })
  }
  for (const [key, subject] of subjects) {
    if (subject.type === "session") {
      const row = db.get(SQL.session, subject.id)
      if (row !== undefined) addSession(row)
    } else if (subject.type === "worker") {
      const row = db.get(SQL.worker, subject.id)
      if (row !== undefined) workers.set(subject.id, decodeWorker(column(row, "info")))
    }
    if (db.get(SQL.ended, key) !== undefined) ended.add(key)
  }
  for (const { socket, pane } of panes.values())
    for (const row of db.all(SQL.sessionsInPane, socket, pane)) addSession(row)
  for (const subject of subjects.values())
    for (const row of db.raw(SQL.itemsOfSubject, subject.type, subject.id)) {
      const item = itemOfRow(row)
      items.set(item.id, item)
    }
  return { last, items, sessions, workers, ended }
}

/** Writes the rows a draft changed (set or deleted) and its `last`. */
export const writeChanges = (db: Connection, draft: InboxDraft) => {
  const { changes } = draft
  if (changes === null) throw new Error("writeChanges needs a draft that tracks its changes")
  for (const id of changes.items) {
    const item = draft.items.get(id)
    if (item !== undefined) writeItem(db, item)
    else {
      const eventId = eventIdOf(id)
      if (eventId !== null) db.run(SQL.deleteItem, eventId)
    }
  }
  for (const id of changes.sessions) {
    const session = draft.sessions.get(id)
    if (session !== undefined) writeSession(db, session)
    else db.run(SQL.deleteSession, id)
  }
  for (const id of changes.workers) {
    const info = draft.workers.get(id)
    if (info !== undefined) db.run(SQL.upsertWorker, id, JSON.stringify(info))
  }
  for (const key of changes.ended) db.run(draft.ended.has(key) ? SQL.end : SQL.unend, key)
  db.run(SQL.setLast, draft.last)
}

/**
 * What one step of {@link catchUpBatch} found: no projection stored; the events after the stored
 * one no longer in the table (`archived`: only a fold of the whole log, archive included, can go
 * on); more events to fold; or done.
 */
export type CatchUp = "unstored" | "archived" | "more" | "done"

/**
 * Whether the events right after `last` have left the table: the first event after it there
 * (`next`, undefined when none) is later than `last + 1`, and no older event is left. Event ids
 * are AUTOINCREMENT's (one more than the newest ever given), so only deleting a prefix of the
 * table makes such a hole, and only the archive does that (`trail gc --archive-before`, once every
 * projection is past it; a projection folded again from nothing is not).
 */
const movedOut = (db: Connection, last: number, next: number | undefined): boolean => {
  const first = next ?? Events.latestId(db) + 1
  if (first <= last + 1) return false
  const oldest = Events.oldestId(db)
  return oldest === undefined || oldest >= first
}

/**
 * Folds up to `batch` events after the stored `last_event_id` into the stored projection (run it
 * inside one write transaction): loads what they touch, folds, writes what changed.
 */
export const catchUpBatch = (db: Connection, batch: number): CatchUp => {
  const last = lastFolded(db)
  if (last === null) return "unstored"
  const events = Events.since(db, last, batch)
  if (movedOut(db, last, events[0]?.id)) return "archived"
  if (events.length === 0) return "done"
  const draft = beginFold(loadTouched(db, last, events))
  foldInto(draft, events)
  writeChanges(db, draft)
  return events.length < batch ? "done" : "more"
}

/** `a` before `b` in SQLite's BINARY order for ASCII text (ids), so that rows go into their B-trees in key order. */
const byKey = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0)

/** Rows per INSERT statement of {@link replaceAll}: one call into SQLite per this many rows, not per row. */
const ROWS_PER_INSERT = 64

/**
 * Inserts rows of `width` values each into `table (columns)`, {@link ROWS_PER_INSERT} rows per
 * statement (two prepared statements in all: the full one, cached by the connection, and the
 * last partial one). `add` takes one row's values; `end` inserts what is left.
 */
const inserter = (db: Connection, into: string, width: number) => {
  const tuple = `(${Array.from({ length: width }, () => "?").join(", ")})`
  const statement = (rows: number) =>
    `INSERT INTO ${into} VALUES ${Array.from({ length: rows }, () => tuple).join(", ")}`
  const full = statement(ROWS_PER_INSERT)
  const values: Array<unknown> = []
  return {
    add: (row: ReadonlyArray<unknown>) => {
      for (const value of row) values.push(value)
      if (values.length === ROWS_PER_INSERT * width) {
        db.run(full, ...values)
        values.length = 0
      }
    },
    end: () => {
      if (values.length > 0) db.run(statement(values.length / width), ...values)
      values.length = 0
    }
  }
}

const deleteRows = (db: Connection) => {
  for (const table of ["inbox_items", "inbox_sessions", "inbox_workers", "inbox_ended"]) db.run(`DELETE FROM ${table}`)
}

/**
 * Stores the empty projection (run it inside one write transaction): what a fold from nothing
 * starts from, batch after batch ({@link catchUpBatch}).
 */
export const clear = (db: Connection) => {
  deleteRows(db)
  db.run(SQL.setLast, 0)
}

/**
 * Replaces the stored projection with `state` (run it inside one write transaction). Rows are
 * inserted in primary-key order (appending to each B-tree), many per statement, with the
 * secondary indexes dropped, then the indexes are built again, one sort each.
 */
export const replaceAll = (db: Connection, state: InboxState) => {
  for (const [name] of Migrations.INBOX_INDEXES) db.run(`DROP INDEX IF EXISTS ${name}`)
  deleteRows(db)
  // A fold from nothing raises items in id order: the Map's order is then already the key order.
  const items = [...state.items.values()]
  const id = (item: ReviewItem) => eventIdOf(item.id) ?? 0
  let previous = 0
  for (const item of items) {
    if (id(item) < previous) {
      items.sort((a, b) => id(a) - id(b))
      break
    }
    previous = id(item)
  }
  const itemRows = inserter(db, `inbox_items ${ITEM_COLUMNS}`, 10)
  for (const item of items) itemRows.add(itemValues(item))
  itemRows.end()
  const sessionRows = inserter(db, `inbox_sessions ${SESSION_COLUMNS}`, 4)
  for (const key of [...state.sessions.keys()].sort(byKey)) {
    const session = state.sessions.get(key)
    if (session !== undefined) sessionRows.add(sessionValues(session))
  }
  sessionRows.end()
  const workerRows = inserter(db, `inbox_workers (id, info)`, 2)
  for (const key of [...state.workers.keys()].sort(byKey)) {
    const info = state.workers.get(key)
    if (info !== undefined) workerRows.add([key, JSON.stringify(info)])
  }
  workerRows.end()
  const endedRows = inserter(db, `inbox_ended (subject)`, 1)
  for (const key of [...state.ended].sort(byKey)) endedRows.add([key])
  endedRows.end()
  for (const [, ddl] of Migrations.INBOX_INDEXES) db.run(ddl)
  db.run(SQL.setLast, state.last)
}

/**
 * Where the next page starts: after an item of the ordered part (its rank, since and event id),
 * or `offset` items into the part still cooling down.
 */
export type Cursor =
  | { readonly _tag: "ordered"; readonly rank: number; readonly since: number; readonly eventId: number }
  | { readonly _tag: "cooling"; readonly offset: number }

/** `LIKE` pattern matching `text` anywhere, with `%`, `_` and `\` taken literally. */
const contains = (text: string) => `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`

const FILTER = `AND (headline LIKE ? ESCAPE '\\' OR subject_id LIKE ? ESCAPE '\\' OR kind LIKE ? ESCAPE '\\')`

/**
 * Up to `limit` visible items in attention order at `now` (ms), after `cursor` (null: from the
 * start), whose headline, subject id or kind contains `filter` (case-insensitive for ASCII; ""
 * matches all). Items not cooling down come first, in `inbox_items_attention` order; the ones
 * still cooling down after a skip follow (by class, then by when they come back), once the
 * others are exhausted. Returns the items and the cursor to continue from (null: no more).
 */
export const page = (
  db: Connection,
  options: { readonly now: number; readonly limit: number; readonly filter: string; readonly cursor: Cursor | null }
): { readonly items: Array<ReviewItem>; readonly next: Cursor | null } => {
  const { cursor, filter, limit, now } = options
  const filtered = filter === "" ? "" : FILTER
  const filterArgs = filter === "" ? [] : [contains(filter), contains(filter), contains(filter)]
  const items: Array<ReviewItem> = []
  if (cursor === null || cursor._tag === "ordered") {
    const after = cursor === null ? "" : `AND (rank, since, event_id) > (?, ?, ?)`
    const afterArgs = cursor === null ? [] : [cursor.rank, cursor.since, cursor.eventId]
    const rows = db.raw(
      `SELECT ${ITEM}, rank FROM inbox_items
        WHERE dismissed = 0 AND (skipped_until IS NULL OR skipped_until <= ?) ${after} ${filtered}
        ORDER BY rank, since, event_id LIMIT ?`,
      now,
      ...afterArgs,
      ...filterArgs,
      limit
    )
    for (const row of rows) items.push(itemOfRow(row))
    const lastRow = rows.at(-1)
    if (rows.length === limit && lastRow !== undefined) {
      const cells = Rows.cells(lastRow, "inbox item")
      return {
        items,
        next: {
          _tag: "ordered",
          rank: Rows.asInt(cells[RANK_CELL], "rank"),
          since: Rows.asNum(cells[ITEM_CELL["since"] ?? -1], "since"),
          eventId: Rows.asInt(cells[ITEM_CELL["event_id"] ?? -1], "event_id")
        }
      }
    }
  }
  // Items cooling down: few (a person skipped them in the last minutes), read with one offset.
  const skip = cursor !== null && cursor._tag === "cooling" ? cursor.offset : 0
  const rows = db.raw(
    `SELECT ${ITEM} FROM inbox_items WHERE dismissed = 0 AND skipped_until > ? ${filtered}
      ORDER BY rank, skipped_until, since, event_id LIMIT ? OFFSET ?`,
    now,
    ...filterArgs,
    limit - items.length,
    skip
  )
  for (const row of rows) items.push(itemOfRow(row))
  return { items, next: items.length === limit ? { _tag: "cooling", offset: skip + rows.length } : null }
}

/** ASCII lower case, as SQLite's `LIKE` compares (other letters compare as they are). */
const asciiLower = (text: string) => text.replace(/[A-Z]/g, (c) => c.toLowerCase())

/** Whether `item`'s headline, subject id or kind contains `filter` ({@link page}'s `LIKE`). */
const matches = (item: ReviewItem, filter: string) => {
  if (filter === "") return true
  const needle = asciiLower(filter)
  return [item.headline, item.subject.id, item.kind].some((text) => asciiLower(text).includes(needle))
}

/**
 * The first {@link page} (`limit` visible items in attention order at `now`, containing
 * `filter`) as it will read once the events after the stored `last_event_id` are folded, without
 * writing anything: those events are folded in memory over what they touch ({@link loadTouched},
 * as {@link catchUpBatch} does), and the items they set or deleted take the place of their stored
 * rows. So a reader shows fresh items while other processes hold the write lock, or commit
 * after its fold, without a wait for the lock. Run it inside one read transaction (one snapshot
 * of rows and events). O(tail + limit). Null when no projection is stored, when more than
 * `maxTail` events wait, or when the next ones are archived (the caller folds them for good).
 */
export const pageWithTail = (
  db: Connection,
  options: { readonly now: number; readonly limit: number; readonly filter: string },
  maxTail: number
): Array<ReviewItem> | null => {
  const last = lastFolded(db)
  if (last === null) return null
  const events = Events.since(db, last, maxTail + 1)
  if (events.length > maxTail || movedOut(db, last, events[0]?.id)) return null
  if (events.length === 0) return page(db, { ...options, cursor: null }).items
  const draft = beginFold(loadTouched(db, last, events))
  foldInto(draft, events)
  const changed = draft.changes?.items ?? new Set<string>()
  // Enough stored rows that `limit` remain once the changed ones are taken out.
  const limit = Math.min(options.limit + changed.size, Number.MAX_SAFE_INTEGER)
  const stored = page(db, { ...options, limit, cursor: null }).items.filter((item) => !changed.has(item.id))
  const fresh = [...changed].flatMap((id) => {
    const item = draft.items.get(id)
    return item !== undefined && !item.dismissed && matches(item, options.filter) ? [item] : []
  })
  return [...stored, ...fresh].sort(attentionCompare(options.now)).slice(0, options.limit)
}

/** How many visible items contain `filter` ({@link page}'s filter). */
export const count = (db: Connection, filter: string): number =>
  Number(
    filter === ""
      ? db.pluck(`SELECT count(*) FROM inbox_items WHERE dismissed = 0`)
      : db.pluck(
          `SELECT count(*) FROM inbox_items WHERE dismissed = 0 ${FILTER}`,
          contains(filter),
          contains(filter),
          contains(filter)
        )
  )

/** The item with id `id` (`i<event id>`), if stored. */
export const itemById = (db: Connection, id: string): ReviewItem | undefined => {
  const eventId = eventIdOf(id)
  const row = eventId === null ? undefined : db.raw(SQL.itemById, eventId)[0]
  return row === undefined ? undefined : itemOfRow(row)
}

const SUBJECT_TYPES = SubjectType.literals.map((type) => `'${type}'`).join(", ")

/**
 * The item an ITEM argument names (domain `findItem`, through the indexes): an item id; else the
 * open (else latest) item of the worker or session with that id, or of the session whose id
 * starts with `ref` (6 characters at least).
 */
export const find = (db: Connection, ref: string): ReviewItem | undefined => {
  const byId = itemById(db, ref)
  if (byId !== undefined) return byId
  const prefix =
    ref.length >= 6 ? `OR (subject_type = 'session' AND subject_id >= ? AND subject_id < ? || char(1114111))` : ""
  const rows = db.raw(
    `SELECT ${ITEM} FROM inbox_items WHERE (subject_type IN (${SUBJECT_TYPES}) AND subject_id = ?) ${prefix}
      ORDER BY dismissed, CASE WHEN dismissed = 0 THEN event_id ELSE -since END, event_id LIMIT 1`,
    ref,
    ...(prefix === "" ? [] : [ref, ref])
  )
  const row = rows[0]
  return row === undefined ? undefined : itemOfRow(row)
}

/** The stored session `id`, if any. */
export const session = (db: Connection, id: string): Session | undefined => {
  const row = db.get(SQL.session, id)
  return row === undefined ? undefined : sessionOfRow(row)
}

/** The sessions that have a tmux pane (the ones `reconcile` can check). */
export const sessionsInTmux = (db: Connection): Array<Session> => db.all(SQL.sessionsInTmux).map(sessionOfRow)

/** The whole stored state, or null when none is stored (tests and small stores: O(state)). */
export const loadAll = (db: Connection): InboxState | null => {
  const last = lastFolded(db)
  if (last === null) return null
  const items = db.raw(`SELECT ${ITEM} FROM inbox_items ORDER BY event_id`).map(itemOfRow)
  const sessions = db.all(`SELECT ${SESSION} FROM inbox_sessions`).map(sessionOfRow)
  const workers = db.all(`SELECT id, info FROM inbox_workers`).map((row) => {
    const r = Rows.row(row, "inbox worker")
    return [Rows.text(r, "id"), decodeWorker(r.info)] as const
  })
  const ended = db.all(`SELECT subject FROM inbox_ended`).map((row) => Rows.text(Rows.row(row, "ended"), "subject"))
  return {
    last,
    items: new Map(items.map((item) => [item.id, item])),
    sessions: new Map(sessions.map((session) => [session.id, session])),
    workers: new Map(workers),
    ended: new Set(ended)
  }
}
