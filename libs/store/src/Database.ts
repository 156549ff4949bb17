/**
 * The state database: one better-sqlite3 connection to `.trail/state.db` (WAL, busy timeout),
 * offered two ways over the same connection and the same lock:
 *
 * - as an `@effect/sql` `SqlClient` (migrations, cold paths), whose transactions are
 *   `BEGIN IMMEDIATE` so a transaction that will write takes the write lock up front and never
 *   fails half-way with a lock upgrade;
 * - as {@link DatabaseShape.immediate}: a synchronous unit of work run inside one
 *   `BEGIN IMMEDIATE … COMMIT`, with statements prepared once per process. The scheduler's hot
 *   path (claim, complete) uses it so that a claim is one atomic transaction with no awaits.
 *
 * Every SQLite failure becomes a {@link StoreError}: `corrupt` (SQLITE_NOTADB/CORRUPT),
 * `readonly` (SQLITE_READONLY/CANTOPEN/PERM), `busy` (still locked after {@link BUSY_RETRY}),
 * `io` otherwise. SQLITE_BUSY is retried here and never returned to callers sooner.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import type * as SqlConnection from "@effect/sql/SqlConnection"
import { SqlError } from "@effect/sql/SqlError"
import * as Statement from "@effect/sql/Statement"
import { StoreError } from "@trail/domain"
import Sqlite from "better-sqlite3"
import { Context, Duration, Effect, Either, Layer, ParseResult, Schedule } from "effect"
import * as fs from "node:fs"
import { RowShapeError } from "./Rows.js"

/** A prepared statement of the shared connection. */
export type Prepared = Sqlite.Statement<Array<unknown>, unknown>

/** What a synchronous unit of work may use: statements prepared once and cached by text. */
export interface Connection {
  readonly prepare: (sql: string) => Prepared
  /** Runs a statement that returns no rows; returns the number of changed rows. */
  readonly run: (sql: string, ...params: ReadonlyArray<unknown>) => number
}

export interface DatabaseShape {
  /** Absolute path of the database file (or `:memory:`). */
  readonly filename: string
  /** Runs `work` synchronously inside `BEGIN IMMEDIATE … COMMIT` (rolled back if it throws). */
  readonly immediate: <A>(work: (db: Connection) => A) => Effect.Effect<A, StoreError>
  /**
   * As {@link immediate} for work that can end in a domain error: a `Left` fails the effect
   * (the transaction still commits: the work decides what it wrote before deciding to fail).
   */
  readonly immediateEither: <A, E>(work: (db: Connection) => Either.Either<A, E>) => Effect.Effect<A, E | StoreError>
  /** Runs `work` synchronously outside any explicit transaction (reads see one snapshot per statement). */
  readonly read: <A>(work: (db: Connection) => A) => Effect.Effect<A, StoreError>
  /** Runs a statement that cannot be inside a transaction (`VACUUM`, checkpoints). */
  readonly exec: (sql: string) => Effect.Effect<void, StoreError>
}

export class Database extends Context.Tag("@trail/store/Database")<Database, DatabaseShape>() {}

/** Milliseconds SQLite's own busy handler waits for a lock before reporting SQLITE_BUSY. */
export const BUSY_TIMEOUT_MS = 5_000

/** Retries after SQLITE_BUSY survived the busy timeout: jittered backoff, about a minute in all. */
export const BUSY_RETRY = Schedule.exponential(Duration.millis(20), 2).pipe(
  Schedule.union(Schedule.spaced(Duration.seconds(1))),
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(12))
)

const sqliteCode = (cause: unknown): string =>
  typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string" ? cause.code : ""

const causeMessage = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/** Maps a SQLite (or better-sqlite3) failure to a {@link StoreError}; `file` is named in its detail. */
export const toStoreError = (cause: unknown, file?: string): StoreError => {
  const inner = cause instanceof SqlError ? cause.cause : cause
  const where = file === undefined ? "" : `${file}: `
  if (ParseResult.isParseError(inner) || inner instanceof RowShapeError) {
    return new StoreError({ reason: "corrupt", detail: `${where}unexpected row: ${inner.message}` })
  }
  const code = sqliteCode(inner)
  const detail = where + (code === "" ? causeMessage(inner) : `${code}: ${causeMessage(inner)}`)
  if (code.startsWith("SQLITE_BUSY") || code.startsWith("SQLITE_LOCKED"))
    return new StoreError({ reason: "busy", detail })
  if (code === "SQLITE_NOTADB" || code.startsWith("SQLITE_CORRUPT"))
    return new StoreError({ reason: "corrupt", detail })
  if (
    code.startsWith("SQLITE_READONLY") ||
    code.startsWith("SQLITE_CANTOPEN") ||
    code === "SQLITE_PERM" ||
    code === "SQLITE_AUTH"
  )
    return new StoreError({ reason: "readonly", detail })
  if (/readonly|read-only/i.test(detail)) return new StoreError({ reason: "readonly", detail })
  return new StoreError({ reason: "io", detail })
}

const isBusy = (error: StoreError) => error.reason === "busy"

export interface DatabaseOptions {
  /** Path of the database file, or `:memory:`. */
  readonly filename: string
  /** Open without write access (reads only). */
  readonly readonly?: boolean
  /**
   * Create the file when it does not exist (default true; created 0600, since it holds session
   * messages). With false, a missing or empty (0-byte) file fails with a {@link StoreError}
   * (`missing` / `corrupt`) instead of being silently replaced by a fresh database, and so
   * does a database whose `PRAGMA user_version` is 0 (never migrated: `corrupt`): only
   * `trail init` creates a store.
   */
  readonly create?: boolean
}

/**
 * Why an existing store cannot be used, or null when the file is there and not empty:
 * `missing` when there is no file (run `trail init`), `corrupt` when it has 0 bytes (it was
 * emptied or truncated: SQLite would take it for a new, empty database).
 */
export const storeFileProblem = (filename: string): StoreError | null => {
  let stat: fs.Stats | undefined
  try {
    stat = fs.statSync(filename, { throwIfNoEntry: false })
  } catch (cause) {
    return toStoreError(cause, filename)
  }
  if (stat === undefined) return new StoreError({ reason: "missing", detail: `${filename} does not exist` })
  if (stat.isFile() && stat.size === 0) {
    return new StoreError({
      reason: "corrupt",
      detail: `${filename} is empty (0 bytes): it was emptied or truncated, and its state is gone`
    })
  }
  return null
}

/** Creates the database file 0600 when it does not exist yet (SQLite gives its WAL and SHM the same mode). */
const createPrivate = (filename: string) => {
  try {
    fs.closeSync(fs.openSync(filename, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o600))
  } catch (cause) {
    if (sqliteCode(cause) !== "EEXIST") throw cause
  }
}

/**
 * Opens the connection (scoped: closed with the scope) and builds both faces of it.
 * Fails with a {@link StoreError} when the file cannot be opened or is not a database.
 */
export const make = (options: DatabaseOptions) =>
  Effect.gen(function* () {
    const db = yield* Effect.acquireRelease(
      Effect.try({
        try: () => {
          const memory = options.filename === ":memory:"
          if (!memory) {
            if (options.create === false) {
              const problem = storeFileProblem(options.filename)
              if (problem !== null) throw problem
            } else if (!(options.readonly ?? false)) createPrivate(options.filename)
          }
          const db = new Sqlite(options.filename, {
            readonly: options.readonly ?? false,
            fileMustExist: options.create === false,
            timeout: BUSY_TIMEOUT_MS
          })
          try {
            // Before any write (journal_mode = WAL rewrites the header): a file SQLite reads as a
            // database that trail never migrated is not a store (an emptied file that something
            // opened once), and must not become a fresh one here.
            if (options.create === false && !memory && Number(db.pragma("user_version", { simple: true })) === 0)
              throw new StoreError({
                reason: "corrupt",
                detail: `${options.filename} holds no trail schema (user_version 0): it was emptied or replaced; only \`trail init\` creates a store`
              })
            if (!(options.readonly ?? false) && !memory) db.pragma("journal_mode = WAL")
            db.pragma("synchronous = NORMAL")
            db.pragma("foreign_keys = ON")
            // Touch the schema so a file that is not a database fails here, not mid-command.
            db.prepare("SELECT count(*) FROM sqlite_master").get()
          } catch (error) {
            db.close()
            throw error
          }
          return db
        },
        catch: (cause) => (cause instanceof StoreError ? cause : toStoreError(cause, options.filename))
      }),
      (db) => Effect.sync(() => db.close())
    )

    const statements = new Map<string, Prepared>()
    const prepare = (sql: string): Prepared => {
      let statement = statements.get(sql)
      if (statement === undefined) {
        statement = db.prepare(sql)
        statements.set(sql, statement)
      }
      return statement
    }
    const connection: Connection = {
      prepare,
      run: (sql, ...params) => prepare(sql).run(...params).changes
    }

    // The connection is shared by synchronous units of work and by @effect/sql transactions, which
    // span several async steps. A synchronous unit cannot interleave with anything, so it only
    // has to wait while such a transaction holds the connection (`sqlHolders > 0`); the common
    // case runs at once, without a scheduler hop.
    const lock = yield* Effect.makeSemaphore(1)
    let sqlHolders = 0

    /** Runs `work` once, waiting for the lock only while an @effect/sql transaction holds it. */
    const once = <A>(work: () => A): Effect.Effect<A, StoreError> => {
      const run = Effect.suspend((): Effect.Effect<A, StoreError> => {
        try {
          return Effect.succeed(work())
        } catch (cause) {
          return Effect.fail(toStoreError(cause, options.filename))
        }
      })
      return Effect.suspend(() => (sqlHolders === 0 ? run : lock.withPermits(1)(run)))
    }
    const retried = <A>(work: () => A) => Effect.retry(once(work), { schedule: BUSY_RETRY, while: isBusy })

    /**
     * `work` run synchronously; on SQLITE_BUSY (after SQLite's own busy timeout) it is retried on
     * {@link BUSY_RETRY}. The common case is one synchronous run: no retry machinery is built.
     */
    const attempt = <A>(work: () => A): Effect.Effect<A, StoreError> =>
      Effect.suspend(() => {
        if (sqlHolders !== 0) return retried(work)
        try {
          return Effect.succeed(work())
        } catch (cause) {
          const error = toStoreError(cause, options.filename)
          return isBusy(error) ? retried(work) : Effect.fail(error)
        }
      })

    const begin = prepare("BEGIN IMMEDIATE")
    const commit = prepare("COMMIT")
    const rollback = prepare("ROLLBACK")
    const inTransaction = <A>(work: (db: Connection) => A): A => {
      begin.run()
      try {
        const result = work(connection)
        commit.run()
        return result
      } catch (error) {
        if (db.inTransaction) rollback.run()
        throw error
      }
    }

    const immediate = <A>(work: (db: Connection) => A) => attempt(() => inTransaction(work))
    const immediateEither = <A, E>(work: (db: Connection) => Either.Either<A, E>): Effect.Effect<A, E | StoreError> =>
      Effect.flatMap(immediate(work), (result) =>
        Either.isRight(result) ? Effect.succeed(result.right) : Effect.fail(result.left)
      )
    const read = <A>(work: (db: Connection) => A) => attempt(() => work(connection))
    const exec = (sql: string) => attempt(() => void db.exec(sql))

    const sqlConnection: SqlConnection.Connection = {
      execute: (sql, params, transformRows) =>
        Effect.try({
          try: () => {
            const statement = prepare(sql)
            const rows = statement.reader ? statement.all(...params) : (statement.run(...params), [])
            return transformRows === undefined ? rows : transformRows(rows as ReadonlyArray<object>)
          },
          catch: (cause) => new SqlError({ cause, message: "Failed to execute statement" })
        }),
      executeRaw: (sql, params) =>
        Effect.try({
          try: () => prepare(sql).run(...params),
          catch: (cause) => new SqlError({ cause, message: "Failed to execute statement" })
        }),
      executeValues: (sql, params) =>
        Effect.try({
          try: () => {
            const statement = prepare(sql)
            if (!statement.reader) return (statement.run(...params), [])
            return statement.raw(true).all(...params) as ReadonlyArray<ReadonlyArray<unknown>>
          },
          catch: (cause) => new SqlError({ cause, message: "Failed to execute statement" })
        }),
      executeUnprepared: (sql, params, transformRows) =>
        Effect.try({
          try: () => {
            const statement = db.prepare(sql)
            const rows = statement.reader ? statement.all(...params) : (statement.run(...params), [])
            return transformRows === undefined ? rows : transformRows(rows as ReadonlyArray<object>)
          },
          catch: (cause) => new SqlError({ cause, message: "Failed to execute statement" })
        }),
      executeStream: () => Effect.dieMessage("executeStream is not supported by the trail store") as never
    }

    const acquirer = lock.withPermits(1)(Effect.succeed(sqlConnection))
    const transactionAcquirer = Effect.uninterruptibleMask((restore) =>
      restore(lock.take(1)).pipe(
        Effect.tap(() => sqlHolders++),
        Effect.zipRight(
          Effect.addFinalizer(() =>
            Effect.zipRight(
              Effect.sync(() => sqlHolders--),
              lock.release(1)
            )
          )
        ),
        Effect.as(sqlConnection)
      )
    )
    const sql = yield* SqlClient.make({
      acquirer,
      transactionAcquirer,
      compiler: Statement.makeCompilerSqlite(),
      spanAttributes: [["db.system.name", "sqlite"]],
      beginTransaction: "BEGIN IMMEDIATE"
    })

    const database: DatabaseShape = { filename: options.filename, immediate, immediateEither, read, exec }
    return { database, sql }
  })

/** Provides {@link Database} and `SqlClient` over one connection to `options.filename`. */
export const layer = (options: DatabaseOptions): Layer.Layer<Database | SqlClient.SqlClient, StoreError> =>
  Layer.scopedContext(
    Effect.map(make(options), ({ database, sql }) =>
      Context.make(Database, database).pipe(Context.add(SqlClient.SqlClient, sql))
    )
  ).pipe(Layer.provide(Reactivity.layer))
