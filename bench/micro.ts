import { Database } from "@trail/scheduler"
import { Context, Effect, Layer } from "effect"
const N = 20000
const program = Effect.gen(function* () {
  const ctx = yield* Layer.build(Database.layer({ filename: ":memory:" }))
  const db = Context.get(ctx, Database.Database)
  yield* db.immediate((c) => c.run("CREATE TABLE t (x)"))
  let t0 = performance.now()
  for (let i = 0; i < N; i++) yield* db.immediate(() => 1)
  console.log("immediate(noop) us", ((performance.now() - t0) * 1000 / N).toFixed(2))
  t0 = performance.now()
  for (let i = 0; i < N; i++) yield* db.read(() => 1)
  console.log("read(noop) us", ((performance.now() - t0) * 1000 / N).toFixed(2))
  t0 = performance.now()
  for (let i = 0; i < N; i++) yield* Effect.try(() => 1)
  console.log("Effect.try us", ((performance.now() - t0) * 1000 / N).toFixed(2))
  const sem = yield* Effect.makeSemaphore(1)
  t0 = performance.now()
  for (let i = 0; i < N; i++) yield* sem.withPermits(1)(Effect.succeed(1))
  console.log("semaphore us", ((performance.now() - t0) * 1000 / N).toFixed(2))
})
Effect.runPromise(Effect.scoped(program))
