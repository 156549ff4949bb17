import * as NodeContext from "@effect/platform-node/NodeContext"
import * as FileSystem from "@effect/platform/FileSystem"
import { assert, describe, it } from "@effect/vitest"
import { StoreError } from "@trail/domain"
import { Context, Effect, Layer } from "effect"
import { Database, Events, Migrations } from "../src/index.js"

const withDatabase = Effect.gen(function* () {
  const fs = yield* FileSystem.FileSystem
  const dir = yield* fs.makeTempDirectoryScoped()
  const ctx = yield* Layer.build(Database.layer({ filename: `${dir}/state.db` }))
  const database = Context.get(ctx, Database.Database)
  yield* Effect.provide(Migrations.migrate, ctx)
  return { database, dir }
})

describe("Events", () => {
  it.scoped("appends in id order and reads back what it appended", () =>
    Effect.gen(function* () {
      const { database } = yield* withDatabase
      const appended = yield* database.immediate((db) => [
        Events.append(db, {
          at: 1,
          type: "worker.spawned",
          subject: { type: "worker", id: "w1" },
          data: { kind: "scout" }
        }),
        Events.append(db, {
          at: 2,
          type: "worker.note",
          subject: { type: "worker", id: "w1" },
          data: { text: "héllo" }
        }),
        Events.append(db, { at: 3, type: "worker.note", subject: { type: "worker", id: "w2" }, data: {} })
      ])
      assert.deepStrictEqual(
        appended.map((e) => e.id),
        [1, 2, 3]
      )
      const after1 = yield* database.read((db) => Events.since(db, 1, 10))
      assert.deepStrictEqual(
        after1.map((e) => [e.id, e.type, e.subject.id, e.data]),
        [
          [2, "worker.note", "w1", { text: "héllo" }],
          [3, "worker.note", "w2", {}]
        ]
      )
      assert.strictEqual((yield* database.read((db) => Events.since(db, 0, 1))).length, 1)
      assert.deepStrictEqual(
        (yield* database.read((db) => Events.ofSubject(db, "worker", "w1"))).map((e) => e.id),
        [1, 2]
      )
      assert.strictEqual(yield* database.read(Events.latestId), 3)
    }).pipe(Effect.provide(NodeContext.layer))
  )

  it.scoped("a row whose data is not a JSON object is reported as a corrupt store", () =>
    Effect.gen(function* () {
      const { database } = yield* withDatabase
      yield* database.immediate((db) =>
        db.run(`INSERT INTO events (at, type, subject_type, subject_id, data) VALUES (1, 't', 'worker', 'w1', '[1')`)
      )
      const error = yield* Effect.flip(database.read((db) => Events.since(db, 0, 10)))
      assert.instanceOf(error, StoreError)
      assert.strictEqual(error.reason, "corrupt")
    }).pipe(Effect.provide(NodeContext.layer))
  )
})
