import { AgentId, TaskName, FolderPath } from "@trail/domain"
import { Database, CoverageStore } from "@trail/scheduler"
import { Context, Effect, Layer } from "effect"
const n = 10000
const folders = Array.from({ length: n }, (_, i) => ({ path: `area${Math.floor(i / 100)}/mod${i}`, fileCount: 1 + (i % 13), bytes: 100, churn: 0 }))
const open = { strategy: "weighted" as const, alpha: 0.6, outcomeWeight: 0, halfLifeSecs: 604800, seed: 42, staticSignal: "file_count" as const }
const program = Effect.gen(function* () {
  const ctx = yield* Layer.build(CoverageStore.layer.pipe(Layer.provideMerge(Database.layer({ filename: ":memory:" }))))
  const store = Context.get(ctx, CoverageStore.CoverageStore)
  const db = Context.get(ctx, Database.Database)
  yield* store.register(folders, 0)
  const task = TaskName.make("b"); const agent = AgentId.make("a")
  yield* store.newSweep(task, open, 1)
  const N = 3000
  let t0 = performance.now()
  const paths: Array<FolderPath> = []
  for (let i = 0; i < N; i++) { const r = yield* store.claim({ task, agent, now: 2, ttlMs: 1e9, open, autoSweep: false }); if (r._tag === "Claimed") paths.push(r.path) }
  console.log("claim us", ((performance.now() - t0) * 1000 / N).toFixed(1))
  t0 = performance.now()
  for (const path of paths) yield* store.complete({ task, path, agent, status: "done", found: null, reason: null, now: 3, halfLifeSecs: 600 })
  console.log("complete us", ((performance.now() - t0) * 1000 / N).toFixed(1))
  t0 = performance.now()
  for (let i = 0; i < N; i++) yield* store.status(task, 4)
  console.log("status us", ((performance.now() - t0) * 1000 / N).toFixed(1))
  t0 = performance.now()
  for (let i = 0; i < N; i++) yield* db.read((c) => c.prepare("SELECT t.id AS task_id, s.id AS sweep_id, s.number, s.status, s.total, s.done, s.skipped, s.leased FROM tasks t LEFT JOIN sweeps s ON s.id = t.current_sweep_id WHERE t.name = ?").get(task))
  console.log("raw current select us", ((performance.now() - t0) * 1000 / N).toFixed(1))
})
Effect.runPromise(Effect.scoped(program))
