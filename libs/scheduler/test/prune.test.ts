import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import { AgentId, TaskName } from "@trail/domain"
import { Effect, Schema } from "effect"
import type { CoverageStoreShape } from "../src/CoverageStore.js"
import { BY_FOLDER_DRIFT_SQL, makeStore, openOptions, syntheticFolders } from "./helpers.js"

const task = TaskName.make("history")
const other = TaskName.make("other")
const agent = AgentId.make("a")
const FOLDERS = 30
const SWEEPS = 14

/** Drains `sweeps` sweeps of `name` (sweep 1 opened by the first claim, the others by --auto-sweep), findings varying. */
const drain = (store: CoverageStoreShape, name: TaskName, sweeps: number) =>
  Effect.gen(function* () {
    let now = 1_000
    let sweep = 0
    for (;;) {
      now += 1_000
      const claimed = yield* store.claim({
        task: name,
        agent,
        now,
        ttlMs: 60_000,
        open: { ...openOptions, outcomeWeight: 0.4 },
        autoSweep: sweep < sweeps
      })
      if (claimed._tag !== "Claimed") return now
      sweep = claimed.sweep
      yield* store.complete({
        task: name,
        path: claimed.path,
        agent,
        status: now % 7 === 0 ? "skipped" : "done",
        found: now % 5,
        reason: null,
        now,
        halfLifeSecs: 3_600
      })
    }
  })

const Row = Schema.Struct({ n: Schema.Int })
const ItemRow = Schema.Struct({ path: Schema.String, score: Schema.Number })

describe("history.keep_sweeps", () => {
  it.layer(NodeContext.layer)((it) => {
    it.scoped(
      "gc prunes the items of finished sweeps beyond the last keep_sweeps; counters, visits and the next sweep's scores stay",
      () =>
        Effect.gen(function* () {
          // Two stores with the same history: one is pruned, the other is the reference.
          const pruned = yield* makeStore
          const kept = yield* makeStore
          let now = 0
          for (const { store } of [pruned, kept]) {
            yield* store.register(syntheticFolders(FOLDERS), 0)
            now = yield* drain(store, task, SWEEPS)
            yield* drain(store, other, 2)
          }
          const count = (database: typeof pruned.database, sql: string) =>
            database.read((db) => Schema.decodeUnknownSync(Row)(db.get(sql)).n)
          const visitsBefore = yield* count(pruned.database, "SELECT count(*) AS n FROM visits")
          assert.strictEqual(visitsBefore, (SWEEPS + 2) * FOLDERS)
          const before = yield* pruned.store.showSweep(task, 5)
          // Every sweep with its work_items_by_folder entries, as trails 0013–0014 opened them (since
          // 0015 a sweep gets them when first needed): pruning must take them with the items.
          yield* pruned.database.immediate((db) =>
            db.run(
              "INSERT INTO work_items_by_folder (sweep_id, folder_id, item_id) SELECT sweep_id, folder_id, id FROM work_items ORDER BY sweep_id, folder_id"
            )
          )
          const entries = "SELECT count(*) AS n FROM work_items_by_folder"
          assert.strictEqual(yield* count(pruned.database, entries), (SWEEPS + 2) * FOLDERS)

          const summary = yield* pruned.store.gc({ now, reconcile: false, keepSweeps: 3 })
          // Sweeps 1–11 of `history` lose their items; 12–14 and both sweeps of `other` keep theirs.
          assert.strictEqual(summary.pruned_work_items, (SWEEPS - 3) * FOLDERS)
          assert.strictEqual(yield* count(pruned.database, "SELECT count(*) AS n FROM work_items"), (3 + 2) * FOLDERS)
          // The pruned items' entries went with them (work_items_by_folder, 0013).
          assert.strictEqual(yield* count(pruned.database, entries), (3 + 2) * FOLDERS)
          assert.strictEqual(yield* count(pruned.database, BY_FOLDER_DRIFT_SQL), 0)
          assert.strictEqual(yield* count(pruned.database, "SELECT count(*) AS n FROM visits"), visitsBefore)
          assert.deepStrictEqual({ ...(yield* pruned.store.showSweep(task, 5)) }, { ...before, items_pruned_at: now })
          assert.strictEqual((yield* pruned.store.showSweep(task, 12)).items_pruned_at, null)
          assert.strictEqual((yield* pruned.store.showSweep(task)).sweep, SWEEPS)
          // Nothing more to prune; reconciling leaves a pruned sweep's counters alone.
          assert.deepStrictEqual(yield* pruned.store.gc({ now: now + 1, reconcile: true, keepSweeps: 3 }), {
            reclaimed_leases: 0,
            reconciled_sweeps: 0,
            counter_drift: 0,
            pruned_work_items: 0
          })
          assert.deepStrictEqual({ ...(yield* pruned.store.showSweep(task, 5)) }, { ...before, items_pruned_at: now })

          // The next sweep scores from folders and memory only: the same items and scores either way.
          const items = (database: typeof pruned.database) =>
            database.read((db) =>
              db
                .all(
                  `SELECT w.path, w.score FROM work_items w JOIN tasks t ON t.current_sweep_id = w.sweep_id
                   WHERE t.name = 'history' ORDER BY w.score DESC, w.id`
                )
                .map((row) => Schema.decodeUnknownSync(ItemRow)(row))
            )
          const open = { ...openOptions, outcomeWeight: 0.4 }
          yield* pruned.store.newSweep(task, open, now + 10_000)
          yield* kept.store.newSweep(task, open, now + 10_000)
          const next = yield* items(pruned.database)
          assert.strictEqual(next.length, FOLDERS)
          assert.deepStrictEqual(next, yield* items(kept.database))

          // keep_sweeps = 1 keeps the current sweep's items only.
          const again = yield* pruned.store.gc({ now: now + 20_000, reconcile: false, keepSweeps: 1 })
          assert.strictEqual(again.pruned_work_items, 3 * FOLDERS + FOLDERS)
          assert.strictEqual(yield* count(pruned.database, "SELECT count(*) AS n FROM work_items"), FOLDERS + FOLDERS)
          assert.strictEqual(yield* count(pruned.database, BY_FOLDER_DRIFT_SQL), 0)
        })
    )
  })
})
