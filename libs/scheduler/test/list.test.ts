import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import { AgentId, TaskName, WorkItemStatus } from "@trail/domain"
import { Chunk, Effect, Schema, Stream } from "effect"
import { LIST_PAGE, LIST_SQL } from "../src/CoverageStore.js"
import { makeStore, openOptions, syntheticFolders } from "./helpers.js"

const task = TaskName.make("list")
const other = TaskName.make("other")
const TTL = 1_000

describe("listing a sweep's items", () => {
  it.layer(NodeContext.layer)((it) => {
    it.scoped(
      "pages through the sweep in claim order (score, ties by path) with --state and --limit, and stops at its items",
      () =>
        Effect.gen(function* () {
          const { database, store } = yield* makeStore
          const n = 2 * LIST_PAGE + 300
          yield* store.register(syntheticFolders(n), 0)
          // Leases (some to expire), then completions: every state is present.
          const claimed = yield* store.claimMany({
            task,
            agent: AgentId.make("a"),
            count: 60,
            now: 1,
            ttlMs: TTL,
            open: openOptions,
            autoSweep: false
          })
          const late = yield* store.claimMany({
            task,
            agent: AgentId.make("b"),
            count: 30,
            now: 500,
            ttlMs: TTL,
            open: openOptions,
            autoSweep: false
          })
          for (const [i, c] of claimed.claimed.slice(0, 40).entries()) {
            yield* store.complete({
              task,
              path: c.path,
              agent: AgentId.make("a"),
              status: i % 4 === 0 ? "skipped" : "done",
              found: i % 3,
              reason: null,
              now: 2,
              halfLifeSecs: 60
            })
          }
          assert.strictEqual(late.claimed.length, 30)
          // A second task's sweep opened later: its items follow the first's (pages stop at the range).
          yield* store.claim({
            task: other,
            agent: AgentId.make("c"),
            now: 500,
            ttlMs: TTL,
            open: openOptions,
            autoSweep: false
          })
          const now = 1_200 // a's remaining leases expired (pending again), b's are live
          // Claim order: score, highest first, ties by path (the sweep's scores have ties).
          const expected = yield* database.read((db) =>
            db
              .all(
                "SELECT w.path FROM work_items w JOIN tasks t ON w.sweep_id = t.current_sweep_id WHERE t.name = ? ORDER BY w.score DESC, w.path",
                task
              )
              .map((row) => Schema.decodeUnknownSync(Schema.Struct({ path: Schema.String }))(row).path)
          )
          assert.strictEqual(expected.length, n)
          const read = (state: WorkItemStatus | null, limit: number | null) =>
            Effect.map(Stream.runCollect(store.items(task, { state, limit, now })), Chunk.toReadonlyArray)
          const all = yield* read(null, null)
          assert.deepStrictEqual(
            all.map((i) => i.path),
            expected
          )
          assert.deepStrictEqual(yield* store.list(task, null, now), all)
          const others = yield* store.list(other, null, now)
          assert.strictEqual(others.length, n)
          assert.deepStrictEqual(
            others.filter((i) => i.status !== "pending").map((i) => String(i.lease_owner)),
            ["c"]
          )
          for (const limit of [1, 10, LIST_PAGE, LIST_PAGE + 1, n - 1, n + 5]) {
            assert.deepStrictEqual(yield* read(null, limit), all.slice(0, limit), `limit ${limit}`)
          }
          const counts = new Map<string, number>()
          for (const state of WorkItemStatus.literals) {
            const inState = all.filter((i) => i.status === state)
            counts.set(state, inState.length)
            assert.deepStrictEqual(yield* read(state, null), inState, state)
            assert.deepStrictEqual(yield* read(state, 7), inState.slice(0, 7), `${state} limit 7`)
          }
          assert.deepStrictEqual(Object.fromEntries(counts), {
            pending: n - 40 - 30,
            leased: 30,
            done: 30,
            skipped: 10
          })
          const done = all.filter((i) => i.status === "done")
          assert.isTrue(
            done.every((i) => i.agent === "a" && i.found !== null && i.visited_at === 2),
            "who finished it and what they found come with each done item"
          )
          assert.isTrue(all.filter((i) => i.status === "leased").every((i) => i.lease_owner === "b"))
          // A sweep opened by a trail older than migration 0012 (still running when the store was
          // migrated) records no id range: it lists the same.
          yield* database.immediate((db) =>
            db.run(
              "UPDATE sweeps SET first_item_id = NULL, last_item_id = NULL WHERE id = (SELECT current_sweep_id FROM tasks WHERE name = ?)",
              task
            )
          )
          assert.deepStrictEqual(yield* read(null, null), all)
          assert.deepStrictEqual(yield* read("done", 7), all.filter((i) => i.status === "done").slice(0, 7))
        })
    )

    it.scoped("a page reads the sweep's id range on the table's key: n rows for n items, no index, no sort", () =>
      Effect.gen(function* () {
        const { database, store } = yield* makeStore
        yield* store.register(syntheticFolders(300), 0)
        yield* store.claim({ task, agent: AgentId.make("a"), now: 1, ttlMs: TTL, open: openOptions, autoSweep: false })
        const plans = yield* database.read((db) => {
          db.run("ANALYZE")
          const plan = (sql: string) =>
            db
              .all(`EXPLAIN QUERY PLAN ${sql}`, {
                task: 1,
                sweep_id: 1,
                number: 1,
                now: 1,
                state: "pending",
                size: 100,
                after: 0,
                last: 300
              })
              .map((row) => Schema.decodeUnknownSync(Schema.Struct({ detail: Schema.String }))(row).detail)
          return { all: plan(LIST_SQL.all), inState: plan(LIST_SQL.inState) }
        })
        for (const details of [plans.all, plans.inState]) {
          for (const detail of details) {
            assert.notInclude(detail, "TEMP B-TREE", detail)
            assert.notMatch(detail, /^SCAN w\b/, detail)
          }
          assert.isTrue(
            details.some((d) => /^SEARCH w USING INTEGER PRIMARY KEY \(rowid>\? AND rowid<\?\)/.test(d)),
            details.join("; ")
          )
        }
      })
    )
  })
})
