import * as NodeContext from "@effect/platform-node/NodeContext"
import * as FileSystem from "@effect/platform/FileSystem"
import { assert, describe, it } from "@effect/vitest"
import * as fs from "node:fs"
import * as zlib from "node:zlib"
import { Context, Effect, Layer, Stream } from "effect"
import { Archive, Database, Events, Migrations } from "../src/index.js"

const withDatabase = Effect.gen(function* () {
  const dir = yield* (yield* FileSystem.FileSystem).makeTempDirectoryScoped()
  const ctx = yield* Layer.build(Database.layer({ filename: `${dir}/state.db` }))
  yield* Effect.provide(Migrations.migrate, ctx)
  return { database: Context.get(ctx, Database.Database), archiveDir: `${dir}/${Archive.DIR}`, ctx }
})

const OCT_31 = Date.UTC(2026, 9, 31, 23, 0)
const NOV_1 = Date.UTC(2026, 10, 1, 1, 0)

describe("Archive", () => {
  it.scoped("moves events into one file per month of their time, appending a gzip member on each run", () =>
    Effect.gen(function* () {
      const { database, archiveDir, ctx } = yield* withDatabase
      // The third event's clock is behind: it belongs to October although it was logged after a November one.
      const times = [OCT_31, NOV_1, OCT_31 + 1, NOV_1 + 1, NOV_1 + 2]
      yield* database.immediate((db) => {
        for (const [i, at] of times.entries())
          Events.append(db, { at, type: "worker.note", subject: { type: "worker", id: "w1" }, data: { i } })
        db.run(`INSERT INTO inbox_state (id, last_event_id) VALUES (1, 5)`)
      })
      const first = yield* Effect.provide(Archive.archive(archiveDir, 2), ctx)
      assert.deepStrictEqual(first, {
        archived_events: 2,
        deleted_events: 2,
        up_to: 2,
        files: ["events-2026-10.ndjson.gz", "events-2026-11.ndjson.gz"]
      })
      const second = yield* Effect.provide(Archive.archive(archiveDir, 4), ctx)
      assert.deepStrictEqual(second.files, ["events-2026-10.ndjson.gz", "events-2026-11.ndjson.gz"])
      // Each file is two gzip members: gunzip reads both, in the order written.
      const ids = (name: string) =>
        zlib
          .gunzipSync(fs.readFileSync(`${archiveDir}/${name}`))
          .toString("utf8")
          .trim()
          .split("\n")
          .map((line) => (JSON.parse(line) as { id: number }).id)
      assert.deepStrictEqual(ids("events-2026-10.ndjson.gz"), [1, 3])
      assert.deepStrictEqual(ids("events-2026-11.ndjson.gz"), [2, 4])
      assert.deepStrictEqual(yield* database.read((db) => Events.since(db, 0, 10).map((e) => e.id)), [5])
      // The reader merges the months back into id order, then the table's.
      const all = yield* Effect.provide(Stream.runCollect(Archive.events(archiveDir)), ctx)
      assert.deepStrictEqual(
        [...all].flat().map((e) => [e.id, e.at, e.data["i"]]),
        times.map((at, i) => [i + 1, at, i])
      )
      // Nothing left before the cut: a clean zero, no file touched.
      assert.deepStrictEqual((yield* Effect.provide(Archive.archive(archiveDir, 4), ctx)).archived_events, 0)
    }).pipe(Effect.provide(NodeContext.layer))
  )

  it.scoped("deletes in chunks of BATCH ids and stops at the first chunk a projection has not folded yet", () =>
    Effect.gen(function* () {
      const { database, archiveDir, ctx } = yield* withDatabase
      const total = 2 * Archive.BATCH + 100
      yield* database.immediate((db) => {
        for (let i = 0; i < total; i++)
          Events.append(db, { at: NOV_1 + i, type: "worker.note", subject: { type: "worker", id: "w1" }, data: { i } })
        // The inbox is current; search has folded only into the third chunk (a rebuild stored an older position).
        db.run(`INSERT INTO inbox_state (id, last_event_id) VALUES (1, ?)`, total)
        db.run(`INSERT INTO search_state (id, last_event_id) VALUES (1, ?)`, 2 * Archive.BATCH + 50)
      })
      const result = yield* Effect.provide(Archive.archive(archiveDir, total), ctx)
      assert.strictEqual(result.archived_events, total)
      assert.strictEqual(result.deleted_events, 2 * Archive.BATCH)
      assert.strictEqual(yield* database.read(Events.oldestId), 2 * Archive.BATCH + 1)
      // The rows left are in the archive too: the log reads each event once.
      const ids = [...(yield* Effect.provide(Stream.runCollect(Archive.events(archiveDir)), ctx))]
        .flat()
        .map((e) => e.id)
      assert.deepStrictEqual(
        ids,
        Array.from({ length: total }, (_, i) => i + 1)
      )
      // With the inbox behind the first chunk's end, nothing is deleted.
      yield* database.immediate((db) => db.run(`UPDATE inbox_state SET last_event_id = ?`, 2 * Archive.BATCH + 10))
      yield* database.immediate((db) => db.run(`UPDATE search_state SET last_event_id = ?`, total))
      const again = yield* Effect.provide(Archive.archive(archiveDir, total), ctx)
      assert.strictEqual(again.deleted_events, 0)
      assert.strictEqual(yield* database.read(Events.oldestId), 2 * Archive.BATCH + 1)
    }).pipe(Effect.provide(NodeContext.layer))
  )

  it.scoped("a month file that cannot be read is an io error and one that is not gzip is corrupt, not a crash", () =>
    Effect.gen(function* () {
      const { archiveDir, ctx } = yield* withDatabase
      fs.mkdirSync(archiveDir)
      // A folder with a month file's name: opening it for reading fails (EISDIR) on the file stream.
      fs.mkdirSync(`${archiveDir}/events-2026-09.ndjson.gz`)
      const unreadable = yield* Effect.flip(Effect.provide(Stream.runCollect(Archive.events(archiveDir)), ctx))
      assert.strictEqual(unreadable.reason, "io")
      assert.include(unreadable.detail, "events-2026-09.ndjson.gz")
      fs.rmdirSync(`${archiveDir}/events-2026-09.ndjson.gz`)
      fs.writeFileSync(`${archiveDir}/events-2026-10.ndjson.gz`, '{"id":1}\n')
      const corrupt = yield* Effect.flip(Effect.provide(Stream.runCollect(Archive.events(archiveDir)), ctx))
      assert.strictEqual(corrupt.reason, "corrupt")
      assert.include(corrupt.detail, "events-2026-10.ndjson.gz")
    }).pipe(Effect.provide(NodeContext.layer))
  )

  it.scoped("a line that is not an event is a corrupt store, named with its file", () =>
    Effect.gen(function* () {
      const { archiveDir, ctx } = yield* withDatabase
      fs.mkdirSync(archiveDir)
      fs.writeFileSync(`${archiveDir}/events-2026-10.ndjson.gz`, zlib.gzipSync('{"id":1,"at":2}\n'))
      const error = yield* Effect.flip(Effect.provide(Stream.runCollect(Archive.events(archiveDir)), ctx))
      assert.strictEqual(error.reason, "corrupt")
      assert.include(error.detail, "events-2026-10.ndjson.gz")
    }).pipe(Effect.provide(NodeContext.layer))
  )
})
