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
 */
import { hostname } from "node:os"
import {
  type AgentId,
  EventLog,
  type FolderPath,
  isLiveWorkerState,
  type StoreError,
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
  readonly stopped_by_signal: boolean
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
      const row = db.prepare(`SELECT owner, pid, host, started_at, lease_expires_at FROM supervisor WHERE id = 1`).get()
      if (row !== undefined) {
        const r = Rows.row(row, "supervisor")
        const pid = Rows.int(r, "pid")
        const holderHost = Rows.text(r, "host")
        const gone = holderHost === host && !Substrate.isAlive(pid)
        if (Rows.text(r, "owner") !== owner && !gone && Rows.num(r, "lease_expires_at") > now)
          return Either.left(new SupervisorRunning({ pid, host: holderHost, since: Rows.num(r, "started_at") }))
      }
      db.prepare(
        `INSERT OR REPLACE INTO supervisor (id, owner, pid, host, started_at, lease_expires_at)
         VALUES (1, @owner, @pid, @host, @now, @expires)`
      ).run({ owner, pid: process.pid, host, now, expires: now + ttlMs })
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

    const supervisorScope = yield* Effect.scope
    yield* Effect.acquireRelease(acquireLock(owner, leaseMs), () => releaseLock(owner))
    yield* renewLock(owner, leaseMs).pipe(Effect.ignore, Effect.repeat(Schedule.spaced(renewEvery)), Effect.forkScoped)

    report(
      options.fleet === undefined
        ? "supervising the workers of this root (Ctrl-C to stop)"
        : `fleet: ${options.fleet.workers} worker(s) on task ${options.fleet.task} (Ctrl-C: stop claiming; twice: cancel)`
    )
    const cancelling = yield* Ref.make(false)
    const counts = {
      supervised: 0,
      spawned: 0,
      ready: 0,
      failed: 0,
      folders_done: 0,
      folders_skipped: 0,
      folders_released: 0
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
        const renewOnce = Effect.gen(function* () {
          if (!(yield* probe(worker))) return false
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
          return true
        })
        const renewer = renewOnce.pipe(
          Effect.repeat({ schedule: Schedule.spaced(renewEvery), while: (alive) => alive }),
          // The program is gone: its wrapper writes the exit file at once (or never, if it was killed).
          Effect.zipRight(
            Effect.race(Substrate.waitForExit(workers.dirOf(worker.id)), Effect.as(Effect.sleep("1 second"), null))
          ),
          Effect.map((status): Ending => ({ _tag: "exited", status }))
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
     * (its window stays, dead); its exit status is recorded. Stopped at once if the supervisor
     * ends first, so that no finished agent is left running unsupervised.
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
              yield* afterFinish(finished).pipe(Effect.forkIn(supervisorScope))
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
        Effect.sleep(fallback)
      ])

    /** Completes or releases the worker's folder according to how the worker ended. */
    const settle = (fleet: FleetOptions, worker: Worker) =>
      Effect.gen(function* () {
        const path = worker.path as FolderPath
        const agent = worker.id as unknown as AgentId
        if (worker.state === "ready") {
          counts.ready++
          const found = worker.result?.found ?? null
          yield* scheduler.complete({
            task: fleet.task,
            path,
            agent,
            status: "done",
            outcome: found === null ? { _tag: "unreported" } : { _tag: "found", count: found }
          })
          counts.folders_done++
          return
        }
        if (worker.state === "cancelled") {
          yield* scheduler.release({ task: fleet.task, path, agent })
          counts.folders_released++
          return
        }
        counts.failed++
        const failures = (attempts.get(path) ?? 0) + 1
        attempts.set(path, failures)
        if (failures >= config.worker.max_attempts) {
          yield* scheduler.complete({
            task: fleet.task,
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
          yield* scheduler.release({ task: fleet.task, path, agent })
          counts.folders_released++
        }
      }).pipe(
        Effect.catchAll((error) =>
          Effect.sync(() => report(`${worker.path}: cannot settle the folder: ${error.message}`))
        ),
        Effect.zipRight(SubscriptionRef.update(settledCount, (n) => n + 1))
      )

    /** One fleet slot: claim, spawn, wait, settle, until the sweep is complete or a drain. Returns "complete" or "stopped". */
    const slot = (fleet: FleetOptions, index: number, adopted: Worker | undefined) =>
      Effect.gen(function* () {
        let next = adopted
        for (;;) {
          if (next === undefined) {
            if (yield* draining) {
              onSlot(index, "stopped")
              return "stopped" as const
            }
            const seen = yield* SubscriptionRef.get(settledCount)
            const claim = yield* scheduler.claim({ task: fleet.task, agent: FLEET_AGENT, autoSweep: fleet.autoSweep })
            if (claim._tag === "SweepCompleted") {
              onSlot(index, `sweep ${claim.sweep} complete`)
              return "complete" as const
            }
            if (claim._tag === "NoneAvailable") {
              onSlot(index, `waiting: the ${claim.leased_outstanding} folder(s) left are leased`)
              // Every remaining folder is leased (to other slots or agents): wait for something to end.
              yield* untilSettled(seen, "5 seconds")
              continue
            }
            const text = fleet.prompt.replaceAll("{path}", claim.path)
            const spawned = yield* workers
              .spawn({ text, kind: fleet.kind, task: fleet.task, path: claim.path })
              .pipe(Effect.either)
            if (Either.isLeft(spawned)) {
              report(`slot ${index + 1}: cannot spawn for ${claim.path}: ${spawned.left.message}`)
              yield* scheduler.release({ task: fleet.task, path: claim.path, agent: FLEET_AGENT }).pipe(Effect.ignore)
              if (spawned.left._tag === "UnknownKind" || spawned.left._tag === "KindUntrusted")
                return yield* Effect.fail(spawned.left)
              // Most likely worker.max_active with workers started by hand: wait for a slot's worker to end.
              yield* untilSettled(seen, "2 seconds")
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
              yield* settle(fleet, worker)
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
          yield* settle(fleet, final)
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
    const result = yield* supervised
    // Whatever is still supervised (workers adopted beyond the fleet) is handed back unsupervised.
    yield* FiberMap.clear(fibers)
    return {
      owner,
      sweep_complete: result,
      ...counts,
      stopped_by_signal: yield* Deferred.isDone(stop.drain)
    } satisfies SupervisorSummary
  })

/** Fresh stop signals; the CLI completes `drain` on the first SIGINT/SIGTERM and `cancel` on the second. */
export const makeStopSignals = Effect.all({ drain: Deferred.make<void>(), cancel: Deferred.make<void>() })
