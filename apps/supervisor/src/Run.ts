/**
 * What the parts of one supervisor run share: its settings, its counters (in a `Ref`), its flags
 * and the services it calls. Built once per run by `Supervisor.run`.
 */
import { AgentId, type EventLogShape, type TrailConfig, type Worker } from "@trail/domain"
import type { Scheduler } from "@trail/scheduler"
import type { Database } from "@trail/store"
import type { Inbox, Processes, Workers } from "@trail/workers"
import { Cause, type Deferred, Effect, Ref } from "effect"
import type { SupervisorStore } from "./SupervisorStore.js"

/** How the supervisor is told to stop: `drain` (first signal) and `cancel` (second signal). */
export interface StopSignals {
  readonly drain: Deferred.Deferred<void>
  readonly cancel: Deferred.Deferred<void>
}

/** The counters of a run's summary. */
export interface Counts {
  readonly supervised: number
  readonly spawned: number
  readonly ready: number
  readonly failed: number
  readonly folders_done: number
  readonly folders_skipped: number
  readonly folders_released: number
  /** Fleet mode: workers that could not start (their folders were released, not skipped). */
  readonly start_failures: number
}

export const noCounts: Counts = {
  supervised: 0,
  spawned: 0,
  ready: 0,
  failed: 0,
  folders_done: 0,
  folders_skipped: 0,
  folders_released: 0,
  start_failures: 0
}

/** The services a run calls. */
export interface Services {
  readonly workers: Workers.WorkersShape
  readonly scheduler: Scheduler.Scheduler["Type"]
  readonly eventLog: EventLogShape
  readonly inbox: Inbox.Inbox["Type"]
  readonly processes: Processes.ProcessesShape
  readonly store: SupervisorStore
  /** The store itself: the renewal tick's one transaction spans Workers' and the Scheduler's writes. */
  readonly database: Database.DatabaseShape
}

export interface Run extends Services {
  readonly config: TrailConfig
  readonly stop: StopSignals
  /** This process as the holder of leases: `<pid>@<hostname>`. */
  readonly owner: string
  readonly leaseMs: number
  /** Progress lines for a person. */
  readonly report: (line: string) => void
  readonly counts: Ref.Ref<Counts>
  /** Set by the second signal: supervised workers are cancelled rather than handed back. */
  readonly cancelling: Ref.Ref<boolean>
  /** Set once the database file was replaced: nothing more is written to the old one. */
  readonly storeGone: Ref.Ref<boolean>
}

export const bump = (run: Run, counter: keyof Counts) =>
  Ref.update(run.counts, (counts) => ({ ...counts, [counter]: counts[counter] + 1 }))

/**
 * Runs `effect`; if it fails, the failure is logged as a warning with its cause (`what` says what
 * could not be done) and the run goes on with `orElse`. Defects and interruptions pass through.
 */
export const warnOnFailure =
  <B>(what: string, orElse: () => B) =>
  <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A | B, never, R> =>
    Effect.catchAll(effect, (error) => Effect.as(Effect.logWarning(what, Cause.fail(error)), orElse()))

/** A fleet worker's folder lease: its task, folder, and the worker as the folder's agent. */
export const folderOf = (worker: Worker) =>
  worker.task === null || worker.path === null
    ? null
    : {
        task: worker.task,
        path: worker.path,
        // A worker holds its folder under its own id (SPEC §2: the lease moves to the worker).
        agent: AgentId.make(worker.id)
      }

/** How a worker ended, in a line for a person. */
export const describeEnd = (worker: Worker): string => {
  switch (worker.state) {
    case "ready":
      return `ready${worker.result?.found === null || worker.result === null ? "" : ` (found ${worker.result.found})`}`
    default:
      return `${worker.state}${worker.reason === null ? "" : `: ${worker.reason}`}`
  }
}
