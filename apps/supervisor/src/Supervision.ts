/**
 * The supervision of the live workers (SPEC §2): each live worker is supervised by one fiber of a
 * `FiberMap` keyed by worker id, as a scoped resource. Acquiring it takes the worker's lease;
 * releasing it early (a second signal) cancels the worker and closes its window, otherwise it
 * hands the worker back unsupervised.
 *
 * What every worker needs on a schedule is done for all of them at once, so that a fleet of a
 * hundred costs about what one costs (issue 14):
 *
 * - one renewal tick every third of the lease (`worker.lease_secs`): one liveness pass over every
 *   supervised worker (one `Processes.aliveAmong` for every pid: a pid whose check does not answer
 *   within {@link LIVENESS_TIMEOUT_MS} is left out, the others answer; one `Workers.present` for
 *   every window, asked again 250 ms later for those it did not see, so that one failed tmux call
 *   loses nobody), then ONE transaction that renews the lease of every worker found alive and
 *   present and still held (one handed back meanwhile keeps its hand-back) and its folder's lease
 *   (`Workers.renewLeases`, `Scheduler.renewMany`). A store that refuses it is logged; those
 *   leases then run out. What a tick allocates is most of what an idle supervisor costs (the
 *   garbage collector's work after each tick): with a fiber and an `Effect.timeoutOption` per
 *   worker's check a tick for 100 workers allocated ~9 MB, with one `aliveAmong` ~2.5 MB
 *   (docs/benchmarks.md, issue 14).
 * - one watchdog: it sleeps until the earliest lease runs out, and a worker whose lease ran out
 *   is `lost`.
 * - one subscription to the event log, which tells each worker's fiber when its terminal event
 *   (ready, failed, lost, cancelled) arrives.
 *
 * A worker's own fiber keeps only what is its own: the watch of its exit file (without a
 * fallback read: a program whose end the watch missed is found dead by the next tick), its
 * `max_duration`, and a finished worker's `worker.exit_grace_secs`. All waits use Effect's `Clock`.
 */
import { isLiveWorkerState, type StoreError, type Worker, WorkerId, type WorkerNotFound } from "@trail/domain"
import { Substrate, type Workers } from "@trail/workers"
import { Cause, Clock, Deferred, Duration, Effect, Exit, FiberMap, FiberSet, Option, Queue, Ref, Schema } from "effect"
import { FLEET_AGENT } from "./SupervisorStore.js"
import { bump, describeEnd, folderOf, type Run, warnOnFailure } from "./Run.js"

type Ending =
  | { readonly _tag: "exited"; readonly status: number | null }
  | { readonly _tag: "finished" }
  | { readonly _tag: "lost"; readonly reason: string }
  | { readonly _tag: "timeout"; readonly limitMs: number }

/** What the renewal tick or the watchdog found: the program is gone, or the worker is lost. */
type Verdict = { readonly _tag: "dead" } | { readonly _tag: "lost"; readonly reason: string }

const terminalEvents = new Set(["worker.ready", "worker.failed", "worker.lost", "worker.cancelled"])

const isWorkerId = Schema.is(WorkerId)

/**
 * How long the tick waits for one worker's liveness check (at most a third of the lease): a check
 * that does not answer (a wedged host) leaves that worker unrenewed this tick, not the others.
 */
export const LIVENESS_TIMEOUT_MS = 5_000

/**
 * How many supervisions a stop ends at once. Ending one cancels its worker (a store write, its
 * program stopped: SIGTERM and up to 500 ms for it to go, its window closed: two tmux calls) or
 * hands it back; ended one by one, a fleet of 100 took ~23 s to cancel (docs/benchmarks.md).
 */
export const STOP_CONCURRENCY = 16

/** A supervised worker as the tick and the watchdog see it. */
interface Held {
  readonly worker: Worker
  /** When its lease runs out (ms on the Clock) unless the tick renews it. */
  expiresAt: number
  readonly verdict: Deferred.Deferred<Verdict>
}

/** The supervision of one run: its fibers, the finished workers' exit graces, and how to add a worker. */
export const make = (run: Run) =>
  Effect.gen(function* () {
    const { workers, processes, config, owner, leaseMs } = run
    const renewEvery = Duration.millis(Math.max(1, Math.floor(leaseMs / 3)))
    const livenessTimeout = Duration.millis(Math.min(LIVENESS_TIMEOUT_MS, Math.max(1, Math.floor(leaseMs / 3))))
    const graceMs = config.worker.exit_grace_secs * 1000
    // Finished workers' programs in their exit grace; a run that ends normally waits for them.
    const graces = yield* FiberSet.make<void>()
    const fibers = yield* FiberMap.make<WorkerId, Worker>()
    /** The workers whose lease the tick renews (those past their start), by id. */
    const held = new Map<WorkerId, Held>()
    /** The supervised workers' terminal events to come, by id. */
    const finishing = new Map<WorkerId, Deferred.Deferred<void>>()
    /**
     * Taken by the tick's renewal transaction and by a worker's release from `held`: the tick
     * renews only workers still held once it has the permit, so a worker handed back while the
     * liveness pass ran (seconds) is not leased again after its hand-back.
     */
    const renewal = yield* Effect.makeSemaphore(1)

    // One subscription for every worker: subscribed before any worker is, so no terminal event is missed.
    const events = yield* run.eventLog.subscribe
    yield* Queue.take(events).pipe(
      Effect.zip(Queue.takeAll(events)),
      Effect.flatMap(([first, rest]) =>
        Effect.forEach(
          [first, ...rest],
          (event) => {
            if (event.subject.type !== "worker" || !terminalEvents.has(event.type) || !isWorkerId(event.subject.id))
              return Effect.void
            const waiting = finishing.get(event.subject.id)
            return waiting === undefined ? Effect.void : Deferred.succeed(waiting, undefined)
          },
          { discard: true }
        )
      ),
      Effect.forever,
      Effect.forkScoped
    )

    /** The workers among `candidates` whose window is present, asked twice a moment apart. */
    const presentOnes = (candidates: ReadonlyArray<Held>) =>
      Effect.gen(function* () {
        const first = yield* workers.present(candidates.map((h) => h.worker))
        const unseen = candidates.filter((h) => !first.has(h.worker.id))
        if (unseen.length === 0) return first
        // The moment is wall-clock time because tmux answers in real time.
        const second = yield* Effect.zipRight(
          Substrate.wallClockSleep(250),
          workers.present(unseen.map((h) => h.worker))
        )
        return new Set([...first, ...second])
      })

    /**
     * The liveness pass over `candidates`: a dead program or a missing window is their verdict;
     * returns those found alive and present. A check that does not answer in time leaves its
     * worker out (unrenewed, no verdict).
     */
    const inspect = (candidates: ReadonlyArray<Held>) =>
      Effect.gen(function* () {
        const answers = yield* processes.aliveAmong(
          candidates.flatMap((h) => (h.worker.pid === null ? [] : [h.worker.pid])),
          livenessTimeout
        )
        const alive: Array<Held> = []
        for (const h of candidates) {
          const answer = h.worker.pid === null ? false : answers.get(h.worker.pid)
          if (answer === undefined) continue
          if (answer) alive.push(h)
          else yield* Deferred.succeed(h.verdict, { _tag: "dead" })
        }
        if (alive.length === 0) return []
        const present = yield* presentOnes(alive)
        const found: Array<Held> = []
        for (const h of alive) {
          if (present.has(h.worker.id)) found.push(h)
          else
            yield* Deferred.succeed(h.verdict, {
              _tag: "lost",
              reason: "its tmux window is gone or belongs to another program (the tmux server stopped or restarted)"
            })
        }
        return found
      })

    /** One renewal tick for every held worker: see the module comment. */
    const tick = Effect.gen(function* () {
      const candidates = [...held.values()]
      if (candidates.length === 0) return
      const renewing = yield* inspect(candidates)
      if (renewing.length === 0) return
      yield* renewal.withPermits(1)(
        Effect.gen(function* () {
          // Those released (handed back) while the liveness pass ran are not renewed.
          const stillHeld = renewing.filter((h) => held.get(h.worker.id) === h)
          if (stillHeld.length === 0) return
          const now = yield* Clock.currentTimeMillis
          const renewed = yield* renewTransaction(stillHeld)
          for (const h of stillHeld) if (renewed.has(h.worker.id)) h.expiresAt = now + leaseMs
        })
      )
    })

    /** The tick's ONE transaction: the leases of `renewing` and their folders'; returns the workers renewed. */
    const renewTransaction = (renewing: ReadonlyArray<Held>) =>
      run.database
        .transaction(
          Effect.gen(function* () {
            const renewed = yield* workers.renewLeases(
              renewing.map((h) => h.worker.id),
              owner,
              leaseMs
            )
            const folders = renewing.flatMap((h) => {
              const folder = renewed.has(h.worker.id) ? folderOf(h.worker) : null
              return folder === null ? [] : [{ ...folder, previous: FLEET_AGENT }]
            })
            const kept = yield* run.scheduler.renewMany(folders)
            const lost = folders.filter((_, i) => kept[i] !== true)
            if (lost.length > 0)
              yield* Effect.logWarning(
                `cannot renew the folder lease of ${lost.map((f) => `${f.agent} (${f.path})`).join(", ")}: held by another agent or no longer a work item`
              )
            return renewed
          })
        )
        .pipe(
          // A store that refuses the renewal is logged; the leases then run out as if unrenewed.
          warnOnFailure(`cannot renew the leases of ${renewing.length} worker(s)`, () => new Set<WorkerId>())
        )

    yield* tick.pipe(Effect.zipRight(Effect.sleep(renewEvery)), Effect.forever, Effect.forkScoped)

    // Leases that ran out: the watchdog sleeps until the earliest one. A worker held after `now`
    // runs until at least now + lease, so nothing added while it sleeps runs out sooner.
    yield* Effect.gen(function* () {
      for (;;) {
        const now = yield* Clock.currentTimeMillis
        let next = now + leaseMs
        for (const h of held.values()) {
          if (h.expiresAt <= now)
            yield* Deferred.succeed(h.verdict, {
              _tag: "lost",
              reason: `its lease expired (not renewed for ${config.worker.lease_secs}s)`
            })
          else next = Math.min(next, h.expiresAt)
        }
        yield* Effect.sleep(Duration.millis(next - now))
      }
    }).pipe(Effect.forkScoped)

    /** Holds `worker` for the tick and the watchdog (its lease taken now) while the scope lasts. */
    const hold = (worker: Worker) =>
      Effect.gen(function* () {
        const entry: Held = {
          worker,
          expiresAt: (yield* Clock.currentTimeMillis) + leaseMs,
          verdict: yield* Deferred.make<Verdict>()
        }
        return yield* Effect.acquireRelease(Effect.sync(() => held.set(worker.id, entry)).pipe(Effect.as(entry)), () =>
          // Under the tick's permit: released before its hand-back (the scope's order), so no tick renews it after.
          renewal.withPermits(1)(Effect.sync(() => held.delete(worker.id)))
        )
      })

    /** Waits for a live worker's terminal event (registered before its state is read, so none is missed). */
    const awaitTerminal = (id: WorkerId) =>
      Effect.gen(function* () {
        const arrived = yield* Deferred.make<void>()
        yield* Effect.acquireRelease(
          Effect.sync(() => finishing.set(id, arrived)),
          () => Effect.sync(() => finishing.delete(id))
        )
        return arrived
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
          const terminal = yield* awaitTerminal(initial.id)
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
          const entry = yield* hold(worker)
          const racers: Array<Effect.Effect<Ending, StoreError | Workers.WorkersError | WorkerNotFound>> = [
            // No fallback read: a program that ends unseen by the watch is found dead by the tick.
            Effect.map(processes.waitForExit(workers.dirOf(worker.id), { watchOnly: true }), (status): Ending => ({
              _tag: "exited",
              status
            })),
            isLiveWorkerState(worker.state)
              ? Effect.as(Deferred.await(terminal), { _tag: "finished" } satisfies Ending)
              : Effect.succeed<Ending>({ _tag: "finished" }),
            // A worker is looked at once when it is taken (one adopted after a restart may be dead already).
            Effect.zipRight(inspect([entry]), Effect.never),
            Effect.flatMap(Deferred.await(entry.verdict), (found): Effect.Effect<Ending> =>
              found._tag === "lost"
                ? Effect.succeed(found)
                : // The program is gone: its wrapper writes the exit file at once (or never, if it was killed).
                  Effect.race(
                    processes.waitForExit(workers.dirOf(worker.id)),
                    Effect.as(Effect.sleep("1 second"), null)
                  ).pipe(Effect.map((status): Ending => ({ _tag: "exited", status })))
            )
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

    /**
     * Ends every supervision now in the map, as `FiberMap.clear` does (each one's release cancels
     * or hands back its worker: {@link handBack}), but {@link STOP_CONCURRENCY} at a time where
     * `clear` waits for each before the next. One call at a time: the cancel's and the end of the
     * run's may overlap, and together they would exceed the bound.
     */
    const releasing = yield* Effect.makeSemaphore(1)
    const releaseAll = releasing.withPermits(1)(
      Effect.suspend(() =>
        Effect.forEach(
          Array.from(fibers, ([id]) => id),
          (id) => FiberMap.remove(fibers, id),
          { concurrency: STOP_CONCURRENCY, discard: true }
        )
      )
    )

    return {
      fibers,
      graces,
      releaseAll,
      /** Supervises `worker` in the run's FiberMap unless it already is; the fiber ends with the worker's final state. */
      superviseInMap: (worker: Worker) => FiberMap.run(fibers, worker.id, supervise(worker), { onlyIfMissing: true }),
      isSupervised: (id: WorkerId) => FiberMap.has(fibers, id)
    }
  })

export type Supervision = Effect.Effect.Success<ReturnType<typeof make>>
