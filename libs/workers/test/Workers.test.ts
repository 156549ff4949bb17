/**
 * The worker lifecycle on a real SQLite file with real processes (the process substrate).
 */
import * as fs from "node:fs"
import * as path from "node:path"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import { defaultConfig, type TrailConfig, WorkerId, WorkerResult } from "@trail/domain"
import { Database, Events } from "@trail/store"
import { Effect, Layer } from "effect"
import * as Processes from "../src/Processes.js"
import * as Workers from "../src/Workers.js"
import { IDLE_KIND, trustedRoot, workersLayer } from "./helpers.js"

/** The services over a fresh root in a temp dir (kinds `idle`, `lead` and `kinds`), removed when the layer is released. */
const makeRoot = (worker: Partial<TrailConfig["worker"]> = {}, kinds: Record<string, string> = {}) =>
  Layer.unwrapScoped(
    Effect.map(
      trustedRoot("trail-workers-", {
        idle: IDLE_KIND,
        lead: '---\ncan_spawn: true\ncommand: [sleep, "600"]\n---\n',
        ...kinds
      }),
      (root) =>
        workersLayer(
          root,
          { ...defaultConfig, worker: { ...defaultConfig.worker, substrate: "process", ...worker } },
          "workers"
        )
    ).pipe(Effect.provide(NodeContext.layer))
  )

const waitForExit = (dir: string) => Effect.flatMap(Processes.Processes, (processes) => processes.waitForExit(dir))

const killAll = Effect.gen(function* () {
  const workers = yield* Workers.Workers
  for (const worker of yield* workers.live) yield* Effect.ignore(workers.kill(worker.id))
})

describe("Workers", () => {
  it.scoped("each transition is checked against the machine and recorded as one event", () =>
    Effect.gen(function* () {
      const workers = yield* Workers.Workers
      const database = yield* Database.Database
      const worker = yield* workers.spawn({ text: "look", kind: "idle" })
      assert.strictEqual(worker.id, "w1")
      assert.strictEqual(worker.state, "running")
      yield* workers.wait(worker.id, "which?")
      const result = new WorkerResult({ outcome: "o", summary: "s", evidence: ["e"], recommend: [], found: 2 })
      // needs_input → ready is allowed; ready is terminal: nothing moves it again.
      const ready = yield* workers.done(worker.id, result)
      assert.strictEqual(ready.state, "ready")
      assert.deepStrictEqual(ready.result, result)
      const again = yield* Effect.flip(workers.fail(worker.id, "late"))
      assert.strictEqual(again._tag, "WorkerFinished")
      const types = (yield* database.read((db) => Events.ofSubject(db, "worker", worker.id))).map((e) => e.type)
      assert.deepStrictEqual(types, ["worker.spawned", "worker.running", "worker.needs_input", "worker.ready"])
      yield* workers.stopProgram(ready, 100)
    }).pipe(Effect.provide(makeRoot()))
  )

  it.scoped("max_active and max_spawn_depth cap spawns; a kind without can_spawn cannot have children", () =>
    Effect.gen(function* () {
      const workers = yield* Workers.Workers
      const lead = yield* workers.spawn({ text: "lead", kind: "lead" })
      const child = yield* workers.spawn({ text: "child", kind: "lead", parent: lead.id })
      assert.strictEqual(child.depth, 1)
      const tooDeep = yield* Effect.flip(workers.spawn({ text: "grandchild", kind: "idle", parent: child.id }))
      assert.strictEqual(tooDeep._tag, "SpawnRefused")
      assert.include(tooDeep.message, "max_spawn_depth 1")
      const idle = yield* workers.spawn({ text: "idle", kind: "idle" })
      const notAllowed = yield* Effect.flip(workers.spawn({ text: "x", kind: "idle", parent: idle.id }))
      assert.include(notAllowed.message, "can_spawn: false")
      yield* workers.spawn({ text: "fourth", kind: "idle" })
      const full = yield* Effect.flip(workers.spawn({ text: "fifth", kind: "idle" }))
      assert.include(full.message, "4 workers are live and worker.max_active is 4")
      yield* killAll
      // Finished workers do not count against the cap.
      const later = yield* workers.spawn({ text: "later", kind: "idle" })
      assert.strictEqual(later.state, "running")
      yield* killAll
    }).pipe(Effect.provide(makeRoot({ max_active: 4, max_spawn_depth: 1 })))
  )

  it.scoped("a lease is renewed only while the worker is live, and a final state clears it", () =>
    Effect.gen(function* () {
      const workers = yield* Workers.Workers
      const worker = yield* workers.spawn({ text: "look", kind: "idle" })
      assert.isTrue(yield* workers.renewLease(worker.id, "7@host", 30_000))
      assert.deepInclude(yield* workers.get(worker.id), { lease_owner: "7@host", lease_expires_at: 30_000 })
      const ended = yield* workers.end(worker.id, "cancelled", "stop")
      assert.deepInclude(ended, { state: "cancelled", lease_owner: null, lease_expires_at: null, finished_at: 0 })
      assert.isFalse(yield* workers.renewLease(worker.id, "7@host", 60_000))
      assert.strictEqual((yield* workers.get(worker.id)).lease_owner, null)
      assert.isFalse(yield* workers.renewLease(WorkerId.make("w99"), "7@host", 60_000))
      yield* workers.close(ended)
    }).pipe(Effect.provide(makeRoot()))
  )

  it.scoped("renewLeases renews the live ones of many workers in one call and names them", () =>
    Effect.gen(function* () {
      const workers = yield* Workers.Workers
      const [a, b, c] = [
        yield* workers.spawn({ text: "a", kind: "idle" }),
        yield* workers.spawn({ text: "b", kind: "idle" }),
        yield* workers.spawn({ text: "c", kind: "idle" })
      ]
      const ended = yield* workers.end(b.id, "cancelled", "stop")
      const renewed = yield* workers.renewLeases([a.id, b.id, c.id, WorkerId.make("w99")], "7@host", 30_000)
      assert.deepStrictEqual([...renewed].sort(), [a.id, c.id].sort())
      for (const id of [a.id, c.id])
        assert.deepInclude(yield* workers.get(id), { lease_owner: "7@host", lease_expires_at: 30_000 })
      assert.strictEqual((yield* workers.get(b.id)).lease_owner, null)
      assert.strictEqual((yield* workers.renewLeases([], "7@host", 30_000)).size, 0)
      yield* workers.close(ended)
      yield* killAll
    }).pipe(Effect.provide(makeRoot()))
  )

  it.scoped("an exit recorded for a live worker: 127 fails it, any other status loses it; idempotent", () =>
    Effect.gen(function* () {
      const workers = yield* Workers.Workers
      const a = yield* workers.spawn({ text: "a", kind: "idle" })
      const b = yield* workers.spawn({ text: "b", kind: "idle" })
      const failed = yield* workers.recordExit(a.id, 127)
      assert.deepInclude(failed, { state: "failed", exit_status: 127 })
      const lost = yield* workers.recordExit(b.id, 1)
      assert.deepInclude(lost, { state: "lost", exit_status: 1 })
      assert.strictEqual(lost.reason, "its program exited with status 1 before calling done or fail")
      const twice = yield* workers.recordExit(b.id, 2)
      assert.strictEqual(twice.exit_status, 1)
      for (const w of [a, b]) yield* workers.close(w)
    }).pipe(Effect.provide(makeRoot()))
  )

  it.scoped("a worker whose program died unnoticed is found dead by the next listing", () =>
    Effect.gen(function* () {
      const workers = yield* Workers.Workers
      const worker = yield* workers.spawn({ text: "crash", kind: "crash" })
      yield* waitForExit(workers.dirOf(worker.id))
      const [listed] = yield* workers.list
      assert.deepInclude(listed, { id: worker.id, state: "lost", exit_status: 4 })
      // Its last output is kept in the log, which outlives its window and its output file.
      const lost = (yield* workers.show(worker.id)).events.find((e) => e.type === "worker.lost")
      assert.deepStrictEqual(lost?.data.last_lines, ["bye", "oh no"])
    }).pipe(Effect.provide(makeRoot({}, { crash: '---\ncommand: "echo bye; echo oh no; exit 4"\n---\n' })))
  )

  it.scoped("a worker whose output cannot be read still ends (lost, without last lines)", () =>
    Effect.gen(function* () {
      const workers = yield* Workers.Workers
      const worker = yield* workers.spawn({ text: "crash", kind: "crash" })
      yield* waitForExit(workers.dirOf(worker.id))
      // Its output file is now a folder: reading it throws (EISDIR).
      const output = path.join(workers.dirOf(worker.id), "output.log")
      fs.rmSync(output)
      fs.mkdirSync(output)
      const [listed] = yield* workers.list
      assert.deepInclude(listed, { id: worker.id, state: "lost", exit_status: 4 })
      const lost = (yield* workers.show(worker.id)).events.find((e) => e.type === "worker.lost")
      assert.strictEqual(lost?.data.last_lines, undefined)
    }).pipe(Effect.provide(makeRoot({}, { crash: '---\ncommand: "echo bye; exit 4"\n---\n' })))
  )

  it.scoped("the process substrate logs output; tell is refused with a reason", () =>
    Effect.gen(function* () {
      const workers = yield* Workers.Workers
      const worker = yield* workers.spawn({ text: "hello there", kind: "echo" })
      yield* waitForExit(workers.dirOf(worker.id))
      const detail = yield* workers.show(worker.id)
      assert.include(detail.output, "said: hello there")
      const told = yield* Effect.flip(
        Effect.flatMap(workers.spawn({ text: "idle", kind: "idle" }), (w) => workers.tell(w.id, "hi"))
      )
      assert.strictEqual(told._tag, "SubstrateError")
      assert.include(told.message, "no terminal to type into")
      yield* killAll
    }).pipe(Effect.provide(makeRoot({}, { echo: '---\ncommand: [echo, "said: {prompt}"]\n---\n' })))
  )

  it.scoped(
    "the .trail/bin/trail shim is written once per content, never in place (no ETXTBSY for a worker running it)",
    () =>
      Effect.gen(function* () {
        const workers = yield* Workers.Workers
        // The first worker runs the shim in a loop and records every failure to exec it.
        const runner = yield* workers.spawn({ text: "run", kind: "runner" })
        const shim = path.join(workers.dirOf(runner.id), "..", "..", "bin", "trail")
        const inode = fs.statSync(shim).ino
        for (let i = 0; i < 6; i++) yield* workers.spawn({ text: `more ${i}`, kind: "idle" })
        assert.strictEqual(fs.statSync(shim).ino, inode, "the shim was rewritten although its content did not change")
        yield* waitForExit(workers.dirOf(runner.id))
        const detail = yield* workers.show(runner.id)
        assert.include(detail.output, "runs done")
        assert.notInclude(detail.output, "busy")
        yield* killAll
      }).pipe(
        Effect.provide(
          makeRoot(
            {},
            {
              runner:
                "---\ncommand: [sh, -c, 'for i in $(seq 150); do \"$TRAIL_BIN/trail\" || echo busy $?; done; echo runs done']\n---\n"
            }
          )
        )
      )
  )
})
