import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import { AgentId, TaskName, WorkItemStatus } from "@trail/domain"
import { Chunk, Effect, Schema, Stream } from "effect"
import { LIST_PAGE } from "../src/CoverageStore.js"
import { makeStore, openOptions, syntheticFolders } from "./helpers.js"

const task = TaskName.make("list")
const TTL = 1_000

describe("listing a sweep's items", () => {
  it.layer(NodeContext.layer)((it) => {
    it.scoped("pages through the sweep in score order, ties across pages included, with --state and --limit", () =>
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
        // Few distinct scores: runs of equal scores straddle every page boundary.
        yield* database.immediate((db) => db.run("UPDATE work_items SET score = (id % 7) / 7.0"))
        const now = 1_200 // a's remaining leases expired (pending again), b's are live
        const expected = yield* database.read((db) =>
          db
            .all("SELECT path FROM work_items ORDER BY score DESC, id")
            .map((row) => Schema.decodeUnknownSync(Schema.Struct({ path: Schema.String }))(row).path)
        )
        const read = (state: WorkItemStatus | null, limit: number | null) =>
          Effect.map(Stream.runCollect(store.items(task, { state, limit, now })), Chunk.toReadonlyArray)
        const all = yield* read(null, null)
        assert.deepStrictEqual(
          all.map((i) => i.path),
          expected
        )
        assert.deepStrictEqual(yield* store.list(task, null, now), all)
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
      })
    )

    it.scoped("a page reads the score index: no scan of the sweep, no sort", () =>
      Effect.gen(function* () {
        const { database, store } = yield* makeStore
        yield* store.register(syntheticFolders(300), 0)
        yield* store.claim({ task, agent: AgentId.make("a"), now: 1, ttlMs: TTL, open: openOptions, autoSweep: false })
        const plans = yield* database.read((db) => {
          db.run("ANALYZE")
          const source = db
            .all("SELECT sql FROM sqlite_master WHERE name = 'work_items_by_score'")
            .map((row) => Schema.decodeUnknownSync(Schema.Struct({ sql: Schema.String }))(row).sql)
          const plan = (after: string) =>
            db
              .all(
                `EXPLAIN QUERY PLAN SELECT w.id FROM work_items w WHERE w.sweep_id = 1 ${after} ORDER BY w.score DESC, w.id LIMIT 100`
              )
              .map((row) => Schema.decodeUnknownSync(Schema.Struct({ detail: Schema.String }))(row).detail)
          return {
            source,
            first: plan(""),
            next: plan("AND w.score <= 0.5 AND (w.score < 0.5 OR w.id > 3)")
          }
        })
        assert.strictEqual(plans.source.length, 1)
        for (const detail of [...plans.first, ...plans.next]) assert.notInclude(detail, "TEMP B-TREE", detail)
        assert.isTrue(
          plans.first.some((d) => d.includes("work_items_by_score")),
          plans.first.join("; ")
        )
        assert.isTrue(
          plans.next.some((d) => d.includes("work_items_by_score") && d.includes("score<")),
          plans.next.join("; ")
        )
      })
    )
  })
})
