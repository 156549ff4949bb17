import * as NodeContext from "@effect/platform-node/NodeContext"
import * as FileSystem from "@effect/platform/FileSystem"
import * as SqlClient from "@effect/sql/SqlClient"
import { assert, describe, it } from "@effect/vitest"
import { Context, Effect, Layer, Schema } from "effect"
import { Database, Migrations } from "../src/index.js"

/** A fresh, migrated store in a temp dir, as its `SqlClient`. */
const migrated = Effect.gen(function* () {
  const fs = yield* FileSystem.FileSystem
  const dir = yield* fs.makeTempDirectoryScoped()
  const ctx = yield* Layer.build(Database.layer({ filename: `${dir}/state.db` }))
  yield* Effect.provide(Migrations.migrate, ctx)
  return Context.get(ctx, SqlClient.SqlClient)
})

const Hit = Schema.Struct({ artifact: Schema.String, rank: Schema.Number })

describe("migration 0008_checkpoints", () => {
  it.layer(NodeContext.layer)((it) => {
    it.scoped("SQLite here has FTS5: the artifacts table answers MATCH queries ranked by bm25", () =>
      Effect.gen(function* () {
        const sql = yield* migrated
        const rows = [
          ["cp-20261122-031500-3f2a@1", "npm test failed", "Error: Cannot find module 'left-pad'"],
          ["cp-20261122-031500-3f2a@2", "edit src/a.ts", "src/a.ts +3 -1"],
          ["cp-20261122-031500-3f2a@3", "npm run build", "built in 2 s"]
        ]
        for (const [artifact, title, text] of rows)
          yield* sql`INSERT INTO artifacts_fts (checkpoint, artifact, kind, title, text, unresolved, at)
            VALUES ('cp-20261122-031500-3f2a', ${artifact}, 'command', ${title}, ${text}, 0, 1)`
        const hits = yield* sql`SELECT artifact, bm25(artifacts_fts) AS rank FROM artifacts_fts
          WHERE artifacts_fts MATCH ${'"module" "left"'} ORDER BY rank`.pipe(
          Effect.flatMap(Schema.decodeUnknown(Schema.Array(Hit)))
        )
        assert.deepStrictEqual(
          hits.map((h) => h.artifact),
          ["cp-20261122-031500-3f2a@1"]
        )
        assert.isBelow(hits[0]!.rank, 0, "bm25 is negative: lower ranks better")
      })
    )

    it.scoped("at most one checkpoint is armed at a time", () =>
      Effect.gen(function* () {
        const sql = yield* migrated
        for (const id of ["cp-20261122-031500-0001", "cp-20261122-031500-0002"])
          yield* sql`INSERT INTO checkpoints (id, state, created_at, title, once, artifacts)
            VALUES (${id}, 'saved', 1, 't', 0, 0)`
        yield* sql`UPDATE checkpoints SET armed_at = 5 WHERE id = 'cp-20261122-031500-0001'`
        const second = yield* Effect.flip(sql`UPDATE checkpoints SET armed_at = 6 WHERE id = 'cp-20261122-031500-0002'`)
        assert.include(String(second.cause), "UNIQUE")
      })
    )
  })
})
