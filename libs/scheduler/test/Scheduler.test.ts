import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import { AgentId, FolderPath, TaskName, type ClaimResult } from "@trail/domain"
import Sqlite from "better-sqlite3"
import { Clock, Effect, TestClock } from "effect"
import { statSync } from "node:fs"
import { configOf, makeRoot, makeScheduler } from "./helpers.js"

const task = TaskName.make("refine")
const a1 = AgentId.make("a1")
const a2 = AgentId.make("a2")
const folder = (p: string) => FolderPath.make(p)

const claimedPath = (result: ClaimResult) => {
  assert.strictEqual(result._tag, "Claimed")
  return result._tag === "Claimed" ? result.path : folder(".")
}

/** A root with one file in each of `folders`, scanned, and its scheduler. */
const setup = (folders: ReadonlyArray<string>, raw: Record<string, unknown> = {}) =>
  Effect.gen(function* () {
    const files = Object.fromEntries(folders.map((f) => [`${f}/file.txt`, f]))
    const project = yield* makeRoot(files)
    const scheduler = yield* makeScheduler(project, configOf(raw))
    const scanned = yield* scheduler.scan()
    assert.strictEqual(scanned.folders, folders.length)
    return { scheduler, project }
  })

describe("Scheduler", () => {
  it.layer(NodeContext.layer)((it) => {
    it.scoped("opens sweep 1 on the first claim and leases each folder once", () =>
      Effect.gen(function* () {
        const { scheduler } = yield* setup(["src/api", "src/db", "docs"])
        const seen = new Set<string>()
        for (let i = 0; i < 3; i++) {
          const result = yield* scheduler.claim({ task, agent: a1 })
          const path = claimedPath(result)
          assert.isFalse(seen.has(path))
          seen.add(path)
          if (result._tag === "Claimed") {
            assert.strictEqual(result.sweep, 1)
            assert.strictEqual(result.lease_expires_at, 900_000)
            // Pending items not handed out yet, this one excluded (the Rust trail's remaining).
            assert.strictEqual(result.remaining, 2 - i)
          }
        }
        const none = yield* scheduler.claim({ task, agent: a2 })
        assert.strictEqual(none._tag, "NoneAvailable")
        if (none._tag === "NoneAvailable") assert.strictEqual(none.leased_outstanding, 3)
        const status = yield* scheduler.status(task)
        assert.deepInclude(status, { sweep: 1, sweep_status: "active", total: 3, leased: 3, pending: 0, done: 0 })
      })
    )

    it.scoped("renew hands a lease over and extends it; it refuses a lease held by someone else", () =>
      Effect.gen(function* () {
        const { scheduler } = yield* setup(["only"], { lease: { ttl_secs: 60 } })
        const path = claimedPath(yield* scheduler.claim({ task, agent: a1 }))
        const w1 = AgentId.make("w1")
        // a1 hands the folder to w1; a2 cannot take it while the lease runs.
        assert.isTrue(yield* scheduler.renew({ task, path, agent: w1, previous: a1 }))
        assert.isFalse(yield* scheduler.renew({ task, path, agent: a2 }))
        yield* TestClock.adjust("50 seconds")
        assert.isTrue(yield* scheduler.renew({ task, path, agent: w1 }))
        yield* TestClock.adjust("50 seconds")
        // Renewed at 50 s for 60 s: still w1's at 100 s.
        const [item] = yield* scheduler.list(task)
        assert.deepInclude(item, { status: "leased", lease_owner: w1, lease_expires_at: 110_000 })
        yield* scheduler.complete({ task, path, agent: w1, status: "done" })
        assert.isFalse(yield* scheduler.renew({ task, path, agent: w1 }))
      })
    )

    it.scoped("renewMany renews as renew does, each folder on its own terms, in request order", () =>
      Effect.gen(function* () {
        const { scheduler } = yield* setup(["a", "b", "c"], { lease: { ttl_secs: 60 } })
        const [pa, pb, pc] = [
          claimedPath(yield* scheduler.claim({ task, agent: a1 })),
          claimedPath(yield* scheduler.claim({ task, agent: a1 })),
          claimedPath(yield* scheduler.claim({ task, agent: a2 }))
        ]
        const w1 = AgentId.make("w1")
        const w2 = AgentId.make("w2")
        const w3 = AgentId.make("w3")
        yield* TestClock.adjust("30 seconds")
        const renewed = yield* scheduler.renewMany([
          { task, path: pa, agent: w1, previous: a1 },
          { task, path: pb, agent: w2, previous: a1 },
          // Held by a2, handed over by nobody: refused, and the others are renewed all the same.
          { task, path: pc, agent: w3, previous: a1 },
          { task, path: FolderPath.make("nowhere"), agent: w3 },
          { task: TaskName.make("no-such-task"), path: pa, agent: w1 }
        ])
        assert.deepStrictEqual(renewed, [true, true, false, false, false])
        const items = new Map((yield* scheduler.list(task)).map((item) => [item.path, item]))
        const now = yield* Clock.currentTimeMillis
        assert.deepInclude(items.get(pa), { lease_owner: w1, lease_expires_at: now + 60_000 })
        assert.deepInclude(items.get(pb), { lease_owner: w2, lease_expires_at: now + 60_000 })
        assert.deepInclude(items.get(pc), { lease_owner: a2, lease_expires_at: now + 30_000 })
        assert.deepInclude(yield* scheduler.status(task), { leased: 3, pending: 0 })
        assert.deepStrictEqual(yield* scheduler.renewMany([]), [])
      })
    )

    it.scoped("claimMany leases a batch atomically and says why it stopped short", () =>
      Effect.gen(function* () {
        const { scheduler } = yield* setup(["a", "b", "c", "d", "e"])
        const first = yield* scheduler.claimMany({ task, agent: a1, count: 3 })
        assert.strictEqual(first.claimed.length, 3)
        assert.isNull(first.end)
        const rest = yield* scheduler.claimMany({ task, agent: a2, count: 5 })
        assert.strictEqual(rest.claimed.length, 2)
        assert.deepInclude(rest.end, { _tag: "NoneAvailable", leased_outstanding: 5 })
        const paths = [...first.claimed, ...rest.claimed].map((c) => c.path)
        assert.strictEqual(new Set(paths).size, 5)
        for (const [i, path] of paths.entries())
          yield* scheduler.complete({ task, path, agent: i < 3 ? a1 : a2, status: "done" })
        const after = yield* scheduler.claimMany({ task, agent: a1, count: 2 })
        assert.deepStrictEqual(after.claimed, [])
        assert.deepInclude(after.end, { _tag: "SweepCompleted", covered: 5 })
      })
    )

    it.scoped("returns an expired lease to the pool (TestClock); a late done of the former holder is refused", () =>
      Effect.gen(function* () {
        const { scheduler } = yield* setup(["only"], { lease: { ttl_secs: 60 } })
        const path = claimedPath(yield* scheduler.claim({ task, agent: a1 }))
        assert.strictEqual((yield* scheduler.claim({ task, agent: a2 }))._tag, "NoneAvailable")
        yield* TestClock.adjust("59 seconds")
        assert.strictEqual((yield* scheduler.claim({ task, agent: a2 }))._tag, "NoneAvailable")
        yield* TestClock.adjust("1 second")
        const status = yield* scheduler.status(task)
        assert.strictEqual(status.leased, 0)
        assert.strictEqual(status.pending, 1)
        const again = yield* scheduler.claim({ task, agent: a2 })
        assert.strictEqual(claimedPath(again), path)
        const items = yield* scheduler.list(task)
        assert.strictEqual(items[0]!.lease_owner, "a2")
        // a1's lease expired and a2 took the folder over: a1's late report is refused, naming a2.
        const late = yield* Effect.flip(
          scheduler.complete({ task, path, agent: a1, status: "done", outcome: { _tag: "found", count: 7 } })
        )
        assert.deepInclude(late, { _tag: "NotLeaseHolder", holder: "a2", agent: "a1", status: "leased" })
        const own = yield* scheduler.complete({ task, path, agent: a2, status: "done" })
        assert.isTrue(own.changed)
        assert.isTrue(own.sweep_complete)
        const repeat = yield* scheduler.complete({ task, path, agent: a2, status: "done" })
        assert.isFalse(repeat.changed)
        // After a2 finished it, a1's report is still refused (never dropped into a2's visit).
        const after = yield* Effect.flip(scheduler.complete({ task, path, agent: a1, status: "done" }))
        assert.deepInclude(after, { _tag: "NotLeaseHolder", holder: "a2", status: "done" })
        const s = yield* scheduler.status(task)
        assert.deepInclude(s, { done: 1, leased: 0, pending: 0, percent: 100, sweep_status: "complete" })
      })
    )

    it.scoped("completes the sweep, reports it, and opens the next one only when asked", () =>
      Effect.gen(function* () {
        const { scheduler } = yield* setup(["a", "b"])
        for (let i = 0; i < 2; i++) {
          const path = claimedPath(yield* scheduler.claim({ task, agent: a1 }))
          const completion = yield* scheduler.complete({
            task,
            path,
            agent: a1,
            status: i === 0 ? "done" : "skipped",
            reason: "generated"
          })
          assert.strictEqual(completion.sweep_complete, i === 1)
          assert.strictEqual(completion.remaining, 1 - i)
        }
        // covered counts done folders only (the skipped one is not covered), as in the Rust trail.
        const complete = yield* scheduler.claim({ task, agent: a1 })
        assert.deepInclude(complete, { _tag: "SweepCompleted", sweep: 1, covered: 1, total: 2 })
        const auto = yield* scheduler.claim({ task, agent: a1, autoSweep: true })
        assert.strictEqual(auto._tag, "Claimed")
        if (auto._tag === "Claimed") assert.strictEqual(auto.sweep, 2)
        const swept = yield* scheduler.showSweep(task)
        assert.deepInclude(swept, { sweep: 2, status: "active", total: 2, leased: 1, pending: 1 })
      })
    )

    it.scoped("done and skip accept a still-pending item; percent counts done only", () =>
      Effect.gen(function* () {
        const { scheduler } = yield* setup(["a", "b", "c"])
        claimedPath(yield* scheduler.claim({ task, agent: a1 }))
        const pending = (yield* scheduler.list(task, "pending")).map((i) => i.path)
        assert.strictEqual(pending.length, 2)
        yield* scheduler.complete({
          task,
          path: pending[0]!,
          agent: a2,
          status: "done",
          outcome: { _tag: "found", count: 2 }
        })
        yield* scheduler.complete({ task, path: pending[1]!, agent: a2, status: "skipped", reason: "vendored" })
        const status = yield* scheduler.status(task)
        assert.deepInclude(status, { done: 1, skipped: 1, leased: 1, pending: 0 })
        assert.closeTo(status.percent, 33.3, 1e-9)
      })
    )

    it.scoped("done/skip by a non-holder of a live lease are refused; the holder's findings are kept", () =>
      Effect.gen(function* () {
        const { scheduler, project } = yield* setup(["a"], { lease: { ttl_secs: 60 } })
        const y = AgentId.make("y")
        const z = AgentId.make("z")
        const path = claimedPath(yield* scheduler.claim({ task, agent: y }))
        for (const status of ["done", "skipped"] as const) {
          const refused = yield* Effect.flip(
            scheduler.complete({ task, path, agent: z, status, outcome: { _tag: "clean" } })
          )
          assert.deepInclude(refused, { _tag: "NotLeaseHolder", holder: "y", agent: "z", status: "leased" })
        }
        const done = yield* scheduler.complete({
          task,
          path,
          agent: y,
          status: "done",
          outcome: { _tag: "found", count: 7 }
        })
        assert.isTrue(done.changed)
        const db = new Sqlite(project.databaseFile, { readonly: true })
        const visits = db.prepare("SELECT agent, found FROM visits").all()
        db.close()
        assert.deepStrictEqual(visits, [{ agent: "y", found: 7 }])
      })
    )

    it.scoped("an expired lease that nobody took over may still be completed by its former holder", () =>
      Effect.gen(function* () {
        const { scheduler } = yield* setup(["a"], { lease: { ttl_secs: 60 } })
        const path = claimedPath(yield* scheduler.claim({ task, agent: a1 }))
        yield* TestClock.adjust("61 seconds")
        // A third agent may complete it too (it is back in the pool); here the former holder does.
        const late = yield* scheduler.complete({ task, path, agent: a1, status: "done" })
        assert.isTrue(late.changed)
      })
    )

    it.scoped("--strategy is remembered per task: the next sweep uses it unless another is given", () =>
      Effect.gen(function* () {
        const { scheduler } = yield* setup(["a"])
        const first = yield* scheduler.claim({ task, agent: a1, strategy: "random" })
        yield* scheduler.complete({ task, path: claimedPath(first), agent: a1, status: "done" })
        assert.strictEqual((yield* scheduler.showSweep(task)).strategy, "random")
        yield* scheduler.claim({ task, agent: a1, autoSweep: true })
        assert.deepInclude(yield* scheduler.showSweep(task), { sweep: 2, strategy: "random" })
        yield* scheduler.complete({ task, path: folder("a"), agent: a1, status: "done" })
        const third = yield* scheduler.newSweep({ task, strategy: "round-robin" })
        assert.strictEqual(third.strategy, "round-robin")
        yield* scheduler.complete({ task, path: folder("a"), agent: a1, status: "done" })
        assert.strictEqual((yield* scheduler.newSweep({ task })).strategy, "round-robin")
        // Another task keeps strategy.default.
        const other = TaskName.make("other")
        yield* scheduler.claim({ task: other, agent: a1 })
        assert.strictEqual((yield* scheduler.showSweep(other)).strategy, "weighted")
      })
    )

    it.scoped("rejects completions outside the active sweep with typed errors", () =>
      Effect.gen(function* () {
        const { scheduler } = yield* setup(["a"])
        const unknownTask = yield* Effect.flip(
          scheduler.complete({ task, path: folder("a"), agent: a1, status: "done" })
        )
        assert.strictEqual(unknownTask._tag, "TaskNotFound")
        yield* scheduler.claim({ task, agent: a1 })
        const notAnItem = yield* Effect.flip(
          scheduler.complete({ task, path: folder("zzz"), agent: a1, status: "done" })
        )
        assert.strictEqual(notAnItem._tag, "NotAWorkItem")
        const status = yield* scheduler.status(task)
        assert.strictEqual(status.leased, 1)
      })
    )

    it.scoped("release: only the holder (when named) returns a lease, and only a leased item", () =>
      Effect.gen(function* () {
        const { scheduler } = yield* setup(["a", "b"])
        const path = claimedPath(yield* scheduler.claim({ task, agent: a1 }))
        const other = yield* Effect.flip(scheduler.release({ task, path, agent: a2 }))
        assert.deepInclude(other, { _tag: "LeaseNotHeld", holder: "a1" })
        const released = yield* scheduler.release({ task, path, agent: a1 })
        assert.strictEqual(released.remaining, 2)
        const twice = yield* Effect.flip(scheduler.release({ task, path }))
        assert.deepInclude(twice, { _tag: "LeaseNotHeld", status: "pending" })
        assert.deepInclude(yield* scheduler.status(task), { leased: 0, pending: 2 })
        // The released folder is the best pending one again.
        assert.strictEqual(claimedPath(yield* scheduler.claim({ task, agent: a2 })), path)
      })
    )

    it.scoped("sweep new: refused while active, refused with no folders, numbered after a reset", () =>
      Effect.gen(function* () {
        const { scheduler } = yield* setup(["a"])
        const first = yield* scheduler.newSweep({ task })
        assert.strictEqual(first.sweep, 1)
        const active = yield* Effect.flip(scheduler.newSweep({ task }))
        assert.deepInclude(active, { _tag: "SweepActive", sweep: 1 })
        const reset = yield* scheduler.reset(task)
        assert.deepInclude(reset, { cleared_sweeps: 1, cleared_history: false, cleared_visits: 0 })
        assert.strictEqual((yield* Effect.flip(scheduler.showSweep(task)))._tag, "NoSweep")
        assert.strictEqual((yield* scheduler.newSweep({ task, strategy: "random" })).strategy, "random")

        const empty = yield* makeRoot()
        const bare = yield* makeScheduler(empty)
        const noFolders = yield* Effect.flip(bare.newSweep({ task }))
        assert.strictEqual(noFolders._tag, "NoFolders")
        const claim = yield* bare.claim({ task, agent: a1 })
        assert.deepInclude(claim, { _tag: "SweepCompleted", total: 0 })
      })
    )

    it.scoped("memory: the next round-robin sweep starts with the least recently visited folders", () =>
      Effect.gen(function* () {
        const folders = ["a", "b", "c", "d", "e"]
        const { scheduler } = yield* setup(folders)
        const order: Array<string> = []
        for (let i = 0; i < folders.length; i++) {
          yield* TestClock.adjust("1 minute")
          const path = claimedPath(yield* scheduler.claim({ task, agent: a1 }))
          order.push(path)
          yield* scheduler.complete({ task, path, agent: a1, status: "done" })
        }
        yield* TestClock.adjust("1 hour")
        const next = yield* scheduler.newSweep({ task, strategy: "round-robin" })
        assert.strictEqual(next.sweep, 2)
        const items = yield* scheduler.list(task)
        assert.deepStrictEqual(
          items.map((i) => i.path),
          order
        )
        for (const item of items) assert.isNotNull(item.visited_at)
      })
    )

    it.scoped("outcome feedback surfaces folders that recently found more", () =>
      Effect.gen(function* () {
        const { scheduler } = yield* setup(["a", "b", "c"], { strategy: { outcome_weight: 0.9 } })
        for (let i = 0; i < 3; i++) {
          const path = claimedPath(yield* scheduler.claim({ task, agent: a1 }))
          const count = path === "b" ? 7 : 0
          yield* scheduler.complete({ task, path, agent: a1, status: "done", outcome: { _tag: "found", count } })
        }
        yield* TestClock.adjust("1 minute")
        const first = yield* scheduler.claim({ task, agent: a1, autoSweep: true })
        assert.strictEqual(claimedPath(first), "b")
      })
    )

    it.scoped("a rescan adds new folders as never visited and drops vanished ones from new sweeps", () =>
      Effect.gen(function* () {
        const { scheduler, project } = yield* setup(["keep", "gone"])
        for (let i = 0; i < 2; i++) {
          const path = claimedPath(yield* scheduler.claim({ task, agent: a1 }))
          yield* scheduler.complete({ task, path, agent: a1, status: "done" })
        }
        const fs = yield* Effect.promise(() => import("node:fs/promises"))
        yield* Effect.promise(() => fs.rm(`${project.root}/gone`, { recursive: true }))
        yield* Effect.promise(() => fs.mkdir(`${project.root}/fresh`))
        yield* Effect.promise(() => fs.writeFile(`${project.root}/fresh/x.ts`, "x"))
        const rescan = yield* scheduler.scan()
        assert.strictEqual(rescan.folders, 2)
        yield* TestClock.adjust("1 minute")
        const sweep = yield* scheduler.newSweep({ task, strategy: "round-robin" })
        assert.strictEqual(sweep.total, 2)
        const items = yield* scheduler.list(task)
        assert.deepStrictEqual(
          items.map((i) => [i.path, i.visited_at === null]),
          [
            ["fresh", true],
            ["keep", false]
          ]
        )
      })
    )

    it.scoped("reset --all forgets history; gc reclaims expired leases", () =>
      Effect.gen(function* () {
        const { scheduler, project } = yield* setup(["a", "b"], { lease: { ttl_secs: 10 } })
        const path = claimedPath(yield* scheduler.claim({ task, agent: a1 }))
        yield* scheduler.complete({ task, path, agent: a1, status: "done" })
        yield* scheduler.claim({ task, agent: a1 })
        yield* TestClock.adjust("11 seconds")
        const gc = yield* scheduler.gc({ reconcile: true })
        assert.deepStrictEqual(gc, {
          reclaimed_leases: 1,
          reconciled_sweeps: 0,
          counter_drift: 0,
          pruned_work_items: 0,
          vacuumed: false
        })
        assert.deepInclude(yield* scheduler.showSweep(task), { leased: 0, pending: 1, done: 1 })
        const reset = yield* scheduler.reset(task, { all: true })
        assert.deepInclude(reset, { cleared_sweeps: 1, cleared_history: true, cleared_visits: 1 })
        yield* scheduler.newSweep({ task })
        for (const item of yield* scheduler.list(task)) assert.isNull(item.visited_at)
        const wal = `${project.databaseFile}-wal`
        assert.isAbove(statSync(wal).size, 0)
        const vacuum = yield* scheduler.gc({ vacuum: true })
        assert.isTrue(vacuum.vacuumed)
        // VACUUM ran, then the checkpoint emptied the WAL into the database file.
        assert.strictEqual(statSync(wal).size, 0)
        assert.strictEqual((yield* scheduler.list(task)).length, 2)
      })
    )
  })
})
