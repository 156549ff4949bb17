/**
 * `trail supervise` (SPEC §2): the long-running fleet process of one root, as the
 * {@link Supervisor} service (`Supervisor.layer`). One `run` is one scoped supervision, split in
 * three parts:
 *
 * - the root's supervisor lock ({@link SupervisorStore}): a second supervisor on the same root is
 *   refused with `SupervisorRunning`, unless the holder's process is gone;
 * - per-worker supervision (`Supervision.ts`): each live worker is supervised by one fiber of a
 *   `FiberMap`, its lease renewed while its program lives, its death, lease expiry and
 *   `max_duration` turned into its final state;
 * - the fleet (`Fleet.ts`): `workers` slots claim folders of `task`, spawn a worker each, and
 *   complete, release or skip the folder when the worker ends; start failures halt it.
 *
 * Workers started elsewhere (`trail spawn`) are adopted when their `worker.running` event arrives
 * on the `EventLog`; at start every live worker in the store is re-adopted, so a supervisor
 * killed with -9 and restarted never starts a second worker for a folder. At start and on every
 * exit, folder leases the fleet holds without a running worker are settled (`Fleet.recover`).
 * Finished workers' windows are closed after `worker.keep_finished_secs`.
 *
 * The database file's identity (device and inode) and size are checked when the state folder
 * changes (`Wakes.wakes`: a burst of changes is one check) and every 5 s: a replaced or deleted store ends the run with a
 * `replaced` StoreError, one emptied in place (`: > state.db` keeps the inode) with a `corrupt` one.
 *
 * Errors are either handled for a stated reason or logged with their cause (`Effect.logWarning`)
 * and the run goes on; none is dropped silently. All waits use Effect's `Clock`.
 */
import { dirname } from "node:path"
import * as FileSystem from "@effect/platform/FileSystem"
import { EventLog, isLiveWorkerState, StoreError, type TrailConfig, WorkerId } from "@trail/domain"
import { Scheduler } from "@trail/scheduler"
import { Database } from "@trail/store"
import { Inbox, Processes, Wakes, Workers } from "@trail/workers"
import {
  Clock,
  Context,
  Deferred,
  Duration,
  Effect,
  FiberMap,
  FiberSet,
  Layer,
  Option,
  Queue,
  Ref,
  Schedule,
  Schema,
  Stream
} from "effect"
import * as Fleet from "./Fleet.js"
import { noCounts, type Counts, type Run, type StopSignals, warnOnFailure } from "./Run.js"
import * as Supervision from "./Supervision.js"
import { FLEET_AGENT, SupervisorStore } from "./SupervisorStore.js"

const isWorkerId = Schema.is(WorkerId)

/** The period of the store file's check when no change in its folder woke it. */
const STORE_CHECK_EVERY = Duration.seconds(5)

/** What one stat of the database file tells the store watch: its device:inode and its size in bytes. */
interface FileLook {
  readonly identity: string
  readonly size: number
}

export { FLEET_AGENT, SupervisorStore }
export type { FleetOptions } from "./Fleet.js"
export type { StopSignals } from "./Run.js"

export interface SupervisorOptions {
  readonly fleet?: Fleet.FleetOptions | undefined
  readonly config: TrailConfig
  readonly stop: StopSignals
  /** Progress lines for a person (stderr in the CLI). */
  readonly report?: (line: string) => void
  /** Fleet mode: what slot `index` (0-based) is doing now, for a live line per slot on a terminal. */
  readonly onSlot?: (index: number, status: string) => void
}

/** What a run did; printed as the command's JSON result. */
export interface SupervisorSummary extends Counts {
  readonly owner: string
  /** Fleet mode: whether the task's sweep is complete (false when stopped by a signal). */
  readonly sweep_complete: boolean | null
  readonly stopped_by_signal: boolean
  /** Why the fleet stopped claiming early (e.g. `worker.max_start_failures` workers in a row could not start), else null. */
  readonly halted: string | null
}

/** The errors a run ends with. */
export type SupervisorError = Effect.Effect.Error<ReturnType<Effect.Effect.Success<typeof make>["run"]>>

export interface SupervisorShape {
  /**
   * Runs the supervisor until the fleet's sweep is complete (fleet mode) or a stop signal.
   * Fails with `SupervisorRunning` (another live supervisor holds the root), a StoreError
   * (`replaced`/`corrupt` when the database file changes under it), or what the fleet's preflight
   * and spawns refuse (UnknownKind, KindUntrusted, SpawnRefused, SubstrateError).
   */
  readonly run: (options: SupervisorOptions) => Effect.Effect<SupervisorSummary, SupervisorError>
}

const make = Effect.gen(function* () {
  const workers = yield* Workers.Workers
  const scheduler = yield* Scheduler.Scheduler
  const eventLog = yield* EventLog
  const inbox = yield* Inbox.Inbox
  const processes = yield* Processes.Processes
  const store = yield* SupervisorStore
  const database = yield* Database.Database
  const fs = yield* FileSystem.FileSystem

  /** The file's device and inode with its size in bytes, from one stat; null when it does not exist. */
  const look = (file: string) =>
    fs.stat(file).pipe(
      Effect.map((info): FileLook | null => ({
        identity: `${info.dev}:${Option.getOrElse(info.ino, () => 0)}`,
        size: Number(info.size)
      })),
      Effect.catchIf(
        (error) => error._tag === "SystemError" && error.reason === "NotFound",
        () => Effect.succeed(null)
      ),
      Effect.mapError((error) => new StoreError({ reason: "io", detail: `cannot stat ${file}: ${error.message}` }))
    )

  /**
   * Fails (after setting `gone`) with a `replaced` StoreError once `file` is no longer the file
   * whose identity was `opened`, or a `corrupt` one once it was emptied in place (truncation keeps
   * the inode; SQLite would go on writing pages into a file whose other pages are gone): checked
   * once its folder is watched, on every burst of changes in it and every {@link STORE_CHECK_EVERY}.
   */
  const storeWatch = (file: string, opened: string | null, gone: Ref.Ref<boolean>): Effect.Effect<never, StoreError> =>
    file === ":memory:"
      ? Effect.never
      : Wakes.wakes({ dir: dirname(file), fallback: STORE_CHECK_EVERY }).pipe(
          Stream.runForEach(() =>
            Effect.gen(function* () {
              // One stat: a second look could find the file gone and call a deletion something else.
              const now = yield* look(file)
              const problem =
                now?.identity !== opened
                  ? new StoreError({
                      reason: "replaced",
                      detail: `${file} ${now === null ? "was deleted" : "is another file now"}`
                    })
                  : now.size === 0
                    ? Database.emptiedStore(file)
                    : null
              if (problem !== null) {
                yield* Ref.set(gone, true)
                return yield* problem
              }
            })
          ),
          Effect.provideService(FileSystem.FileSystem, fs),
          Effect.zipRight(Effect.never)
        )

  const runScoped = (options: SupervisorOptions) =>
    Effect.gen(function* () {
      const { config, stop } = options
      const report = options.report ?? (() => undefined)
      const onSlot = options.onSlot ?? (() => undefined)
      const leaseMs = config.worker.lease_secs * 1000
      const renewEvery = Duration.millis(Math.max(1, Math.floor(leaseMs / 3)))

      // Nothing is claimed or spawned for a kind that cannot start.
      if (options.fleet !== undefined) yield* workers.preflight(options.fleet.kind)

      const storeGone = yield* Ref.make(false)
      // The file this run works on, taken before anything is reported or written.
      const storeIdentity = (yield* look(database.filename))?.identity ?? null
      yield* Effect.acquireRelease(store.acquire(leaseMs), () =>
        Effect.flatMap(Ref.get(storeGone), (gone) =>
          gone ? Effect.void : store.release.pipe(warnOnFailure("cannot release the supervisor lock", () => undefined))
        )
      )
      yield* store.renew(leaseMs).pipe(
        warnOnFailure("cannot renew the supervisor lock", () => undefined),
        Effect.repeat(Schedule.spaced(renewEvery)),
        Effect.forkScoped
      )

      report(
        options.fleet === undefined
          ? "supervising the workers of this root (Ctrl-C to stop)"
          : `fleet: ${options.fleet.workers} worker(s) on task ${options.fleet.task} (Ctrl-C: stop claiming; twice: cancel)`
      )
      const run: Run = {
        workers,
        scheduler,
        eventLog,
        inbox,
        processes,
        store,
        database,
        config,
        stop,
        owner: store.owner,
        leaseMs,
        report,
        counts: yield* Ref.make(noCounts),
        cancelling: yield* Ref.make(false),
        storeGone
      }
      const supervision = yield* Supervision.make(run)
      const fleet = yield* Fleet.make(run, supervision, options.fleet, onSlot)

      // Workers started by others (`trail spawn`) are adopted when they start running.
      const subscription = yield* eventLog.subscribe
      yield* Effect.gen(function* () {
        for (;;) {
          const event = yield* Queue.take(subscription)
          if (event.type !== "worker.running" || event.subject.type !== "worker") continue
          const id = event.subject.id
          // Not a worker id (a row trail did not write): nothing to adopt.
          if (!isWorkerId(id)) continue
          if (yield* supervision.isSupervised(id)) continue
          const worker = yield* workers.get(id).pipe(
            Effect.map(Option.some),
            // Gone already (pruned): nothing to adopt.
            Effect.catchTag("WorkerNotFound", () => Effect.succeed(Option.none())),
            warnOnFailure(`cannot adopt ${id}`, () => Option.none())
          )
          // A fleet slot spawning this worker supervises it itself.
          if (
            Option.isSome(worker) &&
            isLiveWorkerState(worker.value.state) &&
            !(yield* fleet.isSpawning(worker.value))
          )
            yield* supervision.superviseInMap(worker.value)
        }
      }).pipe(Effect.forkScoped)

      // The inbox follows the log live: each burst of events is folded once.
      const inboxFeed = yield* eventLog.subscribe
      yield* Queue.take(inboxFeed).pipe(
        Effect.zipRight(Queue.takeAll(inboxFeed)),
        Effect.zipRight(inbox.catchUp.pipe(warnOnFailure("cannot fold the inbox", () => undefined))),
        Effect.forever,
        Effect.forkScoped
      )

      // Re-adopt every live worker of the store (a restart after kill -9 lands here).
      const live = yield* workers.live
      const fleetTask = options.fleet?.task
      const adoptedForFleet = live.filter((w) => fleetTask !== undefined && w.task === fleetTask)
      for (const worker of live) if (!adoptedForFleet.includes(worker)) yield* supervision.superviseInMap(worker)
      if (live.length > 0) report(`re-adopted ${live.length} live worker(s): ${live.map((w) => w.id).join(", ")}`)

      // Folders of workers that finished while nobody supervised them are settled now and on exit.
      yield* Effect.addFinalizer(() => fleet.recover)
      yield* fleet.recover

      // Finished workers' windows are closed once they have been kept for a look.
      const keepMs = config.worker.keep_finished_secs * 1000
      if (keepMs > 0)
        yield* Effect.gen(function* () {
          const cutoff = (yield* Clock.currentTimeMillis) - keepMs
          for (const worker of yield* workers.openWindows(cutoff))
            yield* workers
              .closeWindow(worker)
              .pipe(warnOnFailure(`cannot close the window of ${worker.id}`, () => undefined))
        }).pipe(
          warnOnFailure("cannot list finished workers' windows", () => undefined),
          Effect.repeat(Schedule.spaced(Duration.millis(Math.min(keepMs, 10_000)))),
          Effect.forkScoped
        )

      const supervised =
        options.fleet === undefined
          ? Effect.gen(function* () {
              yield* Deferred.await(stop.drain)
              report("stopping: waiting for the supervised workers to finish (signal again to cancel them)")
              yield* FiberMap.awaitEmpty(supervision.fibers)
              return null
            })
          : fleet.runSlots(options.fleet, adoptedForFleet)

      // The second signal cancels every supervised worker; the slots then settle and stop.
      yield* Deferred.await(stop.cancel).pipe(
        Effect.zipRight(Ref.set(run.cancelling, true)),
        Effect.zipRight(Effect.sync(() => report("cancelling the workers"))),
        Effect.zipRight(supervision.releaseAll),
        Effect.forkScoped
      )
      const result = yield* Effect.raceFirst(supervised, storeWatch(database.filename, storeIdentity, storeGone))
      // The last finished agents may still be writing their output: give them their exit grace.
      yield* Effect.raceFirst(FiberSet.awaitEmpty(supervision.graces), Deferred.await(stop.cancel))
      // Whatever is still supervised (workers adopted beyond the fleet) is handed back unsupervised.
      yield* supervision.releaseAll
      const halted = yield* Deferred.poll(fleet.halt)
      return {
        owner: run.owner,
        sweep_complete: result,
        ...(yield* Ref.get(run.counts)),
        stopped_by_signal: yield* Deferred.isDone(stop.drain),
        halted: Option.isSome(halted) ? yield* halted.value : null
      } satisfies SupervisorSummary
    })

  return { run: (options: SupervisorOptions) => Effect.scoped(runScoped(options)) }
})

/**
 * The supervisor of one root. Needs Workers, Scheduler, EventLog, Inbox, the Database (its file is
 * watched), the `SqlClient`, Processes, Host and FileSystem.
 */
export class Supervisor extends Context.Tag("@trail/supervisor/Supervisor")<Supervisor, SupervisorShape>() {
  static readonly layer = Layer.effect(Supervisor, make).pipe(Layer.provide(SupervisorStore.Default))
}

/** Runs the supervisor of the context (see {@link SupervisorShape.run}). */
export const run = (options: SupervisorOptions) => Effect.flatMap(Supervisor, (supervisor) => supervisor.run(options))

/** Fresh stop signals; the CLI completes `drain` on the first SIGINT/SIGTERM and `cancel` on the second. */
export const makeStopSignals = Effect.all({ drain: Deferred.make<void>(), cancel: Deferred.make<void>() })
