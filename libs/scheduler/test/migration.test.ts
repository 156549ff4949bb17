import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import { AgentId, FolderPath, TaskName } from "@trail/domain"
import { Database, Migrations } from "@trail/store"
import { Chunk, Context, Effect, Layer, Schema, Stream } from "effect"
import * as CoverageStore from "../src/CoverageStore.js"
import { byFolderDrift, makeRoot, makeStore, openOptions, syntheticFolders } from "./helpers.js"

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

/** A store migrated through `migration` (and no further) that holds FOLDERS, ids 1…30. */
const storeAt = (migration: number) =>
  Effect.gen(function* () {
    const project = yield* makeRoot()
    const dbCtx = yield* Layer.build(Database.layer({ filename: project.databaseFile }))
    const database = Context.get(dbCtx, Database.Database)
    yield* Effect.provide(Migrations.migrateThrough(migration), dbCtx)
    yield* database.immediate((db) =>
      FOLDERS.forEach((path, i) =>
        db.run(
          "INSERT INTO folders (id, path, file_count, bytes, churn, present, scanned_at) VALUES (?, ?, 1, 1, 0, 1, 0)",
          i + 1,
          path
        )
      )
    )
    return { database, dbCtx }
  })

type SeedRow = ReturnType<typeof stateOf> & { readonly id: number; readonly folder: number; readonly k: number }

/**
 * `old`'s active sweep 1 as a trail at 0013/0014 left it: `rows` as its items (ids first…last,
 * scored by `score`) in their states, the counters to match, and every item's
 * work_items_by_folder entry.
 */
const seedOldSweep = (
  database: Database.DatabaseShape,
  rows: ReadonlyArray<SeedRow>,
  score: (row: SeedRow) => number
) =>
  database.immediate((db) => {
    db.run("INSERT INTO tasks (id, name, created_at, current_sweep_id) VALUES (1, 'old', 0, 1)")
    const count = (status: string) => rows.filter((r) => r.status === status).length
    const ids = rows.map((r) => r.id)
    db.run(
      `INSERT INTO sweeps (id, task_id, number, status, strategy, total, done, skipped, leased, opened_at,
         first_item_id, last_item_id) VALUES (1, 1, 1, 'active', 'weighted', ?, ?, ?, ?, 0, ?, ?)`,
      rows.length,
      count("done"),
      count("skipped"),
      count("leased"),
      Math.min(...ids),
      Math.max(...ids)
    )
    for (const r of rows) {
      db.run(
        `INSERT INTO work_items (id, sweep_id, folder_id, path, status, score, lease_owner, lease_expires_at, completed_by)
         VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?)`,
        r.id,
        r.folder,
        FOLDERS[r.folder - 1],
        r.status,
        score(r),
        r.owner,
        r.expires,
        r.completedBy
      )
      db.run("INSERT INTO work_items_by_folder (sweep_id, folder_id, item_id) VALUES (1, ?, ?)", r.folder, r.id)
    }
  })

/** The CoverageStore over a store's Database context (built in the test's scope). */
const coverageOn = <R>(dbCtx: Context.Context<R>) =>
  Effect.map(Layer.build(CoverageStore.layer.pipe(Layer.provide(Layer.succeedContext(dbCtx)))), (ctx) =>
    Context.get(ctx, CoverageStore.CoverageStore)
  )

/** `agent`'s claim in `old` at `now` (the sweep opened when none is). */
const claimOld = (store: CoverageStore.CoverageStoreShape, agent: string, now = NOW) =>
  store.claim({ task: old, agent: AgentId.make(agent), now, ttlMs: TTL, open: openOptions, autoSweep: false })

/** `agent` marks `path` of `old` `status` at NOW (`found` for a done). */
const completeOld = (
  store: CoverageStore.CoverageStoreShape,
  agent: string,
  path: string,
  status: "done" | "skipped" = "done",
  found: number | null = null
) =>
  store.complete({
    task: old,
    path: FolderPath.make(path),
    agent: AgentId.make(agent),
    status,
    found,
    reason: null,
    now: NOW,
    halfLifeSecs: 60
  })

const Detail = Schema.Struct({ name: Schema.String })
const Range = Schema.Struct({ number: Schema.Int, first_item_id: Schema.NullOr(Schema.Int) })

describe("migration 0012_work_items_claim_order", () => {
  it.layer(NodeContext.layer)((it) => {
    it.scoped(
      "a store made at migration 0011 with items in every state migrates, then lists, claims and completes as before",
      () =>
        Effect.gen(function* () {
          const { database, dbCtx } = yield* storeAt(11)
          // The store as trail made it before 0012: items inserted in path order (the JS loop's),
          // so ids do not follow the claim order; a pruned sweep; another task's sweep between.
          yield* database.immediate((db) => {
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

          const store = yield* coverageOn(dbCtx)
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
          for (const path of claimed) yield* completeOld(store, "z", path)
          const last = yield* completeOld(store, "b", "d/f02", "skipped")
          assert.isTrue(last.sweep_complete)
          const gc = yield* store.gc({ now: NOW, reconcile: true, keepSweeps: 10 })
          assert.strictEqual(gc.counter_drift, 0)
          assert.strictEqual(gc.reconciled_sweeps, 0)

          // The table's shape: no foreign keys, 0012's index of leased items (0014 dropped the
          // pending one) and 0015's of leased items by folder, the counters and returns triggers
          // (0014); item ranges.
          const shape = yield* database.read((db) => ({
            foreignKeys: db.all("SELECT * FROM pragma_foreign_key_list('work_items')").length,
            indexes: db
              .all("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'work_items' ORDER BY name")
              .map((row) => Schema.decodeUnknownSync(Detail)(row).name),
            triggers: db
              .all("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'work_items' ORDER BY name")
              .map((row) => Schema.decodeUnknownSync(Detail)(row).name),
            ranges: db
              .all("SELECT number, first_item_id FROM sweeps WHERE task_id = 1 ORDER BY number")
              .map((row) => Schema.decodeUnknownSync(Range)(row))
          }))
          assert.deepStrictEqual(shape, {
            foreignKeys: 0,
            indexes: ["work_items_leased", "work_items_leased_by_folder"],
            triggers: ["work_items_counters", "work_items_returns"],
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

describe("migration 0013_work_items_by_folder", () => {
  it.layer(NodeContext.layer)((it) => {
    it.scoped(
      "a store made at migration 0012 finds every item by folder after it: done, release, renew, reset and gc reach the right sweep's item",
      () =>
        Effect.gen(function* () {
          const { database, dbCtx } = yield* storeAt(12)
          // As 0012's trail left it: `old` with a complete sweep and an active one, `other` with an
          // active one; items in claim order (id), folder ids not in that order.
          yield* database.immediate((db) => {
            db.run(
              "INSERT INTO tasks (id, name, created_at, current_sweep_id) VALUES (1, 'old', 0, 2), (2, 'other', 0, 3)"
            )
            const sweep = (id: number, task: number, number: number, status: string, state: (i: number) => string) => {
              const first = id * 100
              const counts = { done: 0, skipped: 0, leased: 0 }
              // Claim order: the reverse of the folders' order.
              ;[...FOLDERS.keys()].reverse().forEach((i, k) => {
                const s = state(i)
                if (s === "done" || s === "skipped" || s === "leased") counts[s]++
                db.run(
                  `INSERT INTO work_items (id, sweep_id, folder_id, path, status, score, lease_owner, lease_expires_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
                  first + k,
                  id,
                  i + 1,
                  FOLDERS[i],
                  s,
                  1 - k / 100,
                  s === "leased" ? "b" : null,
                  s === "leased" ? NOW + 5_000 : null
                )
              })
              db.run(
                `INSERT INTO sweeps (id, task_id, number, status, strategy, total, done, skipped, leased, opened_at,
                   first_item_id, last_item_id) VALUES (?, ?, ?, ?, 'weighted', 30, ?, ?, ?, 0, ?, ?)`,
                id,
                task,
                number,
                status,
                counts.done,
                counts.skipped,
                counts.leased,
                first,
                first + FOLDERS.length - 1
              )
            }
            sweep(1, 1, 1, "complete", () => "done")
            sweep(2, 1, 2, "active", (i) => (i % 3 === 0 ? "done" : i % 3 === 1 ? "leased" : "pending"))
            sweep(3, 2, 1, "active", () => "pending")
          })
          const store = yield* coverageOn(dbCtx)
          const drift = () => byFolderDrift(database)
          const entries = () => database.read((db) => Number(db.pluck("SELECT count(*) FROM work_items_by_folder")))
          assert.strictEqual(yield* drift(), 0)
          assert.strictEqual(yield* entries(), 3 * FOLDERS.length)

          const statusOf = (task: TaskName, path: string) =>
            Effect.map(store.list(task, null, NOW), (items) => items.find((item) => item.path === path)?.status)
          // A pending item of `old`'s active sweep is completed; `other`'s item at that folder is not.
          const done = yield* completeOld(store, "z", "d/f02", "done", 1)
          assert.strictEqual(done.sweep, 2)
          assert.strictEqual(yield* statusOf(old, "d/f02"), "done")
          assert.strictEqual(yield* statusOf(other, "d/f02"), "pending")
          // A leased one is released, then renewed by path (one by one and in a batch).
          yield* store.release({ task: old, path: FolderPath.make("d/f01"), agent: AgentId.make("b") })
          assert.strictEqual(yield* statusOf(old, "d/f01"), "pending")
          const renewed = yield* store.renew({
            task: old,
            path: FolderPath.make("d/f01"),
            agent: AgentId.make("c"),
            previous: null,
            now: NOW,
            ttlMs: TTL
          })
          assert.isTrue(renewed)
          assert.deepStrictEqual(
            yield* store.renewMany(
              [
                { task: other, path: FolderPath.make("d/f07"), agent: AgentId.make("d"), previous: null },
                { task: old, path: FolderPath.make("d/f04"), agent: AgentId.make("e"), previous: null },
                { task: old, path: FolderPath.make("d/nowhere"), agent: AgentId.make("e"), previous: null }
              ],
              NOW,
              TTL
            ),
            [true, false, false]
          )
          const leasedBy = (task: TaskName, path: string) =>
            Effect.map(store.list(task, null, NOW), (items) => items.find((item) => item.path === path)?.lease_owner)
          assert.strictEqual(yield* leasedBy(old, "d/f01"), "c")
          assert.strictEqual(yield* leasedBy(other, "d/f07"), "d")
          // d/f04 is leased by b in `old`: not taken over by e.
          assert.strictEqual(yield* leasedBy(old, "d/f04"), "b")
          const missing = yield* Effect.flip(
            store.release({ task: old, path: FolderPath.make("d/nowhere"), agent: null })
          )
          assert.strictEqual(missing._tag, "NotAWorkItem")

          // gc prunes `old`'s complete sweep (keep 1) with its entries; reset clears `other`'s.
          const gc = yield* store.gc({ now: NOW, reconcile: true, keepSweeps: 1 })
          assert.strictEqual(gc.pruned_work_items, FOLDERS.length)
          assert.strictEqual(gc.counter_drift, 0)
          yield* store.reset(other, false)
          assert.strictEqual(yield* drift(), 0)
          assert.strictEqual(yield* entries(), FOLDERS.length)
          assert.strictEqual((yield* store.list(old, null, NOW)).length, FOLDERS.length)
        })
    )

    it.scoped(
      "a sweep without entries (opened since 0015, or by a trail older than 0013 after the migration) is found: done, release, renewMany, gc and reset",
      () =>
        Effect.gen(function* () {
          const { database, store } = yield* makeStore
          const folders = syntheticFolders(20)
          yield* store.register(folders, 0)
          const claim = (agent: string, now: number) => claimOld(store, agent, now)
          const first = yield* claim("a", NOW)
          const second = yield* claim("b", NOW)
          assert.strictEqual(first._tag, "Claimed")
          assert.strictEqual(second._tag, "Claimed")
          if (first._tag !== "Claimed" || second._tag !== "Claimed") return
          const entries = () => database.read((db) => Number(db.pluck("SELECT count(*) FROM work_items_by_folder")))
          const drift = () => byFolderDrift(database)
          // The open does not build them (0015): leased items are found among leased items.
          assert.strictEqual(yield* entries(), 0)
          const complete = (path: FolderPath, agent: string, status: "done" | "skipped") =>
            completeOld(store, agent, path, status, 0)
          // A path that is no folder is not an item, and builds nothing to say so.
          const unknown = yield* Effect.flip(complete(FolderPath.make("nowhere/x"), "a", "done"))
          assert.strictEqual(unknown._tag, "NotAWorkItem")
          assert.strictEqual(yield* entries(), 0)
          const renewSecond = (agent: string) =>
            store.renewMany([{ task: old, path: second.path, agent: AgentId.make(agent), previous: null }], NOW, TTL)
          const done = yield* complete(first.path, "a", "done")
          assert.strictEqual(done.remaining, 18)
          assert.deepStrictEqual(yield* renewSecond("b"), [true])
          assert.strictEqual(yield* entries(), 0)
          // A pending item (released, or never handed out) is found once the sweep's entries are built.
          yield* store.release({ task: old, path: second.path, agent: AgentId.make("b") })
          assert.deepStrictEqual(yield* renewSecond("c"), [true])
          assert.strictEqual(yield* entries(), 20)
          assert.strictEqual(yield* drift(), 0)
          yield* database.immediate((db) => db.run("DELETE FROM work_items_by_folder"))
          const untouched = folders
            .map((f) => FolderPath.make(f.path))
            .find((path) => path !== first.path && path !== second.path)
          if (untouched === undefined) return assert.fail("no folder left")
          const skipped = yield* complete(untouched, "d", "skipped")
          assert.isTrue(skipped.changed)
          assert.strictEqual(yield* entries(), 20)
          assert.strictEqual(yield* drift(), 0)
          // The cold paths find a sweep's items by its id range, entries or not.
          yield* database.immediate((db) => db.run("DELETE FROM work_items_by_folder"))
          yield* database.immediate((db) => db.run("UPDATE sweeps SET done = 0"))
          const gc = yield* store.gc({ now: NOW, reconcile: true, keepSweeps: 10 })
          assert.strictEqual(gc.counter_drift, 1)
          const status = yield* store.status(old, NOW)
          assert.deepStrictEqual([status.total, status.done, status.skipped, status.leased], [20, 1, 1, 1])
          yield* store.reset(old, false)
          assert.strictEqual(yield* database.read((db) => Number(db.pluck("SELECT count(*) FROM work_items"))), 0)
        })
    )
  })
})

describe("migration 0014_work_items_claim_cursor", () => {
  it.layer(NodeContext.layer)((it) => {
    it.scoped(
      "a store made at 0013 keeps its items and ids, refuses a bad status, and claims in claim order from its cursor, with an older trail's writes",
      () =>
        Effect.gen(function* () {
          const { database, dbCtx } = yield* storeAt(13)
          // As 0013's trail left it: `old`'s active sweep, items 101…130 in claim order (the
          // reverse of the folders'), in every state.
          const rows = FOLDERS.map((_, k) => ({ id: 101 + k, folder: FOLDERS.length - k, k, ...stateOf(k) }))
          yield* seedOldSweep(database, rows, (r) => 1 - r.k / 100)
          const Item = Schema.Struct({
            id: Schema.Int,
            status: Schema.String,
            lease_owner: Schema.NullOr(Schema.String)
          })
          const items = () =>
            database.read((db) =>
              db
                .all("SELECT id, status, lease_owner FROM work_items ORDER BY id")
                .map((row) => Schema.decodeUnknownSync(Item)(row))
            )
          const before = yield* items()
          const store = yield* coverageOn(dbCtx)
          assert.deepStrictEqual(yield* items(), before)
          assert.strictEqual(yield* byFolderDrift(database), 0)
          const bad = yield* Effect.either(
            database.immediate((db) => db.run("UPDATE work_items SET status = 'lost' WHERE id = 101"))
          )
          assert.isTrue(bad._tag === "Left", "a status outside the four is refused")

          // Claims take the pending items in id order (the expired lease first: it is reclaimed).
          const pendingIds = rows.filter((r) => r.status === "pending" || r.k === 3).map((r) => r.id)
          const claim = (agent: string) => claimOld(store, agent)
          const pathOf = (id: number) => rows.find((r) => r.id === id)?.folder
          const claimed = (result: { readonly _tag: string; readonly path?: string }) =>
            result._tag === "Claimed" ? FOLDERS.indexOf(result.path ?? "") + 1 : null
          assert.strictEqual(claimed(yield* claim("z")), pathOf(pendingIds[0] ?? 0))
          assert.strictEqual(claimed(yield* claim("z")), pathOf(pendingIds[1] ?? 0))
          // An older trail still running: it releases the first item through its own statement
          // (the trigger records the return) and claims with 0013's statement (the cursor stays).
          yield* database.immediate((db) => {
            db.run(
              "UPDATE work_items SET status = 'pending', lease_owner = NULL, lease_expires_at = NULL WHERE id = ?",
              pendingIds[0]
            )
            db.run(
              `UPDATE work_items SET status = 'leased', lease_owner = 'y', lease_expires_at = ?
               WHERE id = (SELECT id FROM work_items WHERE sweep_id = 1 AND status = 'pending' ORDER BY id LIMIT 1)`,
              NOW + TTL
            )
          })
          // The older trail took the item it released; ours goes on after its cursor.
          const leasedBy = (id: number | undefined) =>
            Effect.map(items(), (all) => all.find((item) => item.id === id)?.lease_owner)
          assert.strictEqual(yield* leasedBy(pendingIds[0]), "y")
          assert.strictEqual(claimed(yield* claim("z")), pathOf(pendingIds[2] ?? 0))
          yield* store.release({
            task: old,
            path: FolderPath.make(FOLDERS[(pathOf(pendingIds[1] ?? 0) ?? 0) - 1] ?? ""),
            agent: null
          })
          assert.strictEqual(claimed(yield* claim("w")), pathOf(pendingIds[1] ?? 0))
          // Drained in claim order, then the sweep completes; the counters equal the items.
          for (const id of pendingIds.slice(3)) assert.strictEqual(claimed(yield* claim("z")), pathOf(id))
          const none = yield* claim("z")
          assert.strictEqual(none._tag, "NoneAvailable")
          const gc = yield* store.gc({ now: NOW, reconcile: true, keepSweeps: 10 })
          assert.strictEqual(gc.counter_drift, 0)
          const returned = yield* database.read((db) => Number(db.pluck("SELECT count(*) FROM work_items_returned")))
          assert.strictEqual(returned, 0)
        })
    )
  })
})

/** A trail at 0014's statements: the item at a path (parameters: path, task), through work_items_by_folder only. */
const ITEM_AT_0014 = `SELECT w.id AS item_id, w.status AS item_status
    FROM tasks t LEFT JOIN sweeps s ON s.id = t.current_sweep_id
      LEFT JOIN work_items_by_folder b ON b.sweep_id = s.id AND b.folder_id = (SELECT id FROM folders WHERE path = ?)
      LEFT JOIN work_items w ON w.id = b.item_id
    WHERE t.name = ?`
/** …and what it runs when that finds nothing: the entries of every sweep that has none. */
const INDEX_OLDER_SWEEPS_0014 = `INSERT INTO work_items_by_folder (sweep_id, folder_id, item_id)
    SELECT w.sweep_id, w.folder_id, w.id FROM sweeps s
      JOIN work_items w ON w.id BETWEEN s.first_item_id AND s.last_item_id AND w.sweep_id = s.id
    WHERE s.first_item_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM work_items_by_folder b WHERE b.sweep_id = s.id)
    ORDER BY w.sweep_id, w.folder_id`

describe("migration 0015_work_items_leased_by_folder", () => {
  it.layer(NodeContext.layer)((it) => {
    it.scoped(
      "a store made at 0014 finds its leased items by folder after it, and a trail at 0014 still running finds the items of a sweep opened since",
      () =>
        Effect.gen(function* () {
          const { database, dbCtx } = yield* storeAt(14)
          // As 0014's trail left it: `old`'s active sweep with its entries, items in every state.
          const rows = FOLDERS.map((_, k) => ({ id: 1 + k, folder: k + 1, k, ...stateOf(k) }))
          yield* seedOldSweep(database, rows, () => 1)
          const store = yield* coverageOn(dbCtx)
          const leased = rows.find((r) => r.status === "leased" && r.owner === "b")
          if (leased === undefined) return assert.fail("no live lease")
          const inIndex = yield* database.read((db) =>
            Number(
              db.pluck(
                "SELECT count(*) FROM work_items INDEXED BY work_items_leased_by_folder WHERE sweep_id = 1 AND folder_id = ? AND status = 'leased'",
                leased.folder
              )
            )
          )
          assert.strictEqual(inIndex, 1)
          yield* database.immediate((db) => db.run("DELETE FROM work_items_by_folder"))
          const path = FolderPath.make(FOLDERS[leased.folder - 1] ?? "")
          const done = yield* completeOld(store, "b", path)
          assert.isTrue(done.changed)
          // Found among leased items: the sweep's entries were not needed.
          const entries = () => database.read((db) => Number(db.pluck("SELECT count(*) FROM work_items_by_folder")))
          assert.strictEqual(yield* entries(), 0)

          // A sweep opened since 0015 has no entries; a trail at 0014 looks an item up through them,
          // finds nothing, builds them with its own statement and finds it.
          yield* store.reset(old, false)
          const claimed = yield* store.claim({
            task: old,
            agent: AgentId.make("z"),
            now: NOW,
            ttlMs: TTL,
            open: openOptions,
            autoSweep: false
          })
          if (claimed._tag !== "Claimed") return assert.fail(claimed._tag)
          const Found = Schema.Struct({ item_id: Schema.NullOr(Schema.Int), item_status: Schema.NullOr(Schema.String) })
          const olderLookup = () =>
            database.immediate((db) => {
              const first = Schema.decodeUnknownSync(Found)(db.get(ITEM_AT_0014, claimed.path, old))
              if (first.item_id !== null) return first
              return db.run(INDEX_OLDER_SWEEPS_0014) > 0
                ? Schema.decodeUnknownSync(Found)(db.get(ITEM_AT_0014, claimed.path, old))
                : first
            })
          assert.strictEqual(yield* entries(), 0)
          const found = yield* olderLookup()
          assert.strictEqual(found.item_status, "leased")
          const expected = yield* database.read((db) =>
            Number(db.pluck("SELECT id FROM work_items WHERE path = ? AND status = 'leased'", claimed.path))
          )
          assert.strictEqual(found.item_id, expected)
          assert.strictEqual(yield* entries(), FOLDERS.length)
          assert.strictEqual(yield* byFolderDrift(database), 0)
        })
    )

    it.scoped(
      "a sweep id used again after an older trail's reset left its entries: the open drops them, and done by path finds the folder's own item",
      () =>
        Effect.gen(function* () {
          const { database, dbCtx } = yield* storeAt(15)
          const store = yield* coverageOn(dbCtx)
          const claim = (agent: string) => claimOld(store, agent)
          const first = yield* claim("a")
          if (first._tag !== "Claimed") return assert.fail(first._tag)
          const sweepId = yield* database.read((db) => Number(db.pluck("SELECT current_sweep_id FROM tasks")))
          // A trail at 0014 (or older) resets the task: it deletes the sweep and its items and
          // leaves work_items_by_folder as it was; here its entries name other folders' items.
          yield* database.immediate((db) => {
            db.run(
              `INSERT INTO work_items_by_folder (sweep_id, folder_id, item_id)
               SELECT sweep_id, folder_id, (SELECT max(id) FROM work_items) + min(id) - id FROM work_items WHERE sweep_id = ?`,
              sweepId
            )
            db.run("UPDATE tasks SET current_sweep_id = NULL")
            db.run("DELETE FROM work_items WHERE sweep_id = ?", sweepId)
            db.run("DELETE FROM sweeps WHERE id = ?", sweepId)
          })
          const again = yield* claim("a")
          if (again._tag !== "Claimed") return assert.fail(again._tag)
          assert.strictEqual(
            yield* database.read((db) => Number(db.pluck("SELECT current_sweep_id FROM tasks"))),
            sweepId,
            "the sweep id is used again"
          )
          // A pending item, done by path: found through entries built from the sweep's own items.
          const pending = FOLDERS.find((path) => path !== again.path) ?? ""
          const done = yield* completeOld(store, "a", pending)
          assert.isTrue(done.changed)
          const doneAt = yield* database.read((db) =>
            db.all("SELECT path FROM work_items WHERE sweep_id = ? AND status = 'done'", sweepId)
          )
          assert.deepStrictEqual(doneAt, [{ path: pending }])
          assert.strictEqual(yield* byFolderDrift(database), 0)
        })
    )
  })
})
