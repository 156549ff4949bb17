/**
 * The synchronous SQLite connection behind the store's unit of work (the scheduler's claim and
 * complete, bulk inserts): its own better-sqlite3 connection to the state file, beside the
 * `SqlClient` connection of the cold paths. It exists because a statement through `SqlClient`
 * costs ~55–80 µs against ~5 µs here (docs/benchmarks.md), and a claim must stay close to
 * SQLite's own cost. This is the only module that knows better-sqlite3: the rest of trail sees
 * the {@link Connection} interface, whose rows are `unknown` and checked by their readers.
 */
import { StoreError } from "@trail/domain"
// Only ever constructed (`new Sqlite(file)`): the CLI bundle answers this import with a stand-in that
// loads the addon on first use and forwards nothing else (no statics, no `instanceof`).
import Sqlite from "better-sqlite3"
import { Option, Schema } from "effect"
import * as fs from "node:fs"

/**
 * What a unit of work may run. Statements are prepared once per text and cached for the life of
 * the connection. `params` are positional values, or one object for `@name` parameters. Every
 * method throws SQLite's error (the store maps it to a StoreError).
 */
export interface Connection {
  /** The first row, or undefined when there is none. */
  readonly get: (sql: string, ...params: ReadonlyArray<unknown>) => unknown
  /** Every row. */
  readonly all: (sql: string, ...params: ReadonlyArray<unknown>) => ReadonlyArray<unknown>
  /**
   * Every row as the array of its column values, in the statement's column order: cheaper than
   * {@link all}'s objects for a reader of many rows (a rebuild reads every event).
   */
  readonly raw: (sql: string, ...params: ReadonlyArray<unknown>) => ReadonlyArray<unknown>
  /** The first column of the first row, or undefined when there is no row. */
  readonly pluck: (sql: string, ...params: ReadonlyArray<unknown>) => unknown
  /** Runs a statement that returns no rows; returns the number of changed rows. */
  readonly run: (sql: string, ...params: ReadonlyArray<unknown>) => number
  /**
   * Makes `fn` the deterministic SQL function `name` of this connection, so that a set-based
   * statement can call trail's own formulas (the sweep's score) without a row trip through
   * JavaScript per statement. Defined once per connection: later calls with the same name keep
   * the first definition. `fn` receives SQLite's values (number, bigint, string, null, Buffer)
   * and checks them; what it throws fails the statement.
   */
  readonly defineFunction: (name: string, fn: (...args: Array<unknown>) => unknown) => void
}

/** One open connection: its {@link Connection} and the transaction and lifetime around it. */
export interface Handle {
  readonly connection: Connection
  /** Runs `work` inside `BEGIN IMMEDIATE … COMMIT`, rolled back when it throws. */
  readonly immediate: <A>(work: (db: Connection) => A) => A
  /**
   * As {@link immediate} when SQLite's write lock is free now: None, having run nothing, when
   * another connection holds it (no busy wait: SQLite's busy handler sleeps and retries, and is
   * not fair to a reader among many writers).
   */
  readonly tryImmediate: <A>(work: (db: Connection) => A) => Option.Option<A>
  /** Runs `work`'s reads inside `BEGIN … COMMIT`: one snapshot of the database for all of them. */
  readonly snapshot: <A>(work: (db: Connection) => A) => A
  /** Runs a statement that cannot be inside a transaction (`VACUUM`, checkpoints). */
  readonly exec: (sql: string) => void
  /**
   * When the store's write-ahead log file is larger than `aboveBytes`: copies it whole into the
   * database and empties it (`PRAGMA wal_checkpoint(TRUNCATE)`), letting SQLite's busy handler
   * wait at most `waitMs` for the other connections. True when the log was emptied; false when
   * it was small, or another connection kept it (SQLITE_BUSY, or a reader still in it).
   * See {@link WAL_TRUNCATE_BYTES} for why.
   */
  readonly truncateWal: (aboveBytes: number, waitMs: number) => boolean
  readonly close: () => void
}

/**
 * The size of the write-ahead log (bytes, ~1,000 pages: SQLite's own automatic checkpoint
 * threshold) above which a hook empties it ({@link Handle.truncateWal}). SQLite restarts the log
 * only when a writer begins while every frame is copied back and no reader is in it; under a
 * steady stream of commits from many processes that moment never comes, the log grows (12 MB in
 * 5 s at 200 events a second), and every commit past the threshold runs a checkpoint of its own
 * with its fsyncs: 3–210 ms per commit measured (docs/benchmarks.md, hook-rate). A TRUNCATE
 * checkpoint holds new writers back until it is done, so the next commit starts a new log.
 */
export const WAL_TRUNCATE_BYTES = 4 * 1024 * 1024

/** Milliseconds SQLite's own busy handler waits for a lock before reporting SQLITE_BUSY. */
export const BUSY_TIMEOUT_MS = 5_000

/** Whether `error` is SQLite's SQLITE_BUSY (any extended code): another connection holds the lock. */
const isBusy = (error: unknown): boolean =>
  typeof error === "object" &&
  error !== null &&
  "code" in error &&
  typeof error.code === "string" &&
  error.code.startsWith("SQLITE_BUSY")

/** The refusal of a file that SQLite reads as a database but trail never migrated. */
export const unmigrated = (filename: string) =>
  new StoreError({
    reason: "corrupt",
    detail: `${filename} holds no trail schema (user_version 0): it was emptied or replaced; only \`trail init\` creates a store`
  })

/**
 * The tables migration `n` (of Migrations.ts) creates, for the migrations that create any; the
 * migrator's own `effect_sql_migrations` comes with the first. Migrations' test checks this list
 * against a freshly migrated store.
 */
export const TABLES_BY_MIGRATION: ReadonlyArray<readonly [migration: number, tables: ReadonlyArray<string>]> = [
  [1, ["effect_sql_migrations", "folders", "tasks", "sweeps", "work_items", "visits", "folder_memory"]],
  [4, ["events", "workers", "supervisor"]],
  [5, ["inbox_items", "inbox_state"]],
  [8, ["checkpoints", "artifacts_fts"]],
  [9, ["inbox_sessions", "inbox_workers", "inbox_ended"]],
  [10, ["search_state", "search_workers"]],
  [13, ["work_items_by_folder"]],
  [14, ["work_items_returned"]]
]

/**
 * What {@link migratedProblem} judges: `PRAGMA user_version` and the names of the tables, read in
 * one statement through `SqlClient` (the store layer's open; the hook reads the same two facts
 * with {@link TABLE_NAMES_SQL} and `PRAGMA user_version`, cheaper on its hot path).
 */
export const MIGRATED_FACTS_SQL = `SELECT (SELECT user_version FROM pragma_user_version) AS version,
  (SELECT json_group_array(name) FROM sqlite_master WHERE type = 'table') AS tables`

/** The names of the store's tables, one row each. */
export const TABLE_NAMES_SQL = "SELECT name FROM sqlite_master WHERE type = 'table'"

/** The facts {@link migratedProblem} judges: the store's `user_version` and its tables' names. */
export const MigratedFacts = Schema.Struct({
  version: Schema.Int,
  tables: Schema.Array(Schema.String)
})

/** A row of {@link MIGRATED_FACTS_SQL}: {@link MigratedFacts} with the names as one JSON array. */
export const MigratedFactsRow = Schema.Struct({
  version: Schema.Int,
  tables: Schema.parseJson(Schema.Array(Schema.String))
})

/**
 * The one definition of a migrated trail store, for every opener (the store layer and the hook):
 * its `user_version` names a migration (not 0) and every table the migrations up to it create is
 * there. A store of an older trail is migrated (the store layer brings it up to date); one whose
 * version claims tables it lacks was damaged or replaced. Null when migrated, else the refusal
 * (`corrupt`).
 */
export const migratedProblem = (filename: string, facts: typeof MigratedFacts.Type): StoreError | null => {
  if (facts.version === 0) return unmigrated(filename)
  const present = new Set(facts.tables)
  const missing = TABLES_BY_MIGRATION.filter(([migration]) => migration <= facts.version)
    .flatMap(([, tables]) => tables)
    .filter((table) => !present.has(table))
  return missing.length === 0
    ? null
    : new StoreError({
        reason: "corrupt",
        detail: `${filename} says schema ${facts.version} but has no table ${missing.join(", ")}: it was damaged or replaced`
      })
}

/** A row of `PRAGMA wal_checkpoint` (https://sqlite.org/pragma.html#pragma_wal_checkpoint): busy, log frames, frames copied. */
const CheckpointRow = Schema.Tuple(Schema.Int, Schema.Int, Schema.Int)

export interface OpenOptions {
  readonly readonly?: boolean
  /** How long SQLite's busy handler waits for a lock (default {@link BUSY_TIMEOUT_MS}). */
  readonly timeoutMs?: number
  /**
   * Refuse a file that is not a migrated trail store ({@link migratedProblem}), checked before
   * any write, and then switch it to WAL. For an opener without the store layer (the hook): any write,
   * even `journal_mode = WAL`, would turn an emptied state.db into a valid blank database.
   */
  readonly checkMigrated?: boolean
}

/**
 * Opens the existing `filename` (the store layer has checked and opened it through `SqlClient`
 * first, so it is in WAL mode, unless `checkMigrated`). Throws SQLite's error, or a StoreError.
 */
export const open = (filename: string, options: OpenOptions = {}): Handle => {
  const timeoutMs = options.timeoutMs ?? BUSY_TIMEOUT_MS
  const db = new Sqlite(filename, { readonly: options.readonly ?? false, fileMustExist: true, timeout: timeoutMs })
  try {
    if (options.checkMigrated === true) {
      // Two plain statements, not MIGRATED_FACTS_SQL: its `pragma_user_version` table and JSON
      // array cost a hook ~0.1 ms of CPU more per event (docs/benchmarks.md, hook-rate).
      const problem = migratedProblem(
        filename,
        Schema.decodeUnknownSync(MigratedFacts)({
          version: db.pragma("user_version", { simple: true }),
          tables: db.prepare(TABLE_NAMES_SQL).pluck().all()
        })
      )
      if (problem !== null) throw problem
      db.pragma("journal_mode = WAL")
    }
    db.pragma("synchronous = NORMAL")
    db.pragma("foreign_keys = ON")
  } catch (error) {
    db.close()
    throw error
  }

  type Statement = Sqlite.Statement<Array<unknown>, unknown>
  /** Each SQL text prepared once per connection, in each of the modes it is run in. */
  const preparedAs = (mode: (statement: Statement) => Statement) => {
    const prepared = new Map<string, Statement>()
    return (sql: string) => {
      let statement = prepared.get(sql)
      if (statement === undefined) {
        statement = mode(db.prepare(sql))
        prepared.set(sql, statement)
      }
      return statement
    }
  }
  const prepare = preparedAs((statement) => statement)
  const preparePlucked = preparedAs((statement) => statement.pluck())
  const prepareRaw = preparedAs((statement) => statement.raw())
  const defined = new Set<string>()
  const connection: Connection = {
    get: (sql, ...params) => prepare(sql).get(...params),
    all: (sql, ...params) => prepare(sql).all(...params),
    raw: (sql, ...params) => prepareRaw(sql).all(...params),
    pluck: (sql, ...params) => preparePlucked(sql).get(...params),
    run: (sql, ...params) => prepare(sql).run(...params).changes,
    defineFunction: (name, fn) => {
      if (defined.has(name)) return
      db.function(name, { deterministic: true, varargs: true }, fn)
      defined.add(name)
    }
  }

  // Prepared on first use (the statement cache), not at open: a hook's connection never begins one.
  const inside = <A>(work: (db: Connection) => A): A => {
    try {
      const result = work(connection)
      prepare("COMMIT").run()
      return result
    } catch (error) {
      if (db.inTransaction) prepare("ROLLBACK").run()
      throw error
    }
  }
  const immediate = <A>(work: (db: Connection) => A): A => {
    prepare("BEGIN IMMEDIATE").run()
    return inside(work)
  }
  const tryImmediate = <A>(work: (db: Connection) => A): Option.Option<A> => {
    preparePlucked("PRAGMA busy_timeout = 0").get()
    try {
      prepare("BEGIN IMMEDIATE").run()
    } catch (error) {
      if (isBusy(error)) return Option.none()
      throw error
    } finally {
      preparePlucked(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(timeoutMs))}`).get()
    }
    return Option.some(inside(work))
  }
  const snapshot = <A>(work: (db: Connection) => A): A => {
    prepare("BEGIN").run()
    return inside(work)
  }

  const walFile = `${filename}-wal`
  const truncateWal = (aboveBytes: number, waitMs: number): boolean => {
    const size = fs.statSync(walFile, { throwIfNoEntry: false })?.size ?? 0
    if (size <= aboveBytes) return false
    db.pragma(`busy_timeout = ${Math.max(0, Math.floor(waitMs))}`)
    try {
      // One row: busy (0 or 1), the log's frames, the frames copied; -1, -1 when not in WAL mode.
      const [busy] = Schema.decodeUnknownSync(CheckpointRow)(db.prepare("PRAGMA wal_checkpoint(TRUNCATE)").raw().get())
      return busy === 0
    } catch (error) {
      if (isBusy(error)) return false
      throw error
    } finally {
      db.pragma(`busy_timeout = ${Math.max(0, Math.floor(timeoutMs))}`)
    }
  }

  return {
    connection,
    immediate,
    tryImmediate,
    snapshot,
    exec: (sql) => void db.exec(sql),
    truncateWal,
    close: () => db.close()
  }
}
