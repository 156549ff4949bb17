/**
 * Fleet mode (SPEC §2): `workers` slots each claim a folder of `task`, spawn a worker for it (the
 * folder's lease moves to the worker and is renewed with the worker's), wait for it to end, then
 * complete the folder (`done` with the worker's `found`) or release it. A folder whose workers
 * failed `worker.max_attempts` times in this run is skipped with the last reason.
 *
 * A worker that cannot start (no window, exit 126/127 before any protocol call, or a spawn that
 * fails before any worker exists) is not the folder's fault: the folder is released, not skipped;
 * after `worker.max_start_failures` such failures in a row the fleet stops claiming (`halted`).
 * Only `worker.max_active` being reached is waited out.
 *
 * Also here, because it settles folders the same way: {@link Fleet.recover}, which settles the
 * folder leases this root's fleet holds without a running worker (at start and on every exit).
 */
import { isLiveWorkerState, type TaskName, type Worker } from "@trail/domain"
import {
  Cause,
  Deferred,
  type Duration,
  Effect,
  Either,
  Exit,
  Fiber,
  HashSet,
  Ref,
  Stream,
  SubscriptionRef
} from "effect"
import { bump, describeEnd, folderOf, type Run, warnOnFailure } from "./Run.js"
import type { Supervision } from "./Supervision.js"
import { FLEET_AGENT } from "./SupervisorStore.js"

export interface FleetOptions {
  readonly task: TaskName
  readonly workers: number
  readonly kind?: string | undefined
  /** The task text of each worker; `{path}` becomes the folder it was handed. */
  readonly prompt: string
  readonly autoSweep: boolean
}

/** A worker that never got going: no window, or its program was not found / not executable (126, 127). */
const startFailed = (worker: Worker) =>
  worker.state !== "ready" &&
  (worker.pid === null || worker.exit_status === 126 || worker.exit_status === 127) &&
  worker.todos.length === 0

/**
 * The fleet part of a run; `fleet` is undefined outside fleet mode (then only {@link recover}
 * and {@link settle} are used, for folders left by an earlier fleet).
 */
export const make = (
  run: Run,
  supervision: Supervision,
  fleet: FleetOptions | undefined,
  onSlot: (index: number, status: string) => void
) =>
  Effect.gen(function* () {
    const { workers, scheduler, config, report, stop } = run
    /** Failed workers per folder in this run; a folder is skipped at `worker.max_attempts`. */
    const attempts = yield* Ref.make(new Map<string, number>())
    /** How many folders the slots have settled; a slot with nothing to claim waits for it to move. */
    const settledCount = yield* SubscriptionRef.make(0)
    /** Start failures in a row; the fleet halts at `worker.max_start_failures`. */
    const startFailuresInRow = yield* Ref.make(0)
    const halt = yield* Deferred.make<string>()
    /**
     * Folders a slot is spawning a worker for: the worker is supervised by that slot, so the
     * adoption of started workers leaves it alone (the slot registers it in the FiberMap itself).
     */
    const spawning = yield* Ref.make(HashSet.empty<string>())

    /**
     * Waits until another slot settles a folder (it may have been released), a drain, a halt, or
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

    /** Counts one start failure (`last` says what failed); the fleet halts at `worker.max_start_failures` in a row. */
    const startFailure = (last: string) =>
      Effect.gen(function* () {
        yield* bump(run, "start_failures")
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
        const folder = folderOf(worker)
        if (folder === null) return
        if (worker.state === "ready") {
          yield* Ref.set(startFailuresInRow, 0)
          yield* bump(run, "ready")
          const found = worker.result?.found ?? null
          yield* scheduler.complete({
            ...folder,
            status: "done",
            outcome: found === null ? { _tag: "unreported" } : { _tag: "found", count: found }
          })
          yield* bump(run, "folders_done")
          return
        }
        if (worker.state === "cancelled") {
          yield* scheduler.release(folder)
          yield* bump(run, "folders_released")
          return
        }
        yield* bump(run, "failed")
        if (startFailed(worker)) {
          // Not the folder's fault: it goes back to the pool, and the fleet counts the failure.
          yield* scheduler.release(folder)
          yield* bump(run, "folders_released")
          yield* startFailure(`${worker.id} ${worker.state}${worker.reason === null ? "" : `: ${worker.reason}`}`)
          return
        }
        yield* Ref.set(startFailuresInRow, 0)
        const failures = ((yield* Ref.get(attempts)).get(folder.path) ?? 0) + 1
        yield* Ref.update(attempts, (map) => new Map(map).set(folder.path, failures))
        if (failures >= config.worker.max_attempts) {
          yield* scheduler.complete({
            ...folder,
            status: "skipped",
            reason:
              `${failures} worker(s) failed; last: ${worker.state}${worker.reason === null ? "" : ` (${worker.reason})`}`.slice(
                0,
                500
              )
          })
          yield* bump(run, "folders_skipped")
          report(`${folder.path} skipped after ${failures} failed worker(s)`)
        } else {
          yield* scheduler.release(folder)
          yield* bump(run, "folders_released")
        }
      }).pipe(
        Effect.catchAll((error) =>
          Effect.zipRight(
            Effect.sync(() => report(`${worker.path}: cannot settle the folder: ${error.message}`)),
            Effect.logWarning(`cannot settle the folder of ${worker.id}`, Cause.fail(error))
          )
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
      if (yield* Ref.get(run.storeGone)) return
      const finished = (yield* workers.list).filter((w) => !isLiveWorkerState(w.state) && w.task !== null)
      const tasks = new Set<TaskName>(finished.flatMap((w) => (w.task === null ? [] : [w.task])))
      for (const task of yield* run.store.fleetClaimTasks) tasks.add(task)
      for (const task of tasks) {
        const leased = yield* scheduler
          .list(task, "leased")
          .pipe(warnOnFailure(`cannot list the leased folders of task ${task}`, () => []))
        for (const item of leased) {
          if (item.lease_owner === FLEET_AGENT) {
            yield* scheduler
              .release({ task, path: item.path, agent: FLEET_AGENT })
              .pipe(warnOnFailure(`cannot release ${item.path} of task ${task}`, () => undefined))
            report(`${item.path}: released (claimed by a fleet slot that had no worker for it)`)
            continue
          }
          const holder: string | null = item.lease_owner
          const worker = finished.find((w) => w.id === holder && w.task === task && w.path === item.path)
          // A worker adopted by a slot (or supervised now) is settled by it, not here.
          if (worker === undefined || (yield* supervision.isSupervised(worker.id))) continue
          report(`${worker.id} finished while unsupervised: ${describeEnd(worker)}`)
          yield* settle(worker)
        }
      }
    }).pipe(
      Effect.catchAll((error) =>
        Effect.zipRight(
          Effect.sync(() => report(`cannot settle leftover leases: ${error.message}`)),
          Effect.logWarning("cannot settle leftover leases", Cause.fail(error))
        )
      )
    )

    /** What a slot with nothing to claim waits for: the folder whose lease ends first, its holder and when. */
    const waitingFor = (task: TaskName, outstanding: number) => {
      const vague = { text: `waiting: the ${outstanding} folder(s) left are leased`, key: "" }
      return scheduler.list(task, "leased").pipe(
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
        // Only the progress line is at stake: the vague one does.
        warnOnFailure(`cannot list the leased folders of task ${task}`, () => vague)
      )
    }

    /** Supervises the slot's worker to its end and settles its folder. */
    const follow = (index: number, worker: Worker) =>
      Effect.gen(function* () {
        const fiber = yield* supervision.superviseInMap(worker)
        yield* Ref.update(spawning, HashSet.remove<string>(worker.path ?? ""))
        // A cancelled supervision (second signal) still settles: the worker is cancelled by then.
        const exit = yield* Fiber.await(fiber)
        const final = Exit.isSuccess(exit)
          ? exit.value
          : yield* workers.get(worker.id).pipe(warnOnFailure(`cannot read ${worker.id}`, () => worker))
        yield* settle(final)
        onSlot(index, `${final.id} ${describeEnd(final)} · ${final.path}`)
      })

    /** One fleet slot: claim, spawn, wait, settle, until the sweep is complete or a drain. */
    const slot = (options: FleetOptions, index: number, adopted: Worker | undefined) =>
      Effect.gen(function* () {
        if (adopted !== undefined) yield* follow(index, adopted)
        let lastWait = ""
        for (;;) {
          if (yield* Deferred.isDone(stop.drain)) {
            onSlot(index, "stopped")
            return "stopped" as const
          }
          if (yield* Deferred.isDone(halt)) {
            onSlot(index, "halted")
            return "halted" as const
          }
          const seen = yield* SubscriptionRef.get(settledCount)
          const claim = yield* scheduler.claim({ task: options.task, agent: FLEET_AGENT, autoSweep: options.autoSweep })
          if (claim._tag === "SweepCompleted") {
            onSlot(index, `sweep ${claim.sweep} complete`)
            return "complete" as const
          }
          if (claim._tag === "NoneAvailable") {
            const waiting = yield* waitingFor(options.task, claim.leased_outstanding)
            onSlot(index, waiting.text)
            if (waiting.key !== lastWait || waiting.key === "") report(`slot ${index + 1} ${waiting.text}`)
            lastWait = waiting.key
            // Every remaining folder is leased (to other slots or agents): wait for something to end.
            yield* untilSettled(seen, "5 seconds")
            continue
          }
          lastWait = ""
          const text = options.prompt.replaceAll("{path}", claim.path)
          yield* Ref.update(spawning, HashSet.add<string>(claim.path))
          const spawned = yield* workers
            .spawn({ text, kind: options.kind, task: options.task, path: claim.path })
            .pipe(Effect.either)
          if (Either.isLeft(spawned)) {
            yield* Ref.update(spawning, HashSet.remove<string>(claim.path))
            const error = spawned.left
            report(`slot ${index + 1}: cannot spawn for ${claim.path}: ${error.message}`)
            const released = yield* scheduler
              .release({ task: options.task, path: claim.path, agent: FLEET_AGENT })
              .pipe(
                Effect.as(true),
                // The claim then expires with its lease; the failure is logged.
                warnOnFailure(`cannot release ${claim.path}`, () => false)
              )
            if (error._tag === "UnknownKind" || error._tag === "KindUntrusted") return yield* Effect.fail(error)
            if (error._tag === "SpawnRefused") {
              // A fleet's spawn has no parent, so only worker.max_active refuses it (workers started
              // by hand fill the cap): wait for a worker to end, then try again.
              yield* untilSettled(seen, "2 seconds")
              continue
            }
            // Anything else (the store refused the worker, …) would fail again at once: it counts
            // towards worker.max_start_failures like a worker that could not start.
            if (released) yield* bump(run, "folders_released")
            yield* startFailure(`cannot spawn for ${claim.path}: ${error.message}`)
            yield* SubscriptionRef.update(settledCount, (n) => n + 1)
            continue
          }
          yield* bump(run, "spawned")
          const worker = spawned.right
          report(`${worker.id} ${claim.path} (sweep ${claim.sweep}, ${claim.remaining} left)`)
          onSlot(index, `${worker.id} ${worker.state} · ${claim.path}`)
          const folder = folderOf(worker)
          if (folder !== null)
            yield* scheduler
              .renew({ ...folder, previous: FLEET_AGENT })
              .pipe(warnOnFailure(`cannot hand ${claim.path} to ${worker.id}`, () => undefined))
          if (!isLiveWorkerState(worker.state)) {
            yield* Ref.update(spawning, HashSet.remove<string>(claim.path))
            report(`${worker.id} ${describeEnd(worker)}`)
            yield* settle(worker)
            continue
          }
          yield* follow(index, worker)
        }
      })

    return {
      settle,
      recover,
      halt,
      /** True while a slot is spawning a worker for this fleet folder (the slot supervises it). */
      isSpawning: (worker: Worker) =>
        Effect.map(
          Ref.get(spawning),
          (paths) =>
            fleet !== undefined && worker.task === fleet.task && worker.path !== null && HashSet.has(paths, worker.path)
        ),
      /** Runs the slots (adopted fleet workers first go to slots, the rest are supervised alone); true when the sweep is complete. */
      runSlots: (options: FleetOptions, adopted: ReadonlyArray<Worker>) =>
        Effect.gen(function* () {
          const outcomes = yield* Effect.all(
            Array.from({ length: options.workers }, (_, i) => slot(options, i, adopted[i])),
            { concurrency: "unbounded" }
          )
          // Fleet workers beyond the slots (a restart with fewer --workers) are still supervised.
          for (const worker of adopted.slice(options.workers)) yield* supervision.superviseInMap(worker)
          return outcomes.every((o) => o === "complete")
        })
    }
  })

export type Fleet = Effect.Effect.Success<ReturnType<typeof make>>
