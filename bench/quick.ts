import { AgentId, FolderPath, TaskName } from "@trail/domain"
import { Database, CoverageStore, Scheduler, Walker } from "@trail/scheduler"
import { decodeConfig } from "@trail/domain"
import { Context, Effect, Either, Layer } from "effect"
import * as NodeContext from "@effect/platform-node/NodeContext"

const n = Number(process.argv[2] ?? 10000)
const config = Either.getOrThrow(decodeConfig({}, "bench"))
const folders = Array.from({ length: n }, (_, i) => ({ path: `area${Math.floor(i / 100)}/mod${i}`, fileCount: 1 + (i % 13), bytes: 100, churn: 0 }))
const program = Effect.gen(function* () {
  const store = yield* CoverageStore.CoverageStore
  const scheduler = yield* Scheduler.Scheduler
  yield* store.register(folders, 0)
  const task = TaskName.make("bench"); const agent = AgentId.make("a")
  yield* scheduler.newSweep({ task })
  const t0 = performance.now()
  let cycles = 0
  for (;;) {
    const r = yield* scheduler.claim({ task, agent })
    if (r._tag !== "Claimed") break
    yield* scheduler.complete({ task, path: r.path, agent, status: "done" })
    cycles++
  }
  const ms = performance.now() - t0
  console.log(`${cycles} cycles, ${(ms * 1000 / cycles).toFixed(1)} us/cycle`)
})
const db = Database.layer({ filename: ":memory:" })
const storeL = CoverageStore.layer.pipe(Layer.provideMerge(db))
const sched = Scheduler.layer.pipe(Layer.provideMerge(storeL), Layer.provide(Walker.layer), Layer.provide(Layer.succeed(Scheduler.Settings, { project: { root: "/", stateDir: "/", databaseFile: ":memory:", configFile: "/" }, config })))
Effect.runPromise(program.pipe(Effect.provide(sched), Effect.provide(NodeContext.layer)))
