/**
 * The supervisor's clock-driven duties under `TestClock`: lease renewal on a schedule, lease
 * expiry, `max_duration`. Workers are real processes (the process substrate) on a real SQLite
 * file; only time is simulated.
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import { defaultConfig, type TrailConfig, type Worker, type WorkerId, WorkerResult } from "@trail/domain"
import { Project } from "@trail/scheduler"
import { Kinds, Substrate, Workers } from "@trail/workers"
import { Deferred, Effect, Fiber, Layer, TestClock } from "effect"
import * as Live from "../src/Live.js"
import * as Supervisor from "../src/Supervisor.js"

const KINDS = {
  hang: '---\ncommand: [sleep, "600"]\n---\n',
  slow: '---\ncommand: [sleep, "600"]\nmax_duration: 90s\n---\n',
  crash: '---\ncommand: "exit 3"\n---\n'
}

/** A root in a temp dir with kinds `hang`, `slow`, `crash`, and every service over it. */
const makeRoot = () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "trail-supervisor-"))
  fs.mkdirSync(path.join(root, ".trail", "kinds"), { recursive: true })
  for (const [name, text] of Object.entries(KINDS))
    fs.writeFileSync(path.join(root, ".trail", "kinds", `${name}.md`), text)
  // The test's project kinds are trusted, as `trail kinds trust` would record them.
  const trusted = Object.fromEntries(
    Object.entries(KINDS).map(([name, text]) => [
      path.join(root, ".trail", "kinds", `${name}.md`),
      createHash("sha256").update(text).digest("hex")
    ])
  )
  fs.writeFileSync(Kinds.trustFileOf(path.join(root, "no-user-kinds")), JSON.stringify(trusted))
  const config: TrailConfig = {
    ...defaultConfig,
    worker: { ...defaultConfig.worker, substrate: "process", lease_secs: 30, exit_grace_secs: 1 }
  }
  const project: Project.Project = {
    root,
    stateDir: path.join(root, ".trail"),
    databaseFile: path.join(root, ".trail", "state.db"),
    configFile: path.join(root, ".trail.toml")
  }
  const layer = Live.supervisorLayer({
    project,
    config,
    trailCommand: ["true"],
    userKindsDir: path.join(root, "no-user-kinds")
  }).pipe(Layer.provideMerge(NodeContext.layer))
  return { root, config, layer }
}

/** Real-time polling (the workers are real processes); the TestClock is left alone. */
const eventually = <A>(check: Effect.Effect<A | undefined, unknown, Workers.Workers>, what: string) =>
  Effect.gen(function* () {
    for (let i = 0; i < 200; i++) {
      const value = yield* check
      if (value !== undefined) return value
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 20)))
    }
    return yield* Effect.dieMessage(`timed out waiting for ${what}`)
  })

const workerWhere = (id: WorkerId, predicate: (worker: Worker) => boolean) =>
  Effect.flatMap(Workers.Workers, (workers) =>
    Effect.map(workers.get(id), (worker) => (predicate(worker) ? worker : undefined))
  )

const startSupervisor = (config: TrailConfig, probe?: (worker: Worker) => Effect.Effect<boolean>) =>
  Effect.gen(function* () {
    const stop = yield* Supervisor.makeStopSignals
    const fiber = yield* Effect.fork(
      Effect.scoped(Supervisor.run({ config, stop, ...(probe === undefined ? {} : { probe }) }))
    )
    return { stop, fiber }
  })

const stopAll = (running: { stop: Supervisor.StopSignals; fiber: Fiber.RuntimeFiber<unknown, unknown> }) =>
  Effect.gen(function* () {
    yield* Deferred.succeed(running.stop.drain, undefined)
    yield* Deferred.succeed(running.stop.cancel, undefined)
    return yield* Fiber.join(running.fiber)
  })

describe("Supervisor under TestClock", () => {
  it.scoped("renews a live worker's lease every third of worker.lease_secs", () => {
    const { config, layer } = makeRoot()
    return Effect.gen(function* () {
      const workers = yield* Workers.Workers
      const worker = yield* workers.spawn({ text: "hang", kind: "hang" })
      assert.strictEqual(worker.state, "running")
      const running = yield* startSupervisor(config)
      const adopted = yield* eventually(
        workerWhere(worker.id, (w) => w.lease_expires_at === 30_000),
        "adoption"
      )
      assert.match(adopted.lease_owner ?? "", /^\d+@/)
      yield* TestClock.adjust("10 seconds")
      yield* eventually(
        workerWhere(worker.id, (w) => w.lease_expires_at === 40_000),
        "the first renewal"
      )
      yield* TestClock.adjust("10 seconds")
      yield* eventually(
        workerWhere(worker.id, (w) => w.lease_expires_at === 50_000),
        "the second renewal"
      )
      assert.strictEqual((yield* workers.get(worker.id)).state, "running")
      const summary = yield* stopAll(running)
      assert.strictEqual((yield* workers.get(worker.id)).state, "cancelled")
      assert.isFalse(Substrate.isAlive(worker.pid!))
      assert.deepInclude(summary, { stopped_by_signal: true, supervised: 1 })
    }).pipe(Effect.provide(layer))
  })

  it.scoped("a lease that is not renewed expires: the worker is lost and its program stopped", () => {
    const { config, layer } = makeRoot()
    return Effect.gen(function* () {
      const workers = yield* Workers.Workers
      const worker = yield* workers.spawn({ text: "hang", kind: "hang" })
      // The liveness check never answers (a wedged host): no renewal can happen.
      const running = yield* startSupervisor(config, () => Effect.never)
      yield* eventually(
        workerWhere(worker.id, (w) => w.lease_owner !== null),
        "adoption"
      )
      yield* TestClock.adjust("29 seconds")
      assert.strictEqual((yield* workers.get(worker.id)).state, "running")
      yield* TestClock.adjust("1 second")
      const lost = yield* eventually(
        workerWhere(worker.id, (w) => w.state === "lost"),
        "the expiry"
      )
      assert.strictEqual(lost.reason, "its lease expired (not renewed for 30s)")
      yield* eventually(
        Effect.sync(() => (Substrate.isAlive(worker.pid!) ? undefined : true)),
        "the stop"
      )
      yield* stopAll(running)
    }).pipe(Effect.provide(layer))
  })

  it.scoped("max_duration fails the worker when it runs out, not before", () => {
    const { config, layer } = makeRoot()
    return Effect.gen(function* () {
      const workers = yield* Workers.Workers
      const worker = yield* workers.spawn({ text: "slow", kind: "slow" })
      assert.strictEqual(worker.max_duration_ms, 90_000)
      const running = yield* startSupervisor(config)
      yield* eventually(
        workerWhere(worker.id, (w) => w.lease_owner !== null),
        "adoption"
      )
      yield* TestClock.adjust("89 seconds")
      assert.strictEqual((yield* workers.get(worker.id)).state, "running")
      yield* TestClock.adjust("1 second")
      const failed = yield* eventually(
        workerWhere(worker.id, (w) => w.state === "failed"),
        "the timeout"
      )
      assert.strictEqual(failed.reason, "exceeded its max_duration of 1m 30s")
      yield* stopAll(running)
    }).pipe(Effect.provide(layer))
  })

  it.scoped("a worker that finished but keeps running is stopped after worker.exit_grace_secs", () => {
    const { config, layer } = makeRoot()
    return Effect.gen(function* () {
      const workers = yield* Workers.Workers
      const worker = yield* workers.spawn({ text: "hang", kind: "hang" })
      const running = yield* startSupervisor(config)
      yield* eventually(
        workerWhere(worker.id, (w) => w.lease_owner !== null),
        "adoption"
      )
      // What `trail worker done` does, from the worker's side.
      const result = new WorkerResult({ outcome: "o", summary: "s", evidence: ["e"], recommend: [], found: 1 })
      yield* workers.done(worker.id, result)
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 200)))
      assert.isTrue(Substrate.isAlive(worker.pid!), "still in its grace")
      yield* TestClock.adjust("1 second")
      const stopped = yield* eventually(
        workerWhere(worker.id, (w) => w.exit_status !== null),
        "the stop"
      )
      assert.deepInclude(stopped, { state: "ready", exit_status: 143 })
      assert.isFalse(Substrate.isAlive(worker.pid!))
      yield* stopAll(running)
    }).pipe(Effect.provide(layer))
  })

  it.scoped("a program that exits without done or fail is noticed from its exit status", () => {
    const { config, layer } = makeRoot()
    return Effect.gen(function* () {
      const workers = yield* Workers.Workers
      const running = yield* startSupervisor(config)
      const worker = yield* workers.spawn({ text: "crash", kind: "crash" })
      const lost = yield* eventually(
        workerWhere(worker.id, (w) => w.state === "lost"),
        "the death"
      )
      assert.strictEqual(lost.exit_status, 3)
      assert.strictEqual(lost.reason, "its program exited with status 3 before calling done or fail")
      yield* stopAll(running)
    }).pipe(Effect.provide(layer))
  })
})
