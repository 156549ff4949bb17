/**
 * Per-worker supervision (SPEC §2): each live worker is supervised by one fiber of a `FiberMap`
 * keyed by worker id, as a scoped resource. Acquiring it takes the worker's lease; releasing it
 * early (a second signal) cancels the worker and closes its window, otherwise it hands the worker
 * back unsupervised.
 *
 * While the worker's program is alive (`Processes.isAlive`) its lease (`worker.lease_secs`) is
 * renewed on a schedule every third of the lease; a dead program is recorded from its exit file,
 * an expired lease makes the worker `lost`, `max_duration` fails it. A finished worker's program
 * gets `worker.exit_grace_secs` to end by itself. All waits use Effect's `Clock`.
 */
import { isLiveWorkerState, type StoreError, type Worker, type WorkerId, type WorkerNotFound } from "@trail/domain"
import { Substrate, type Workers } from "@trail/workers"
import { Cause, Clock, Duration, Effect, Exit, FiberMap, FiberSet, Option, Queue, Ref } from "effect"
import { FLEET_AGENT } from "./SupervisorStore.js"
import { bump, describeEnd, folderOf, type Run, warnOnFailure } from "./Run.js"

type Ending =
  | { readonly _tag: "exited"; readonly status: number | null }
  | { readonly _tag: "finished" }
  | { readonly _tag: "lost"; readonly reason: string }
  | { readonly _tag: "timeout"; readonly limitMs: number }

const terminalEvents = new Set(["worker.ready", "worker.failed", "worker.lost", "worker.cancelled"])

/** The supervision of one run: its fibers, the finished workers' exit graces, and how to add a worker. */
export const make = (run: Run) =>
  Effect.gen(function* () {
    const { workers, processes, config, owner, leaseMs } = run
    const renewEvery = Duration.millis(Math.max(1, Math.floor(leaseMs / 3)))
    const graceMs = config.worker.exit_grace_secs * 1000
    // Finished workers' programs in their exit grace; a run that ends normally waits for them.
    const graces = yield* FiberSet.make<void>()
    const fibers = yield* FiberMap.make<WorkerId, Worker>()

    /** Waits for the worker's terminal event (subscribed before its state is read, so none is missed). */
    const terminal = (id: WorkerId) =>
      Effect.scoped(
        Effect.gen(function* () {
          const subscription = yield* run.eventLog.subscribe
          const current = yield* workers.get(id)
          if (!isLiveWorkerState(current.state)) return
          for (;;) {
            const event = yield* Queue.take(subscription)
            if (event.subject.id === id && terminalEvents.has(event.type)) return
          }
        })
      )

    const isAlive = (worker: Worker) => (worker.pid === null ? Effect.succeed(false) : processes.isAlive(worker.pid))

    /** Renews the worker's lease (and its folder's) while its program lives; ends when it dies or the lease expires. */
    const keepLease = (worker: Worker) =>
      Effect.gen(function* () {
        const expiresAt = yield* Ref.make((yield* Clock.currentTimeMillis) + leaseMs)
        /** "alive", "dead" (its program ended) or "gone" (its window is gone or another's: tmux restarted). */
        const renewOnce = Effect.gen(function* () {
          if (!(yield* isAlive(worker))) return "dead" as const
          // Asked twice, a moment apart, so that one failed tmux call does not lose a healthy worker;
          // the moment is wall-clock time because tmux answers in real time.
          if (
            !(yield* workers.present(worker)) &&
            !(yield* Effect.zipRight(Substrate.wallClockSleep(250), workers.present(worker)))
          )
            return "gone" as const
          // A store that refuses the renewal is logged; the lease then runs out as if unrenewed.
          const renewed = yield* workers
            .renewLease(worker.id, owner, leaseMs)
            .pipe(warnOnFailure(`cannot renew the lease of ${worker.id}`, () => false))
          if (renewed) {
            yield* Ref.set(expiresAt, (yield* Clock.currentTimeMillis) + leaseMs)
            const folder = folderOf(worker)
            if (folder !== null)
              yield* run.scheduler
                .renew({ ...folder, previous: FLEET_AGENT })
                .pipe(warnOnFailure(`cannot renew the lease of ${worker.id}'s folder ${folder.path}`, () => undefined))
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
                  processes.waitForExit(workers.dirOf(worker.id)),
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
              } satisfies Ending
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
          processes.waitForExit(dir).pipe(Effect.map(Option.some)),
          Effect.as(Effect.sleep(Duration.millis(graceMs)), Option.none<number | null>())
        )
        if (Option.isNone(status)) yield* workers.stopProgram(finished, 2_000)
        const exit = Option.isSome(status)
          ? status.value
          : yield* Effect.race(processes.waitForExit(dir), Effect.as(Effect.sleep("3 seconds"), null))
        yield* workers.recordExit(finished.id, exit)
      }).pipe(
        Effect.onInterrupt(() => workers.stopProgram(finished, 500)),
        warnOnFailure(`cannot record the exit of ${finished.id}`, () => undefined)
      )

    /** What the supervision's release does: cancel the worker (second signal) or hand it back. */
    const handBack = (held: Worker) =>
      Effect.gen(function* () {
        const current = yield* workers.get(held.id)
        if (!isLiveWorkerState(current.state)) return
        if (yield* Ref.get(run.cancelling)) {
          yield* workers.end(held.id, "cancelled", "the supervisor was stopped")
          yield* workers.close(current)
        } else {
          yield* workers.renewLease(held.id, "", 0)
        }
      }).pipe(warnOnFailure(`cannot hand ${held.id} back`, () => undefined))

    /** Supervises one live worker until it ends; returns it in its final state. */
    const supervise = (initial: Worker): Effect.Effect<Worker> =>
      Effect.scoped(
        Effect.gen(function* () {
          const worker = yield* Effect.acquireRelease(
            Effect.zipRight(workers.renewLease(initial.id, owner, leaseMs), workers.get(initial.id)),
            (held, exit) => (Exit.isInterrupted(exit) ? handBack(held) : Effect.void)
          )
          yield* bump(run, "supervised")
          if (worker.pid === null) {
            // It never started (its spawner died half-way): nothing to supervise.
            const ended = yield* workers.end(worker.id, "lost", "its spawn was interrupted before the program started")
            yield* workers.close(ended)
            return ended
          }
          const racers: Array<Effect.Effect<Ending, StoreError | Workers.WorkersError | WorkerNotFound>> = [
            Effect.map(processes.waitForExit(workers.dirOf(worker.id)), (status): Ending => ({
              _tag: "exited",
              status
            })),
            Effect.as(terminal(worker.id), { _tag: "finished" } satisfies Ending),
            keepLease(worker)
          ]
          if (worker.max_duration_ms !== null) {
            const limitMs = worker.max_duration_ms
            const now = yield* Clock.currentTimeMillis
            racers.push(
              Effect.as(Effect.sleep(Duration.millis(Math.max(0, worker.created_at + limitMs - now))), {
                _tag: "timeout",
                limitMs
              } satisfies Ending)
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
        // A verdict that lost a race with the worker's own done/fail (WorkerFinished) is no fault:
        // the state it reached is the answer. Anything else is logged, then the same.
        Effect.catchAll((error) =>
          error._tag === "WorkerFinished"
            ? workers.get(initial.id)
            : Effect.zipRight(
                Effect.logWarning(`supervising ${initial.id} failed`, Cause.fail(error)),
                workers.get(initial.id)
              )
        ),
        warnOnFailure(`cannot read ${initial.id} after its supervision`, () => initial),
        Effect.tap((final) => Effect.sync(() => run.report(`${final.id} ${describeEnd(final)}`)))
      )

    return {
      fibers,
      graces,
      /** Supervises `worker` in the run's FiberMap unless it already is; the fiber ends with the worker's final state. */
      superviseInMap: (worker: Worker) => FiberMap.run(fibers, worker.id, supervise(worker), { onlyIfMissing: true }),
      isSupervised: (id: WorkerId) => FiberMap.has(fibers, id)
    }
  })

export type Supervision = Effect.Effect.Success<ReturnType<typeof make>>
