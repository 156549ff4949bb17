import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import { StaticSignal, Strategy, TaskName } from "@trail/domain"
import { Effect, FastCheck as fc, Schema } from "effect"
import type { OpenSweepOptions } from "../src/CoverageStore.js"
import { decayOutcome, scoreFolders } from "../src/Scoring.js"
import { makeStore } from "./helpers.js"

const task = TaskName.make("open")

const FolderSignalRow = Schema.Struct({
  id: Schema.Int,
  path: Schema.String,
  file_count: Schema.Int,
  bytes: Schema.Int,
  churn: Schema.Int,
  last_visited_at: Schema.NullOr(Schema.Int),
  outcome: Schema.NullOr(Schema.Number),
  outcome_at: Schema.NullOr(Schema.Int)
})
const ItemRow = Schema.Struct({ id: Schema.Int, path: Schema.String, score: Schema.Number, folder_id: Schema.Int })
const RangeRow = Schema.Struct({ first_item_id: Schema.Int, last_item_id: Schema.Int })

/**
 * The sweep opening trail had before it was set-based (a JS loop over the folders, scored by
 * Scoring.scoreFolders, inserted in path order): the reference the SQL opening must equal.
 * Returns each present folder's item as that code built it, in claim order (score DESC, then
 * insertion order, i.e. path).
 */
const referenceOpen = (
  rows: ReadonlyArray<typeof FolderSignalRow.Type>,
  open: OpenSweepOptions & { readonly strategy: Strategy },
  sweep: number,
  now: number
) => {
  const signalOf = (row: typeof FolderSignalRow.Type) =>
    open.staticSignal === "bytes" ? row.bytes : open.staticSignal === "churn" ? row.churn : row.file_count
  const scores = scoreFolders(
    {
      strategy: open.strategy,
      alpha: open.alpha,
      outcomeWeight: open.outcomeWeight,
      halfLifeSecs: open.halfLifeSecs,
      seed: open.seed,
      sweep,
      now
    },
    rows.map((row) => ({
      path: row.path,
      signal: signalOf(row),
      lastVisitedAt: row.last_visited_at,
      outcome: decayOutcome(row.outcome ?? 0, row.outcome_at, 0, now, open.halfLifeSecs)
    }))
  )
  return rows
    .map((row, i) => ({ path: row.path, score: scores[i] ?? Number.NaN, folder_id: row.id, order: i }))
    .sort((a, b) => b.score - a.score || a.order - b.order)
    .map(({ folder_id, path, score }) => ({ path, score, folder_id }))
}

const folderArb = fc.record({
  fileCount: fc.nat({ max: 40 }),
  bytes: fc.nat({ max: 1_000_000 }),
  churn: fc.nat({ max: 30 }),
  present: fc.nat({ max: 99 }).map((n) => n < 85),
  memory: fc.option(
    fc.record({
      lastVisitedAt: fc.option(fc.integer({ min: 0, max: 2_000_000_000 }), { nil: null }),
      outcome: fc.double({ min: 0, max: 50, noNaN: true }),
      outcomeAt: fc.option(fc.integer({ min: 0, max: 2_000_000_000 }), { nil: null })
    }),
    { nil: null }
  )
})

const optionsArb = fc.record({
  strategy: fc.constantFrom(...Strategy.literals),
  alpha: fc.double({ min: 0, max: 1, noNaN: true }),
  outcomeWeight: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 1, noNaN: true })),
  halfLifeSecs: fc.integer({ min: 1, max: 10_000_000 }),
  seed: fc.integer(),
  staticSignal: fc.constantFrom(...StaticSignal.literals)
})

describe("opening a sweep", () => {
  it.layer(NodeContext.layer)((it) => {
    it.scoped.prop(
      "the set-based opening gives the items and scores the former JS loop gave, in the same claim order",
      [fc.array(folderArb, { minLength: 1, maxLength: 60 }), optionsArb, fc.integer({ min: 0, max: 2_000_000_000 })],
      ([folders, options, now]) =>
        Effect.gen(function* () {
          const { database, store } = yield* makeStore
          // Folders with their static signals; a rescan without some marks those absent.
          const scanned = folders.map((f, i) => ({
            path: `d${i % 7}/f${i}`,
            fileCount: f.fileCount,
            bytes: f.bytes,
            churn: f.churn
          }))
          yield* store.register(scanned, 0)
          yield* store.register(
            scanned.filter((_, i) => folders[i]?.present === true),
            0
          )
          // Sweep 1 creates the task; then its folders get a random memory and the sweep is closed.
          const opened = yield* store.newSweep(task, options, 0).pipe(Effect.option)
          const expectedNone = folders.every((f) => !f.present)
          assert.strictEqual(opened._tag === "None", expectedNone)
          if (expectedNone) return
          yield* database.immediate((db) => {
            folders.forEach((f, i) => {
              if (f.memory === null) return
              db.run(
                `INSERT INTO folder_memory (task_id, folder_id, last_visited_at, outcome, outcome_at)
                 SELECT t.id, f.id, ?, ?, ? FROM tasks t, folders f WHERE t.name = ? AND f.path = ?`,
                f.memory.lastVisitedAt,
                f.memory.outcome,
                f.memory.outcomeAt,
                task,
                `d${i % 7}/f${i}`
              )
            })
            db.run("UPDATE sweeps SET status = 'complete'")
          })
          const rows = yield* database.read((db) =>
            db
              .all(
                `SELECT f.id, f.path, f.file_count, f.bytes, f.churn, m.last_visited_at, m.outcome, m.outcome_at
                 FROM folders f LEFT JOIN folder_memory m ON m.folder_id = f.id
                 WHERE f.present = 1 ORDER BY f.path`
              )
              .map((row) => Schema.decodeUnknownSync(FolderSignalRow)(row))
          )
          const sweep = yield* store.newSweep(task, options, now)
          assert.strictEqual(sweep.sweep, 2)
          assert.strictEqual(sweep.total, rows.length)
          // In id order: the ids are the claim order, and the sweep's row holds their range.
          const { items, range } = yield* database.read((db) => ({
            items: db
              .all(
                "SELECT id, path, score, folder_id FROM work_items WHERE sweep_id = (SELECT max(id) FROM sweeps) ORDER BY id"
              )
              .map((row) => Schema.decodeUnknownSync(ItemRow)(row)),
            range: Schema.decodeUnknownSync(RangeRow)(
              db.get("SELECT first_item_id, last_item_id FROM sweeps WHERE id = (SELECT max(id) FROM sweeps)")
            )
          }))
          assert.deepStrictEqual(
            items.map(({ folder_id, path, score }) => ({ path, score, folder_id })),
            referenceOpen(rows, options, 2, now)
          )
          assert.deepStrictEqual(
            items.map((item) => item.id),
            Array.from({ length: items.length }, (_, k) => range.first_item_id + k)
          )
          assert.strictEqual(range.last_item_id, range.first_item_id + items.length - 1)
        }),
      { fastCheck: { numRuns: 60 } }
    )
  })
})
