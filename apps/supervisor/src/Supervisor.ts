/**
 * `trail supervise` (SPEC §2): the long-running fleet process of one root.
 *
 * - It holds the root's supervisor lease (table `supervisor`); a second supervisor on the same
 *   root is refused with {@link SupervisorRunning}, unless the holder's process is gone.
 * - Each live worker is supervised by one fiber of a `FiberMap` keyed by worker id, as a scoped
 *   resource: acquiring it takes the worker's lease; releasing it early (a second SIGINT) cancels
 *   the worker and closes its window, otherwise it just hands the worker back unsupervised.
 * - While the worker's program is alive its lease (`worker.lease_secs`) is renewed on a
 *   `Schedule` every third of the lease; a dead program is recorded from its exit file, an expired
 *   lease makes the worker `lost`, `max_duration` fails it. All waits use Effect's `Clock`.
 * - Workers started elsewhere (`trail spawn`) are adopted when their `worker.running` event
 *   arrives on the {@link EventLog}; at start every live worker in the store is re-adopted, so a
 *   supervisor killed with -9 and restarted never starts a second worker for a folder.
 * - Fleet mode: `workers` slots each claim a folder of `task`, spawn a worker for it (the
 *   folder's lease moves to the worker and is renewed with the worker's), wait for it to end,
 *   then complete the folder (`done` with the worker's `found`) or release it. A folder whose
 *   workers failed `worker.max_attempts` times in this run is skipped with the last reason.
 * - Before anything is claimed the fleet's kind is checked (`Workers.preflight`: the kind exists,
 *   its program is on the workers' PATH, the substrate can start). A worker that cannot start
 *   (no window, exit 126/127 before any protocol call) is not the folder's fault: the folder is
 *   released, not skipped; after `worker.max_start_failures` such workers in a row the fleet
 *   stops claiming and the run ends with `halted` naming the cause.
 * - At start and on every exit, folder leases it holds without a running worker are settled:
 *   its own claims not yet handed to a worker are released, and folders of workers that finished
 *   while nobody supervised them are completed with their findings (or released).
 * - A worker whose tmux window is gone or is no longer its own (the server restarted) is `lost`,
 *   and its program's process group is stopped. Finished workers' windows are closed after
 *   `worker.keep_finished_secs`.
 * - The database file's identity (device and inode) and size are checked when the state folder
 *   changes and every 5 s: a replaced or deleted store ends the run with a `replaced` StoreError,
 *   one emptied in place (`: > state.db` keeps the inode) with a `corrupt` one.
 * - In fleet mode a spawn that fails before any worker exists (the store refused it, …) is a start
 *   failure like a worker that could not start; only `worker.max_active` being reached is waited out.
 */
import { statSync, watch } from "node:fs"
import { hostname } from "node:os"
import { dirname } from "node:path"
import {
  type AgentId,
  EventLog,
  type FolderPath,
  isLiveWorkerState,
  StoreError,
  SupervisorRunning,
  type TaskName,
  type TrailConfig,
  type Worker,
  type WorkerId,
  type WorkerNotFound
} from "@trail/domain"
import { Scheduler } from "@trail/scheduler"
import { Database, Rows } from "@trail/store"
import { Inbox, Substrate, Workers } from "@trail/workers"
import {
  Clock,
  Deferred,
  Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  FiberMap,
  FiberSet,
  Option,
  Queue,
  Ref,
  Schedule,
  Stream,
  SubscriptionRef
} from "effect"

export interface FleetOptions {
  readonly task: TaskName
  readonly workers: number
  readonly kind?: string | undefined
  /** The task text of each worker; `{path}` becomes the folder it was handed. */
  readonly prompt: string
  readonly autoSweep: boolean
}

/** How the supervisor is told to stop: `drain` (first signal) and `cancel` (second signal). */
export interface StopSignals {
  readonly drain: Deferred.Deferred<void>
  readonly cancel: Deferred.Deferred<void>
}

export interface SupervisorOptions {
  readonly fleet?: FleetOptions | undefined
  readonly config: TrailConfig
  readonly stop: StopSignals
  /** Progress lines for a person (stderr in the CLI). */
  readonly report?: (line: string) => void
  /** Fleet mode: what slot `index` (0-based) is doing now, for a live line per slot on a terminal. */
  readonly onSlot?: (index: number, status: string) => void
  /** Is the worker's program alive? Default: its pid exists. Tests replace it to stall renewals. */
  readonly probe?: (worker: Worker) => Effect.Effect<boolean>
}

/** What a run did; printed as the command's JSON result. */
export interface SupervisorSummary {
  readonly owner: string
  /** Fleet mode: whether the task's sweep is complete (false when stopped by a signal). */
  readonly sweep_complete: boolean | null
  readonly supervised: number
  readonly spawned: number
  readonly ready: number
  readonly failed: number
  readonly folders_done: number
  readonly folders_skipped: number
  readonly folders_released: number
  /** Fleet mode: workers that could not start (their folders were released, not skipped). */
  readonly start_failures: number
  readonly stopped_by_signal: boolean
  /** Why the fleet stopped claiming early (e.g. `worker.max_start_failures` workers in a row could not start), else null. */
  readonly halted: string | null
}

/** The agent id under which fleet slots claim folders before handing them to a worker. */
export const FLEET_AGENT = "trail-supervise" as AgentId

type Ending =
  | { readonly _tag: "exited"; readonly status: number | null }
  | { readonly _tag: "finished" }
  | { readonly _tag: "lost"; readonly reason: string }
  | { readonly _tag: "timeout"; readonly limitMs: number }

const terminalEvents = new Set(["worker.ready", "worker.failed", "worker.lost", "worker.cancelled"])

/** Takes the root's supervisor lease, or fails naming the live holder. */
const acquireLock = (owner: string, ttlMs: number) =>
  Effect.gen(function* () {
    const database = yield* Database.Database
    const now = yield* Clock.currentTimeMillis
    const host = hostname()
    return yield* database.immediateEither<void, SupervisorRunning>((db) => {
      const row = db.get(`SELECT owner, pid, host, started_at, lease_expires_at FROM supervisor WHERE id = 1`)
      if (row !== undefined) {
        const r = Rows.row(row, "supervisor")
        const pid = Rows.int(r, "pid")
        const holderHost = Rows.text(r, "host")
        const gone = holderHost === host && !Substrate.isAlive(pid)
        if (Rows.text(r, "owner") !== owner && !gone && Rows.num(r, "lease_expires_at") > now)
          return Either.left(new SupervisorRunning({ pid, host: holderHost, since: Rows.num(r, "started_at") }))
      }
      db.run(
        `INSERT OR REPLACE INTO supervisor (id, owner, pid, host, started_at, lease_expires_at)
         VALUES (1, @owner, @pid, @host, @now, @expires)`,
        { owner, pid: process.pid, host, now, expires: now + ttlMs }
      )
      return Either.right(undefined)
    })
  })

const renewLock = (owner: string, ttlMs: number) =>
  Effect.flatMap(Database.Database, (database) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) =>
      database.immediate((db) =>
        db.run(`UPDATE supervisor SET lease_expires_at = ? WHERE id = 1 AND owner = ?`, now + ttlMs, owner)
      )
    )
  )

const releaseLock = (owner: string) =>
  Effect.flatMap(Database.Database, (database) =>
    database.immediate((db) => db.run(`DELETE FROM supervisor WHERE id = 1 AND owner = ?`, owner))
  ).pipe(Effect.ignore)

const describeEnd = (worker: Worker): string => {
  switch (worker.state) {
    case "ready":
      return `ready${worker.result?.found === null || worker.result === null ? "" : ` (found ${worker.result.found})`}`
    default:
      return `${worker.state}${worker.reason === null ? "" : `: ${worker.reason}`}`
  }
}

/**
 * Runs the supervisor until the fleet's sweep is complete (fleet mode) or a stop signal.
 * Needs Workers, Scheduler, EventLog and the Database of one root.
 */
export const run = (options: SupervisorOptions) =>
  Effect.gen(function* () {
    const workers = yield* Workers.Workers
    const scheduler = yield* Scheduler.Scheduler
    const eventLog = yield* EventLog
    const inbox = yield* Inbox.Inbox
    const { config, stop } = options
    const report = options.report ?? (() => undefined)
    const onSlot = options.onSlot ?? (() => undefined)
    const owner = `${process.pid}@${hostname()}`
    const leaseMs = config.worker.lease_secs * 1000
    const renewEvery = Duration.millis(Math.max(1, Math.floor(leaseMs / 3)))
    const graceMs = config.worker.exit_grace_secs * 1000
    const probe =
      options.probe ?? ((worker: Worker) => Effect.sync(() => worker.pid !== null && Substrate.isAlive(worker.pid)))

    // Nothing is claimed or spawned for a kind that cannot start.
    if (options.fleet !== undefined) yield* workers.preflight(options.fleet.kind)

    const database = yield* Database.Database
    /** Set once the database file was replaced: nothing more is written to the old one. */
    const storeGone = yield* Ref.make(false)
    // The file this run works on, taken before anything is reported or written.
    const storeIdentity = identity(database.filename)
    yield* Effect.acquireRelease(acquireLock(owner, leaseMs), () =>
      Effect.flatMap(Ref.get(storeGone), (gone) => (gone ? Effect.void : releaseLock(owner)))
    )
    yield* renewLock(owner, leaseMs).pipe(Effect.ignore, Effect.repeat(Schedule.spaced(renewEvery)), Effect.forkScoped)

    report(
      options.fleet === undefined
        ? "supervising the workers of this root (Ctrl-C to stop)"
        : `fleet: ${options.fleet.workers} worker(s) on task ${options.fleet.task} (Ctrl-C: stop claiming; twice: cancel)`
    )
    const cancelling = yield* Ref.make(false)
    // Finished workers' programs in their exit grace; a run that ends normally waits for them.
    const graces = yield* FiberSet.make<void>()
    const counts = {
      supervised: 0,
      spawned: 0,
      ready: 0,
      failed: 0,
      folders_done: 0,
      folders_skipped: 0,
      folders_released: 0,
      start_failures: 0
    }

    /** Waits for the worker's terminal event (subscribed before its state is read, so none is missed). */
    const terminal = (id: WorkerId) =>
      Effect.scoped(
        Effect.gen(function* () {
          const subscription = yield* eventLog.subscribe
          const current = yield* workers.get(id)
          if (!isLiveWorkerState(current.state)) return
          for (;;) {
            const event = yield* Queue.take(subscription)
            if (event.subject.id === id && terminalEvents.has(event.type)) return
          }
        })
      )

    /** Renews the worker's lease (and its folder's) while its program lives; ends when it dies or the lease expires. */
    const keepLease = (worker: Worker) =>
      Effect.gen(function* () {
        const expiresAt = yield* Ref.make((yield* Clock.currentTimeMillis) + leaseMs)
        /** "alive", "dead" (its program ended) or "gone" (its window is gone or another's: tmux restarted). */
        const renewOnce = Effect.gen(function* () {
          if (!(yield* probe(worker))) return "dead" as const
          // Asked twice, a moment apart, so that one failed tmux call does not lose a healthy worker.
          if (
            !(yield* workers.present(worker)) &&
            !(yield* Effect.zipRight(Substrate.wallClockSleep(250), workers.present(worker)))
          )
            return "gone" as const
          const renewed = yield* workers.renewLease(worker.id, owner, leaseMs).pipe(Effect.orElseSucceed(() => false))
          if (renewed) {
            yield* Ref.set(expiresAt, (yield* Clock.currentTimeMillis) + leaseMs)
            if (worker.task !== null && worker.path !== null)
              yield* scheduler
                .renew({
                  task: worker.task as TaskName,
                  path: worker.path as FolderPath,
                  agent: worker.id as unknown as AgentId,
                  previous: FLEET_AGENT
                })
                .pipe(Effect.ignore)
          }
          return "alive" as const
        })
        const renewer = Effect.gen(function* () {
          for (;;) {
            const state = yield* renewOnce
            if (state !== "alive") return state
            yield* Effect.sleep(renewEvery)
          }
        }).pipe(
          Effect.flatMap((state) =>
            state === "gone"
              ? Effect.succeed<Ending>({
                  _tag: "lost",
                  reason: "its tmux window is gone or belongs to another program (the tmux server stopped or restarted)"
                })
              : // The program is gone: its wrapper writes the exit file at once (or never, if it was killed).
                Effect.race(
                  Substrate.waitForExit(workers.dirOf(worker.id)),
                  Effect.as(Effect.sleep("1 second"), null)
                ).pipe(Effect.map((status): Ending => ({ _tag: "exited", status })))
          )
        )
        const watchdog = Effect.gen(function* () {
          for (;;) {
            const now = yield* Clock.currentTimeMillis
            const deadline = yield* Ref.get(expiresAt)
            if (now >= deadline)
              return {
                _tag: "lost",
                reason: `its lease expired (not renewed for ${config.worker.lease_secs}s)`
              } satisfies Ending as Ending
            yield* Effect.sleep(Duration.millis(deadline - now))
          }
        })
        return yield* Effect.race(renewer, watchdog)
      })

    /**
     * A finished worker's program gets `worker.exit_grace_secs` to end by itself, then is stopped
     * (its window stays, dead); its exit status is recorded. A run that ends normally waits for
     * these graces; a second signal or a failing run stops the programs at once, so that no
     * finished agent is left running unsupervised.
     */
    const afterFinish = (finished: Worker) =>
      Effect.gen(function* () {
        const dir = workers.dirOf(finished.id)
        const status = yield* Effect.race(
          Substrate.waitForExit(dir).pipe(Effect.map(Option.some)),
          Effect.as(Effect.sleep(Duration.millis(graceMs)), Option.none<number | null>())
        )
        if (Option.isNone(status)) yield* workers.stopProgram(finished, 2_000)
        const exit = Option.isSome(status)
          ? status.value
          : yield* Effect.race(Substrate.waitForExit(dir), Effect.as(Effect.sleep("3 seconds"), null))
        yield* workers.recordExit(finished.id, exit)
      }).pipe(
        Effect.onInterrupt(() => workers.stopProgram(finished, 500)),
        Effect.ignore
      )

    /** Supervises one live worker until it ends; returns it in its final state. */
    const supervise = (initial: Worker): Effect.Effect<Worker, never> =>
      Effect.scoped(
        Effect.gen(function* () {
          const worker = yield* Effect.acquireRelease(
            Effect.zipRight(workers.renewLease(initial.id, owner, leaseMs), workers.get(initial.id)),
            (held, exit) =>
              Exit.isInterrupted(exit)
                ? Effect.gen(function* () {
                    const current = yield* workers.get(held.id)
                    if (!isLiveWorkerState(current.state)) return
                    if (yield* Ref.get(cancelling)) {
                      yield* workers.end(held.id, "cancelled", "the supervisor was stopped")
                      yield* workers.close(current)
                    } else {
                      yield* workers.renewLease(held.id, "", 0)
                    }
                  }).pipe(Effect.ignore)
                : Effect.void
          )
          counts.supervised++
          if (worker.pid === null) {
            // It never started (its spawner died half-way): nothing to supervise.
            const ended = yield* workers.end(worker.id, "lost", "its spawn was interrupted before the program started")
            yield* workers.close(ended)
            return ended
          }
          const racers: Array<Effect.Effect<Ending, StoreError | Workers.WorkersError | WorkerNotFound>> = [
            Effect.map(Substrate.waitForExit(workers.dirOf(worker.id)), (status): Ending => ({
              _tag: "exited",
              status
            })),
            Effect.as(terminal(worker.id), { _tag: "finished" } as Ending),
            keepLease(worker)
          ]
          if (worker.max_duration_ms !== null) {
            const limitMs = worker.max_duration_ms
            const now = yield* Clock.currentTimeMillis
            racers.push(
              Effect.as(Effect.sleep(Duration.millis(Math.max(0, worker.created_at + limitMs - now))), {
                _tag: "timeout",
                limitMs
              } as Ending)
            )
          }
          const ending = yield* Effect.raceAll(racers)
          switch (ending._tag) {
            case "exited":
              return yield* workers.recordExit(worker.id, ending.status)
            case "finished": {
              // Its result counts now; its program gets the exit grace in the background.
              const finished = yield* workers.get(worker.id)
              yield* afterFinish(finished).pipe(FiberSet.run(graces))
              return finished
            }
            case "lost": {
              const lost = yield* workers.end(worker.id, "lost", ending.reason)
              yield* workers.close(lost)
              return lost
            }
            case "timeout": {
              const failed = yield* workers.end(
                worker.id,
                "failed",
                `exceeded its max_duration of ${Duration.format(Duration.millis(ending.limitMs))}`
              )
              yield* workers.stopProgram(failed, 2_000)
              return failed
            }
          }
        })
      ).pipe(
        // A verdict that lost a race with the worker's own done/fail: report the state it reached.
        Effect.catchAll(() => workers.get(initial.id)),
        Effect.catchAll(() => Effect.succeed(initial)),
        Effect.tap((final) => Effect.sync(() => report(`${final.id} ${describeEnd(final)}`)))
      )

    const fibers = yield* FiberMap.make<WorkerId, Worker>()
    const superviseInMap = (worker: Worker) =>
      FiberMap.run(fibers, worker.id, supervise(worker), { onlyIfMissing: true })

    // Workers started by others (`trail spawn`) are adopted when they start running.
    const subscription = yield* eventLog.subscribe
    yield* Effect.gen(function* () {
      for (;;) {
        const event = yield* Queue.take(subscription)
        if (event.type !== "worker.running" || event.subject.type !== "worker") continue
        if (yield* FiberMap.has(fibers, event.subject.id as WorkerId)) continue
        const worker = yield* workers.get(event.subject.id as WorkerId).pipe(Effect.option)
        if (Option.isSome(worker) && isLiveWorkerState(worker.value.state)) {
          // Fleet slots run their own workers; give them the first chance to register it.
          if (worker.value.task === options.fleet?.task) yield* Effect.sleep("200 millis")
          yield* superviseInMap(worker.value)
        }
      }
    }).pipe(Effect.forkScoped)

    // The inbox follows the log live: each burst of events is folded once.
    const inboxFeed = yield* eventLog.subscribe
    yield* Queue.take(inboxFeed).pipe(
      Effect.zipRight(Queue.takeAll(inboxFeed)),
      Effect.zipRight(Effect.ignore(inbox.current)),
      Effect.forever,
      Effect.forkScoped
    )

    // Re-adopt every live worker of the store (a restart after kill -9 lands here).
    const live = yield* workers.live
    const fleetTask = options.fleet?.task
    const adoptedForFleet = live.filter((w) => fleetTask !== undefined && w.task === fleetTask)
    for (const worker of live) if (!adoptedForFleet.includes(worker)) yield* superviseInMap(worker)
    if (live.length > 0) report(`re-adopted ${live.length} live worker(s): ${live.map((w) => w.id).join(", ")}`)

    const attempts = new Map<string, number>()
    const draining = Deferred.isDone(stop.drain)
    /** How many folders the slots have settled; a slot with nothing to claim waits for it to move. */
    const settledCount = yield* SubscriptionRef.make(0)
    /**
     * Waits until another slot settles a folder (it may have been released), a drain, or
     * `fallback` (folders leased by agents outside this fleet come back without telling us).
     */
    const untilSettled = (seen: number, fallback: Duration.DurationInput) =>
      Effect.raceAll([
        Deferred.await(stop.drain),
        settledCount.changes.pipe(
          Stream.filter((n) => n > seen),
          Stream.runHead,
          Effect.asVoid
        ),
        Deferred.await(halt),
        Effect.sleep(fallback)
      ])

    /** A worker that never got going: no window, or its program was not found / not executable (126, 127). */
    const startFailed = (worker: Worker) =>
      worker.state !== "ready" &&
      (worker.pid === null || worker.exit_status === 126 || worker.exit_status === 127) &&
      worker.todos.length === 0

    /** Start failures in a row; the fleet halts at `worker.max_start_failures`. */
    const startFailuresInRow = yield* Ref.make(0)
    const halt = yield* Deferred.make<string>()

    /** Counts one start failure (`last` says what failed); the fleet halts at `worker.max_start_failures` in a row. */
    const startFailure = (last: string) =>
      Effect.gen(function* () {
        counts.start_failures++
        const inRow = yield* Ref.updateAndGet(startFailuresInRow, (n) => n + 1)
        if (inRow >= config.worker.max_start_failures)
          yield* Deferred.succeed(
            halt,
            `${inRow} worker(s) in a row could not start (worker.max_start_failures = ${config.worker.max_start_failures}); last: ${last}`
          )
      })

    /** Completes or releases the worker's folder (of its own task) according to how the worker ended. */
    const settle = (worker: Worker) =>
      Effect.gen(function* () {
        if (worker.task === null || worker.path === null) return
        const task = worker.task as TaskName
        const path = worker.path as FolderPath
        const agent = worker.id as unknown as AgentId
        if (worker.state === "ready") {
          yield* Ref.set(startFailuresInRow, 0)
          counts.ready++
          const found = worker.result?.found ?? null
          yield* scheduler.complete({
            task,
            path,
            agent,
            status: "done",
            outcome: found === null ? { _tag: "unreported" } : { _tag: "found", count: found }
          })
          counts.folders_done++
          return
        }
        if (worker.state === "cancelled") {
          yield* scheduler.release({ task, path, agent })
          counts.folders_released++
          return
        }
        counts.failed++
        if (startFailed(worker)) {
          // Not the folder's fault: it goes back to the pool, and the fleet counts the failure.
          yield* scheduler.release({ task, path, agent })
          counts.folders_released++
          yield* startFailure(`${worker.id} ${worker.state}${worker.reason === null ? "" : `: ${worker.reason}`}`)
          return
        }
        yield* Ref.set(startFailuresInRow, 0)
        const failures = (attempts.get(path) ?? 0) + 1
        attempts.set(path, failures)
        if (failures >= config.worker.max_attempts) {
          yield* scheduler.complete({
            task,
            path,
            agent,
            status: "skipped",
            reason:
              `${failures} worker(s) failed; last: ${worker.state}${worker.reason === null ? "" : ` (${worker.reason})`}`.slice(
                0,
                500
              )
          })
          counts.folders_skipped++
          report(`${path} skipped after ${failures} failed worker(s)`)
        } else {
          yield* scheduler.release({ task, path, agent })
          counts.folders_released++
        }
      }).pipe(
        Effect.catchAll((error) =>
          Effect.sync(() => report(`${worker.path}: cannot settle the folder: ${error.message}`))
        ),
        Effect.zipRight(SubscriptionRef.update(settledCount, (n) => n + 1))
      )

    /**
     * Settles the folder leases this root's fleet holds without a running worker: claims of the
     * fleet's slots not handed to a worker (left by a crash or an interrupted slot) are released,
     * whatever their task (only this root's supervisor claims as {@link FLEET_AGENT}, and it is
     * this one), and folders of workers that finished unsupervised are completed or released by
     * {@link settle}.
     */
    const recover = Effect.gen(function* () {
      if (yield* Ref.get(storeGone)) return
      const finished = (yield* workers.list).filter((w) => !isLiveWorkerState(w.state) && w.task !== null)
      const tasks = new Set(finished.map((w) => w.task as string))
      for (const task of yield* fleetClaimTasks(database)) tasks.add(task)
      for (const task of tasks) {
        const leased = yield* scheduler.list(task as TaskName, "leased").pipe(Effect.orElseSucceed(() => []))
        for (const item of leased) {
          if (item.lease_owner === FLEET_AGENT) {
            yield* scheduler
              .release({ task: task as TaskName, path: item.path, agent: FLEET_AGENT })
              .pipe(Effect.ignore)
            report(`${item.path}: released (claimed by a fleet slot that had no worker for it)`)
            continue
          }
          const worker = finished.find(
            (w) => w.id === (item.lease_owner as string | null) && w.task === task && w.path === item.path
          )
          // A worker adopted by a slot (or supervised now) is settled by it, not here.
          if (worker === undefined || (yield* FiberMap.has(fibers, worker.id))) continue
          report(`${worker.id} finished while unsupervised: ${describeEnd(worker)}`)
          yield* settle(worker)
        }
      }
    }).pipe(Effect.catchAll((error) => Effect.sync(() => report(`cannot settle leftover leases: ${error.message}`))))
    yield* Effect.addFinalizer(() => recover)

    // Folders of workers that finished while nobody supervised them are settled at once.
    yield* recover

    // Finished workers' windows are closed once they have been kept for a look.
    const keepMs = config.worker.keep_finished_secs * 1000
    if (keepMs > 0)
      yield* Effect.gen(function* () {
        const cutoff = (yield* Clock.currentTimeMillis) - keepMs
        for (const worker of yield* workers.openWindows(cutoff)) yield* Effect.ignore(workers.closeWindow(worker))
      }).pipe(
        Effect.ignore,
        Effect.repeat(Schedule.spaced(Duration.millis(Math.min(keepMs, 10_000)))),
        Effect.forkScoped
      )

    /** What a slot with nothing to claim waits for: the folder whose lease ends first, its holder and when. */
    const waitingFor = (fleet: FleetOptions, outstanding: number) => {
      const vague = { text: `waiting: the ${outstanding} folder(s) left are leased`, key: "" }
      return scheduler.list(fleet.task, "leased").pipe(
        Effect.map((items) => {
          const next = [...items]
            .filter((i) => i.lease_expires_at !== null)
            .sort((a, b) => (a.lease_expires_at ?? 0) - (b.lease_expires_at ?? 0))[0]
          return next === undefined
            ? vague
            : {
                text: `waiting for ${next.path} (held by ${next.lease_owner ?? "?"} until ${new Date(next.lease_expires_at ?? 0).toISOString().slice(11, 19)}Z; ${outstanding} folder(s) leased)`,
                // A renewal moves "until": that alone is not news for the progress log.
                key: `${next.path} ${next.lease_owner}`
              }
        }),
        Effect.orElseSucceed(() => vague)
      )
    }

    /** One fleet slot: claim, spawn, wait, settle, until the sweep is complete or a drain. Returns "complete" or "stopped". */
    const slot = (fleet: FleetOptions, index: number, adopted: Worker | undefined) =>
      Effect.gen(function* () {
        let next = adopted
        let lastWait = ""
        for (;;) {
          if (next === undefined) {
            if (yield* draining) {
              onSlot(index, "stopped")
              return "stopped" as const
            }
            if (yield* Deferred.isDone(halt)) {
              onSlot(index, "halted")
              return "halted" as const
            }
            const seen = yield* SubscriptionRef.get(settledCount)
            const claim = yield* scheduler.claim({ task: fleet.task, agent: FLEET_AGENT, autoSweep: fleet.autoSweep })
            if (claim._tag === "SweepCompleted") {
              onSlot(index, `sweep ${claim.sweep} complete`)
              return "complete" as const
            }
            if (claim._tag === "NoneAvailable") {
              const waiting = yield* waitingFor(fleet, claim.leased_outstanding)
              onSlot(index, waiting.text)
              if (waiting.key !== lastWait || waiting.key === "") report(`slot ${index + 1} ${waiting.text}`)
              lastWait = waiting.key
              // Every remaining folder is leased (to other slots or agents): wait for something to end.
              yield* untilSettled(seen, "5 seconds")
              continue
            }
            lastWait = ""
            const text = fleet.prompt.replaceAll("{path}", claim.path)
            const spawned = yield* workers
              .spawn({ text, kind: fleet.kind, task: fleet.task, path: claim.path })
              .pipe(Effect.either)
            if (Either.isLeft(spawned)) {
              const error = spawned.left
              report(`slot ${index + 1}: cannot spawn for ${claim.path}: ${error.message}`)
              const released = yield* scheduler
                .release({ task: fleet.task, path: claim.path, agent: FLEET_AGENT })
                .pipe(Effect.isSuccess)
              if (error._tag === "UnknownKind" || error._tag === "KindUntrusted") return yield* Effect.fail(error)
              if (error._tag === "SpawnRefused") {
                // A fleet's spawn has no parent, so only worker.max_active refuses it (workers started
                // by hand fill the cap): wait for a worker to end, then try again.
                yield* untilSettled(seen, "2 seconds")
                continue
              }
              // Anything else (the store refused the worker, …) would fail again at once: it counts
              // towards worker.max_start_failures like a worker that could not start.
              if (released) counts.folders_released++
              yield* startFailure(`cannot spawn for ${claim.path}: ${error.message}`)
              yield* SubscriptionRef.update(settledCount, (n) => n + 1)
              continue
            }
            counts.spawned++
            const worker = spawned.right
            report(`${worker.id} ${claim.path} (sweep ${claim.sweep}, ${claim.remaining} left)`)
            onSlot(index, `${worker.id} ${worker.state} · ${claim.path}`)
            yield* scheduler
              .renew({
                task: fleet.task,
                path: claim.path,
                agent: worker.id as unknown as AgentId,
                previous: FLEET_AGENT
              })
              .pipe(Effect.ignore)
            if (!isLiveWorkerState(worker.state)) {
              report(`${worker.id} ${describeEnd(worker)}`)
              yield* settle(worker)
              continue
            }
            next = worker
          }
          const fiber = yield* superviseInMap(next)
          // A cancelled supervision (second signal) still settles: the worker is cancelled by then.
          const exit = yield* Fiber.await(fiber)
          const final = Exit.isSuccess(exit)
            ? exit.value
            : yield* workers.get(next.id).pipe(Effect.orElseSucceed(() => next!))
          yield* settle(final)
          onSlot(index, `${final.id} ${describeEnd(final)} · ${final.path}`)
          next = undefined
        }
      })

    const supervised = Effect.gen(function* () {
      if (options.fleet === undefined) {
        yield* Deferred.await(stop.drain)
        report("stopping: waiting for the supervised workers to finish (signal again to cancel them)")
        yield* FiberMap.awaitEmpty(fibers)
        return null
      }
      const fleet = options.fleet
      const outcomes = yield* Effect.all(
        Array.from({ length: fleet.workers }, (_, i) => slot(fleet, i, adoptedForFleet[i])),
        { concurrency: "unbounded" }
      )
      // Fleet workers beyond the slots (a restart with fewer --workers) are still supervised.
      for (const worker of adoptedForFleet.slice(fleet.workers)) yield* superviseInMap(worker)
      return outcomes.every((o) => o === "complete")
    })

    // The second signal cancels every supervised worker; the slots then settle and stop.
    yield* Deferred.await(stop.cancel).pipe(
      Effect.zipRight(Ref.set(cancelling, true)),
      Effect.zipRight(Effect.sync(() => report("cancelling the workers"))),
      Effect.zipRight(FiberMap.clear(fibers)),
      Effect.forkScoped
    )
    const result = yield* Effect.raceFirst(supervised, storeWatch(database.filename, storeIdentity, storeGone))
    // The last finished agents may still be writing their output: give them their exit grace.
    yield* Effect.raceFirst(FiberSet.awaitEmpty(graces), Deferred.await(stop.cancel))
    // Whatever is still supervised (workers adopted beyond the fleet) is handed back unsupervised.
    yield* FiberMap.clear(fibers)
    const halted = yield* Deferred.poll(halt)
    return {
      owner,
      sweep_complete: result,
      ...counts,
      stopped_by_signal: yield* Deferred.isDone(stop.drain),
      halted: halted._tag === "Some" ? yield* halted.value : null
    } satisfies SupervisorSummary
  })

/** The tasks whose current sweep has a folder leased to {@link FLEET_AGENT}. */
const fleetClaimTasks = (database: Database.DatabaseShape) =>
  database.read((db) =>
    db
      .all(
        `SELECT DISTINCT t.name FROM tasks t JOIN work_items w ON w.sweep_id = t.current_sweep_id
         WHERE w.status = 'leased' AND w.lease_owner = ? ORDER BY t.name`,
        FLEET_AGENT
      )
      .map((row) => Rows.text(Rows.row(row, "tasks"), "name"))
  )

/** The file's device and inode, or null when it does not exist. */
const identity = (file: string): string | null => {
  const stat = statSync(file, { throwIfNoEntry: false })
  return stat === undefined ? null : `${stat.dev}:${stat.ino}`
}

/**
 * Fails (after setting `gone`) with a `replaced` StoreError once `file` is no longer the file
 * whose identity was `opened`, or a `corrupt` one once it was emptied in place (truncation keeps
 * the inode; SQLite would go on writing pages into a file whose other pages are gone): checked
 * at once, on every change in its folder and every 5 s.
 */
const storeWatch = (file: string, opened: string | null, gone: Ref.Ref<boolean>): Effect.Effect<never, StoreError> =>
  file === ":memory:"
    ? Effect.never
    : Effect.gen(function* () {
        const wake = yield* Queue.sliding<void>(1)
        yield* Effect.acquireRelease(
          Effect.sync(() => {
            const watcher = watch(dirname(file), { persistent: false }, () => wake.unsafeOffer(undefined))
            watcher.on("error", () => undefined)
            return watcher
          }),
          (watcher) => Effect.sync(() => watcher.close())
        )
        yield* wake.offer(undefined).pipe(Effect.repeat(Schedule.spaced("5 seconds")), Effect.forkScoped)
        for (;;) {
          yield* Queue.take(wake)
          const now = identity(file)
          if (now !== opened) {
            yield* Ref.set(gone, true)
            return yield* new StoreError({
              reason: "replaced",
              detail: `${file} ${now === null ? "was deleted" : "is another file now"}`
            })
          }
          const problem = Database.storeFileProblem(file)
          if (problem !== null) {
            yield* Ref.set(gone, true)
            return yield* problem
          }
        }
      }).pipe(Effect.scoped)

/** Fresh stop signals; the CLI completes `drain` on the first SIGINT/SIGTERM and `cancel` on the second. */
export const makeStopSignals = Effect.all({ drain: Deferred.make<void>(), cancel: Deferred.make<void>() })
