import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import { AgentId, FolderPath, TaskName } from "@trail/domain"
import { Database, Migrations } from "@trail/store"
import { Chunk, Context, Effect, Layer, Schema, Stream } from "effect"
import * as CoverageStore from "../src/CoverageStore.js"
import { makeRoot, openOptions } from "./helpers.js"

const old = TaskName.make("old")
const other = TaskName.make("other")
const NOW = 1_000
const TTL = 1_000

/** Folders `d/f00` … `d/f29`; item scores with ties (i % 4), so the old order's id tiebreak matters. */
const FOLDERS = Array.from({ length: 30 }, (_, i) => `d/f${String(i).padStart(2, "0")}`)
const scoreOf = (i: number) => (i % 4) / 4

/** The state of `old`'s current sweep's item at folder i (every state, a live and an expired lease). */
const stateOf = (i: number) =>
  i % 6 === 0
    ? { status: "done", owner: null, expires: null, completedBy: "a" }
    : i % 6 === 1
      ? { status: "skipped", owner: null, expires: null, completedBy: "a" }
      : i === 2
        ? { status: "leased", owner: "b", expires: NOW + 5_000, completedBy: null }
        : i === 3
          ? { status: "leased", owner: "c", expires: NOW - 1, completedBy: null }
          : { status: "pending", owner: null, expires: null, completedBy: null }

const Detail = Schema.Struct({ name: Schema.String })
const Range = Schema.Struct({ number: Schema.Int, first_item_id: Schema.NullOr(Schema.Int) })

describe("migration 0012_work_items_claim_order", () => {
  it.layer(NodeContext.layer)((it) => {
    it.scoped(
      "a store made at migration 0011 with items in every state migrates, then lists, claims and completes as before",
      () =>
        Effect.gen(function* () {
          const project = yield* makeRoot()
          const dbCtx = yield* Layer.build(Database.layer({ filename: project.databaseFile }))
          const database = Context.get(dbCtx, Database.Database)
          yield* Effect.provide(Migrations.migrateThrough(11), dbCtx)
          // The store as trail made it before 0012: items inserted in path order (the JS loop's),
          // so ids do not follow the claim order; a pruned sweep; another task's sweep between.
          yield* database.immediate((db) => {
            FOLDERS.forEach((path, i) =>
              db.run(
                "INSERT INTO folders (id, path, file_count, bytes, churn, present, scanned_at) VALUES (?, ?, 1, 1, 0, 1, 0)",
                i + 1,
                path
              )
            )
            db.run(
              "INSERT INTO tasks (id, name, created_at, current_sweep_id) VALUES (1, 'old', 0, 3), (2, 'other', 0, 2)"
            )
            const items = (sweep: number, state: (i: number) => ReturnType<typeof stateOf>) =>
              FOLDERS.forEach((path, i) => {
                const s = state(i)
                db.run(
                  `INSERT INTO work_items (sweep_id, folder_id, path, status, score, lease_owner, lease_expires_at,
                     completed_at, completed_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
                  sweep,
                  i + 1,
                  path,
                  s.status,
                  scoreOf(i),
                  s.owner,
                  s.expires,
                  s.completedBy === null ? null : 500,
                  s.completedBy
                )
              })
            db.run(
              `INSERT INTO sweeps (id, task_id, number, status, strategy, total, done, skipped, leased, opened_at, closed_at, items_pruned_at)
               VALUES (1, 1, 1, 'complete', 'weighted', 30, 30, 0, 0, 0, 100, 900)`
            )
            db.run(
              "INSERT INTO sweeps (id, task_id, number, status, strategy, total, opened_at) VALUES (2, 2, 1, 'active', 'weighted', 30, 0)"
            )
            items(2, () => stateOf(4))
            const counts = { done: 0, skipped: 0, leased: 0 }
            FOLDERS.forEach((_, i) => {
              const { status } = stateOf(i)
              if (status === "done" || status === "skipped" || status === "leased") counts[status]++
            })
            db.run(
              `INSERT INTO sweeps (id, task_id, number, status, strategy, total, done, skipped, leased, opened_at)
               VALUES (3, 1, 2, 'active', 'weighted', 30, ?, ?, ?, 0)`,
              counts.done,
              counts.skipped,
              counts.leased
            )
            items(3, stateOf)
            FOLDERS.forEach((path, i) => {
              if (stateOf(i).completedBy !== null)
                db.run(
                  `INSERT INTO visits (task_id, sweep, folder_id, path, agent, status, found, at)
                   VALUES (1, 2, ?, ?, 'a', ?, ?, 500)`,
                  i + 1,
                  path,
                  stateOf(i).status,
                  stateOf(i).status === "done" ? i : null
                )
            })
          })
          // The old orders: list and claim by (score DESC, id), ids here in path order.
          const byOldOrder = FOLDERS.map((path, i) => ({ path, i })).sort(
            (a, b) => scoreOf(b.i) - scoreOf(a.i) || a.i - b.i
          )
          const shown = (i: number) => (i === 3 ? "pending" : stateOf(i).status)

          const ctx = yield* Layer.build(CoverageStore.layer.pipe(Layer.provide(Layer.succeedContext(dbCtx))))
          const store = Context.get(ctx, CoverageStore.CoverageStore)
          const before = yield* store.status(old, NOW)

          const listed = yield* store.list(old, null, NOW)
          assert.deepStrictEqual(
            listed.map((item) => [item.path, item.status, item.lease_owner, item.agent, item.found]),
            byOldOrder.map(({ i, path }) => [
              path,
              shown(i),
              i === 2 ? "b" : null,
              stateOf(i).completedBy,
              stateOf(i).status === "done" ? i : null
            ])
          )
          const pendingFirst = yield* Stream.runCollect(store.items(old, { state: "pending", limit: 3, now: NOW }))
          assert.deepStrictEqual(
            Chunk.toReadonlyArray(pendingFirst).map((item) => item.path),
            byOldOrder
              .filter(({ i }) => shown(i) === "pending")
              .slice(0, 3)
              .map(({ path }) => path)
          )
          assert.strictEqual((yield* store.list(other, null, NOW)).length, FOLDERS.length)

          // Claims hand out the pending items (the expired lease reclaimed) in the old claim order.
          const claimed: Array<string> = []
          for (;;) {
            const r = yield* store.claim({
              task: old,
              agent: AgentId.make("z"),
              now: NOW,
              ttlMs: TTL,
              open: openOptions,
              autoSweep: false
            })
            if (r._tag !== "Claimed") {
              assert.strictEqual(r._tag, "NoneAvailable")
              break
            }
            claimed.push(r.path)
          }
          assert.deepStrictEqual(
            claimed,
            byOldOrder.filter(({ i }) => shown(i) === "pending").map(({ path }) => path)
          )
          // The counters trigger moves the counters as before; nothing drifted.
          const after = yield* store.status(old, NOW)
          assert.deepStrictEqual(
            { done: after.done, skipped: after.skipped, leased: after.leased, pending: after.pending },
            { done: before.done, skipped: before.skipped, leased: before.leased + claimed.length, pending: 0 }
          )
          for (const path of claimed)
            yield* store.complete({
              task: old,
              path: FolderPath.make(path),
              agent: AgentId.make("z"),
              status: "done",
              found: null,
              reason: null,
              now: NOW,
              halfLifeSecs: 60
            })
          const last = yield* store.complete({
            task: old,
            path: FolderPath.make("d/f02"),
            agent: AgentId.make("b"),
            status: "skipped",
            found: null,
            reason: null,
            now: NOW,
            halfLifeSecs: 60
          })
          assert.isTrue(last.sweep_complete)
          const gc = yield* store.gc({ now: NOW, reconcile: true, keepSweeps: 10 })
          assert.strictEqual(gc.counter_drift, 0)
          assert.strictEqual(gc.reconciled_sweeps, 0)

          // The table's shape: no foreign keys, the 0012 indexes, the counters trigger; item ranges.
          const shape = yield* database.read((db) => ({
            foreignKeys: db.all("SELECT * FROM pragma_foreign_key_list('work_items')").length,
            indexes: db
              .all("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'work_items' ORDER BY name")
              .map((row) => Schema.decodeUnknownSync(Detail)(row).name),
            triggers: db
              .all("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'work_items'")
              .map((row) => Schema.decodeUnknownSync(Detail)(row).name),
            ranges: db
              .all("SELECT number, first_item_id FROM sweeps WHERE task_id = 1 ORDER BY number")
              .map((row) => Schema.decodeUnknownSync(Range)(row))
          }))
          assert.deepStrictEqual(shape, {
            foreignKeys: 0,
            indexes: ["work_items_leased", "work_items_pending"],
            triggers: ["work_items_counters"],
            ranges: [
              { number: 1, first_item_id: null },
              { number: 2, first_item_id: 31 }
            ]
          })

          // A sweep opened after the migration takes the next ids and lists in its claim order.
          yield* store.newSweep(old, openOptions, NOW + 1)
          const next = yield* store.list(old, null, NOW + 1)
          const first = yield* store.claim({
            task: old,
            agent: AgentId.make("z"),
            now: NOW + 1,
            ttlMs: TTL,
            open: openOptions,
            autoSweep: false
          })
          assert.strictEqual(next.length, FOLDERS.length)
          assert.strictEqual(first._tag === "Claimed" ? first.path : null, next[0]?.path)
        })
    )
  })
})
