import * as NodeContext from "@effect/platform-node/NodeContext"
import * as FileSystem from "@effect/platform/FileSystem"
import * as SqlClient from "@effect/sql/SqlClient"
import * as SqliteMigrator from "@effect/sql-sqlite-node/SqliteMigrator"
import { assert, describe, it } from "@effect/vitest"
import Sqlite from "better-sqlite3"
import { Context, Deferred, Effect, Exit, Fiber, Layer, Ref, Schema } from "effect"
import * as TestServices from "effect/TestServices"
import { StoreError } from "@trail/domain"
import { Database, Events, Migrations } from "../src/index.js"
import * as UnitOfWork from "../src/UnitOfWork.js"

const tempFile = (name: string) =>
  Effect.gen(function* () {
    const fs = yield* FileSystem.FileSystem
    const dir = yield* fs.makeTempDirectoryScoped()
    return `${dir}/${name}`
  })

/** Opens the store at `filename` in the current scope. */
const open = (options: Database.DatabaseOptions) =>
  Effect.map(Layer.build(Database.layer(options)), (ctx) => ({
    database: Context.get(ctx, Database.Database),
    sql: Context.get(ctx, SqlClient.SqlClient),
    ctx
  }))

/** A fresh, migrated store with a scratch table `t (x)`. */
const scratch = Effect.gen(function* () {
  const filename = yield* tempFile("state.db")
  const store = yield* open({ filename })
  yield* Effect.provide(Migrations.migrate, store.ctx)
  yield* store.database.immediate((db) => db.run("CREATE TABLE t (x INTEGER NOT NULL)"))
  return { ...store, filename }
})

const xs = (database: Database.DatabaseShape) =>
  database.read((db) => db.all("SELECT x FROM t ORDER BY rowid").map((r) => Schema.decodeUnknownSync(XRow)(r).x))
const XRow = Schema.Struct({ x: Schema.Number })

const reasonOf = (options: Database.DatabaseOptions) => Effect.map(Effect.flip(open(options)), (error) => error.reason)

describe("Database", () => {
  it.layer(NodeContext.layer)((it) => {
    it.scoped("opening a store that is not one fails with the right StoreError reason", () =>
      Effect.gen(function* () {
        const fs = yield* FileSystem.FileSystem
        const missing = yield* tempFile("missing.db")
        assert.strictEqual(yield* reasonOf({ filename: missing, create: false }), "missing")
        assert.isFalse(yield* fs.exists(missing), "a missing store is not created")

        const empty = yield* tempFile("empty.db")
        yield* fs.writeFileString(empty, "")
        assert.strictEqual(yield* reasonOf({ filename: empty, create: false }), "corrupt")
        assert.strictEqual((yield* fs.stat(empty)).size, FileSystem.Size(0), "an emptied store stays empty")

        const unmigrated = yield* tempFile("blank.db")
        const blank = new Sqlite(unmigrated)
        blank.exec("CREATE TABLE t (x INTEGER)")
        blank.close()
        const error = yield* Effect.flip(open({ filename: unmigrated, create: false }))
        assert.strictEqual(error.reason, "corrupt")
        assert.include(error.detail, "user_version 0")

        const garbage = yield* tempFile("garbage.db")
        const bytes = "this is not a database, only some text that is long enough ".repeat(100)
        yield* fs.writeFileString(garbage, bytes)
        assert.strictEqual(yield* reasonOf({ filename: garbage }), "corrupt")
        assert.strictEqual(yield* fs.readFileString(garbage), bytes, "a file that is not a database is left untouched")

        assert.strictEqual(yield* reasonOf({ filename: ":memory:" }), "io")
      })
    )

    it.scoped("both openers (the store layer and the hook's unit of work) judge a store migrated alike", () =>
      Effect.gen(function* () {
        /** The verdict of each opener: null when it opens the store, else the refusal's reason. */
        const verdicts = (filename: string) =>
          Effect.gen(function* () {
            const viaLayer = yield* Effect.scoped(open({ filename, create: false })).pipe(
              Effect.match({ onFailure: (error) => error.reason, onSuccess: () => null })
            )
            const viaUnit = yield* Effect.try({
              try: () => UnitOfWork.open(filename, { checkMigrated: true }).close(),
              catch: (error) => error
            }).pipe(
              Effect.match({
                onFailure: (error) => (error instanceof StoreError ? error.reason : String(error)),
                onSuccess: () => null
              })
            )
            return [viaLayer, viaUnit]
          })
        const current = yield* scratch
        assert.deepStrictEqual(yield* verdicts(current.filename), [null, null])

        // Its user_version says current, but a table of it is gone.
        const damaged = yield* scratch
        yield* damaged.database.immediate((db) => db.run("DROP TABLE inbox_state"))
        assert.deepStrictEqual(yield* verdicts(damaged.filename), ["corrupt", "corrupt"])

        // A store of an older trail, before the inbox tables existed: migrated, brought up to date later.
        const filename = yield* tempFile("old.db")
        yield* Effect.scoped(
          Effect.gen(function* () {
            const old = yield* open({ filename })
            const upTo4 = Object.fromEntries(Object.entries(Migrations.migrations).slice(0, 4))
            yield* SqliteMigrator.make({})({ loader: SqliteMigrator.fromRecord(upTo4) }).pipe(Effect.provide(old.ctx))
            yield* old.database.exec("PRAGMA user_version = 4")
          })
        )
        assert.deepStrictEqual(yield* verdicts(filename), [null, null])
        // The same version without the tables it claims.
        yield* Effect.scoped(Effect.flatMap(open({ filename }), (old) => old.database.exec("PRAGMA user_version = 5")))
        assert.deepStrictEqual(yield* verdicts(filename), ["corrupt", "corrupt"])
      })
    )

    it.scoped("the tables the migrated check expects are those the migrations create", () =>
      Effect.gen(function* () {
        const { database } = yield* scratch
        const Row = Schema.Struct({ name: Schema.String, sql: Schema.NullOr(Schema.String) })
        const rows = yield* database.read((db) =>
          db
            .all("SELECT name, sql FROM sqlite_master WHERE type = 'table' AND name NOT IN ('t', 'sqlite_sequence')")
            .map((r) => Schema.decodeUnknownSync(Row)(r))
        )
        // A virtual table's shadow tables (`<name>_data`, `<name>_idx`, …) come with it.
        const virtual = rows.filter((r) => r.sql?.startsWith("CREATE VIRTUAL TABLE") === true).map((r) => r.name)
        const tables = rows.map((r) => r.name).filter((name) => !virtual.some((v) => name.startsWith(`${v}_`)))
        assert.sameMembers(
          UnitOfWork.TABLES_BY_MIGRATION.flatMap(([, names]) => names),
          tables
        )
      })
    )

    it.scoped("a store opened read-only reads, and fails writes as readonly through both connections", () =>
      Effect.gen(function* () {
        const { filename, database } = yield* scratch
        yield* database.immediate((db) => db.run("INSERT INTO t VALUES (7)"))
        const readonly = yield* open({ filename, readonly: true })
        assert.deepStrictEqual(yield* xs(readonly.database), [7])
        const viaUnit = yield* Effect.flip(readonly.database.immediate((db) => db.run("INSERT INTO t VALUES (1)")))
        assert.strictEqual(viaUnit.reason, "readonly")
        const viaSql = yield* Effect.flip(readonly.database.transaction(readonly.sql`INSERT INTO t VALUES (1)`))
        assert.strictEqual(viaSql.reason, "readonly")
        assert.deepStrictEqual(yield* xs(database), [7])
      })
    )

    it.scoped("a SqlClient transaction and units of work interleave under one lock: no 5 s wait, no lost write", () =>
      Effect.gen(function* () {
        const { database, sql } = yield* scratch
        const started = Date.now()
        // The transaction holds SQLite's write lock across an await; the unit of work started
        // meanwhile on the other connection must wait for the lock, not in SQLite's busy handler.
        const transaction = database.transaction(
          Effect.gen(function* () {
            yield* sql`INSERT INTO t VALUES (1)`
            yield* Effect.sleep("100 millis")
            yield* sql`INSERT INTO t VALUES (2)`
          })
        )
        const unit = Effect.zipRight(
          Effect.sleep("20 millis"),
          database.immediate((db) => db.run("INSERT INTO t VALUES (3)"))
        )
        yield* Effect.all([transaction, unit], { concurrency: "unbounded" })
        const elapsed = Date.now() - started
        assert.isBelow(elapsed, 2_000, `took ${elapsed} ms`)
        assert.deepStrictEqual(yield* xs(database), [1, 2, 3])
      }).pipe(TestServices.provideLive)
    )

    it.scoped("a unit of work inside a SqlClient transaction of the same store is a defect, not a deadlock", () =>
      Effect.gen(function* () {
        const { database, sql } = yield* scratch
        const exit = yield* Effect.exit(
          database.transaction(
            Effect.zipRight(
              sql`INSERT INTO t VALUES (1)`,
              database.immediate((db) => db.run("INSERT INTO t VALUES (2)"))
            )
          )
        )
        assert.isTrue(exit._tag === "Failure")
        assert.deepStrictEqual(yield* xs(database), [])
      })
    )

    it.scoped(
      "a fiber forked in a transaction and outliving it is outside it: its unit of work and transaction run",
      () =>
        Effect.gen(function* () {
          const { database, sql } = yield* scratch
          const committed = yield* Deferred.make<void>()
          const late = yield* database.transaction(
            Effect.gen(function* () {
              yield* sql`INSERT INTO t VALUES (1)`
              // Forked inside, it works only once the transaction has committed.
              return yield* Effect.forkDaemon(
                Effect.gen(function* () {
                  yield* Deferred.await(committed)
                  yield* database.immediate((db) => db.run("INSERT INTO t VALUES (2)"))
                  yield* database.transaction(sql`INSERT INTO t VALUES (3)`)
                })
              )
            })
          )
          yield* Deferred.succeed(committed, undefined)
          const exit = yield* Fiber.await(late)
          assert.isTrue(Exit.isSuccess(exit), `the late fiber's work ran: ${String(exit)}`)
          assert.deepStrictEqual(yield* xs(database), [1, 2, 3])
          // A fiber forked and joined inside the transaction is still inside it: its nested
          // transaction is a savepoint of the outer one (no wait for the lock its parent holds).
          yield* database.transaction(
            Effect.fork(database.transaction(sql`INSERT INTO t VALUES (4)`)).pipe(Effect.flatMap(Fiber.join))
          )
          assert.deepStrictEqual(yield* xs(database), [1, 2, 3, 4])
        })
    )

    it.scoped("a transaction that read, then lost its snapshot to another connection's commit, is retried whole", () =>
      Effect.gen(function* () {
        const { database, sql, filename } = yield* scratch
        // A second store on the same file: its own connections and lock, as another process has.
        const other = yield* open({ filename })
        const attempts = yield* Ref.make(0)
        const CountRow = Schema.Struct({ n: Schema.Number })
        const n = yield* database.transaction(
          Effect.gen(function* () {
            const attempt = yield* Ref.updateAndGet(attempts, (k) => k + 1)
            const [row] = yield* sql`SELECT count(*) AS n FROM t`
            const before = Schema.decodeUnknownSync(CountRow)(row).n
            // Deferred BEGIN: the read above pinned a snapshot; this commit makes it stale, so the
            // write below fails with SQLITE_BUSY_SNAPSHOT on the first attempt.
            if (attempt === 1) yield* other.database.immediate((db) => db.run("INSERT INTO t VALUES (10)"))
            yield* sql`INSERT INTO t VALUES (${before})`
            return before
          })
        )
        assert.strictEqual(yield* Ref.get(attempts), 2)
        assert.strictEqual(n, 1, "the retry saw the other connection's row")
        assert.deepStrictEqual(yield* xs(database), [10, 1])
      }).pipe(TestServices.provideLive)
    )

    it.scoped("events appended in a SqlClient transaction and in a unit of work share one log", () =>
      Effect.gen(function* () {
        const { database, ctx } = yield* scratch
        const first = yield* database
          .transaction(
            Events.appendSql({ at: 1, type: "worker.note", subject: { type: "worker", id: "w1" }, data: { a: 1 } })
          )
          .pipe(Effect.provide(ctx))
        const second = yield* database.immediate((db) =>
          Events.append(db, { at: 2, type: "worker.note", subject: { type: "worker", id: "w1" }, data: { b: 2 } })
        )
        assert.deepStrictEqual([first.id, second.id], [1, 2])
        const viaSql = yield* Database.orStoreError(Events.ofSubjectSql("worker", "w1")).pipe(Effect.provide(ctx))
        const viaUnit = yield* database.read((db) => Events.ofSubject(db, "worker", "w1"))
        assert.deepStrictEqual(viaSql, viaUnit)
        assert.deepStrictEqual(
          viaSql.map((e) => e.data),
          [{ a: 1 }, { b: 2 }]
        )
        assert.strictEqual(yield* Database.orStoreError(Events.latestIdSql).pipe(Effect.provide(ctx)), 2)
      })
    )

    it.scoped(
      "truncateWal empties a write-ahead log over the size given, not while a reader is in it, and loses nothing",
      () =>
        Effect.gen(function* () {
          const fs = yield* FileSystem.FileSystem
          const { database, filename } = yield* scratch
          const walSize = Effect.map(fs.stat(`${filename}-wal`), (stat) => Number(stat.size))
          // Another process's connection keeps the store open, so no close checkpoints the log away.
          const other = new Sqlite(filename)
          yield* Effect.addFinalizer(() => Effect.sync(() => other.close()))
          yield* database.immediate((db) => {
            for (let x = 0; x < 200; x++) db.run("INSERT INTO t (x) VALUES (?)", x)
          })
          const before = yield* walSize
          assert.isAbove(before, 0)

          const handle = UnitOfWork.open(filename, { checkMigrated: true })
          yield* Effect.addFinalizer(() => Effect.sync(() => handle.close()))
          assert.isFalse(handle.truncateWal(before, 50), "a log no larger than the bound is left alone")
          assert.strictEqual(yield* walSize, before)

          // A reader in the log: the checkpoint cannot empty it, and says so.
          other.prepare("BEGIN").run()
          assert.strictEqual(other.prepare("SELECT count(*) FROM t").pluck().get(), 200)
          assert.isFalse(handle.truncateWal(0, 10))
          other.prepare("COMMIT").run()

          assert.isTrue(handle.truncateWal(0, 50))
          assert.strictEqual(yield* walSize, 0)
          assert.deepStrictEqual(
            yield* xs(database),
            Array.from({ length: 200 }, (_, x) => x)
          )
          // The busy wait is the store's own again afterwards.
          assert.strictEqual(handle.connection.pluck("PRAGMA busy_timeout"), UnitOfWork.BUSY_TIMEOUT_MS)
        })
    )

    it.scoped("migrations: a fresh store gets every migration; a store of an older schema is brought up to date", () =>
      Effect.gen(function* () {
        const names = Object.keys(Migrations.migrations)
        const fresh = yield* scratch
        const MigrationRow = Schema.Struct({ migration_id: Schema.Number, name: Schema.String })
        const recorded = yield* fresh.database.read((db) =>
          db
            .all("SELECT migration_id, name FROM effect_sql_migrations ORDER BY migration_id")
            .map((r) => Schema.decodeUnknownSync(MigrationRow)(r))
        )
        assert.deepStrictEqual(
          recorded.map((r) => `${String(r.migration_id).padStart(4, "0")}_${r.name}`),
          names
        )
        assert.strictEqual(yield* Effect.provide(Database.userVersion, fresh.ctx), Migrations.LATEST_MIGRATION)

        // A store written before the newest migration existed: migrated up to 0006, with data.
        const filename = yield* tempFile("old.db")
        yield* Effect.scoped(
          Effect.gen(function* () {
            const old = yield* open({ filename })
            const upTo6 = Object.fromEntries(Object.entries(Migrations.migrations).slice(0, 6))
            yield* SqliteMigrator.make({})({ loader: SqliteMigrator.fromRecord(upTo6) }).pipe(Effect.provide(old.ctx))
            yield* old.database.immediate((db) => {
              db.run("PRAGMA user_version = 6")
              db.run("INSERT INTO tasks (name, created_at) VALUES ('old', 1)")
            })
          })
        )
        const store = yield* open({ filename, create: false })
        assert.strictEqual(yield* Effect.provide(Database.userVersion, store.ctx), 6)
        yield* Effect.provide(Migrations.migrate, store.ctx)
        assert.strictEqual(yield* Effect.provide(Database.userVersion, store.ctx), Migrations.LATEST_MIGRATION)
        const TaskRow = Schema.Struct({ name: Schema.String, strategy: Schema.NullOr(Schema.String) })
        const tasks = yield* store.database.read((db) =>
          db.all("SELECT name, strategy FROM tasks").map((r) => Schema.decodeUnknownSync(TaskRow)(r))
        )
        assert.deepStrictEqual(tasks, [{ name: "old", strategy: null }])
        // Migrating again is a no-op.
        yield* Effect.provide(Migrations.migrate, store.ctx)
      })
    )
  })
})
