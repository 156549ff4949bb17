/**
 * The state database `.trail/state.db`, offered two ways over two connections to the same file
 * (WAL, busy timeout {@link BUSY_TIMEOUT_MS}):
 *
 * - `SqlClient` (also as `SqliteClient`): `@effect/sql-sqlite-node`'s client, for the cold
 *   paths and migrations. Store services write it with the `sql` template and decode rows with
 *   `SqlSchema` and the domain's schemas, so that another `SqlClient` (PostgreSQL) can serve them.
 *   Every write transaction goes through {@link DatabaseShape.transaction}.
 * - {@link DatabaseShape.immediate}: a synchronous unit of work inside one `BEGIN IMMEDIATE …
 *   COMMIT` on its own connection ({@link UnitOfWork}), statements prepared once. The scheduler's
 *   hot path (claim, complete) and bulk inserts use it: through `SqlClient` a statement costs
 *   ~55–80 µs, here ~5 µs (docs/benchmarks.md).
 *
 * One write lock per store (an Effect semaphore) orders the two in this process: a `SqlClient`
 * transaction holds SQLite's write lock across awaits, and a synchronous unit on the other
 * connection would otherwise spin in SQLite's busy handler for 5 s with the event loop blocked.
 *
 * Every SQLite failure becomes a {@link StoreError}: `corrupt` (SQLITE_NOTADB/CORRUPT, a row of
 * the wrong shape), `readonly` (SQLITE_READONLY/CANTOPEN/PERM), `busy` (still locked after
 * {@link BUSY_RETRY}), `io` otherwise. SQLITE_BUSY is retried here and never returned sooner.
 */
import * as Reactivity from "@effect/experimental/Reactivity"
import * as SqlClient from "@effect/sql/SqlClient"
import { SqlError } from "@effect/sql/SqlError"
import * as SqlSchema from "@effect/sql/SqlSchema"
import * as SqliteClient from "@effect/sql-sqlite-node/SqliteClient"
import { StoreError } from "@trail/domain"
import {
  Context,
  Duration,
  Effect,
  Either,
  FiberRef,
  Layer,
  Option,
  ParseResult,
  Schedule,
  Schema,
  type Scope
} from "effect"
import * as fs from "node:fs"
import { RowShapeError } from "./Rows.js"
import * as UnitOfWork from "./UnitOfWork.js"

/** What a synchronous unit of work may use (see {@link UnitOfWork.Connection}). */
export type Connection = UnitOfWork.Connection

export const BUSY_TIMEOUT_MS = UnitOfWork.BUSY_TIMEOUT_MS

/** A failure of the SQL layer that the store reports as a StoreError. */
export type SqlFailure = SqlError | ParseResult.ParseError

/** `E` without its SQL-layer failures (which the store reports as StoreErrors). */
export type WithoutSqlFailure<E> = Exclude<E, Extract<E, SqlFailure>>

export interface DatabaseShape {
  /** Absolute path of the database file. */
  readonly filename: string
  /** Runs `work` synchronously inside `BEGIN IMMEDIATE … COMMIT` (rolled back if it throws). */
  readonly immediate: <A>(work: (db: Connection) => A) => Effect.Effect<A, StoreError>
  /**
   * As {@link immediate} for work that can end in a domain error: a `Left` fails the effect
   * (the transaction still commits: the work decides what it wrote before deciding to fail).
   */
  readonly immediateEither: <A, E>(work: (db: Connection) => Either.Either<A, E>) => Effect.Effect<A, E | StoreError>
  /**
   * As {@link immediate} when the write lock is free now (in this process and in SQLite): None,
   * having run nothing, when it is held; never waits for it.
   */
  readonly tryImmediate: <A>(work: (db: Connection) => A) => Effect.Effect<Option.Option<A>, StoreError>
  /** Runs `work` synchronously outside any explicit transaction (reads see one snapshot per statement). */
  readonly read: <A>(work: (db: Connection) => A) => Effect.Effect<A, StoreError>
  /** Runs `work`'s reads synchronously inside one read transaction: one snapshot for all of them. */
  readonly snapshot: <A>(work: (db: Connection) => A) => Effect.Effect<A, StoreError>
  /** Runs a statement that cannot be inside a transaction (`VACUUM`, checkpoints). */
  readonly exec: (sql: string) => Effect.Effect<void, StoreError>
  /**
   * Runs `effect` as one `SqlClient` transaction holding the store's write lock; the whole
   * transaction is retried on SQLITE_BUSY (SqliteClient begins with a deferred `BEGIN`, so a
   * transaction that reads, then writes, can lose its snapshot to another process's commit).
   * Nested calls are savepoints of the outer one, also from fibers forked inside it while it is
   * open; a fork that outlives it is outside it (its calls begin their own transactions). SQL and
   * row-decoding failures become StoreErrors. A unit of work ({@link immediate}) inside it is a
   * defect: it would wait for its own lock.
   */
  readonly transaction: <A, E, R>(
    effect: Effect.Effect<A, E, R>
  ) => Effect.Effect<A, WithoutSqlFailure<E> | StoreError, R>
}

export class Database extends Context.Tag("@trail/store/Database")<Database, DatabaseShape>() {}

/** Retries after SQLITE_BUSY survived the busy timeout: jittered backoff, about a minute in all. */
export const BUSY_RETRY = Schedule.exponential(Duration.millis(20), 2).pipe(
  Schedule.union(Schedule.spaced(Duration.seconds(1))),
  Schedule.jittered,
  Schedule.intersect(Schedule.recurs(12))
)

const sqliteCode = (cause: unknown): string =>
  typeof cause === "object" && cause !== null && "code" in cause && typeof cause.code === "string" ? cause.code : ""

const causeMessage = (cause: unknown): string => (cause instanceof Error ? cause.message : String(cause))

/** Maps a SQLite (or SqlError, or row-decoding) failure to a {@link StoreError}; `file` is named in its detail. */
export const toStoreError = (cause: unknown, file?: string): StoreError => {
  if (cause instanceof StoreError) return cause
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

const isSqlFailure = <E>(error: E): error is Extract<E, SqlFailure> =>
  error instanceof SqlError || ParseResult.isParseError(error)

/** A `SqlClient` effect with its SQL and row-decoding failures reported as StoreErrors (the service edge). */
export const orStoreError = <A, E, R>(
  self: Effect.Effect<A, E, R>
): Effect.Effect<A, WithoutSqlFailure<E> | StoreError, R> =>
  Effect.catchIf(self, isSqlFailure, (error) => Effect.fail(toStoreError(error)))

const isBusy = (error: unknown) => error instanceof StoreError && error.reason === "busy"

/**
 * `effect` (a single SqlClient statement outside a transaction) retried on {@link BUSY_RETRY}
 * while it fails with a `busy` StoreError (SQLite's own 5 s busy wait was not enough).
 */
export const retryBusy = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Effect.retry(effect, { schedule: BUSY_RETRY, while: isBusy })

/**
 * A SqlClient statement run on its own, outside an explicit transaction (SQLite's autocommit): its
 * SQL and row-decoding failures as StoreErrors ({@link orStoreError}), retried while `busy`
 * ({@link retryBusy}).
 */
export const autocommit = <A, E, R>(
  effect: Effect.Effect<A, E, R>
): Effect.Effect<A, WithoutSqlFailure<E> | StoreError, R> => retryBusy(orStoreError(effect))

export interface DatabaseOptions {
  /** Path of the database file (`:memory:` is not a store: the store opens two connections). */
  readonly filename: string
  /** Open without write access (reads only). */
  readonly readonly?: boolean
  /**
   * Create the file when it does not exist (default true; created 0600, since it holds session
   * messages). With false, a missing or empty (0-byte) file fails with a {@link StoreError}
   * (`missing` / `corrupt`) instead of being silently replaced by a fresh database, and so
   * does a database that is not a migrated trail store ({@link UnitOfWork.migratedProblem}:
   * `corrupt`): only `trail init` creates a store.
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
  return stat.isFile() && stat.size === 0 ? emptiedStore(filename) : null
}

/** The `corrupt` StoreError of a store file that has 0 bytes (emptied or truncated in place). */
export const emptiedStore = (filename: string): StoreError =>
  new StoreError({
    reason: "corrupt",
    detail: `${filename} is empty (0 bytes): it was emptied or truncated, and its state is gone`
  })

/** Creates the database file 0600 when it does not exist yet (SQLite gives its WAL and SHM the same mode). */
const createPrivate = (filename: string) => {
  try {
    fs.closeSync(fs.openSync(filename, fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_WRONLY, 0o600))
  } catch (cause) {
    if (sqliteCode(cause) !== "EEXIST") throw cause
  }
}

const UserVersion = Schema.Struct({ user_version: Schema.Int })

/**
 * `PRAGMA user_version` of the store: the id of the newest migration applied (0: never
 * migrated, not a trail store). Through `SqlClient`.
 */
export const userVersion: Effect.Effect<number, StoreError, SqlClient.SqlClient> = Effect.flatMap(
  SqlClient.SqlClient,
  (sql) =>
    SqlSchema.single({ Request: Schema.Void, Result: UserVersion, execute: () => sql`PRAGMA user_version` })(
      undefined
    ).pipe(
      Effect.map((row) => row.user_version),
      Effect.catchTag("NoSuchElementException", () => Effect.succeed(0)),
      orStoreError
    )
)

export const unmigrated = UnitOfWork.unmigrated

/** Why the store `client` opened is not a migrated trail store ({@link UnitOfWork.migratedProblem}), or null. */
const migratedProblem = (client: SqlClient.SqlClient, filename: string) =>
  SqlSchema.single({
    Request: Schema.Void,
    Result: UnitOfWork.MigratedFactsRow,
    execute: () => client.unsafe(UnitOfWork.MIGRATED_FACTS_SQL)
  })(undefined).pipe(Effect.map((facts) => UnitOfWork.migratedProblem(filename, facts)))

/**
 * Opens both connections (scoped: closed with the scope) and builds the {@link Database}.
 * Fails with a {@link StoreError} when the file cannot be opened or is not a (trail) database.
 */
export const make = (
  options: DatabaseOptions
): Effect.Effect<
  { readonly database: DatabaseShape; readonly client: SqliteClient.SqliteClient },
  StoreError,
  Scope.Scope | Reactivity.Reactivity
> =>
  Effect.gen(function* () {
    const { filename } = options
    const readonly = options.readonly ?? false
    if (filename === ":memory:")
      return yield* new StoreError({
        reason: "io",
        detail: ":memory: is not a store (the store opens two connections to one file): use a file, e.g. on tmpfs"
      })
    if (options.create === false) {
      const problem = storeFileProblem(filename)
      if (problem !== null) return yield* problem
    } else if (!readonly) {
      yield* Effect.try({ try: () => createPrivate(filename), catch: (cause) => toStoreError(cause, filename) })
    }
    // SqliteClient opens inside Effect.gen and throws (a defect) when the file is not a database.
    const client = yield* SqliteClient.make({ filename, readonly, disableWAL: readonly }).pipe(
      Effect.catchAllDefect((cause) => Effect.fail(toStoreError(cause, filename)))
    )
    const opened = Effect.gen(function* () {
      if (options.create === false) {
        const problem = yield* migratedProblem(client, filename)
        if (problem !== null) return yield* problem
      }
      yield* client`PRAGMA foreign_keys = ON`
      yield* client`PRAGMA synchronous = NORMAL`
      // Touch the schema so a file that is not a database fails here, not mid-command.
      yield* client`SELECT count(*) FROM sqlite_master`
    })
    yield* opened.pipe(Effect.mapError((error) => toStoreError(error, filename)))
    const handle = yield* Effect.acquireRelease(
      Effect.try({
        try: () => UnitOfWork.open(filename, { readonly }),
        catch: (cause) => toStoreError(cause, filename)
      }),
      (handle) => Effect.sync(() => handle.close())
    )

    const lock = yield* Effect.makeSemaphore(1)
    // How many SqlClient transactions hold (or wait in) the lock: while none does, a unit of work
    // runs at once, with no scheduler hop (it is synchronous, so nothing can interleave with it).
    let sqlHolders = 0
    // The outermost SqlClient transaction of this store the current fiber runs in. Forks inherit
    // it, as they inherit the transaction's connection (a fiber forked and joined inside is inside
    // it); `open` turns false when it ends, so a fork that outlives it is outside, like any fiber.
    const current = yield* FiberRef.make<{ open: boolean } | null>(null)
    const inTransaction = Effect.map(FiberRef.get(current), (t) => t !== null && t.open)

    const run = <A>(work: () => A): Effect.Effect<A, StoreError> =>
      Effect.suspend((): Effect.Effect<A, StoreError> => {
        try {
          return Effect.succeed(work())
        } catch (cause) {
          return Effect.fail(toStoreError(cause, filename))
        }
      })
    const locked = <A>(work: () => A): Effect.Effect<A, StoreError> =>
      Effect.flatMap(inTransaction, (inside) =>
        inside
          ? Effect.dieMessage("a unit of work inside a SqlClient transaction of the same store would wait for itself")
          : lock.withPermits(1)(run(work))
      )
    const once = <A>(work: () => A) => Effect.suspend(() => (sqlHolders === 0 ? run(work) : locked(work)))
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
          const error = toStoreError(cause, filename)
          return isBusy(error) ? retried(work) : Effect.fail(error)
        }
      })

    const immediate = <A>(work: (db: Connection) => A) => attempt(() => handle.immediate(work))
    const immediateEither = <A, E>(work: (db: Connection) => Either.Either<A, E>): Effect.Effect<A, E | StoreError> =>
      Effect.flatMap(immediate(work), (result) =>
        Either.isRight(result) ? Effect.succeed(result.right) : Effect.fail(result.left)
      )
    const tryImmediate = <A>(work: (db: Connection) => A): Effect.Effect<Option.Option<A>, StoreError> =>
      Effect.suspend(() => (sqlHolders === 0 ? run(() => handle.tryImmediate(work)) : Effect.succeed(Option.none())))
    const read = <A>(work: (db: Connection) => A) => attempt(() => work(handle.connection))
    const snapshot = <A>(work: (db: Connection) => A) => attempt(() => handle.snapshot(work))
    const exec = (sql: string) => attempt(() => handle.exec(sql))

    const withLock = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
      Effect.acquireUseRelease(
        Effect.zipRight(
          Effect.sync(() => sqlHolders++),
          Effect.as(lock.take(1), { open: true })
        ),
        (transaction) =>
          effect.pipe(
            Effect.locally(current, transaction),
            // A fork of an ended transaction inherits its connection too: @effect/sql would make
            // this a savepoint of nothing (begun, never released). It begins its own.
            Effect.locallyWith(FiberRef.currentContext, Context.omit(SqlClient.TransactionConnection))
          ),
        (transaction) =>
          Effect.zipRight(
            Effect.sync(() => {
              transaction.open = false
            }),
            Effect.zipRight(
              lock.release(1),
              Effect.sync(() => sqlHolders--)
            )
          )
      )
    const transaction = <A, E, R>(
      effect: Effect.Effect<A, E, R>
    ): Effect.Effect<A, WithoutSqlFailure<E> | StoreError, R> =>
      Effect.flatMap(inTransaction, (inside) => {
        // BEGIN / COMMIT failures are the transaction's own SqlErrors.
        const once = Effect.mapError(
          client.withTransaction(orStoreError(effect)),
          (error): WithoutSqlFailure<E> | StoreError => (error instanceof SqlError ? toStoreError(error) : error)
        )
        return inside ? once : Effect.retry(withLock(once), { schedule: BUSY_RETRY, while: isBusy })
      })

    const database: DatabaseShape = {
      filename,
      immediate,
      immediateEither,
      tryImmediate,
      read,
      snapshot,
      exec,
      transaction
    }
    return { database, client }
  })

/**
 * Provides {@link Database}, `SqlClient` and `SqliteClient` over `options.filename` (see
 * {@link make}).
 */
export const layer = (
  options: DatabaseOptions
): Layer.Layer<Database | SqlClient.SqlClient | SqliteClient.SqliteClient, StoreError> =>
  Layer.scopedContext(
    Effect.map(make(options), ({ client, database }) =>
      Context.make(Database, database).pipe(
        Context.add(SqliteClient.SqliteClient, client),
        Context.add(SqlClient.SqlClient, client)
      )
    )
  ).pipe(Layer.provide(Reactivity.layer))
