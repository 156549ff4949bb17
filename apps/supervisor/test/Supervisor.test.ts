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
import {
  defaultConfig,
  StoreError,
  TaskName,
  type TrailConfig,
  type Worker,
  type WorkerId,
  WorkerResult
} from "@trail/domain"
import { type Project, Scheduler } from "@trail/scheduler"
import { Kinds, Substrate, Workers } from "@trail/workers"
import { Cause, Deferred, Effect, Exit, Fiber, Layer, Option, TestClock } from "effect"
import * as Live from "../src/Live.js"
import * as Supervisor from "../src/Supervisor.js"

const KINDS = {
  hang: '---\ncommand: [sleep, "600"]\n---\n',
  slow: '---\ncommand: [sleep, "600"]\nmax_duration: 90s\n---\n',
  crash: '---\ncommand: "exit 3"\n---\n'
}

/** A root in a temp dir with kinds `hang`, `slow`, `crash`, folders `pkg0`…`pkg<folders-1>`, and every service over it. */
const makeRoot = (folders = 0) => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "trail-supervisor-"))
  fs.mkdirSync(path.join(root, ".trail", "kinds"), { recursive: true })
  for (let i = 0; i < folders; i++) {
    fs.mkdirSync(path.join(root, `pkg${i}`))
    fs.writeFileSync(path.join(root, `pkg${i}`, "index.ts"), "export {}\n")
  }
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

/** Waits in real time (at most ~4 s) for the fiber to end on its own; None if it is still running. */
const endsBy = <A, E>(fiber: Fiber.RuntimeFiber<A, E>) =>
  Effect.gen(function* () {
    for (let i = 0; i < 200; i++) {
      const exit = yield* Fiber.poll(fiber)
      if (Option.isSome(exit)) return exit
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 20)))
    }
    return Option.none()
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

  it.scoped("a store emptied in place (same inode, 0 bytes) ends the run with store-corrupt", () => {
    const { root, config, layer } = makeRoot()
    return Effect.gen(function* () {
      const running = yield* startSupervisor(config)
      // The supervisor is up once it holds the root's lock.
      yield* eventually(
        Effect.sync(() => (fs.statSync(path.join(root, ".trail", "state.db")).size > 0 ? true : undefined)),
        "the store"
      )
      yield* Effect.promise(() => new Promise((resolve) => setTimeout(resolve, 200)))
      fs.truncateSync(path.join(root, ".trail", "state.db"), 0)
      // The periodic check, should the folder's watch have missed it.
      yield* TestClock.adjust("5 seconds")
      const exit = yield* endsBy(running.fiber)
      assert.isTrue(Option.isSome(exit), "the supervisor noticed the emptied store")
      const error =
        Option.isSome(exit) && Exit.isFailure(exit.value) ? Cause.failureOption(exit.value.cause) : Option.none()
      assert.deepInclude(Option.getOrUndefined(error), { _tag: "StoreError", reason: "corrupt" })
      if (Option.isNone(exit)) yield* stopAll(running)
    }).pipe(Effect.provide(layer))
  })

  it.scoped(
    "a fleet whose spawns keep failing (not the cap) halts after worker.max_start_failures, releasing each folder",
    () => {
      const { config, layer } = makeRoot(2)
      const fleetConfig: TrailConfig = { ...config, worker: { ...config.worker, max_start_failures: 3 } }
      let spawns = 0
      // The store refuses every new worker (a full disk, a locked file…).
      const failingSpawn = Effect.map(Workers.Workers, (workers) => ({
        ...workers,
        spawn: () =>
          Effect.suspend(() => {
            spawns++
            return Effect.fail(new StoreError({ reason: "io", detail: "disk I/O error" }))
          })
      }))
      return Effect.gen(function* () {
        const scheduler = yield* Scheduler.Scheduler
        yield* scheduler.scan()
        const stop = yield* Supervisor.makeStopSignals
        const task = TaskName.make("t")
        const fiber = yield* Effect.fork(
          Effect.scoped(
            Supervisor.run({
              config: fleetConfig,
              stop,
              fleet: { task, workers: 1, kind: "hang", prompt: "p {path}", autoSweep: false }
            })
          )
        )
        // Were failed spawns retried as if the cap were reached, these would be the retries' waits.
        for (let i = 0; i < 5; i++) yield* TestClock.adjust("2 seconds")
        const exit = yield* endsBy(fiber)
        if (Option.isNone(exit)) {
          yield* Deferred.succeed(stop.drain, undefined)
          yield* Deferred.succeed(stop.cancel, undefined)
          yield* Fiber.interrupt(fiber)
        }
        assert.isTrue(Option.isSome(exit), `the fleet halted (${spawns} spawn attempts)`)
        const summary = Option.isSome(exit) && Exit.isSuccess(exit.value) ? exit.value.value : undefined
        assert.deepInclude(summary, { start_failures: 3, spawned: 0, folders_skipped: 0 })
        assert.include(summary?.halted ?? "", "disk I/O error")
        assert.strictEqual(spawns, 3)
        assert.deepInclude(yield* scheduler.status(task), { leased: 0, done: 0, skipped: 0 })
      }).pipe(Effect.provideServiceEffect(Workers.Workers, failingSpawn), Effect.provide(layer))
    }
  )

  it.scoped("a restart without a fleet releases the fleet slots' claims of every task", () => {
    const { config, layer } = makeRoot(2)
    return Effect.gen(function* () {
      const scheduler = yield* Scheduler.Scheduler
      yield* scheduler.scan()
      // A fleet of task a (and one of task b) was killed between claiming a folder and spawning for it.
      for (const task of ["a", "b"].map((t) => TaskName.make(t)))
        assert.strictEqual((yield* scheduler.claim({ task, agent: Supervisor.FLEET_AGENT }))._tag, "Claimed")
      const running = yield* startSupervisor(config)
      yield* stopAll(running)
      for (const task of ["a", "b"].map((t) => TaskName.make(t)))
        assert.deepInclude(yield* scheduler.status(task), { leased: 0 })
    }).pipe(Effect.provide(layer))
  })
})
