import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import { AgentId, type FolderPath, TaskName } from "@trail/domain"
import Sqlite from "better-sqlite3"
import { Context, Effect, Either, FastCheck as fc, Layer, Schema } from "effect"
import * as fs from "node:fs"
import { Database } from "@trail/store"
import * as CoverageStore from "../src/CoverageStore.js"
import { makeRoot, makeStore, openOptions, syntheticFolders } from "./helpers.js"

const task = TaskName.make("prop")
const TTL = 1_000

type Op =
  | { readonly op: "claim"; readonly agent: number }
  | { readonly op: "complete"; readonly agent: number; readonly skip: boolean; readonly found: number | null }
  | { readonly op: "release"; readonly agent: number }
  | { readonly op: "advance"; readonly ms: number }

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ op: fc.constant("claim" as const), agent: fc.nat({ max: 3 }) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constant("complete" as const),
      agent: fc.nat({ max: 3 }),
      skip: fc.boolean(),
      found: fc.option(fc.nat({ max: 5 }), { nil: null })
    })
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant("release" as const), agent: fc.nat({ max: 3 }) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant("advance" as const), ms: fc.integer({ min: 1, max: 2 * TTL }) }) }
)

const VisitRow = Schema.Struct({ path: Schema.String, n: Schema.Number })
const StatusRow = Schema.Struct({ status: Schema.String })

/** Counter drift, visits per path, and the item statuses of the current sweep. */
const inspect = (database: Database.DatabaseShape) =>
  database.read((db) => ({
    visits: db
      .all("SELECT path, count(*) AS n FROM visits GROUP BY path")
      .map((r) => Schema.decodeUnknownSync(VisitRow)(r)),
    statuses: db.all("SELECT status FROM work_items").map((r) => Schema.decodeUnknownSync(StatusRow)(r).status)
  }))

describe("CoverageStore", () => {
  it.layer(NodeContext.layer)((it) => {
    it.scoped.prop(
      "any interleaving of claim/complete/release/expiry covers every folder exactly once",
      [fc.integer({ min: 1, max: 25 }), fc.array(opArb, { maxLength: 80 })],
      ([n, ops]) =>
        Effect.gen(function* () {
          const { store, database } = yield* makeStore
          yield* store.register(syntheticFolders(n), 0)
          let now = 1
          const held = new Map<number, FolderPath>()
          // Agents whose expired lease another agent took over, each folder's last lease and
          // who finished it: a former holder's report is refused while the new holder's
          // lease is live or once another agent finished the folder.
          const lost = new Map<number, FolderPath>()
          const leases = new Map<FolderPath, { readonly holder: number; readonly until: number }>()
          const finishedBy = new Map<FolderPath, number>()
          const agent = (i: number) => AgentId.make(`a${i}`)
          const claim = (i: number) =>
            Effect.map(
              store.claim({ task, agent: agent(i), now, ttlMs: TTL, open: openOptions, autoSweep: false }),
              (result) => {
                if (result._tag === "Claimed") {
                  for (const [other, path] of held)
                    if (other !== i && path === result.path) {
                      held.delete(other)
                      lost.set(other, path)
                    }
                  lost.delete(i)
                  held.set(i, result.path)
                  leases.set(result.path, { holder: i, until: now + TTL })
                }
                return result
              }
            )
          for (const op of ops) {
            switch (op.op) {
              case "claim":
                yield* claim(op.agent)
                break
              case "complete": {
                const path = held.get(op.agent) ?? lost.get(op.agent)
                if (path === undefined) break
                const wasLost = !held.has(op.agent)
                held.delete(op.agent)
                lost.delete(op.agent)
                const completed = yield* Effect.either(
                  store.complete({
                    task,
                    path,
                    agent: agent(op.agent),
                    status: op.skip ? "skipped" : "done",
                    found: op.found,
                    reason: null,
                    now,
                    halfLifeSecs: 600
                  })
                )
                // The holder's report counts; a former holder's is refused, never merged.
                const lease = leases.get(path)
                const refused =
                  wasLost &&
                  ((finishedBy.get(path) ?? op.agent) !== op.agent ||
                    (lease !== undefined && lease.holder !== op.agent && lease.until > now))
                if (refused) assert.strictEqual(Either.isLeft(completed) && completed.left._tag, "NotLeaseHolder")
                else assert.isTrue(Either.isRight(completed), JSON.stringify(completed))
                if (Either.isRight(completed) && !finishedBy.has(path)) finishedBy.set(path, op.agent)
                break
              }
              case "release": {
                const path = held.get(op.agent)
                if (path === undefined) break
                held.delete(op.agent)
                // Fails harmlessly when the lease already expired and moved on.
                const released = yield* Effect.either(store.release({ task, path, agent: agent(op.agent) }))
                if (Either.isRight(released)) leases.delete(path)
                break
              }
              case "advance":
                now += op.ms
                break
            }
            // Invariant after every step: the O(1) counters equal the items.
            const gc = yield* store.gc({ now, reconcile: true, keepSweeps: 10 })
            assert.strictEqual(gc.counter_drift, 0)
          }
          // Drain: agents that vanished leave leases that expire.
          for (let guard = 0; guard < 10 * n + 10; guard++) {
            now += TTL
            const result = yield* claim(0)
            if (result._tag === "SweepCompleted") break
            if (result._tag === "Claimed") {
              held.delete(0)
              yield* store.complete({
                task,
                path: result.path,
                agent: agent(0),
                status: "done",
                found: null,
                reason: null,
                now,
                halfLifeSecs: 600
              })
            }
          }
          const final = yield* claim(0)
          assert.strictEqual(final._tag, "SweepCompleted")
          const { visits, statuses } = yield* inspect(database)
          assert.strictEqual(visits.length, n)
          for (const v of visits) assert.strictEqual(v.n, 1, v.path)
          assert.strictEqual(statuses.length, n)
          for (const s of statuses) assert.include(["done", "skipped"], s)
          const sweep = yield* store.showSweep(task)
          assert.deepInclude(sweep, { status: "complete", leased: 0, pending: 0, total: n })
          assert.strictEqual(sweep.done + sweep.skipped, n)
        }),
      { fastCheck: { numRuns: 60 }, timeout: 120_000 }
    )

    it.scoped.prop(
      "every claim leases the sweep's first pending item in claim order, whatever went back to pending or was taken out of order",
      [
        fc.integer({ min: 1, max: 30 }),
        fc.array(
          fc.oneof(
            {
              weight: 4,
              arbitrary: fc.record({ op: fc.constant("claim" as const), count: fc.integer({ min: 1, max: 3 }) })
            },
            // Out of claim order: a folder finished or leased by path (`done` on a pending item,
            // the supervisor's renew), ahead of the claim cursor or behind it.
            { weight: 2, arbitrary: fc.record({ op: fc.constant("finish" as const), at: fc.nat() }) },
            { weight: 2, arbitrary: fc.record({ op: fc.constant("renew" as const), at: fc.nat() }) },
            { weight: 2, arbitrary: fc.record({ op: fc.constant("release" as const), at: fc.nat() }) },
            { weight: 1, arbitrary: fc.record({ op: fc.constant("expire" as const) }) }
          ),
          { maxLength: 60 }
        )
      ],
      ([n, ops]) =>
        Effect.gen(function* () {
          const { store } = yield* makeStore
          yield* store.register(syntheticFolders(n), 0)
          yield* store.newSweep(task, openOptions, 0)
          const order = (yield* store.list(task, null, 0)).map((item) => item.path)
          const agent = AgentId.make("a")
          let now = 1
          // What the claim must take: the items shown pending (expired leases included), in list order.
          const pending = () => Effect.map(store.list(task, "pending", now), (items) => items.map((i) => i.path))
          const leased = () => Effect.map(store.list(task, "leased", now), (items) => items.map((i) => i.path))
          const pick = <A>(all: ReadonlyArray<A>, at: number) => (all.length === 0 ? undefined : all[at % all.length])
          for (const op of ops) {
            switch (op.op) {
              case "claim": {
                const expected = (yield* pending()).slice(0, op.count)
                const batch = yield* store.claimMany({
                  task,
                  agent,
                  now,
                  ttlMs: TTL,
                  open: openOptions,
                  autoSweep: false,
                  count: op.count
                })
                assert.deepStrictEqual(
                  batch.claimed.map((c) => c.path),
                  expected
                )
                break
              }
              case "finish": {
                const path = pick([...(yield* pending()), ...(yield* leased())], op.at)
                if (path !== undefined)
                  yield* store.complete({
                    task,
                    path,
                    agent,
                    status: "done",
                    found: null,
                    reason: null,
                    now,
                    halfLifeSecs: 600
                  })
                break
              }
              case "renew": {
                const path = pick(yield* pending(), op.at)
                if (path !== undefined)
                  assert.isTrue(yield* store.renew({ task, path, agent, previous: null, now, ttlMs: TTL }))
                break
              }
              case "release": {
                const path = pick(yield* leased(), op.at)
                if (path !== undefined) yield* store.release({ task, path, agent })
                break
              }
              case "expire":
                now += 2 * TTL
                break
            }
          }
          // Drained: every item was handed out or finished, in claim order among the claims.
          for (;;) {
            const expected = (yield* pending())[0]
            const result = yield* store.claim({ task, agent, now, ttlMs: TTL, open: openOptions, autoSweep: false })
            if (result._tag !== "Claimed") {
              assert.strictEqual(expected, undefined)
              break
            }
            assert.strictEqual(result.path, expected)
          }
          assert.strictEqual(order.length, n)
        }),
      { fastCheck: { numRuns: 60 }, timeout: 120_000 }
    )

    it.scoped("gc --reconcile rebuilds drifted counters from the items and closes a sweep they say is over", () =>
      Effect.gen(function* () {
        const { store, database } = yield* makeStore
        yield* store.register(syntheticFolders(3), 0)
        const claim = (now: number) =>
          store.claim({ task, agent: AgentId.make("a"), now, ttlMs: TTL, open: openOptions, autoSweep: false })
        const complete = (path: FolderPath, now: number) =>
          store.complete({
            task,
            path,
            agent: AgentId.make("a"),
            status: "done",
            found: null,
            reason: null,
            now,
            halfLifeSecs: 600
          })
        const first = yield* claim(1)
        assert.strictEqual(first._tag, "Claimed")
        if (first._tag === "Claimed") yield* complete(first.path, 2)
        yield* claim(3)
        // Counters written behind the triggers' back: total +4, done +4, leased -1.
        yield* database.immediate((db) => db.run("UPDATE sweeps SET total = 7, done = 5, leased = 0"))
        const drifted = yield* store.gc({ now: 4, reconcile: true, keepSweeps: 10 })
        assert.deepStrictEqual(drifted, {
          reclaimed_leases: 0,
          reconciled_sweeps: 1,
          counter_drift: 9,
          pruned_work_items: 0
        })
        assert.deepInclude(yield* store.showSweep(task), { total: 3, done: 1, leased: 1, pending: 1, status: "active" })
        assert.deepStrictEqual(yield* store.gc({ now: 5, reconcile: true, keepSweeps: 10 }), {
          reclaimed_leases: 0,
          reconciled_sweeps: 0,
          counter_drift: 0,
          pruned_work_items: 0
        })

        // Every item finished, but the sweep row says active: reconcile closes it at `now`.
        for (let now = 6; ; now++) {
          const next = yield* claim(now + TTL)
          if (next._tag !== "Claimed") break
          yield* complete(next.path, now + TTL)
        }
        yield* database.immediate((db) => db.run("UPDATE sweeps SET status = 'active', closed_at = NULL"))
        const reopened = yield* store.gc({ now: 9_000, reconcile: true, keepSweeps: 10 })
        assert.deepStrictEqual(reopened, {
          reclaimed_leases: 0,
          reconciled_sweeps: 1,
          counter_drift: 0,
          pruned_work_items: 0
        })
        assert.deepInclude(yield* store.showSweep(task), { status: "complete", closed_at: 9_000, done: 3, pending: 0 })
      })
    )

    it.scoped("status reads expired leases as pending; gc reclaims them; unknown tasks are TaskNotFound", () =>
      Effect.gen(function* () {
        const { database, store } = yield* makeStore
        yield* store.register(syntheticFolders(3), 0)
        for (const agent of ["a", "b"])
          yield* store.claim({
            task,
            agent: AgentId.make(agent),
            now: 1,
            ttlMs: TTL,
            open: openOptions,
            autoSweep: false
          })
        assert.deepInclude(yield* store.status(task, TTL), { sweep: 1, leased: 2, pending: 1, total: 3, percent: 0 })
        assert.deepInclude(yield* store.status(task, TTL + 1), { leased: 0, pending: 3, sweep_status: "active" })
        // The counters still hold the expired leases until something reclaims them.
        assert.deepInclude(yield* store.showSweep(task), { leased: 2, pending: 1 })
        assert.deepStrictEqual(yield* store.gc({ now: TTL + 1, reconcile: false, keepSweeps: 10 }), {
          reclaimed_leases: 2,
          reconciled_sweeps: 0,
          counter_drift: 0,
          pruned_work_items: 0
        })
        assert.deepInclude(yield* store.showSweep(task), { leased: 0, pending: 3 })

        const unknown = TaskName.make("nobody")
        assert.strictEqual((yield* Effect.flip(store.status(unknown, 1)))._tag, "TaskNotFound")
        assert.strictEqual((yield* Effect.flip(store.showSweep(unknown)))._tag, "TaskNotFound")
        assert.strictEqual((yield* Effect.flip(store.reset(unknown, true)))._tag, "TaskNotFound")
        assert.strictEqual((yield* Effect.flip(store.list(unknown, null, 1)))._tag, "TaskNotFound")

        const reset = yield* store.reset(task, false)
        assert.deepInclude(reset, { cleared_sweeps: 1, cleared_history: false, cleared_visits: 0 })
        // No foreign key cascades since migration 0012: the reset deletes the sweeps' items itself.
        assert.deepStrictEqual(yield* database.read((db) => db.get("SELECT count(*) AS n FROM work_items")), { n: 0 })
        assert.deepStrictEqual(yield* database.read((db) => db.get("SELECT count(*) AS n FROM work_items_by_folder")), {
          n: 0
        })
        assert.deepInclude(yield* store.status(task, 1), { sweep: null, sweep_status: null, total: 0, percent: 0 })
        assert.strictEqual((yield* Effect.flip(store.showSweep(task)))._tag, "NoSweep")
        assert.strictEqual((yield* Effect.flip(store.list(task, null, 1)))._tag, "NoSweep")
      })
    )

    it.scoped("sweep new returns the sweep as showSweep reads it; a row of the wrong shape is corrupt", () =>
      Effect.gen(function* () {
        const { store, database } = yield* makeStore
        yield* store.register(syntheticFolders(4), 0)
        const opened = yield* store.newSweep(task, { ...openOptions, requested: "round-robin" }, 77)
        assert.deepStrictEqual(opened, yield* store.showSweep(task))
        assert.deepInclude(opened, { sweep: 1, status: "active", strategy: "round-robin", total: 4, pending: 4 })
        assert.deepInclude(opened, { opened_at: 77, closed_at: null })
        assert.strictEqual((yield* Effect.flip(store.newSweep(task, openOptions, 78)))._tag, "SweepActive")

        yield* database.immediate((db) => db.run("UPDATE sweeps SET strategy = 'zigzag'"))
        const error = yield* Effect.flip(store.showSweep(task))
        assert.deepInclude(error, { _tag: "StoreError", reason: "corrupt" })
      })
    )

    it.scoped("a rescan of several statements' worth of folders updates, adds and marks absent", () =>
      Effect.gen(function* () {
        const { store, database } = yield* makeStore
        // 700 folders: more than one multi-row statement, and a partial last one.
        const all = syntheticFolders(700)
        assert.strictEqual(yield* store.register(all.slice(0, 600), 1), 600)
        const rescanned = all.slice(100).map((f) => ({ ...f, fileCount: f.fileCount * 2, churn: 3 }))
        assert.strictEqual(yield* store.register(rescanned, 2), 600)
        const Row = Schema.Struct({
          path: Schema.String,
          file_count: Schema.Int,
          bytes: Schema.Int,
          churn: Schema.Int,
          present: Schema.Int,
          scanned_at: Schema.Int
        })
        const rows = yield* database.read((db) =>
          db
            .all("SELECT path, file_count, bytes, churn, present, scanned_at FROM folders ORDER BY id")
            .map((row) => Schema.decodeUnknownSync(Row)(row))
        )
        assert.strictEqual(rows.length, 700)
        // Registered first and not found again: kept, absent, as scanned then.
        assert.deepStrictEqual(rows[0], {
          path: "area0/mod0",
          file_count: 1,
          bytes: 100,
          churn: 0,
          present: 0,
          scanned_at: 1
        })
        // Found again: the new measures.
        assert.deepStrictEqual(rows[599], {
          path: "area5/mod599",
          file_count: 1200,
          bytes: 60000,
          churn: 3,
          present: 1,
          scanned_at: 2
        })
        // New in the rescan.
        assert.deepStrictEqual(rows[699], {
          path: "area6/mod699",
          file_count: 1400,
          bytes: 70000,
          churn: 3,
          present: 1,
          scanned_at: 2
        })
        assert.deepStrictEqual(
          rows.map((r) => r.present).reduce((n, p) => n + p, 0),
          600
        )
      })
    )

    it.scoped("two claims never hold the same folder at once", () =>
      Effect.gen(function* () {
        const { store } = yield* makeStore
        yield* store.register(syntheticFolders(50), 0)
        const paths = new Set<string>()
        for (let i = 0; i < 50; i++) {
          const result = yield* store.claim({
            task,
            agent: AgentId.make(`a${i % 7}`),
            now: 10,
            ttlMs: TTL,
            open: openOptions,
            autoSweep: false
          })
          assert.strictEqual(result._tag, "Claimed")
          if (result._tag === "Claimed") paths.add(result.path)
        }
        assert.strictEqual(paths.size, 50)
      })
    )

    it.scoped(
      "the claim reads the table's key from its cursor and the returned items' key, the reclaim its partial index, the item at a path its keys: no scan, no temp b-tree",
      () =>
        Effect.gen(function* () {
          const { store, database } = yield* makeStore
          yield* store.register(syntheticFolders(300), 0)
          yield* store.claim({
            task,
            agent: AgentId.make("a"),
            now: 1,
            ttlMs: TTL,
            open: openOptions,
            autoSweep: false
          })
          const plans = yield* database.read((db) => {
            db.run("ANALYZE")
            const plan = (sql: string, ...params: Array<unknown>) =>
              db
                .all(`EXPLAIN QUERY PLAN ${sql}`, ...params)
                .map((row) => Schema.decodeUnknownSync(Schema.Struct({ detail: Schema.String }))(row).detail)
            return {
              next: plan(CoverageStore.CLAIM_SQL.nextPending, 1, 300, 1),
              claim: plan(CoverageStore.CLAIM_SQL.claim, { agent: "a", expires: 1, next: 2, sweep: 1 }),
              reclaim: plan(CoverageStore.CLAIM_SQL.reclaim, 1, 1),
              item: plan(CoverageStore.CURRENT_ITEM_SQL, "d/x", task)
            }
          })
          const all = [...plans.next, ...plans.claim, ...plans.reclaim, ...plans.item]
          for (const detail of all) {
            // (tasks may be scanned: ANALYZE saw one row there)
            assert.notMatch(detail, /^SCAN (work_items|w|b|folders)\b/, detail)
            assert.notInclude(detail, "TEMP B-TREE")
          }
          /** Each of `lookups` is a step of `plan`. */
          const uses = (plan: ReadonlyArray<string>, lookups: ReadonlyArray<string>) => {
            for (const lookup of lookups)
              assert.isTrue(
                plan.some((d) => d.includes(lookup)),
                `${lookup} in ${plan.join("; ")}`
              )
          }
          // The next never-claimed item: a range of the table's own key after the cursor.
          uses(plans.next, ["SEARCH work_items USING INTEGER PRIMARY KEY (rowid>? AND rowid<?)"])
          // The first returned item: its sweep's entries, then the item by id; the lease by id.
          uses(plans.claim, [
            "SEARCH r USING PRIMARY KEY (sweep_id=?)",
            "SEARCH w USING INTEGER PRIMARY KEY (rowid=?)",
            "SEARCH work_items USING INTEGER PRIMARY KEY (rowid=?)"
          ])
          uses(plans.reclaim, ["work_items_leased (sweep_id=? AND lease_expires_at<?)"])
          // The item at a path: folders' unique path, then (sweep_id, folder_id) among leased
          // items (0015), else in work_items_by_folder, then the item's id.
          uses(plans.item, [
            "SEARCH f USING COVERING INDEX sqlite_autoindex_folders_1 (path=?)",
            "SEARCH l USING COVERING INDEX work_items_leased_by_folder (sweep_id=? AND folder_id=?)",
            "SEARCH b USING PRIMARY KEY (sweep_id=? AND folder_id=?)",
            "SEARCH w USING INTEGER PRIMARY KEY (rowid=?)"
          ])
        })
    )

    it.scoped("a file that is not a database is reported as corrupt, and left untouched", () =>
      Effect.gen(function* () {
        const project = yield* makeRoot()
        fs.writeFileSync(
          project.databaseFile,
          "this is not sqlite, just text that happens to be long enough to have a header".repeat(20)
        )
        const before = fs.readFileSync(project.databaseFile)
        const error = yield* Effect.flip(Layer.build(Database.layer({ filename: project.databaseFile })))
        assert.strictEqual(error._tag, "StoreError")
        assert.strictEqual(error.reason, "corrupt")
        assert.deepStrictEqual(fs.readFileSync(project.databaseFile), before)
      })
    )

    it.scoped("a read-only database fails writes as read-only, keeps its data, and still reads", () =>
      Effect.gen(function* () {
        const project = yield* makeRoot()
        const seeded = new Sqlite(project.databaseFile)
        seeded.exec("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (7)")
        seeded.close()
        fs.chmodSync(project.databaseFile, 0o444)
        yield* Effect.addFinalizer(() => Effect.sync(() => fs.chmodSync(project.databaseFile, 0o644)))
        // root ignores file modes, so there the connection is opened read-only explicitly.
        const readonly = process.getuid?.() === 0
        const ctx = yield* Layer.build(Database.layer({ filename: project.databaseFile, readonly }))
        const database = Context.get(ctx, Database.Database)
        const error = yield* Effect.flip(database.immediate((db) => db.run("INSERT INTO t VALUES (1)")))
        assert.strictEqual(error._tag, "StoreError")
        assert.strictEqual(error.reason, "readonly")
        const rows = yield* database.read((db) => db.all("SELECT x FROM t"))
        assert.deepStrictEqual(rows, [{ x: 7 }])
      })
    )
  })
})
