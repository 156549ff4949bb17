/**
 * The supervisor's duties under `TestClock`, on test layers alone: workers run nothing (the test
 * `Substrates` hand out pids of `Processes.Test`, which the test ends with an exit status, kills,
 * or wedges), file watches fire only when the test says, the host is fixed, and the store is a
 * real SQLite file in a temp dir. No real-time wait: the test advances the TestClock and, between
 * steps, lets the supervisor's fibers run (`until` yields to them; it never sleeps).
 */
import { createHash } from "node:crypto"
import * as fs from "node:fs"
import * as os from "node:os"
import * as path from "node:path"
import * as FileSystem from "@effect/platform/FileSystem"
import * as NodeContext from "@effect/platform-node/NodeContext"
import { assert, describe, it } from "@effect/vitest"
import {
  AgentId,
  defaultConfig,
  Env,
  EventLog,
  Host,
  StoreError,
  TaskName,
  type TrailConfig,
  type Worker,
  type WorkerId,
  WorkerResult
} from "@trail/domain"
import { type Project, Scheduler } from "@trail/scheduler"
import { Database } from "@trail/store"
import { Inbox, Kinds, Processes, Substrate, Workers } from "@trail/workers"
import { Cause, Chunk, Deferred, Effect, Exit, Fiber, Layer, Logger, Option, TestClock } from "effect"
import * as EventLogLive from "../src/EventLog.js"
import { STOP_CONCURRENCY } from "../src/Supervision.js"
import * as Supervisor from "../src/Supervisor.js"

const KINDS = {
  hang: '---\ncommand: [sleep, "600"]\n---\n',
  slow: '---\ncommand: [sleep, "600"]\nmax_duration: 90s\n---\n'
}

const HOST = { hostname: "test-host", pid: 4242 }

/**
 * A root in a temp dir with kinds `hang` and `slow`, folders `pkg0`…`pkg<folders-1>` (besides the
 * root folder itself), and every service over test layers; `override` replaces Workers' methods,
 * `supervisorFs` the FileSystem the Supervisor alone sees.
 */
const makeRoot = (
  folders = 0,
  worker: Partial<TrailConfig["worker"]> = {},
  override?: (real: Workers.WorkersShape) => Partial<Workers.WorkersShape>,
  supervisorFs?: (real: FileSystem.FileSystem) => Partial<FileSystem.FileSystem>
) => {
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
    worker: { ...defaultConfig.worker, substrate: "process", lease_secs: 30, exit_grace_secs: 1, ...worker }
  }
  const project: Project.Project = {
    root,
    stateDir: path.join(root, ".trail"),
    databaseFile: path.join(root, ".trail", "state.db"),
    configFile: path.join(root, ".trail.toml")
  }
  const outside = Layer.mergeAll(
    Processes.Processes.Test,
    Host.fixed(HOST),
    // The kinds' programs are looked up on this PATH (they are never run).
    Env.fixed({ PATH: process.env["PATH"] ?? "/usr/bin:/bin" }),
    Processes.watchesTest.pipe(Layer.provideMerge(NodeContext.layer))
  )
  const realWorkers = Workers.layer.pipe(
    Layer.provide(Substrate.layerTest),
    Layer.provide(
      Layer.succeed(Workers.WorkerSettingsTag, {
        root,
        stateDir: project.stateDir,
        config,
        trailCommand: ["true"],
        userKindsDir: path.join(root, "no-user-kinds"),
        configFile: project.configFile
      })
    )
  )
  const workers =
    override === undefined
      ? realWorkers
      : Layer.effect(
          Workers.Workers,
          Effect.map(Workers.Workers, (real) => Workers.Workers.of({ ...real, ...override(real) }))
        ).pipe(Layer.provideMerge(realWorkers))
  const layer = Supervisor.Supervisor.layer.pipe(
    supervisorFs === undefined
      ? (self) => self
      : Layer.provide(
          Layer.effect(
            FileSystem.FileSystem,
            Effect.map(FileSystem.FileSystem, (real) => ({ ...real, ...supervisorFs(real) }))
          ).pipe(Layer.provide(NodeContext.layer))
        ),
    Layer.provideMerge(
      Layer.mergeAll(
        Scheduler.layerOn({ project, config }),
        Inbox.layer,
        EventLogLive.layer({ stateDir: project.stateDir })
      )
    ),
    Layer.provideMerge(workers),
    Layer.provideMerge(Database.layer({ filename: project.databaseFile })),
    Layer.provideMerge(outside)
  )
  return { root, config, layer }
}

/**
 * One turn of Node's event loop (`setImmediate`, no timer): the supervisor's other fibers run and
 * its file reads (kinds, the store's stat) complete. No time passes on any clock the test reads.
 */
const turn = Effect.async<void>((resume) => {
  const handle = setImmediate(() => resume(Effect.void))
  return Effect.sync(() => clearImmediate(handle))
})

/** Lets the other fibers run until `check` answers (at most 5,000 event-loop turns). */
const until = <A, E, R>(check: Effect.Effect<A | undefined, E, R>, what: string) =>
  Effect.gen(function* () {
    for (let i = 0; i < 5_000; i++) {
      const value = yield* check
      if (value !== undefined) return value
      yield* turn
    }
    return yield* Effect.dieMessage(`never happened: ${what}`)
  })

const workerWhere = (id: WorkerId, predicate: (worker: Worker) => boolean) =>
  Effect.flatMap(Workers.Workers, (workers) =>
    Effect.map(workers.get(id), (worker) => (predicate(worker) ? worker : undefined))
  )

/**
 * Waits until `count` fibers sleep until `at` (ms on the TestClock), so that adjusting past it
 * wakes each of them. With `worker.lease_secs = 30` a running supervisor sleeps until each 10 s
 * mark three times: its lock's renewal, the finished windows' sweep, and each supervised worker's
 * renewal.
 */
const sleepingUntil = (at: number, count = 1) =>
  until(
    Effect.map(TestClock.sleeps(), (sleeps) =>
      Chunk.size(Chunk.filter(sleeps, (t) => t === at)) >= count ? true : undefined
    ),
    `${count} sleep(s) until ${at} ms`
  )

const startSupervisor = (config: TrailConfig, fleet?: Supervisor.FleetOptions) =>
  Effect.gen(function* () {
    const stop = yield* Supervisor.makeStopSignals
    const fiber = yield* Effect.fork(Supervisor.run({ config, stop, fleet }))
    return { stop, fiber }
  })

/** The root's folders scanned, then a fleet of one `hang` worker on task `t` (no automatic new sweep). */
const startFleet = (config: TrailConfig) =>
  Effect.gen(function* () {
    const scheduler = yield* Scheduler.Scheduler
    yield* scheduler.scan()
    const task = TaskName.make("t")
    const running = yield* startSupervisor(config, {
      task,
      workers: 1,
      kind: "hang",
      prompt: "p {path}",
      autoSweep: false
    })
    return { scheduler, task, running }
  })

const stopAll = (running: {
  stop: Supervisor.StopSignals
  fiber: Fiber.RuntimeFiber<Supervisor.SupervisorSummary, unknown>
}) =>
  Effect.gen(function* () {
    yield* Deferred.succeed(running.stop.drain, undefined)
    yield* Deferred.succeed(running.stop.cancel, undefined)
    return yield* Fiber.join(running.fiber)
  })

/** What another process's append does to a live supervisor: its state folder's watch fires. */
const poke = Effect.flatMap(EventLog, (log) => log.poke)

const isAlive = (pid: number | null) =>
  Effect.flatMap(Processes.Processes, (processes) => (pid === null ? Effect.succeed(false) : processes.isAlive(pid)))

/** The program of `worker` ends with `status` (written by its wrapper). */
const exits = (worker: Worker, status: number) =>
  Effect.gen(function* () {
    const control = yield* Processes.TestProcesses
    const workers = yield* Workers.Workers
    if (worker.pid !== null) yield* control.exit(worker.pid, workers.dirOf(worker.id), status)
  })

/** The fiber's exit once it has ended by itself; None when it still runs after its other fibers had every chance to run. */
const ended = <A, E>(fiber: Fiber.RuntimeFiber<A, E>) =>
  Effect.gen(function* () {
    for (let i = 0; i < 5_000; i++) {
      const exit = yield* Fiber.poll(fiber)
      if (Option.isSome(exit)) return exit
      yield* turn
    }
    return Option.none<Exit.Exit<A, E>>()
  })

describe("Supervisor under TestClock, on test layers", () => {
  it.scoped("renews a live worker's lease every third of worker.lease_secs", () => {
    const { config, layer } = makeRoot()
    return Effect.gen(function* () {
      const workers = yield* Workers.Workers
      const worker = yield* workers.spawn({ text: "hang", kind: "hang" })
      assert.strictEqual(worker.state, "running")
      const running = yield* startSupervisor(config)
      const adopted = yield* until(
        workerWhere(worker.id, (w) => w.lease_expires_at === 30_000),
        "adoption"
      )
      assert.strictEqual(adopted.lease_owner, "4242@test-host")
      yield* sleepingUntil(10_000, 3)
      yield* TestClock.adjust("10 seconds")
      yield* until(
        workerWhere(worker.id, (w) => w.lease_expires_at === 40_000),
        "the first renewal"
      )
      yield* sleepingUntil(20_000, 3)
      yield* TestClock.adjust("9 seconds")
      assert.strictEqual((yield* workers.get(worker.id)).lease_expires_at, 40_000, "not renewed early")
      yield* TestClock.adjust("1 second")
      yield* until(
        workerWhere(worker.id, (w) => w.lease_expires_at === 50_000),
        "the second renewal"
      )
      assert.strictEqual((yield* workers.get(worker.id)).state, "running")
      const summary = yield* stopAll(running)
      assert.strictEqual((yield* workers.get(worker.id)).state, "cancelled")
      assert.isFalse(yield* isAlive(worker.pid))
      assert.deepInclude(summary, { stopped_by_signal: true, supervised: 1 })
    }).pipe(Effect.provide(layer))
  })

  it.scoped("a second signal cancels a fleet's workers STOP_CONCURRENCY at a time, each settled as alone", () => {
    const fleetSize = STOP_CONCURRENCY + 2
    let closing = 0
    let mostAtOnce = 0
    const gate = Effect.runSync(Deferred.make<void>())
    // Each cancelled worker's window closes only once the test opens the gate: the closes started meanwhile run together.
    const { config, layer } = makeRoot(fleetSize - 1, { max_active: fleetSize }, (real) => ({
      close: (worker) =>
        Effect.suspend(() => {
          closing++
          mostAtOnce = Math.max(mostAtOnce, closing)
          return Deferred.await(gate)
        }).pipe(Effect.zipRight(real.close(worker)), Effect.ensuring(Effect.sync(() => closing--)))
    }))
    return Effect.gen(function* () {
      const workers = yield* Workers.Workers
      const scheduler = yield* Scheduler.Scheduler
      yield* scheduler.scan()
      const task = TaskName.make("t")
      const running = yield* startSupervisor(config, {
        task,
        workers: fleetSize,
        kind: "hang",
        prompt: "p {path}",
        autoSweep: false
      })
      const fleet = yield* until(
        Effect.map(workers.live, (live) =>
          live.filter((w) => w.lease_owner === "4242@test-host").length === fleetSize ? live : undefined
        ),
        `${fleetSize} supervised workers`
      )
      yield* Deferred.succeed(running.stop.drain, undefined)
      yield* Deferred.succeed(running.stop.cancel, undefined)
      // One at a time (FiberMap.clear), the first close would hold the others back.
      yield* until(
        Effect.sync(() => (closing === STOP_CONCURRENCY ? true : undefined)),
        `${STOP_CONCURRENCY} closes at once`
      )
      assert.isTrue(Option.isNone(yield* ended(running.fiber)), "the run waits for the closes")
      assert.strictEqual(mostAtOnce, STOP_CONCURRENCY, "never more than the bound")
      yield* Deferred.succeed(gate, undefined)
      const summary = yield* Fiber.join(running.fiber)
      assert.deepInclude(summary, { stopped_by_signal: true, spawned: fleetSize, folders_released: fleetSize })
      assert.deepInclude(yield* scheduler.status(task), { leased: 0, done: 0, skipped: 0 })
      for (const worker of fleet) {
        const detail = yield* workers.show(worker.id)
        assert.deepInclude(detail.worker, { state: "cancelled", reason: "the supervisor was stopped" })
        assert.isFalse(yield* isAlive(worker.pid), `${worker.id} stopped`)
        assert.strictEqual(detail.events.filter((e) => e.type === "worker.cancelled").length, 1)
      }
      // A failed step still lets the closes go, so that the run (and the test) can end.
    }).pipe(Effect.ensuring(Deferred.succeed(gate, undefined)), Effect.provide(layer))
  })

  it.scoped("a worker whose liveness check never answers is lost at exactly its lease, and stopped", () => {
    const { config, layer } = makeRoot()
    return Effect.gen(function* () {
      const workers = yield* Workers.Workers
      const worker = yield* workers.spawn({ text: "hang", kind: "hang" })
      // The liveness check never answers (a wedged host): no renewal can happen.
      if (worker.pid !== null) yield* (yield* Processes.TestProcesses).stall(worker.pid)
      const running = yield* startSupervisor(config)
      yield* until(
        workerWhere(worker.id, (w) => w.lease_owner !== null),
        "adoption"
      )
      yield* sleepingUntil(30_000)
      yield* TestClock.adjust("29999 millis")
      assert.strictEqual((yield* workers.get(worker.id)).state, "running")
      yield* TestClock.adjust("1 millis")
      const lost = yield* until(
        workerWhere(worker.id, (w) => w.state === "lost"),
        "the expiry"
      )
      assert.strictEqual(lost.reason, "its lease expired (not renewed for 30s)")
      yield* stopAll(running)
    }).pipe(Effect.provide(layer))
  })

  it.scoped("a liveness check that wedges leaves only its own worker unrenewed: the others' leases are renewed", () => {
    const { config, layer } = makeRoot()
    return Effect.gen(function* () {
      const workers = yield* Workers.Workers
      const wedged = yield* workers.spawn({ text: "hang", kind: "hang" })
      const healthy = yield* workers.spawn({ text: "hang", kind: "hang" })
      const running = yield* startSupervisor(config)
      for (const worker of [wedged, healthy])
        yield* until(
          workerWhere(worker.id, (w) => w.lease_expires_at === 30_000),
          "adoption"
        )
      // The tick at 0 is done: it sleeps until 10 s with the lock's renewal and the windows' sweep.
      yield* sleepingUntil(10_000, 3)
      if (wedged.pid !== null) yield* (yield* Processes.TestProcesses).stall(wedged.pid)
      yield* TestClock.adjust("10 seconds")
      // The tick at 10 s waits for the wedged check's timeout (5 s), then renews the other worker.
      yield* sleepingUntil(15_000)
      yield* TestClock.adjust("5 seconds")
      yield* until(
        workerWhere(healthy.id, (w) => w.lease_expires_at === 45_000),
        "the healthy worker's renewal"
      )
      assert.strictEqual((yield* workers.get(wedged.id)).lease_expires_at, 30_000, "the wedged one is not renewed")
      yield* TestClock.adjust("14999 millis")
      assert.strictEqual((yield* workers.get(wedged.id)).state, "running")
      yield* TestClock.adjust("1 millis")
      const lost = yield* until(
        workerWhere(wedged.id, (w) => w.state === "lost"),
        "the wedged worker's expiry"
      )
      assert.strictEqual(lost.reason, "its lease expired (not renewed for 30s)")
      const other = yield* workers.get(healthy.id)
      assert.strictEqual(other.state, "running")
      assert.isAbove(other.lease_expires_at ?? 0, 30_000)
      yield* stopAll(running)
    }).pipe(Effect.provide(layer))
  })

  it.scoped("a store that refuses the renewal is logged with its cause, and every lease runs out unrenewed", () => {
    let refused = 0
    // Taking a worker (renewLease) works; every renewal tick's transaction is refused (busy
    // would be retried first: the store's transaction retries SQLITE_BUSY for about a minute).
    const { config, layer } = makeRoot(0, {}, () => ({
      renewLeases: () =>
        Effect.suspend(() => {
          refused++
          return Effect.fail(new StoreError({ reason: "io", detail: "disk I/O error" }))
        })
    }))
    const logged: Array<string> = []
    const logger = Logger.make(({ cause, message }) => {
      logged.push(`${Array.isArray(message) ? message.join(" ") : String(message)} | ${Cause.pretty(cause)}`)
    })
    return Effect.gen(function* () {
      const workers = yield* Workers.Workers
      const spawned = [
        yield* workers.spawn({ text: "hang", kind: "hang" }),
        yield* workers.spawn({ text: "hang", kind: "hang" })
      ]
      const running = yield* startSupervisor(config)
      for (const worker of spawned)
        yield* until(
          workerWhere(worker.id, (w) => w.lease_expires_at === 30_000),
          "adoption"
        )
      yield* sleepingUntil(10_000, 3)
      yield* TestClock.adjust("10 seconds")
      const warning = yield* until(
        Effect.sync(() => logged.find((line) => line.startsWith("cannot renew the leases of 2 worker(s)"))),
        "the logged refusal"
      )
      assert.include(warning, "disk I/O error")
      assert.strictEqual(refused, 1, "one transaction for both workers")
      yield* sleepingUntil(30_000)
      yield* TestClock.adjust("19999 millis")
      for (const worker of spawned) assert.strictEqual((yield* workers.get(worker.id)).state, "running")
      yield* TestClock.adjust("1 millis")
      for (const worker of spawned) {
        const lost = yield* until(
          workerWhere(worker.id, (w) => w.state === "lost"),
          "the expiry"
        )
        assert.strictEqual(lost.reason, "its lease expired (not renewed for 30s)")
      }
      yield* stopAll(running)
    }).pipe(Effect.provide(layer), Effect.provide(Logger.replace(Logger.defaultLogger, logger)))
  })

  it.scoped(
    "100 fleet workers: one tick renews every worker's lease and its folder's in one call; the one whose program died is lost, the others keep theirs",
    () => {
      const calls: Array<ReadonlyArray<WorkerId>> = []
      const { config, layer } = makeRoot(99, { max_active: 100 }, (real) => ({
        renewLeases: (ids, owner, ttlMs) =>
          Effect.zipRight(
            Effect.sync(() => calls.push(ids)),
            real.renewLeases(ids, owner, ttlMs)
          )
      }))
      return Effect.gen(function* () {
        const workers = yield* Workers.Workers
        const scheduler = yield* Scheduler.Scheduler
        const control = yield* Processes.TestProcesses
        yield* scheduler.scan()
        const task = TaskName.make("t")
        // What a fleet slot does for each folder: claim it, spawn a worker for it (the supervisor hands the lease over).
        const spawned: Array<Worker> = []
        for (let i = 0; i < 100; i++) {
          const claim = yield* scheduler.claim({ task, agent: Supervisor.FLEET_AGENT })
          assert.strictEqual(claim._tag, "Claimed")
          if (claim._tag !== "Claimed") return
          spawned.push(yield* workers.spawn({ text: "hang", kind: "hang", task, path: claim.path }))
        }
        const running = yield* startSupervisor(config)
        yield* until(
          Effect.map(workers.live, (live) =>
            live.filter((w) => w.lease_owner === "4242@test-host").length === 100 ? true : undefined
          ),
          "the adoption of 100 workers"
        )
        // The program of one of them ends without its wrapper recording it (killed with -9).
        const dead = spawned[37]
        assert.isDefined(dead)
        if (dead === undefined || dead.pid === null) return
        yield* control.exit(dead.pid, workers.dirOf(dead.id))
        yield* sleepingUntil(10_000, 3)
        calls.length = 0
        yield* TestClock.adjust("10 seconds")
        yield* until(
          Effect.map(workers.live, (live) =>
            live.filter((w) => w.id !== dead.id).every((w) => w.lease_expires_at === 40_000) ? true : undefined
          ),
          "the tick's renewal"
        )
        assert.strictEqual(calls.length, 1, "one renewal for all of them")
        assert.strictEqual(calls[0]?.length, 99)
        assert.notInclude(calls[0] ?? [], dead.id)
        const folders = yield* scheduler.list(task, "leased")
        const renewedFolders = folders.filter((item) => item.lease_expires_at === 10_000 + config.lease.ttl_secs * 1000)
        assert.strictEqual(renewedFolders.length, 99)
        // Each held by its own worker: the 99 others, not the dead one.
        assert.deepStrictEqual(
          renewedFolders.map((item) => String(item.lease_owner)).sort(),
          spawned
            .filter((w) => w.id !== dead.id)
            .map((w) => String(w.id))
            .sort()
        )
        // Its exit file never comes: after a second it is recorded as ended without a status.
        yield* TestClock.adjust("1 second")
        const lost = yield* until(
          workerWhere(dead.id, (w) => w.state === "lost"),
          "the dead worker's end"
        )
        assert.strictEqual(lost.reason, "its program exited before calling done or fail")
        assert.strictEqual((yield* workers.live).length, 99)
        yield* stopAll(running)
      }).pipe(Effect.provide(layer))
    },
    // A hundred spawns and adoptions against a real SQLite file: seconds, more on a loaded machine.
    120_000
  )

  it.scoped("a worker handed back while the tick's liveness pass is slow keeps the handed-back lease", () => {
    let gated: WorkerId | undefined
    const entered = Effect.runSync(Deferred.make<void>())
    const gate = Effect.runSync(Deferred.make<void>())
    const { config, layer } = makeRoot(0, {}, (real) => ({
      // The tick's liveness pass waits here (a slow tmux) once the test arms it.
      present: (candidates) =>
        candidates.some((w) => w.id === gated)
          ? Effect.zipRight(
              Effect.zipRight(Deferred.succeed(entered, undefined), Deferred.await(gate)),
              real.present(candidates)
            )
          : real.present(candidates),
      // The hand-back lets the slow pass go on, then lets the tick finish (it sleeps again) before the supervisor ends.
      renewLease: (id, owner, ttlMs) =>
        owner === "" && id === gated
          ? real.renewLease(id, owner, ttlMs).pipe(
              Effect.tap(() => Deferred.succeed(gate, undefined)),
              Effect.tap(() => sleepingUntil(20_000, 3))
            )
          : real.renewLease(id, owner, ttlMs)
    }))
    return Effect.gen(function* () {
      const workers = yield* Workers.Workers
      const scheduler = yield* Scheduler.Scheduler
      // Adopted beyond the fleet (no task): handed back when the fleet stops.
      const worker = yield* workers.spawn({ text: "hang", kind: "hang" })
      yield* scheduler.scan()
      const task = TaskName.make("t")
      // The only folder is leased to another agent: the fleet's slot waits and spawns nothing.
      assert.strictEqual((yield* scheduler.claim({ task, agent: AgentId.make("other") }))._tag, "Claimed")
      const running = yield* startSupervisor(config, {
        task,
        workers: 1,
        kind: "hang",
        prompt: "p {path}",
        autoSweep: false
      })
      yield* until(
        workerWhere(worker.id, (w) => w.lease_expires_at === 30_000),
        "adoption"
      )
      gated = worker.id
      yield* sleepingUntil(10_000, 3)
      yield* TestClock.adjust("10 seconds")
      yield* until(
        Effect.map(Deferred.isDone(entered), (done) => (done ? true : undefined)),
        "the tick's liveness pass"
      )
      // The first signal: the fleet stops and the adopted worker is handed back mid-tick.
      yield* Deferred.succeed(running.stop.drain, undefined)
      yield* Fiber.join(running.fiber)
      assert.isTrue(yield* Deferred.isDone(gate), "handed back during the tick")
      const after = yield* workers.get(worker.id)
      assert.strictEqual(after.state, "running")
      assert.deepInclude(after, { lease_owner: "", lease_expires_at: 10_000 }, "the handed-back lease, not renewed")
    }).pipe(Effect.provide(layer))
  })

  it.scoped("max_duration fails the worker when it runs out, not before", () => {
    const { config, layer } = makeRoot()
    return Effect.gen(function* () {
      const workers = yield* Workers.Workers
      const worker = yield* workers.spawn({ text: "slow", kind: "slow" })
      assert.strictEqual(worker.max_duration_ms, 90_000)
      const running = yield* startSupervisor(config)
      yield* until(
        workerWhere(worker.id, (w) => w.lease_owner !== null),
        "adoption"
      )
      // Renewals every 10 s keep its lease; each is waited for, so none is late.
      for (let t = 10_000; t < 90_000; t += 10_000) {
        yield* sleepingUntil(t, 3)
        yield* TestClock.adjust("10 seconds")
        yield* until(
          workerWhere(worker.id, (w) => w.lease_expires_at === t + 30_000),
          `the renewal at ${t} ms`
        )
      }
      yield* TestClock.adjust("9999 millis")
      assert.strictEqual((yield* workers.get(worker.id)).state, "running")
      yield* TestClock.adjust("1 millis")
      const failed = yield* until(
        workerWhere(worker.id, (w) => w.state === "failed"),
        "the timeout"
      )
      assert.strictEqual(failed.reason, "exceeded its max_duration of 1m 30s")
      assert.isFalse(yield* isAlive(worker.pid), "its program is stopped")
      yield* stopAll(running)
    }).pipe(Effect.provide(layer))
  })

  it.scoped(
    "a worker started after the supervisor is adopted; its exit without done or fail is recorded with its status",
    () => {
      const { config, layer } = makeRoot()
      return Effect.gen(function* () {
        const workers = yield* Workers.Workers
        const running = yield* startSupervisor(config)
        const worker = yield* workers.spawn({ text: "hang", kind: "hang" })
        yield* poke
        yield* until(
          workerWhere(worker.id, (w) => w.lease_owner === "4242@test-host"),
          "adoption"
        )
        yield* exits(worker, 3)
        const lost = yield* until(
          workerWhere(worker.id, (w) => w.state === "lost"),
          "the death"
        )
        assert.strictEqual(lost.exit_status, 3)
        assert.strictEqual(lost.reason, "its program exited with status 3 before calling done or fail")
        const summary = yield* stopAll(running)
        assert.deepInclude(summary, { supervised: 1 })
      }).pipe(Effect.provide(layer))
    }
  )

  it.scoped("a worker that finished but keeps running is stopped after worker.exit_grace_secs", () => {
    const { config, layer } = makeRoot()
    return Effect.gen(function* () {
      const workers = yield* Workers.Workers
      const worker = yield* workers.spawn({ text: "hang", kind: "hang" })
      const running = yield* startSupervisor(config)
      yield* until(
        workerWhere(worker.id, (w) => w.lease_owner !== null),
        "adoption"
      )
      // What `trail worker done` does, from the worker's side (another process: its append wakes the watch).
      const result = new WorkerResult({ outcome: "o", summary: "s", evidence: ["e"], recommend: [], found: 1 })
      yield* workers.done(worker.id, result)
      yield* poke
      yield* sleepingUntil(1_000)
      assert.isTrue(yield* isAlive(worker.pid), "still in its grace")
      yield* TestClock.adjust("1 second")
      const stopped = yield* until(
        workerWhere(worker.id, (w) => w.exit_status !== null),
        "the stop"
      )
      assert.deepInclude(stopped, { state: "ready", exit_status: 143 })
      assert.isFalse(yield* isAlive(worker.pid))
      yield* stopAll(running)
    }).pipe(Effect.provide(layer))
  })

  it.scoped("a second supervisor is refused while the holder lives; a dead or expired holder is taken over", () => {
    const { config, layer } = makeRoot()
    /** The lock as another supervisor process takes it. */
    const takenBy = (host: Parameters<typeof Host.fixed>[0]) =>
      Effect.flatMap(Supervisor.SupervisorStore, (store) => store.acquire(30_000)).pipe(
        Effect.provide(Supervisor.SupervisorStore.Default.pipe(Layer.provide(Host.fixed(host))))
      )
    return Effect.gen(function* () {
      // A live holder on another host: refused, naming it.
      yield* takenBy({ hostname: "elsewhere", pid: 77 })
      const refused = yield* startSupervisor(config).pipe(Effect.flatMap((r) => Fiber.await(r.fiber)))
      assert.isTrue(Exit.isFailure(refused))
      const error = Exit.isFailure(refused) ? Cause.failureOption(refused.cause) : Option.none()
      assert.deepInclude(Option.getOrUndefined(error), { _tag: "SupervisorRunning", pid: 77, host: "elsewhere" })
      // Its lease runs out unrenewed: taken over.
      yield* TestClock.adjust("30 seconds")
      yield* stopAll(yield* startSupervisor(config))
      // A holder on this host whose process is gone (kill -9): taken over at once.
      yield* takenBy({ hostname: "test-host", pid: 999 })
      const summary = yield* stopAll(yield* startSupervisor(config))
      assert.strictEqual(summary.owner, "4242@test-host")
    }).pipe(Effect.provide(layer))
  })

  it.scoped(
    "a fleet completes a folder, releases a failed one, skips it after worker.max_attempts, then ends complete",
    () => {
      // Two folders: the root and pkg0.
      const { config, layer } = makeRoot(1, { max_attempts: 2 })
      return Effect.gen(function* () {
        const workers = yield* Workers.Workers
        const { scheduler, task, running } = yield* startFleet(config)
        /** The slot's next worker, once it is supervised (its lease held by this supervisor). */
        const nextWorker = (after: number) =>
          until(
            Effect.map(workers.live, (live) =>
              live.find((w) => Number(w.id.slice(1)) > after && w.lease_owner === "4242@test-host")
            ),
            `a worker after w${after}`
          )
        const result = new WorkerResult({ outcome: "o", summary: "s", evidence: ["e"], recommend: [], found: 2 })
        const first = yield* nextWorker(0)
        yield* workers.done(first.id, result)
        yield* poke
        yield* exits(first, 0)
        // The other folder fails twice (its program dies after it started work): released, then skipped.
        const second = yield* nextWorker(1)
        assert.notStrictEqual(second.path, first.path)
        yield* workers.todos(second.id, ["started"])
        yield* exits(second, 1)
        const third = yield* nextWorker(2)
        assert.strictEqual(third.path, second.path)
        yield* workers.todos(third.id, ["started"])
        yield* exits(third, 1)
        const exit = yield* ended(running.fiber)
        assert.isTrue(Option.isSome(exit), "the fleet ended by itself")
        const summary = Option.isSome(exit) && Exit.isSuccess(exit.value) ? exit.value.value : undefined
        assert.deepInclude(summary, {
          sweep_complete: true,
          spawned: 3,
          ready: 1,
          failed: 2,
          folders_done: 1,
          folders_released: 1,
          folders_skipped: 1,
          start_failures: 0,
          halted: null
        })
        assert.deepInclude(yield* scheduler.status(task), { leased: 0, done: 1, skipped: 1 })
      }).pipe(Effect.provide(layer))
    }
  )

  it.scoped(
    "a fleet whose spawns keep failing (not the cap) halts after worker.max_start_failures, releasing each folder",
    () => {
      let spawns = 0
      // The store refuses every new worker (a full disk, a locked file…).
      const { config, layer } = makeRoot(2, { max_start_failures: 3 }, () => ({
        spawn: () =>
          Effect.suspend(() => {
            spawns++
            return Effect.fail(new StoreError({ reason: "io", detail: "disk I/O error" }))
          })
      }))
      return Effect.gen(function* () {
        const { scheduler, task, running } = yield* startFleet(config)
        // No time passes: were failed spawns retried as if the cap were reached, the run would wait.
        const exit = yield* ended(running.fiber)
        if (Option.isNone(exit)) yield* stopAll(running)
        assert.isTrue(Option.isSome(exit), `the fleet halted (${spawns} spawn attempts)`)
        const summary = Option.isSome(exit) && Exit.isSuccess(exit.value) ? exit.value.value : undefined
        assert.deepInclude(summary, { start_failures: 3, spawned: 0, folders_skipped: 0 })
        assert.include(summary?.halted ?? "", "disk I/O error")
        assert.strictEqual(spawns, 3)
        assert.deepInclude(yield* scheduler.status(task), { leased: 0, done: 0, skipped: 0 })
      }).pipe(Effect.provide(layer))
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
      yield* stopAll(yield* startSupervisor(config))
      for (const task of ["a", "b"].map((t) => TaskName.make(t)))
        assert.deepInclude(yield* scheduler.status(task), { leased: 0 })
    }).pipe(Effect.provide(layer))
  })

  it.scoped("a store deleted while the watch looks at it ends the run as deleted (store-replaced)", () => {
    let armed = false
    // The file goes right after the watch's stat of it has returned: a second look would miss it.
    const { root, config, layer } = makeRoot(0, {}, undefined, (real) => ({
      stat: (file) =>
        Effect.tap(real.stat(file), () =>
          Effect.sync(() => {
            if (armed && file.endsWith("state.db")) {
              armed = false
              fs.rmSync(file)
            }
          })
        )
    }))
    return Effect.gen(function* () {
      const running = yield* startSupervisor(config)
      yield* sleepingUntil(5_000, 2)
      armed = true
      yield* TestClock.adjust("5 seconds")
      assert.isFalse(fs.existsSync(path.join(root, ".trail", "state.db")), "the stat deleted the store")
      yield* TestClock.adjust("5 seconds")
      const exit = yield* ended(running.fiber)
      assert.isTrue(Option.isSome(exit), "the supervisor noticed the deleted store")
      const error =
        Option.isSome(exit) && Exit.isFailure(exit.value) ? Cause.failureOption(exit.value.cause) : Option.none()
      const failure = Option.getOrUndefined(error)
      assert.deepInclude(failure, { _tag: "StoreError", reason: "replaced" })
      assert.include(failure instanceof StoreError ? failure.message : "", "was deleted")
    }).pipe(Effect.provide(layer))
  })

  it.scoped("a store emptied in place (same inode, 0 bytes) ends the run with store-corrupt", () => {
    const { root, config, layer } = makeRoot()
    return Effect.gen(function* () {
      const running = yield* startSupervisor(config)
      // The supervisor is up once it checks the store every 5 s (and its event log reads as often).
      yield* sleepingUntil(5_000, 2)
      fs.truncateSync(path.join(root, ".trail", "state.db"), 0)
      // The periodic check (the test's watch of the folder never fires).
      yield* TestClock.adjust("5 seconds")
      const exit = yield* ended(running.fiber)
      assert.isTrue(Option.isSome(exit), "the supervisor noticed the emptied store")
      const error =
        Option.isSome(exit) && Exit.isFailure(exit.value) ? Cause.failureOption(exit.value.cause) : Option.none()
      assert.deepInclude(Option.getOrUndefined(error), { _tag: "StoreError", reason: "corrupt" })
    }).pipe(Effect.provide(layer))
  })
})
